"""panda_reach: move the Panda's gripper tip to a target point in the air."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from robot_rl.envs.backend import Backend, Layout
from robot_rl.envs.task import ResetState, register_task, uniform
from robot_rl_sim.constants import panda
from robot_rl_sim.tasks.common import PandaConfig, PandaTask, tanh_kernel


@dataclass(frozen=True)
class PandaReachConfig(PandaConfig):
    goal: str = "the robot gripper touches the green ball"
    reward_weights: dict[str, float] = field(default_factory=lambda: {
        "reach": 1.0, "distance": 1.0, "success": 0.5, "action_rate": 0.01,
    })
    target_low: tuple[float, float, float] = (0.3, -0.3, 0.1)
    """Lower corner of the box targets are drawn from (metres, robot base frame)."""
    target_high: tuple[float, float, float] = (0.65, 0.3, 0.5)
    success_distance: float = 0.05
    """The tip counts as at the target within this distance (metres)."""


@register_task("panda_reach")
class PandaReach(PandaTask):
    """Observation ``"policy"`` (32; 28 with ``"ee"`` actions): robot state (23 / 19), tip
    position, target position, and target minus tip. ``"privileged"`` (39 / 35): policy + tip
    orientation + (mass, friction, gain) scales."""

    scene = f"{panda.MODEL_DIR}/{panda.SCENES['reach']}"
    config_class = PandaReachConfig
    config: PandaReachConfig

    def __init__(self, config: PandaReachConfig, num_envs: int, device: torch.device, layout: Layout) -> None:
        super().__init__(config, num_envs, device, layout)
        self._target = layout.mocap_row("target")
        self.initial_distance = torch.ones(num_envs, device=device)

    def reset(self, sim: Backend, env_ids: torch.Tensor, generator: torch.Generator) -> ResetState:
        qpos, qvel = self.reset_arm(env_ids, generator)
        mocap = sim.mocap_pos[env_ids].clone()
        mocap[:, self._target] = uniform(self.config.target_low, self.config.target_high, (len(env_ids), 3),
                                         generator, self.device)
        return ResetState(qpos, qvel, mocap)

    def after_reset(self, sim: Backend, env_ids: torch.Tensor) -> None:
        self.initial_distance[env_ids] = self.distance(sim)[env_ids].clamp_min(1e-3)

    def distance(self, sim: Backend) -> torch.Tensor:
        """float32[N]: tip-to-target distance, metres."""
        return torch.linalg.norm(sim.sensor("target_pos") - sim.sensor("ee_pos"), dim=1)

    def observe(self, sim: Backend) -> dict[str, torch.Tensor]:
        tip, target = sim.sensor("ee_pos"), sim.sensor("target_pos")
        policy = torch.cat([self.robot_obs(sim), tip, target, target - tip], dim=1)
        privileged = torch.cat([policy, sim.sensor("ee_quat"), self.dynamics], dim=1)
        return {"policy": policy, "privileged": privileged}

    def reward_terms(self, sim: Backend) -> dict[str, torch.Tensor]:
        d = self.distance(sim)
        return {
            "reach": tanh_kernel(d, 0.1),
            "distance": -d,
            "success": (d < self.config.success_distance).float(),
            "action_rate": self.action_rate(),
        }

    def success(self, sim: Backend) -> torch.Tensor:
        return self.distance(sim) < self.config.success_distance

    def progress(self, sim: Backend) -> torch.Tensor:
        return (1.0 - self.distance(sim) / self.initial_distance).clamp(0.0, 1.0)
