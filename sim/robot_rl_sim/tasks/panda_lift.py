"""panda_lift: grasp a cube on the table and lift it to a target in the air."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from robot_rl.envs.backend import Backend, Layout
from robot_rl.envs.task import ResetState, register_task, uniform
from robot_rl_sim.constants import panda
from robot_rl_sim.tasks.common import PandaConfig, PandaTask, tanh_kernel
from robot_rl_sim.tasks.cube import Cube

_REST_Z = panda.TABLE_Z + panda.CUBE_HALF


@dataclass(frozen=True)
class PandaLiftConfig(PandaConfig):
    goal: str = "the robot holds the red cube up in the air at the green ball"
    reward_weights: dict[str, float] = field(default_factory=lambda: {
        "reach": 1.0, "grasp": 0.25, "lift": 2.0, "goal": 2.0, "success": 1.0, "action_rate": 0.01,
    })
    initial_arm: tuple[float, ...] = panda.TABLE_READY_QPOS
    cube_low: tuple[float, float] = (0.4, -0.15)
    cube_high: tuple[float, float] = (0.6, 0.15)
    target_height: tuple[float, float] = (0.15, 0.3)
    """Range of the target's height above the table (metres); it is above the cube's start."""
    success_distance: float = 0.05
    reach_scale: float = 0.25
    """Width of the tip-to-cube kernel 1 - tanh(d / scale): wide enough to pull the tip down
    from its home pose half a metre away."""
    grasp_force: float = 0.5
    """A finger pad touches the cube when its contact force exceeds this (newtons)."""


@register_task("panda_lift")
class PandaLift(PandaTask):
    """Observation ``"policy"`` (42): robot state (23), tip, cube position and orientation,
    target, cube minus tip, target minus cube. ``"privileged"`` (50): policy + cube velocity,
    finger-pad contact forces, (mass, friction, gain) scales."""

    scene = f"{panda.MODEL_DIR}/{panda.SCENES['lift']}"
    config_class = PandaLiftConfig
    randomized_bodies = ("cube",)
    config: PandaLiftConfig

    def __init__(self, config: PandaLiftConfig, num_envs: int, device: torch.device, layout: Layout) -> None:
        super().__init__(config, num_envs, device, layout)
        self.cube = Cube(layout, device)
        self._target = layout.mocap_row("target")
        self.initial_reach = torch.ones(num_envs, device=device)

    def reset(self, sim: Backend, env_ids: torch.Tensor, generator: torch.Generator) -> ResetState:
        n, cfg = len(env_ids), self.config
        qpos, qvel = self.reset_arm(env_ids, generator)
        start = uniform(cfg.cube_low, cfg.cube_high, (n, 2), generator, self.device)
        self.cube.place(qpos, start, generator)
        mocap = sim.mocap_pos[env_ids].clone()
        mocap[:, self._target, :2] = start
        mocap[:, self._target, 2] = panda.TABLE_Z + uniform(*cfg.target_height, (n,), generator, self.device)
        return ResetState(qpos, qvel, mocap)

    def after_reset(self, sim: Backend, env_ids: torch.Tensor) -> None:
        self.initial_reach[env_ids] = self.tip_to_cube(sim)[env_ids].clamp_min(1e-3)

    def tip_to_cube(self, sim: Backend) -> torch.Tensor:
        """float32[N], metres."""
        return torch.linalg.norm(self.cube.position(sim) - sim.sensor("ee_pos"), dim=1)

    def cube_to_target(self, sim: Backend) -> torch.Tensor:
        """float32[N], metres."""
        return torch.linalg.norm(sim.sensor("target_pos") - self.cube.position(sim), dim=1)

    def lift_fraction(self, sim: Backend) -> torch.Tensor:
        """float32[N] in [0, 1]: how much of the way up to the target's height the cube is."""
        height = self.cube.position(sim)[:, 2] - _REST_Z
        return (height / (sim.sensor("target_pos")[:, 2] - _REST_Z)).clamp(0.0, 1.0)

    def observe(self, sim: Backend) -> dict[str, torch.Tensor]:
        tip, cube, target = sim.sensor("ee_pos"), self.cube.position(sim), sim.sensor("target_pos")
        policy = torch.cat([self.robot_obs(sim), tip, cube, sim.sensor("cube_quat"), target,
                            cube - tip, target - cube], dim=1)
        privileged = torch.cat([policy, sim.sensor("cube_linvel"), self.cube.touches(sim), self.dynamics], dim=1)
        return {"policy": policy, "privileged": privileged}

    def reward_terms(self, sim: Backend) -> dict[str, torch.Tensor]:
        grasped = (self.cube.touches(sim) > self.config.grasp_force).all(dim=1).float()
        lifted = (self.cube.position(sim)[:, 2] > _REST_Z + 0.02).float()
        d = self.cube_to_target(sim)
        return {
            "reach": tanh_kernel(self.tip_to_cube(sim), self.config.reach_scale),
            "grasp": grasped,
            "lift": self.lift_fraction(sim),
            "goal": lifted * tanh_kernel(d, 0.1),
            "success": (d < self.config.success_distance).float(),
            "action_rate": self.action_rate(),
        }

    def success(self, sim: Backend) -> torch.Tensor:
        return self.cube_to_target(sim) < self.config.success_distance

    def progress(self, sim: Backend) -> torch.Tensor:
        """A quarter for bringing the tip to the cube, three quarters for raising it to the target."""
        reach = (1.0 - self.tip_to_cube(sim) / self.initial_reach).clamp(0.0, 1.0)
        return 0.25 * reach + 0.75 * self.lift_fraction(sim)

    def terminated(self, sim: Backend) -> torch.Tensor:
        return self.cube.off_table(sim)
