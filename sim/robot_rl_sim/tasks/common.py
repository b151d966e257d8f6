"""Pieces shared by tasks: quaternion maths over batches and the Panda arm's action/observation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from robot_rl.envs.backend import Backend, Layout
from robot_rl.envs.task import Task, TaskConfig, uniform
from robot_rl_sim.constants import panda


def quat_rotate_inverse(quat: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
    """Rotate vec float[N,3] by the inverse of quat float[N,4] (w, x, y, z): world -> body frame."""
    w, xyz = quat[:, :1], quat[:, 1:]
    t = 2.0 * torch.cross(xyz, vec, dim=1)
    return vec - w * t + torch.cross(xyz, t, dim=1)


def yaw_quat(yaw: torch.Tensor) -> torch.Tensor:
    """float[N,4] (w, x, y, z) rotations about z by yaw float[N]."""
    zeros = torch.zeros_like(yaw)
    return torch.stack([torch.cos(yaw / 2), zeros, zeros, torch.sin(yaw / 2)], dim=1)


def tanh_kernel(distance: torch.Tensor, scale: float) -> torch.Tensor:
    """1 at distance 0, falling smoothly towards 0 beyond ``scale``: float[N] -> float[N]."""
    return 1.0 - torch.tanh(distance / scale)


@dataclass(frozen=True)
class PandaConfig(TaskConfig):
    """What every Panda task shares."""

    control_dt: float = 0.05
    episode_length_s: float = 5.0
    action_scale: float = 0.1
    """Largest change of a joint's position target per control step, in radians."""
    initial_arm: tuple[float, ...] = panda.HOME_QPOS[:7]
    """Arm joint angles (radians) episodes start from, before noise."""
    joint_noise: float = 0.1
    """Initial arm joints are ``initial_arm`` plus uniform noise of this size (radians)."""


class PandaTask(Task):
    """A Panda arm with a parallel gripper. Actions (8): seven joint-target deltas, scaled by
    ``action_scale`` and added to the measured joint positions, and the gripper opening
    (-1 closed, +1 open)."""

    cameras = ("front", "wrist")
    action_dim = 8
    config: PandaConfig

    def __init__(self, config: PandaConfig, num_envs: int, device: torch.device, layout: Layout) -> None:
        super().__init__(config, num_envs, device, layout)
        arm_q = [layout.qpos(j).start for j in panda.ARM_JOINTS]
        self._arm_q = torch.tensor(arm_q, device=device)
        self._arm_qd = torch.tensor([layout.qvel(j).start for j in panda.ARM_JOINTS], device=device)
        self._fingers = torch.tensor([layout.qpos(j).start for j in panda.FINGER_JOINTS], device=device)
        self._arm_ctrl = torch.tensor([layout.actuator(a) for a in panda.ARM_ACTUATORS], device=device)
        self._gripper_ctrl = layout.actuator(panda.GRIPPER_ACTUATOR)
        self._low = torch.tensor(panda.JOINT_LOWER, device=device)
        self._high = torch.tensor(panda.JOINT_UPPER, device=device)
        self.home = torch.tensor(panda.HOME_QPOS[:7], device=device)
        self._initial_arm = torch.tensor(config.initial_arm, device=device)

    def arm_qpos(self, sim: Backend) -> torch.Tensor:
        """float32[N, 7]"""
        return sim.qpos[:, self._arm_q]

    def gripper_width(self, sim: Backend) -> torch.Tensor:
        """float32[N]: distance between the fingers, metres."""
        return sim.qpos[:, self._fingers].sum(dim=1)

    def action_to_ctrl(self, actions: torch.Tensor, sim: Backend) -> torch.Tensor:
        target = self.arm_qpos(sim) + self.config.action_scale * actions[:, :7]
        ctrl = torch.zeros(self.num_envs, self.layout.nu, device=self.device)
        ctrl[:, self._arm_ctrl] = torch.maximum(torch.minimum(target, self._high), self._low)
        ctrl[:, self._gripper_ctrl] = panda.GRIPPER_OPEN * 0.5 * (actions[:, 7] + 1.0)
        return ctrl

    def reset_arm(self, env_ids: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """qpos float32[n, nq] with the arm near ``config.initial_arm`` and the gripper open
        (other joints zero), and qvel float32[n, nv] zeros."""
        n, noise = len(env_ids), self.config.joint_noise
        qpos = torch.zeros(n, self.layout.nq, device=self.device)
        arm = self._initial_arm + uniform(-noise, noise, (n, 7), generator, self.device)
        qpos[:, self._arm_q] = torch.maximum(torch.minimum(arm, self._high), self._low)
        qpos[:, self._fingers] = panda.GRIPPER_OPEN
        return qpos, torch.zeros(n, self.layout.nv, device=self.device)

    def robot_obs(self, sim: Backend) -> torch.Tensor:
        """float32[N, 23]: joints relative to home (7), joint velocities (7, scaled by 0.1),
        gripper width (1) and the previous action (8)."""
        return torch.cat([
            self.arm_qpos(sim) - self.home,
            0.1 * sim.qvel[:, self._arm_qd],
            self.gripper_width(sim).unsqueeze(1),
            self.actions,
        ], dim=1)

    def action_rate(self) -> torch.Tensor:
        """float32[N]: -||a_t - a_{t-1}||^2, discourages jerky commands."""
        return -torch.sum((self.actions - self.prev_actions) ** 2, dim=1)
