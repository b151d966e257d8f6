"""Forward kinematics, Jacobians and the end-effector action step of a serial arm from its DH
table (numpy only, so the policy node needs no simulator to know where the tool is)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl_ros.config import Kinematics

# The simulator's values (robot_rl_sim.constants.panda.IK_TILT_WEIGHT and
# robot_rl_sim.tasks.common.EE_DAMPING), copied because this package never imports the simulator:
# an "ee" policy only does on the robot what it learned if both solve the same least squares.
IK_TILT_WEIGHT = 0.1
"""Weight of the keep-the-tool-pointing-down rows of the "ee" step: a 0.1 rad tilt costs about
as much as 1 cm of tool position."""
EE_DAMPING = 0.05
"""Damping of the "ee" least-squares step: bounded joint steps near singularities."""

DOWN = np.array([0.0, 0.0, -1.0])
"""The direction the "ee" step turns the tool's z axis to (robot base frame)."""


@dataclass(frozen=True)
class Frames:
    """The arm's joint frames and tool for joint angles float[..., dof], in the base frame."""

    origins: np.ndarray
    """float64[..., dof, 3] origin of each joint's frame (m): the joint turns about a line through it."""
    axes: np.ndarray
    """float64[..., dof, 3] each joint's rotation axis (unit): the z axis of its frame."""
    tool: np.ndarray
    """float64[..., 3] tool-centre-point position (m)."""
    rotation: np.ndarray
    """float64[..., 3, 3] orientation of the last joint's frame, axes as columns. Column 2 is
    the tool's z axis (the tool sits along it); x and y are the DH frame's, which a hand mounted
    at an angle about z (the Panda's, -45°) does not share."""


class Arm:
    """Kinematics of a modified-DH arm whose joints are all revolute."""

    def __init__(self, kinematics: Kinematics) -> None:
        table = np.asarray(kinematics.dh, dtype=np.float64)
        self.a, self.d, self.alpha = table[:, 0], table[:, 1], table[:, 2]
        self.tool = kinematics.flange + kinematics.tcp
        self.dof = len(table)

    def frames(self, q: np.ndarray) -> Frames:
        """Joint frames and tool for joint angles q float[..., dof] (rad)."""
        q = np.asarray(q, dtype=np.float64)
        batch = q.shape[:-1]
        q = q.reshape(-1, self.dof)
        rot = np.broadcast_to(np.eye(3), (len(q), 3, 3)).copy()
        pos = np.zeros((len(q), 3))
        origins, axes = np.zeros((len(q), self.dof, 3)), np.zeros((len(q), self.dof, 3))
        for i in range(self.dof):
            ca, sa = np.cos(self.alpha[i]), np.sin(self.alpha[i])
            rx = np.array([[1.0, 0.0, 0.0], [0.0, ca, -sa], [0.0, sa, ca]])
            # Parent frame -> Rx(alpha) -> Tx(a) -> Tz(d) -> Rz(q): offsets expressed after Rx.
            rot = rot @ rx
            pos = pos + rot[:, :, 0] * self.a[i] + rot[:, :, 2] * self.d[i]
            origins[:, i], axes[:, i] = pos, rot[:, :, 2]  # Rz(q) leaves the z axis where it is
            c, s = np.cos(q[:, i]), np.sin(q[:, i])
            rz = np.zeros((len(q), 3, 3))
            rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1], rz[:, 2, 2] = c, -s, s, c, 1.0
            rot = rot @ rz
        tool = pos + rot[:, :, 2] * self.tool
        return Frames(origins.reshape(*batch, self.dof, 3), axes.reshape(*batch, self.dof, 3),
                      tool.reshape(*batch, 3), rot.reshape(*batch, 3, 3))

    def tcp(self, q: np.ndarray) -> np.ndarray:
        """Tool positions float64[..., 3] (m) for joint angles q float[..., dof] (rad)."""
        return self.frames(q).tool

    def tool_z(self, q: np.ndarray) -> np.ndarray:
        """The tool's z axis float64[..., 3] (unit, out of the gripper) for q float[..., dof] (rad)."""
        return self.frames(q).rotation[..., :, 2]

    def geometric_jacobian(self, q: np.ndarray) -> np.ndarray:
        """The tool's linear (rows 0-2, m/rad) and angular (rows 3-5, rad/rad) velocity per joint
        velocity, float64[..., 6, dof] at q float[..., dof]. Joint i turns about its axis z_i
        through its origin p_i, so column i is (z_i × (tool − p_i), z_i)."""
        return _jacobian(self.frames(q))

    def joint_step_for(self, q: np.ndarray, dx: np.ndarray, damping: float = 1e-2) -> np.ndarray:
        """Joint change float64[dof] (rad) moving the tool by dx float[3] (m): damped least squares,
        which stays bounded near singularities."""
        jac = self.geometric_jacobian(q)[:3]
        return jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(3), np.asarray(dx, dtype=np.float64))

    def ee_joint_step(self, q: np.ndarray, displacement: np.ndarray) -> np.ndarray:
        """Joint change float64[..., dof] (rad) that moves the tool by displacement float[..., 3]
        (m, base frame) and turns its z axis towards straight down, from q float[..., dof]: the
        simulator's "ee" action step (``PandaTask.ee_joint_step``). One damped least-squares step
        dq = Jᵀ(JJᵀ + EE_DAMPING²·I)⁻¹e on the 6-row Jacobian with its angular rows weighted by
        IK_TILT_WEIGHT, and e = (displacement, IK_TILT_WEIGHT · z_tool × down)."""
        f = self.frames(q)
        jac = _jacobian(f)
        jac[..., 3:, :] *= IK_TILT_WEIGHT
        tilt = np.cross(f.rotation[..., :, 2], DOWN)
        displacement = np.broadcast_to(np.asarray(displacement, dtype=np.float64), tilt.shape)
        error = np.concatenate([displacement, IK_TILT_WEIGHT * tilt], axis=-1)
        gram = jac @ np.swapaxes(jac, -1, -2) + EE_DAMPING**2 * np.eye(6)
        return (np.swapaxes(jac, -1, -2) @ np.linalg.solve(gram, error[..., None]))[..., 0]


def _jacobian(f: Frames) -> np.ndarray:
    """float64[..., 6, dof]: column i is (z_i × (tool − p_i), z_i)."""
    linear = np.cross(f.axes, f.tool[..., None, :] - f.origins)
    return np.swapaxes(np.concatenate([linear, f.axes], axis=-1), -1, -2)
