"""panda_push: push a cube across the table onto a target."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from robot_rl.envs.backend import Backend, Layout
from robot_rl.envs.task import ResetState, register_task, uniform
from robot_rl_sim.constants import panda
from robot_rl_sim.tasks.common import PandaConfig, PandaTask, tanh_kernel
from robot_rl_sim.tasks.cube import Cube


@dataclass(frozen=True)
class PandaPushConfig(PandaConfig):
    goal: str = "the red cube is pushed onto the green target on the table"
    reward_weights: dict[str, float] = field(default_factory=lambda: {
        "reach": 0.5, "push": 1.0, "distance": 1.0, "success": 1.0, "action_rate": 0.01,
    })
    initial_arm: tuple[float, ...] = panda.TABLE_READY_QPOS
    cube_low: tuple[float, float] = (0.4, -0.15)
    """Lower corner of the area the cube starts in (x, y metres)."""
    cube_high: tuple[float, float] = (0.6, 0.15)
    target_distance: tuple[float, float] = (0.1, 0.2)
    """The target is this far (range, metres) from the cube's start, in a random direction."""
    success_distance: float = 0.05
    reach_scale: float = 0.25
    """Width of the tip-to-cube kernel 1 - tanh(d / scale): wide enough to pull the tip down
    from its home pose half a metre away."""


@register_task("panda_push")
class PandaPush(PandaTask):
    """Observation ``"policy"`` (42): robot state (23), tip, cube position and orientation,
    target, cube minus tip, target minus cube. ``"privileged"`` (50): policy + cube velocity,
    finger-pad contact forces, (mass, friction, gain) scales."""

    scene = f"{panda.MODEL_DIR}/{panda.SCENES['push']}"
    config_class = PandaPushConfig
    randomized_bodies = ("cube",)
    config: PandaPushConfig

    def __init__(self, config: PandaPushConfig, num_envs: int, device: torch.device, layout: Layout) -> None:
        super().__init__(config, num_envs, device, layout)
        self.cube = Cube(layout, device)
        self._target = layout.mocap_row("target")
        self.initial_distance = torch.ones(num_envs, device=device)

    def reset(self, sim: Backend, env_ids: torch.Tensor, generator: torch.Generator) -> ResetState:
        n, cfg = len(env_ids), self.config
        qpos, qvel = self.reset_arm(env_ids, generator)
        start = uniform(cfg.cube_low, cfg.cube_high, (n, 2), generator, self.device)
        self.cube.place(qpos, start, generator)
        angle = uniform(-math.pi, math.pi, (n,), generator, self.device)
        radius = uniform(*cfg.target_distance, (n,), generator, self.device)
        mocap = sim.mocap_pos[env_ids].clone()
        mocap[:, self._target, 0] = start[:, 0] + radius * torch.cos(angle)
        mocap[:, self._target, 1] = start[:, 1] + radius * torch.sin(angle)
        mocap[:, self._target, 2] = panda.TABLE_Z
        return ResetState(qpos, qvel, mocap)

    def after_reset(self, sim: Backend, env_ids: torch.Tensor) -> None:
        self.initial_distance[env_ids] = self.cube_to_target(sim)[env_ids].clamp_min(1e-3)

    def cube_to_target(self, sim: Backend) -> torch.Tensor:
        """float32[N]: distance on the table plane from the cube to the target, metres."""
        return torch.linalg.norm(sim.sensor("target_pos")[:, :2] - self.cube.position(sim)[:, :2], dim=1)

    def observe(self, sim: Backend) -> dict[str, torch.Tensor]:
        tip, cube, target = sim.sensor("ee_pos"), self.cube.position(sim), sim.sensor("target_pos")
        policy = torch.cat([self.robot_obs(sim), tip, cube, sim.sensor("cube_quat"), target,
                            cube - tip, target - cube], dim=1)
        privileged = torch.cat([policy, sim.sensor("cube_linvel"), self.cube.touches(sim), self.dynamics], dim=1)
        return {"policy": policy, "privileged": privileged}

    def reward_terms(self, sim: Backend) -> dict[str, torch.Tensor]:
        tip_to_cube = torch.linalg.norm(self.cube.position(sim) - sim.sensor("ee_pos"), dim=1)
        d = self.cube_to_target(sim)
        return {
            "reach": tanh_kernel(tip_to_cube, self.config.reach_scale),
            "push": tanh_kernel(d, 0.1),
            "distance": -d,
            "success": (d < self.config.success_distance).float(),
            "action_rate": self.action_rate(),
        }

    def success(self, sim: Backend) -> torch.Tensor:
        return self.cube_to_target(sim) < self.config.success_distance

    def progress(self, sim: Backend) -> torch.Tensor:
        return (1.0 - self.cube_to_target(sim) / self.initial_distance).clamp(0.0, 1.0)

    def terminated(self, sim: Backend) -> torch.Tensor:
        return self.cube.off_table(sim)
