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
    action_space: str = "joint"
    """``"joint"``: seven joint-target deltas and the gripper (8 actions). ``"ee"``: the tip moves
    by up to ``ee_step`` metres along world x, y, z per control step while the gripper keeps
    pointing down, then the gripper (4 actions), the end-effector deltas HIL-SERL acts in."""
    ee_step: float = 0.03
    """Largest tip movement per control step and axis in the ``"ee"`` action space (metres)."""
    gripper_action: bool = True
    """False: the gripper is held closed and the policy commands the arm only (7 joint or 3 ee
    actions), as HIL-SERL does for tasks that need no grasp (pushing)."""


ACTION_SPACES = ("joint", "ee")

EE_DAMPING = 0.05
"""Damping of the ``"ee"`` least-squares solve: bounded joint steps near singularities."""


class PandaTask(Task):
    """A Panda arm with a parallel gripper. Actions (``action_space="joint"``, 8): seven
    joint-target deltas, scaled by ``action_scale`` and added to the measured joint positions,
    and the gripper opening (-1 closed, +1 open). ``action_space="ee"`` (4): a tip displacement
    in the world frame, ``ee_step`` metres per unit, and the gripper; a damped least-squares
    step on the tip Jacobian (built from the arm's kinematic sensors, so every backend computes
    it the same way) turns it into joint targets with the tool kept pointing down. With
    ``gripper_action=False`` the gripper action is dropped (7 or 3) and the gripper held closed."""

    cameras = ("front", "wrist")
    action_dim = 8
    config: PandaConfig

    def __init__(self, config: PandaConfig, num_envs: int, device: torch.device, layout: Layout) -> None:
        if config.action_space not in ACTION_SPACES:
            raise ValueError(f"action_space {config.action_space!r} is not one of {', '.join(ACTION_SPACES)}")
        if config.ee_step <= 0:
            raise ValueError(f"ee_step must be positive (metres per control step), got {config.ee_step}")
        self.action_dim = (8 if config.action_space == "joint" else 4) - (not config.gripper_action)
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
        if self.config.action_space == "ee":
            step = self.ee_joint_step(sim, self.config.ee_step * actions[:, :3])
        else:
            step = self.config.action_scale * actions[:, :7]
        target = self.arm_qpos(sim) + step
        ctrl = torch.zeros(self.num_envs, self.layout.nu, device=self.device)
        ctrl[:, self._arm_ctrl] = torch.maximum(torch.minimum(target, self._high), self._low)
        if self.config.gripper_action:
            ctrl[:, self._gripper_ctrl] = panda.GRIPPER_OPEN * 0.5 * (actions[:, -1] + 1.0)  # else 0: closed
        return ctrl

    def tip_jacobian(self, sim: Backend) -> torch.Tensor:
        """float32[N, 6, 7]: the tip's linear (rows 0-2) and angular (rows 3-5) velocity per
        arm joint velocity. Every arm joint is a hinge about its link's z axis at the link's
        origin, so column i is (z_i x (tip - p_i), z_i)."""
        origins = torch.stack([sim.sensor(f"link{i}_pos") for i in range(1, 8)], dim=1)
        axes = torch.stack([sim.sensor(f"link{i}_axis") for i in range(1, 8)], dim=1)
        linear = torch.linalg.cross(axes, sim.sensor("ee_pos").unsqueeze(1) - origins, dim=2)
        return torch.cat([linear, axes], dim=2).transpose(1, 2)

    def ee_joint_step(self, sim: Backend, displacement: torch.Tensor) -> torch.Tensor:
        """float32[N, 7] joint change that moves the tip by displacement float32[N, 3] (metres)
        and turns the tool's z axis towards straight down (damped least squares)."""
        down = torch.tensor([0.0, 0.0, -1.0], device=self.device).expand_as(displacement)
        tilt = torch.linalg.cross(sim.sensor("ee_zaxis"), down, dim=1)
        error = torch.cat([displacement, panda.IK_TILT_WEIGHT * tilt], dim=1)
        jac = self.tip_jacobian(sim)
        jac = torch.cat([jac[:, :3], panda.IK_TILT_WEIGHT * jac[:, 3:]], dim=1)
        gram = jac @ jac.transpose(1, 2) + EE_DAMPING**2 * torch.eye(6, device=self.device)
        return (jac.transpose(1, 2) @ torch.linalg.solve(gram, error.unsqueeze(2))).squeeze(2)

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
        """float32[N, 15 + A]: joints relative to home (7), joint velocities (7, scaled by 0.1),
        gripper width (1) and the previous action (A: 8, or 4 in the ``"ee"`` action space)."""
        return torch.cat([
            self.arm_qpos(sim) - self.home,
            0.1 * sim.qvel[:, self._arm_qd],
            self.gripper_width(sim).unsqueeze(1),
            self.actions,
        ], dim=1)

    def action_rate(self) -> torch.Tensor:
        """float32[N]: -||a_t - a_{t-1}||^2, discourages jerky commands."""
        return -torch.sum((self.actions - self.prev_actions) ** 2, dim=1)
