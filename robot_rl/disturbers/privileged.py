"""Privileged actions with a curriculum (Mao et al., *Learning Long-Horizon Robot Manipulation
Skills via Privileged Action*).

In simulation only, the policy's action is ``[robot actions, privileged actions]``: the
privileged part is a virtual force (and torque) on the object, and contacts between chosen
robot bodies and the table may penetrate, both scaled by s(k). A :class:`Curriculum` raises k
each time the success rate at the current level passes a threshold, until s = 0: the policy
then solves the task with its robot actions alone, which is all an exported policy keeps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import torch

from robot_rl.configs.train import PrivilegedConfig
from robot_rl.disturbers.common import body_of, find_sim
from robot_rl.envs.vec_env import Obs, check_actions


def check_schedule(schedule: Sequence[float]) -> tuple[float, ...]:
    """``robust.privileged.schedule`` checked: at least two scales in [0, 1], strictly
    decreasing, the last 0 (so the curriculum ends without privileges)."""
    values = tuple(float(x) for x in schedule)
    fix = "e.g. [1.0, 0.5, 0.25, 0.12, 0.06, 0.0]"
    if len(values) < 2 or values[-1] != 0.0:
        raise ValueError(f"robust.privileged.schedule: needs at least two scales ending at 0.0, got {list(values)}; "
                         + fix)
    if not all(0.0 <= x <= 1.0 for x in values):
        raise ValueError(f"robust.privileged.schedule: scales must lie in [0, 1], got {list(values)}; " + fix)
    if any(b >= a for a, b in zip(values, values[1:])):
        raise ValueError(f"robust.privileged.schedule: scales must strictly decrease, got {list(values)}; " + fix)
    return values


class Curriculum:
    """Levels k = 0..levels with privilege scale s(k): ``schedule[k]`` or, without a schedule,
    1 − k/levels. :meth:`advance` moves to the next level once at least ``min_episodes``
    episodes have finished at this one and the success rate of the last ``min_episodes`` of
    them is at least ``threshold``."""

    def __init__(self, levels: int, threshold: float, min_episodes: int,
                 schedule: Sequence[float] | None = None) -> None:
        if levels < 1 or not 0.0 <= threshold <= 1.0 or min_episodes < 1:
            raise ValueError(f"curriculum needs levels >= 1, threshold in [0, 1], min_episodes >= 1; "
                             f"got {levels}, {threshold}, {min_episodes}")
        if schedule:
            schedule = check_schedule(schedule)
            levels = len(schedule) - 1
        else:
            schedule = tuple(1.0 - k / levels for k in range(levels + 1))
        self.schedule: tuple[float, ...] = tuple(schedule)
        """s of each level k = 0..levels."""
        self.levels, self.threshold, self.min_episodes = levels, threshold, min_episodes
        self.level = 0
        self.episodes = 0
        """Episodes finished at this level."""
        self.recent: deque[bool] = deque(maxlen=min_episodes)
        """Outcomes of the last ``min_episodes`` of them."""

    @property
    def scale(self) -> float:
        """s(k) in [0, 1]: ``schedule[0]`` at the start, 0 once the curriculum is done."""
        return self.schedule[min(self.level, self.levels)]

    @property
    def done(self) -> bool:
        return self.level >= self.levels

    @property
    def successes(self) -> int:
        """Successes among the recent episodes."""
        return sum(self.recent)

    @property
    def success_rate(self) -> float:
        return self.successes / len(self.recent) if self.recent else float("nan")

    def observe(self, done: torch.Tensor, success: torch.Tensor, started: torch.Tensor | None = None) -> None:
        """Count finished episodes done bool[N] and which of them succeeded, success bool[N].
        With ``started`` int[N], the level each episode began at, only episodes run entirely at
        the current level count: one begun with more privilege would credit this level with
        the previous level's successes."""
        if started is not None:
            done = done & (started == self.level)
        self.episodes += int(done.sum())
        self.recent.extend(bool(s) for s in success[done].tolist())

    def advance(self, counts: tuple[int, int, int] | None = None) -> bool:
        """Go to the next level if this one is mastered; returns whether it did. ``counts``
        (episodes, recent episodes, recent successes) replaces this process's own (e.g. summed
        over processes)."""
        episodes, recent, successes = counts if counts is not None else (self.episodes, len(self.recent),
                                                                          self.successes)
        if self.done or episodes < self.min_episodes or successes < self.threshold * recent:
            return False
        self.level += 1
        self.episodes = 0
        self.recent.clear()
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"level": self.level, "episodes": self.episodes, "recent": [int(x) for x in self.recent]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.level, self.episodes = int(state["level"]), int(state["episodes"])
        self.recent = deque((bool(x) for x in state["recent"]), maxlen=self.min_episodes)


class PrivilegedActionEnv:
    """A :class:`~robot_rl.envs.vec_env.VecEnv` whose steps also take privileged actions.

    ``action_dim`` (and ``action_low``/``action_high``) stay the robot's: what a deployed policy
    outputs. ``step`` accepts float[N, A] or float[N, A + privileged_action_dim]; the extra
    columns in [-1, 1] become a world-frame wrench on ``cfg.body`` of s·(max_force, max_torque)
    per axis, acting only where ``cfg.gate_sensors`` are within ``cfg.gate_radius`` (when
    given). The ``"privileged"`` observation group gains s as its last column (the critic knows
    how much help there is). Built with s = 0: a physically plain environment.
    """

    def __init__(self, env: Any, cfg: PrivilegedConfig, scale: float = 0.0) -> None:
        self.env, self.cfg = env, cfg
        self.sim = find_sim(env)
        self.body = body_of(env, cfg.body, "robust.privileged")
        self.num_envs, self.device, self.action_dim = env.num_envs, env.device, env.action_dim
        self.action_low, self.action_high, self.goal = env.action_low, env.action_high, env.goal
        self.privileged_action_dim = 6 if cfg.max_torque > 0 else 3
        if "privileged" not in env.obs_dims:
            raise ValueError("privileged actions need an env with a 'privileged' observation group")
        self.obs_dims = {**env.obs_dims, "privileged": env.obs_dims["privileged"] + 1}
        limits = [cfg.max_force] * 3 + ([cfg.max_torque] * 3 if cfg.max_torque > 0 else [])
        self._limits = torch.tensor(limits, device=self.device)
        if cfg.gate_sensors and len(cfg.gate_sensors) != 2:
            raise ValueError(f"robust.privileged.gate_sensors: name two position sensors (e.g. [ee_pos, cube_pos]), "
                             f"got {list(cfg.gate_sensors)}")
        for name in cfg.gate_sensors:
            if name not in self.sim.layout.sensors:
                raise ValueError(f"robust.privileged.gate_sensors: no sensor {name!r} in the scene; sensors: "
                                 f"{', '.join(self.sim.layout.sensors)}")
        self._relax = cfg.relax_depth > 0 and bool(cfg.relax_bodies)
        if self._relax and not hasattr(self.sim, "relax_contacts"):
            raise ValueError("robust.privileged.relax_depth: relaxed contacts need the native backend "
                             "(env.backend: native), or set relax_depth: 0")
        self.scale = -1.0
        self.set_scale(scale)

    def __getattr__(self, name: str) -> Any:
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    def set_scale(self, scale: float) -> None:
        """Set s in [0, 1] for every world (relaxed contacts change at once)."""
        if not 0.0 <= scale <= 1.0:
            raise ValueError(f"privilege scale must lie in [0, 1], got {scale}")
        if scale != self.scale and self._relax:
            depth = torch.full((self.num_envs,), scale * self.cfg.relax_depth)
            self.sim.relax_contacts(self.cfg.relax_geom, tuple(self.cfg.relax_bodies), depth)
        self.scale = float(scale)

    def _with_scale(self, obs: Obs) -> Obs:
        obs = dict(obs)
        column = torch.full((self.num_envs, 1), self.scale, device=self.device)
        obs["privileged"] = torch.cat([obs["privileged"], column], dim=1)
        return obs

    def reset(self, seed: int | None = None) -> tuple[Obs, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed)
        return self._with_scale(obs), info

    def split(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """actions float[N, A] or float[N, A + P] -> robot float[N, A], privileged float[N, P] (zeros
        when absent)."""
        a, p = self.action_dim, self.privileged_action_dim
        if isinstance(actions, torch.Tensor) and actions.ndim == 2 and actions.shape[1] == a + p:
            full = check_actions(actions, self.num_envs, a + p).to(self.device)
            return full[:, :a], full[:, a:].clamp(-1.0, 1.0)
        robot = check_actions(actions, self.num_envs, a)
        return robot, torch.zeros(self.num_envs, p, device=self.device)

    def gate(self) -> torch.Tensor:
        """float[N, 1]: 1 in the worlds where the privileged wrench acts (``gate_sensors`` at most
        ``gate_radius`` apart, or everywhere without them), else 0."""
        if not self.cfg.gate_sensors:
            return torch.ones(self.num_envs, 1, device=self.device)
        a, b = (self.sim.sensor(name)[:, :3] for name in self.cfg.gate_sensors)
        return (torch.linalg.norm(b - a, dim=1, keepdim=True) <= self.cfg.gate_radius).float()

    def privileged_wrench(self, privileged: torch.Tensor) -> torch.Tensor:
        """float[N, P] in [-1, 1] -> the wrench float[N, 6] it applies at the current scale."""
        wrench = torch.zeros(self.num_envs, 6, device=self.device)
        wrench[:, :privileged.shape[1]] = self.scale * self._limits * privileged
        return wrench * self.gate()

    def step(self, actions: torch.Tensor) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        robot, privileged = self.split(actions)
        self.sim.apply_wrench(self.body, self.privileged_wrench(privileged))
        obs, reward, terminated, truncated, info = self.env.step(robot)
        info = dict(info)
        info["final_obs"] = self._with_scale(info["final_obs"])
        return self._with_scale(obs), reward, terminated, truncated, info

    def close(self) -> None:
        self.env.close()
