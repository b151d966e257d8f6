"""Closed-loop scripted controllers that act in the physics (unlike :mod:`robot_rl_sim.episodes`,
which writes states): demonstrations of mixed quality for offline RL.

A controller reads each world's state, picks a tip target from a small state machine, turns
it into arm joints with the damped-least-squares IK of :class:`~robot_rl_sim.episodes.ArmIK`,
and returns the task's action: the joint change divided by ``action_scale``, clipped to
[-1, 1], plus the gripper command.

    env = robot_rl.envs.make("panda_push", num_envs=8)
    pusher = ScriptedPusher(env, qualities=["expert"] * 4 + ["noisy"] * 2 + ["failed"] * 2, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(env.max_episode_steps):
        obs, reward, terminated, truncated, info = env.step(pusher.act())

Qualities (per world, kept across resets):

- ``expert``: hover behind the cube on the line from the target through the cube, lower the
  tip to the cube's mid-height, push the cube onto the target (re-aiming as it goes).
- ``noisy``: the expert with Gaussian action noise (std 0.3) and, 20% of the time, a random action.
- ``failed``: approaches like the expert, then pushes the cube in a wrong direction
  (60-180 degrees off) or hovers without touching it.

Controllers: ``CONTROLLERS.names()`` (panda_push, panda_reach).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch

from robot_rl.envs.sim_env import SimVecEnv
from robot_rl.registry import Registry
from robot_rl_sim.constants import panda
from robot_rl_sim.episodes import ArmIK

QUALITIES = ("expert", "noisy", "failed")

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
        self.phase = np.zeros(env.num_envs, dtype=np.int64)
        """Per world: the state-machine phase (0 at each episode start)."""
        self.wrong_angle = np.zeros(env.num_envs)
        self.hover_only = np.zeros(env.num_envs, dtype=bool)
        self._last_steps = np.zeros(env.num_envs, dtype=np.int64)

    def _new_episodes(self) -> None:
        steps = self.env.episode_steps.cpu().numpy()
        fresh = steps < self._last_steps
        fresh |= steps == 0
        for i in np.nonzero(fresh)[0]:
            self.phase[i] = 0
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
            target = tip + step * min(1.0, self.max_tip_step / max(float(np.linalg.norm(step)), 1e-9))
            q = self.ik.solve(qpos[i], target, point_down=True, iters=20)
            delta = (q[self.ik.qadr] - qpos[i, self.ik.qadr]) / self.scale
            actions[i, :7] = np.clip(delta, -1.0, 1.0)
            actions[i, 7] = self.gripper()
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

    def tip_target(self, i: int, qpos: np.ndarray) -> np.ndarray:
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
        pre = np.append(cube[:2] - self.behind * direction, self.low)
        above = pre + np.array([0.0, 0.0, self.hover])
        if self.phase[i] == 3 or (not failed and np.linalg.norm(path) < 0.02):  # on target: back off upwards
            self.phase[i] = 3
            return np.append(tip[:2], self.low + self.hover)
        if self.phase[i] == 0:  # above the pre-push point, rising first so as not to sweep the cube away
            if tip[2] < self.low + 0.5 * self.hover and np.linalg.norm(tip[:2] - above[:2]) > 0.02:
                return np.append(tip[:2], self.low + self.hover)
            if np.linalg.norm(tip - above) < 0.02:
                self.phase[i] = 1
            return above
        if self.phase[i] == 1:  # lower behind the cube
            if failed and self.hover_only[i]:
                return above
            if np.linalg.norm(tip - pre) < 0.012:
                self.phase[i] = 2
            return pre
        # Push: aim a little beyond the point behind the cube, along the push direction. Re-aim
        # sideways when the tip drifted off the line through the cube.
        offset = tip[:2] - (cube[:2] - self.behind * direction)
        sideways = offset - np.dot(offset, direction) * direction
        if np.linalg.norm(sideways) > 0.02:
            self.phase[i] = 0
        lead = min(0.012, float(np.linalg.norm(path))) if not failed else 0.012
        return np.append(cube[:2] - self.behind * direction + lead * direction - sideways, self.low)


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
