"""The safety filter between a policy (or a person) and the robot.

Every control step a desired joint target (arm joints + gripper opening) becomes either a
command the robot may execute or a hold:

    decision = safety.filter(target, state)       # target float[J+1]; state: ArmState or None
    decision.command                              # float64[J+1] to send, or None: send nothing
    decision.hold, decision.reasons               # why it was held or changed

Rules, in order: no valid joint state → send nothing; latched e-stop → hold where the arm was
when it latched; state older than ``max_state_age_s`` → hold; target of the wrong size or not
finite → hold; otherwise clamp each joint into its position limits, within velocity × dt of the
previous command and (when compatible with those) within ``max_step`` of the measured position;
then shorten the step so the tool stays in the workspace box (or, if the arm is already outside,
does not move farther from it). A hold re-sends the last safe command, which keeps a position-
controlled arm still.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl_ros.config import RobotConfig
from robot_rl_ros.kinematics import Arm

_BISECTIONS = 12  # workspace line search: step resolution 1/4096 of the requested move


@dataclass(frozen=True)
class ArmState:
    """The newest valid joint state."""

    q: np.ndarray
    """float64[J] arm joint positions (rad)."""
    gripper: float
    """Gripper opening per finger (m)."""
    age_s: float
    """Seconds since this state was measured (or received, when clocks are not synced)."""


@dataclass(frozen=True)
class Decision:
    command: np.ndarray | None
    """float64[J+1]: arm joint targets (rad) and gripper opening (m); None: send nothing."""
    hold: bool
    """The command holds the robot instead of following the target."""
    clamped: bool
    """Some limit changed the target."""
    reasons: tuple[str, ...]
    """Human-readable causes of a hold or a clamp."""


class SafetyFilter:
    def __init__(self, config: RobotConfig, control_dt: float) -> None:
        limits = config.limits
        self.dof = len(config.arm_joints)
        self.low = np.array(limits.position_lower + (limits.gripper[0],))
        self.high = np.array(limits.position_upper + (limits.gripper[1],))
        # The gripper has no velocity limit of its own: it may open or close fully in one step.
        span = limits.gripper[1] - limits.gripper[0]
        self.max_change = np.array([v * control_dt for v in limits.velocity] + [span])
        self.max_step = np.array([limits.max_step] * self.dof + [span])
        self.box_low, self.box_high = np.array(config.workspace.low), np.array(config.workspace.high)
        self.max_state_age_s = config.max_state_age_s
        self.arm = Arm(config.kinematics)
        self.last_command: np.ndarray | None = None
        self.estopped = False
        self._estop_hold: np.ndarray | None = None
        self._last_state: ArmState | None = None

    # -- e-stop ------------------------------------------------------------------------------------

    def estop(self) -> None:
        """Latch: hold where the arm is now until :meth:`reset_estop`."""
        if not self.estopped:
            self.estopped = True
            state = self._last_state
            self._estop_hold = self._measured(state) if state is not None else self.last_command

    def reset_estop(self) -> None:
        """Release the e-stop; the next command starts from the measured position."""
        self.estopped, self._estop_hold = False, None
        self.last_command = None

    # -- filtering -----------------------------------------------------------------------------

    def _measured(self, state: ArmState) -> np.ndarray:
        return np.clip(np.append(state.q, state.gripper), self.low, self.high)

    def _hold(self, state: ArmState, reason: str) -> Decision:
        command = self.last_command if self.last_command is not None else self._measured(state)
        self.last_command = command
        return Decision(command.copy(), True, False, (reason,))

    def hold(self, state: ArmState | None, reason: str) -> Decision:
        """Hold on purpose (goal reached, stopping): the e-stop's hold while it is latched, else the
        last safe command, or the measured position before any."""
        if state is None:
            return Decision(None, True, False, ("no valid joint state",))
        self._last_state = state
        if self.estopped:
            return self.filter(np.full(self.dof + 1, np.nan), state)
        return self._hold(state, reason)

    def filter(self, target: np.ndarray, state: ArmState | None) -> Decision:
        """Decide what to send for ``target`` float[J+1] given the newest valid ``state``."""
        if state is None:
            return Decision(None, True, False, ("no valid joint state",))
        self._last_state = state
        if self.estopped:
            hold = self._estop_hold if self._estop_hold is not None else self._measured(state)
            self._estop_hold = hold
            self.last_command = hold
            return Decision(hold.copy(), True, False, ("e-stop latched",))
        if state.age_s > self.max_state_age_s:
            return self._hold(state, f"joint state is {state.age_s:.3f} s old (limit {self.max_state_age_s:g} s)")
        target = np.asarray(target, dtype=np.float64).reshape(-1)
        if target.shape != (self.dof + 1,):
            return self._hold(state, f"target has {target.size} values, expected {self.dof + 1}")
        if not np.all(np.isfinite(target)):
            return self._hold(state, "target is not finite")

        measured = self._measured(state)
        previous = self.last_command if self.last_command is not None else measured
        # Limits and the velocity bound are hard; the step bound around the measured position
        # applies where it overlaps them (a lagging arm must not make the command jump).
        low = np.maximum(self.low, previous - self.max_change)
        high = np.minimum(self.high, previous + self.max_change)
        command = np.clip(np.clip(target, measured - self.max_step, measured + self.max_step), low, high)
        reasons = []
        if not np.allclose(command, target, rtol=0.0, atol=1e-12):
            worst = int(np.argmax(np.abs(command - target)))
            reasons.append(f"clamped joint {worst} by {abs(command[worst] - target[worst]):.4f}")
        command, moved_back = self._inside_workspace(previous, command)
        if moved_back:
            reasons.append("shortened to stay in the workspace")
        self.last_command = command
        return Decision(command.copy(), False, bool(reasons), tuple(reasons))

    # -- workspace -----------------------------------------------------------------------------

    def box_distance(self, points: np.ndarray) -> np.ndarray:
        """Distance float64[...] (m) of points float[..., 3] outside the workspace box (0 inside)."""
        outside = np.maximum(self.box_low - points, 0.0) + np.maximum(points - self.box_high, 0.0)
        return np.linalg.norm(outside, axis=-1)

    def _inside_workspace(self, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, bool]:
        """The farthest point on start→end (joint space) whose tool is in the box, or no farther
        from it than the tool at ``start``; ``start`` is the last safe command."""
        allowed = self.box_distance(self.arm.tcp(start[:self.dof])) + 1e-9
        if self.box_distance(self.arm.tcp(end[:self.dof])) <= allowed:
            return end, False
        good, bad = 0.0, 1.0
        for _ in range(_BISECTIONS):
            mid = 0.5 * (good + bad)
            if self.box_distance(self.arm.tcp(start[:self.dof] + mid * (end - start)[:self.dof])) <= allowed:
                good = mid
            else:
                bad = mid
        command = start + good * (end - start)
        command[self.dof] = end[self.dof]  # the gripper does not move the tool
        return command, True
