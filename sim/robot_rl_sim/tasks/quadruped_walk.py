"""quadruped_walk: a 12-joint quadruped follows a commanded planar velocity on flat ground.

The reward follows the velocity-tracking recipe common to legged_gym-style locomotion:
exponential tracking kernels for planar and yaw velocity plus small penalties on vertical
motion, tilting and jerky actions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from robot_rl.envs.backend import Backend, Layout
from robot_rl.envs.task import ResetState, Task, TaskConfig, register_task, uniform
from robot_rl_sim.constants import quadruped
from robot_rl_sim.tasks.common import quat_rotate_inverse, yaw_quat

_GRAVITY = (0.0, 0.0, -1.0)


@dataclass(frozen=True)
class QuadrupedWalkConfig(TaskConfig):
    goal: str = "the four-legged robot walks forward upright"
    control_dt: float = 0.02
    episode_length_s: float = 10.0
    reward_weights: dict[str, float] = field(default_factory=lambda: {
        "track_lin_vel": 1.0, "track_ang_vel": 0.5, "lin_vel_z": 2.0, "ang_vel_xy": 0.05,
        "orientation": 1.0, "action_rate": 0.01, "alive": 0.2,
    })
    action_scale: float = 0.25
    """Joint targets are the standing pose plus this times the action (radians)."""
    command_low: tuple[float, float, float] = (-0.5, -0.3, -1.0)
    """Lower bounds of the command (forward m/s, sideways m/s, yaw rad/s), drawn at reset."""
    command_high: tuple[float, float, float] = (1.0, 0.3, 1.0)
    tracking_sigma: float = 0.25
    """Width of the tracking kernels exp(-error^2 / sigma)."""
    joint_noise: float = 0.1
    min_height: float = 0.15
    """The episode ends when the trunk drops below this height (metres)."""
    max_tilt: float = 1.0
    """... or tilts more than this (radians) from upright."""
    success_speed_error: float = 0.25
    """Tracking counts as successful when the planar speed error is below this (m/s)."""


@register_task("quadruped_walk")
class QuadrupedWalk(Task):
    """Observation ``"policy"`` (45): trunk angular velocity (body frame), gravity direction in
    the body frame, command (3), joint positions relative to standing (12), joint velocities
    (12, scaled by 0.05), previous action (12). ``"privileged"`` (56): policy + trunk linear
    velocity (body frame), trunk height, foot contacts (4), (mass, friction, gain) scales."""

    scene = f"{quadruped.MODEL_DIR}/{quadruped.SCENE}"
    cameras = ("track",)
    action_dim = 12
    config_class = QuadrupedWalkConfig
    randomized_bodies = ("trunk",)
    config: QuadrupedWalkConfig

    def __init__(self, config: QuadrupedWalkConfig, num_envs: int, device: torch.device, layout: Layout) -> None:
        super().__init__(config, num_envs, device, layout)
        self._root = layout.qpos("root")
        self._root_vel = layout.qvel("root")
        self._joint_q = torch.tensor([layout.qpos(j).start for j in quadruped.JOINTS], device=device)
        self._joint_qd = torch.tensor([layout.qvel(j).start for j in quadruped.JOINTS], device=device)
        self._ctrl = torch.tensor([layout.actuator(a) for a in quadruped.ACTUATORS], device=device)
        self.stand = torch.tensor(quadruped.STAND_QPOS, device=device)
        self.commands = torch.zeros(num_envs, 3, device=device)
        """float32[N, 3]: (forward m/s, sideways m/s, yaw rad/s) in the trunk's heading frame."""
        self._gravity = torch.tensor(_GRAVITY, device=device).expand(num_envs, 3)

    # -- state ---------------------------------------------------------------------------------

    def projected_gravity(self, sim: Backend) -> torch.Tensor:
        """float32[N, 3]: the gravity direction in the trunk frame ((0, 0, -1) when upright)."""
        return quat_rotate_inverse(sim.sensor("trunk_quat"), self._gravity)

    @staticmethod
    def body_velocity(sim: Backend) -> tuple[torch.Tensor, torch.Tensor]:
        """Trunk linear velocity float32[N, 3] and angular velocity float32[N, 3], trunk frame."""
        return sim.sensor("trunk_linvel"), sim.sensor("trunk_gyro")

    def tracking_error(self, sim: Backend) -> tuple[torch.Tensor, torch.Tensor]:
        """Planar velocity error float32[N] (m/s) and yaw-rate error float32[N] (rad/s)."""
        lin, ang = self.body_velocity(sim)
        return (torch.linalg.norm(self.commands[:, :2] - lin[:, :2], dim=1),
                torch.abs(self.commands[:, 2] - ang[:, 2]))

    # -- task functions ------------------------------------------------------------------------

    def reset(self, sim: Backend, env_ids: torch.Tensor, generator: torch.Generator) -> ResetState:
        n, cfg, dev = len(env_ids), self.config, self.device
        qpos = torch.zeros(n, self.layout.nq, device=dev)
        yaw = uniform(-math.pi, math.pi, (n,), generator, dev)
        qpos[:, self._root] = torch.cat([
            torch.zeros(n, 2, device=dev), torch.full((n, 1), quadruped.STAND_HEIGHT, device=dev), yaw_quat(yaw),
        ], dim=1)
        qpos[:, self._joint_q] = self.stand + uniform(-cfg.joint_noise, cfg.joint_noise, (n, 12), generator, dev)
        self.commands[env_ids] = uniform(cfg.command_low, cfg.command_high, (n, 3), generator, dev)
        return ResetState(qpos, torch.zeros(n, self.layout.nv, device=dev))

    def action_to_ctrl(self, actions: torch.Tensor, sim: Backend) -> torch.Tensor:
        ctrl = torch.zeros(self.num_envs, self.layout.nu, device=self.device)
        ctrl[:, self._ctrl] = self.stand + self.config.action_scale * actions
        return ctrl

    def observe(self, sim: Backend) -> dict[str, torch.Tensor]:
        lin, ang = self.body_velocity(sim)
        policy = torch.cat([
            ang, self.projected_gravity(sim), self.commands,
            sim.qpos[:, self._joint_q] - self.stand, 0.05 * sim.qvel[:, self._joint_qd], self.actions,
        ], dim=1)
        contacts = torch.cat([sim.sensor(f"{leg}_touch") for leg in quadruped.LEGS], dim=1) > 0
        privileged = torch.cat([policy, lin, sim.sensor("trunk_pos")[:, 2:3], contacts.float(), self.dynamics], dim=1)
        return {"policy": policy, "privileged": privileged}

    def reward_terms(self, sim: Backend) -> dict[str, torch.Tensor]:
        lin, ang = self.body_velocity(sim)
        lin_err, yaw_err = self.tracking_error(sim)
        sigma = self.config.tracking_sigma
        return {
            "track_lin_vel": torch.exp(-lin_err**2 / sigma),
            "track_ang_vel": torch.exp(-yaw_err**2 / sigma),
            "lin_vel_z": -lin[:, 2] ** 2,
            "ang_vel_xy": -torch.sum(ang[:, :2] ** 2, dim=1),
            "orientation": -torch.sum(self.projected_gravity(sim)[:, :2] ** 2, dim=1),
            "action_rate": -torch.sum((self.actions - self.prev_actions) ** 2, dim=1),
            "alive": torch.ones(self.num_envs, device=self.device),
        }

    def success(self, sim: Backend) -> torch.Tensor:
        lin_err, _ = self.tracking_error(sim)
        return (lin_err < self.config.success_speed_error) & ~self.terminated(sim)

    def progress(self, sim: Backend) -> torch.Tensor:
        """Tracking quality exp(-error^2 / sigma) of the planar velocity, zero once fallen."""
        lin_err, _ = self.tracking_error(sim)
        return torch.exp(-lin_err**2 / self.config.tracking_sigma) * (~self.terminated(sim)).float()

    def terminated(self, sim: Backend) -> torch.Tensor:
        upright = -self.projected_gravity(sim)[:, 2]
        fallen = sim.sensor("trunk_pos")[:, 2] < self.config.min_height
        return fallen | (upright < math.cos(self.config.max_tilt))
