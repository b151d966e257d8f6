"""panda_push: push a cube across the table onto a target."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from robot_rl.envs.backend import Backend, Layout
from robot_rl.envs.task import ResetState, register_task, uniform
from robot_rl_sim.constants import panda
from robot_rl_sim.tasks.common import tanh_kernel
from robot_rl_sim.tasks.cube import CubeTask, CubeTaskConfig


@dataclass(frozen=True)
class PandaPushConfig(CubeTaskConfig):
    goal: str = "the red cube is pushed onto the green target on the table"
    reward_weights: dict[str, float] = field(default_factory=lambda: {
        "reach": 0.5, "push": 1.0, "distance": 1.0, "success": 1.0, "action_rate": 0.01,
    })
    target_distance: tuple[float, float] = (0.1, 0.2)
    """The target is this far (range, metres) from the cube's start, in a random direction."""


@register_task("panda_push")
class PandaPush(CubeTask):
    """Observations as :class:`CubeTask`; the target is a disc on the table."""

    scene = f"{panda.MODEL_DIR}/{panda.SCENES['push']}"
    config_class = PandaPushConfig
    config: PandaPushConfig

    def __init__(self, config: PandaPushConfig, num_envs: int, device: torch.device, layout: Layout) -> None:
        super().__init__(config, num_envs, device, layout)
        self.initial_distance = torch.ones(num_envs, device=device)

    def reset(self, sim: Backend, env_ids: torch.Tensor, generator: torch.Generator) -> ResetState:
        n, cfg = len(env_ids), self.config
        qpos, qvel = self.reset_arm(env_ids, generator)
        start = self.start_cube(qpos, generator, env_ids)
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

    def reward_terms(self, sim: Backend) -> dict[str, torch.Tensor]:
        d = self.cube_to_target(sim)
        return {
            "reach": tanh_kernel(self.tip_to_cube(sim), self.config.reach_scale),
            "push": tanh_kernel(d, 0.1),
            "distance": -d,
            "success": (d < self.config.success_distance).float(),
            "action_rate": self.action_rate(),
        }

    def success(self, sim: Backend) -> torch.Tensor:
        return self.cube_to_target(sim) < self.config.success_distance

    def progress(self, sim: Backend) -> torch.Tensor:
        return (1.0 - self.cube_to_target(sim) / self.initial_distance).clamp(0.0, 1.0)
