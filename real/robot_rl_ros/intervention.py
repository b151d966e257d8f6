"""Human-in-the-loop intervention: teleop sources, the mux, and the ``intervention`` node.

Intervention is data. Every source answers ``read(reading) -> Intervention(action, active)``
in the policy's action space (joint or ee, as it was trained; each source says how); the mux
executes the first active person's action, otherwise the policy's, and the policy node records
both actions and the flag on every step.

Sources: geometry_msgs/Twist (tool velocity, e.g. from this module's keyboard node or a
spacemouse driver) and Float64MultiArray joint deltas (rad per step, plus the gripper action).
A person counts as active while their messages keep coming (``teleop.timeout_s``): stop
sending and control returns to the policy.

    robot-rl-intervention --ros-args -p robot:=real/config/panda.yaml     # keyboard teleop in this terminal
"""

from __future__ import annotations

import select
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_rl.teleop import MOTION_HELP, HeldKeys
from robot_rl_ros import messages as M
from robot_rl_ros.config import RobotConfig, load_robot
from robot_rl_ros.node import Rate, Shutdown, run, setup_logging
from robot_rl_ros.observation import RobotReading, TaskObservation
from robot_rl_ros.params import param, parse
from robot_rl_ros.transport import make_transport


@dataclass(frozen=True)
class Intervention:
    action: np.ndarray | None
    """float64[A] in the policy's action space ([-1, 1]); None when nobody intervenes."""
    active: bool


NOBODY = Intervention(None, False)


class _TopicSource:
    """Keeps the newest message and when it arrived; active while it is fresh."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._latest: tuple[float, Any] | None = None  # replaced whole, so reads need no lock

    def on_message(self, msg: Any) -> None:
        self._latest = (time.monotonic(), msg)

    def fresh(self) -> Any | None:
        latest = self._latest
        if latest is None or time.monotonic() - latest[0] > self.timeout_s:
            return None
        return latest[1]


class TwistSource(_TopicSource):
    """Twist.linear (unit-less, scaled by ``linear_speed`` m/s) moves the tool; angular.z > 0
    opens the gripper, < 0 closes it, 0 leaves it to the policy (a policy without a gripper
    action: the gripper stays closed).

    The tool displacement of one step, dx = clip(linear, ±1)·linear_speed·control_dt (m, base
    frame), becomes the action of the task's action space: joint space, the damped least-squares
    joint step for dx over ``action_scale``; ee space, dx / ``ee_step`` (no joint solve: the ee
    action is a tool displacement). Clipped to [-1, 1] in both."""

    def __init__(self, task: TaskObservation, control_dt: float, linear_speed: float, timeout_s: float) -> None:
        super().__init__(timeout_s)
        self.task, self.control_dt, self.linear_speed = task, control_dt, linear_speed

    def read(self, reading: RobotReading, policy_action: np.ndarray) -> Intervention:
        msg = self.fresh()
        if msg is None:
            return NOBODY
        v = np.array([msg.linear.x, msg.linear.y, msg.linear.z], dtype=np.float64)
        dx = np.clip(v, -1.0, 1.0) * self.linear_speed * self.control_dt
        if self.task.action_space == "ee":
            move = dx / self.task.ee_step
        else:
            move = self.task.arm.joint_step_for(reading.q, dx) / self.task.action_scale
        move = np.clip(move, -1.0, 1.0)
        if not self.task.gripper_action:  # the policy has no gripper action: the gripper stays closed
            return Intervention(move, True)
        grip = float(np.sign(msg.angular.z)) if msg.angular.z != 0 else float(policy_action[-1])
        return Intervention(np.append(move, grip), True)


class JointDeltaSource(_TopicSource):
    """Float64MultiArray [dq_1..dq_J (rad per step), gripper action] (the gripper entry is
    dropped for a policy without a gripper action).

    Joint space: an exact joint move, action = dq / ``action_scale`` (clipped to [-1, 1]). The ee
    space has no action for an arbitrary joint move, so the action is the tool displacement the
    move would make, (tcp(q + dq) − tcp(q)) / ``ee_step`` (clipped to [-1, 1]): the arm then
    moves the tool about that far by the ee step's own damped joint solve, which also turns the
    tool towards pointing down, so the joints take another path than dq and the move's tool
    rotation is not carried over."""

    def __init__(self, task: TaskObservation, timeout_s: float) -> None:
        super().__init__(timeout_s)
        self.task = task

    def read(self, reading: RobotReading, policy_action: np.ndarray) -> Intervention:
        msg = self.fresh()
        if msg is None:
            return NOBODY
        delta = np.asarray(msg.data, dtype=np.float64)
        if delta.shape != (self.task.target_dim,) or not np.all(np.isfinite(delta)):
            return NOBODY  # malformed teleop must not take over (the log says why once, in the node)
        dq = delta[:-1]
        if self.task.action_space == "ee":
            move = (self.task.arm.tcp(reading.q + dq) - self.task.arm.tcp(reading.q)) / self.task.ee_step
        else:
            move = dq / self.task.action_scale
        action = np.append(move, delta[-1]) if self.task.gripper_action else move
        return Intervention(np.clip(action, -1.0, 1.0), True)


class Mux:
    """The first active source wins; otherwise nobody intervenes."""

    def __init__(self, sources: list[TwistSource | JointDeltaSource]) -> None:
        self.sources = sources

    def read(self, reading: RobotReading, policy_action: np.ndarray) -> Intervention:
        for source in self.sources:
            person = source.read(reading, policy_action)
            if person.active:
                return person
        return NOBODY


# -- keyboard node --------------------------------------------------------------------------------

HELP = (f"keyboard teleop: SPACE take over / hand back, {MOTION_HELP}, q quit. "
        "While you hold control, your keys drive the arm; release control and the policy continues.")


class KeyboardTeleop:
    """Turns key presses into Twists (:class:`robot_rl.teleop.HeldKeys`); SPACE toggles who is
    in control."""

    def __init__(self, hold_s: float = 0.15) -> None:
        self.active = False
        self.keys = HeldKeys(hold_s)

    def press(self, key: str, now: float) -> bool:
        """Handle one key; False means quit."""
        if key == "q":
            return False
        if key == " ":
            self.active = not self.active
        else:
            self.keys.press(key, now)
        return True

    def twist(self, now: float) -> Any:
        linear, grip = self.keys.command(now)
        return M.twist(linear, (0.0, 0.0, grip))


@dataclass(frozen=True)
class InterventionParams:
    robot: str = param(doc="robot config YAML (topic names, teleop settings)")
    rate_hz: float = param(20.0, "Twist publishing rate while you hold control (Hz)")
    backend: str = param("auto", "transport: auto, cyclone or rclpy")


def _read_keys(shutdown: Shutdown, teleop: KeyboardTeleop, lock: threading.Lock) -> None:
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        while not shutdown:
            ready, _, _ = select.select([sys.stdin], [], [], 0.1)
            if ready:
                key = sys.stdin.read(1)
                with lock:
                    if not teleop.press(key, time.monotonic()):
                        shutdown.event.set()
                print(f"\r{'YOU' if teleop.active else 'policy'} in control   ", end="", flush=True)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def main(argv: list[str] | None = None) -> int:
    params, node = parse(InterventionParams, argv, "intervention", __doc__.split("\n\n")[0])
    config: RobotConfig = load_robot(params.robot)
    if not sys.stdin.isatty():
        raise ValueError("the keyboard teleop needs a terminal; run `intervention` in its own terminal "
                         "(or publish geometry_msgs/Twist on " + config.topics.teleop_twist + ")")
    log = setup_logging(node.name)
    shutdown = Shutdown()
    transport = make_transport(node.name, params.backend, node.namespace)
    pub = transport.publisher(config.topics.teleop_twist, M.TWIST)
    teleop, lock = KeyboardTeleop(), threading.Lock()
    threading.Thread(target=_read_keys, args=(shutdown, teleop, lock), daemon=True).start()
    log.info(HELP)
    rate = Rate(params.rate_hz)
    try:
        while not shutdown:
            with lock:
                active, twist = teleop.active, teleop.twist(time.monotonic())
            if active:  # publishing at all is what marks a person as active
                pub.publish(twist)
            rate.sleep(shutdown)
    finally:
        transport.close()
    return 0


def entry() -> None:
    raise SystemExit(run(main))


if __name__ == "__main__":
    entry()
