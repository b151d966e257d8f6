"""Keyboard teleoperation shared by the simulated recorder and the ROS 2 intervention node:
which key moves the tool where, and a key state that keeps moving while a key is held.

    keys = HeldKeys(hold_s=0.15)
    keys.press("w", now)                  # from a terminal or a viewer's key callback
    direction, gripper = keys.command(now)   # (1, 0, 0), 0.0 until 0.15 s after the last repeat
"""

from __future__ import annotations

KEYS: dict[str, tuple[tuple[float, float, float], float]] = {
    "w": ((1.0, 0.0, 0.0), 0.0), "s": ((-1.0, 0.0, 0.0), 0.0),
    "a": ((0.0, 1.0, 0.0), 0.0), "d": ((0.0, -1.0, 0.0), 0.0),
    "r": ((0.0, 0.0, 1.0), 0.0), "f": ((0.0, 0.0, -1.0), 0.0),
    "o": ((0.0, 0.0, 0.0), 1.0), "c": ((0.0, 0.0, 0.0), -1.0),
}
"""key -> (tool direction in the base frame, gripper: +1 open / -1 close)."""
MOTION_HELP = "w/s ±x, a/d ±y, r/f ±z, o/c open/close gripper"


class HeldKeys:
    """The latest motion key; it counts as held for ``hold_s`` after its last repeat, so holding
    a key down (the terminal or viewer repeating it) gives a steady motion."""

    def __init__(self, hold_s: float = 0.15) -> None:
        self.hold_s = hold_s
        self._key: tuple[str, float] | None = None

    def press(self, key: str, now: float) -> bool:
        """Record ``key`` if it is a motion key (True), else leave the state alone (False)."""
        if key not in KEYS:
            return False
        self._key = (key, now)
        return True

    def command(self, now: float) -> tuple[tuple[float, float, float], float]:
        """(tool direction, gripper) of the key held at ``now``; zeros when none is."""
        if self._key is None or now - self._key[1] > self.hold_s:
            return (0.0, 0.0, 0.0), 0.0
        return KEYS[self._key[0]]
