"""Closed-loop scripted controllers that act in the physics (unlike :mod:`robot_rl_sim.episodes`,
which writes states): demonstrations of mixed quality for offline RL.

A controller reads each world's state, picks a tip target from it (the phase of a push is read
off the geometry each step, so the expert's action is a function of what the policy observes:
behaviour cloning can imitate it), turns it into arm joints with the damped-least-squares IK
of :class:`~robot_rl_sim.episodes.ArmIK`, and returns the task's action: the joint change
divided by ``action_scale``, clipped to [-1, 1], plus the gripper command (in the ``"ee"``
action space: the tip step divided by ``ee_step``, and the task does the IK).

    env = robot_rl.envs.make("panda_push", num_envs=8)
    pusher = ScriptedPusher(env, qualities=["expert"] * 4 + ["noisy"] * 2 + ["failed"] * 2, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(env.max_episode_steps):
        obs, reward, terminated, truncated, info = env.step(pusher.act())

Qualities (per world, kept across resets):

- ``expert``: hover behind the cube on the line from the target through the cube, lower the
  tip to the cube's mid-height, push the cube onto the target (rising and approaching again when
  the tip drifts off the push line), and rise off the cube once it is on the target; 84-89% of
  episodes end on the target.
- ``steady``: the expert, but once the cube is on the target the tip stays where it is: its
  demos never show the arm leaving the cube, so a policy learning from them has no backing off
  to copy at the wrong moment.
- ``noisy``: the expert with Gaussian action noise (std 0.3) and, 20% of the time, a random action.
- ``failed``: approaches like the expert, then pushes the cube in a wrong direction
  (60-180 degrees off) or hovers without touching it.

Controllers: ``CONTROLLERS.names()`` (panda_push, panda_reach). :class:`KeyboardArm` lets a person
drive any Panda task's arm from the keyboard in a viewer window (``robot-rl record --source keyboard``).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np
import torch

from robot_rl.envs.sim_env import SimVecEnv
from robot_rl.registry import Registry
from robot_rl.teleop import HeldKeys
from robot_rl_sim.constants import panda
from robot_rl_sim.episodes import ArmIK

QUALITIES = ("expert", "steady", "noisy", "failed")

CONTROLLERS: Registry[type] = Registry("scripted controller")
"""Task name -> controller class ``(env, qualities, seed)`` with ``act() -> float32[N, A]``."""


class ScriptedArm(ABC):
    """What the Panda controllers share: qualities per world, IK to actions, noise."""

    noise_std = 0.3
    random_prob = 0.2
    max_tip_step = 0.03
    """Largest tip movement asked for in one control step (m)."""

    def __init__(self, env: SimVecEnv, qualities: Sequence[str], seed: int = 0) -> None:
        if len(qualities) != env.num_envs:
            raise ValueError(f"{len(qualities)} qualities for {env.num_envs} worlds; give one per world")
        unknown = sorted(set(qualities) - set(QUALITIES))
        if unknown:
            raise ValueError(f"unknown qualities {unknown}; qualities: {', '.join(QUALITIES)}")
        if not hasattr(env.sim, "model"):
            raise ValueError("scripted controllers need the native MuJoCo backend (backend='native')")
        self.env, self.qualities = env, list(qualities)
        self.ik = ArmIK(env.sim.model)
        self.rng = np.random.default_rng(seed)
        self.scale = env.task.config.action_scale
        self.ee_step = env.task.config.ee_step if env.task.config.action_space == "ee" else None
        """Metres per unit of tip action in the ``"ee"`` action space; None with joint actions."""
        self.wrong_angle = np.zeros(env.num_envs)
        self.hover_only = np.zeros(env.num_envs, dtype=bool)
        self._last_steps = np.zeros(env.num_envs, dtype=np.int64)

    def _new_episodes(self) -> None:
        steps = self.env.episode_steps.cpu().numpy()
        fresh = steps < self._last_steps
        fresh |= steps == 0
        for i in np.nonzero(fresh)[0]:
            self.wrong_angle[i] = self.rng.choice([-1.0, 1.0]) * self.rng.uniform(np.pi / 3, np.pi)
            self.hover_only[i] = self.rng.random() < 0.3
        self._last_steps = steps

    @abstractmethod
    def tip_target(self, i: int, qpos: np.ndarray) -> np.ndarray:
        """float[3]: where world ``i``'s tip should go next (qpos float[nq] is its state)."""

    def gripper(self) -> float:
        return -1.0

    def act(self) -> torch.Tensor:
        """float32[N, A] actions for the current state of every world."""
        self._new_episodes()
        qpos = self.env.sim.qpos.cpu().numpy().astype(np.float64)
        n, actions = self.env.num_envs, np.zeros((self.env.num_envs, self.env.action_dim), np.float32)
        for i in range(n):
            target = self.tip_target(i, qpos[i])
            tip = self.ik.tip(qpos[i])
            step = target - tip  # small steps keep the IK near the current joints and the push gentle
            step = step * min(1.0, self.max_tip_step / max(float(np.linalg.norm(step)), 1e-9))
            if self.ee_step is not None:  # the task solves the IK itself
                actions[i, :3] = np.clip(step / self.ee_step, -1.0, 1.0)
            else:
                q = self.ik.solve(qpos[i], tip + step, point_down=True, iters=20)
                actions[i, :7] = np.clip((q[self.ik.qadr] - qpos[i, self.ik.qadr]) / self.scale, -1.0, 1.0)
            if self.env.task.config.gripper_action:
                actions[i, -1] = self.gripper()
            if self.qualities[i] == "noisy":
                actions[i] += self.noise_std * self.rng.standard_normal(actions.shape[1])
                if self.rng.random() < self.random_prob:
                    actions[i] = self.rng.uniform(-1.0, 1.0, actions.shape[1])
        return torch.from_numpy(np.clip(actions, -1.0, 1.0))


@CONTROLLERS.register("panda_push")
class ScriptedPusher(ScriptedArm):
    """Pushes the cube onto the target disc (see the module docstring)."""

    behind = panda.CUBE_HALF + 0.02
    """Tip distance behind the cube's centre while pushing (m)."""
    low = panda.TABLE_Z + 0.9 * panda.CUBE_HALF
    hover = 0.08
    lead = 0.06
    """How far beyond the contact point the push aims each step (m)."""
    done_distance = 0.02
    line_tolerance = 0.02
    """Sideways drift off the push line (m) past which the tip rises and approaches again."""
    over_tolerance = 0.012
    """Horizontal distance from the pre-push point (m) within which the tip descends."""

    def tip_target(self, i: int, qpos: np.ndarray) -> np.ndarray:
        # The phase is read off the state each step (no memory), so the expert is a function of
        # what the policy observes and behaviour cloning can imitate it.
        sim = self.env.sim
        cube = sim.sensor("cube_pos")[i].cpu().numpy().astype(np.float64)
        goal = sim.sensor("target_pos")[i, :2].cpu().numpy().astype(np.float64)
        tip = sim.sensor("ee_pos")[i].cpu().numpy().astype(np.float64)
        path = goal - cube[:2]
        direction = path / max(np.linalg.norm(path), 1e-6)
        failed = self.qualities[i] == "failed"
        if failed:
            c, s = np.cos(self.wrong_angle[i]), np.sin(self.wrong_angle[i])
            direction = np.array([c * direction[0] - s * direction[1], s * direction[0] + c * direction[1]])
        elif np.linalg.norm(path) < self.done_distance:  # on target: back off upwards, or stay
            return tip if self.qualities[i] == "steady" else np.append(tip[:2], self.low + self.hover)
        pre = cube[:2] - self.behind * direction
        offset = tip[:2] - pre
        along = float(np.dot(offset, direction))
        sideways = offset - along * direction
        low = tip[2] < self.low + 0.4 * self.hover
        if low and np.linalg.norm(sideways) < self.line_tolerance and -0.02 < along < 0.04:
            # Push: aim a little beyond the contact point, pulling back onto the line through the cube.
            lead = min(self.lead, float(np.linalg.norm(path))) if not failed else self.lead
            return np.append(pre + (self.behind - panda.CUBE_HALF + lead) * direction - sideways, self.low)
        if np.linalg.norm(offset) < self.over_tolerance and not (failed and self.hover_only[i]):
            return np.append(pre, self.low)  # lower behind the cube
        if low:  # rise first so as not to sweep the cube away
            return np.append(tip[:2], self.low + self.hover)
        return np.append(pre, self.low + self.hover)


@CONTROLLERS.register("panda_reach")
class ScriptedReacher(ScriptedArm):
    """Moves the tip straight to the target (``failed``: to a point mirrored about the start)."""

    def tip_target(self, i: int, qpos: np.ndarray) -> np.ndarray:
        sim = self.env.sim
        target = sim.sensor("target_pos")[i].cpu().numpy().astype(np.float64)
        tip = sim.sensor("ee_pos")[i].cpu().numpy().astype(np.float64)
        if self.qualities[i] == "failed":
            target = tip - 0.3 * (target - tip) / max(np.linalg.norm(target - tip), 1e-6)
        step = target - tip
        return tip + step * min(1.0, 0.05 / max(np.linalg.norm(step), 1e-6))

    def gripper(self) -> float:
        return 1.0


def make_controller(env: SimVecEnv, qualities: Sequence[str], seed: int = 0) -> ScriptedArm:
    """The scripted controller of ``env``'s task; the error lists the tasks that have one."""
    return CONTROLLERS.get(env.task.name)(env, qualities, seed)


class KeyboardArm(ScriptedArm):
    """A person drives the tip of one Panda with the keyboard (:data:`robot_rl.teleop.KEYS`):
    a held motion key moves the tip ``speed`` m/s along its axis (the arm holds still otherwise),
    o/c open or close the gripper until the other is pressed. ``keys`` is fed by the viewer's
    key callback (:func:`open_keyboard_viewer`) or, in tests, directly; ``clock`` is its time."""

    def __init__(self, env: SimVecEnv, keys: HeldKeys, clock: Callable[[], float] = time.monotonic,
                 speed: float = 0.2) -> None:
        if env.num_envs != 1:
            raise ValueError(f"keyboard teleoperation drives one world; the env has {env.num_envs} (use num_envs=1)")
        super().__init__(env, ["expert"], seed=0)
        self.keys, self.clock, self.speed = keys, clock, speed
        self.grip = 1.0
        """+1 open, -1 closed (the last o/c pressed)."""

    def tip_target(self, i: int, qpos: np.ndarray) -> np.ndarray:
        direction, grip = self.keys.command(self.clock())
        if grip:
            self.grip = grip
        step = self.speed * self.env.control_dt
        return self.ik.tip(qpos) + step * np.asarray(direction)

    def gripper(self) -> float:
        return self.grip


def open_keyboard_viewer(env: SimVecEnv, keys: HeldKeys) -> tuple[Callable[[], None], Callable[[], None]]:
    """A MuJoCo viewer window showing world 0 whose key presses go to ``keys``. Returns
    ``(show, close)``: ``show()`` draws the current state and waits out the control period, so
    the person sees the episode in real time. Needs a display."""
    import os
    import sys

    def no_display(why: str) -> RuntimeError:
        return RuntimeError(f"keyboard recording opens a MuJoCo viewer window and needs a display ({why}); "
                            "run it in a desktop session, or record with --source scripted|policy:RUN_DIR")

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise no_display("DISPLAY is not set")
    import mujoco
    import mujoco.viewer

    model, data = env.sim.model, mujoco.MjData(env.sim.model)

    def on_key(keycode: int) -> None:
        if 0 <= keycode < 256:
            keys.press(chr(keycode).lower(), time.monotonic())

    try:
        viewer = mujoco.viewer.launch_passive(model, data, key_callback=on_key)
    except Exception as error:  # no display, no GL: say what is needed
        raise no_display(str(error)) from None
    next_frame = time.monotonic()

    def show() -> None:
        nonlocal next_frame
        data.qpos[:] = env.sim.qpos[0].cpu().numpy()
        data.mocap_pos[:] = env.sim.mocap_pos[0].cpu().numpy()
        mujoco.mj_forward(model, data)
        viewer.sync()
        next_frame += env.control_dt
        time.sleep(max(0.0, next_frame - time.monotonic()))
        next_frame = max(next_frame, time.monotonic() - env.control_dt)

    return show, viewer.close
