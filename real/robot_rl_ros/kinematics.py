"""Forward kinematics and the position Jacobian of a serial arm from its DH table (numpy only,
so the policy node needs no simulator to know where the tool is)."""

from __future__ import annotations

import numpy as np

from robot_rl_ros.config import Kinematics


class Arm:
    """Tool-centre-point positions of a modified-DH arm."""

    def __init__(self, kinematics: Kinematics) -> None:
        table = np.asarray(kinematics.dh, dtype=np.float64)
        self.a, self.d, self.alpha = table[:, 0], table[:, 1], table[:, 2]
        self.tool = kinematics.flange + kinematics.tcp
        self.dof = len(table)

    def tcp(self, q: np.ndarray) -> np.ndarray:
        """Tool positions float64[..., 3] (m) for joint angles q float[..., dof] (rad)."""
        q = np.asarray(q, dtype=np.float64)
        batch = q.shape[:-1]
        q = q.reshape(-1, self.dof)
        rot = np.broadcast_to(np.eye(3), (len(q), 3, 3)).copy()
        pos = np.zeros((len(q), 3))
        for i in range(self.dof):
            ca, sa = np.cos(self.alpha[i]), np.sin(self.alpha[i])
            rx = np.array([[1.0, 0.0, 0.0], [0.0, ca, -sa], [0.0, sa, ca]])
            # Parent frame -> Rx(alpha) -> Tx(a) -> Tz(d) -> Rz(q): offsets expressed after Rx.
            rot = rot @ rx
            pos = pos + rot[:, :, 0] * self.a[i] + rot[:, :, 2] * self.d[i]
            c, s = np.cos(q[:, i]), np.sin(q[:, i])
            rz = np.zeros((len(q), 3, 3))
            rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1], rz[:, 2, 2] = c, -s, s, c, 1.0
            rot = rot @ rz
        pos = pos + rot[:, :, 2] * self.tool
        return pos.reshape(*batch, 3)

    def jacobian(self, q: np.ndarray, eps: float = 1e-6) -> np.ndarray:
        """d tcp / d q: float64[3, dof] at q float[dof] (central differences)."""
        q = np.asarray(q, dtype=np.float64)
        steps = np.eye(self.dof) * eps
        points = self.tcp(np.concatenate([q + steps, q - steps]))
        return ((points[:self.dof] - points[self.dof:]) / (2 * eps)).T

    def joint_step_for(self, q: np.ndarray, dx: np.ndarray, damping: float = 1e-2) -> np.ndarray:
        """Joint change float64[dof] (rad) moving the tool by dx float[3] (m): damped least squares,
        which stays bounded near singularities."""
        jac = self.jacobian(q)
        return jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(3), np.asarray(dx, dtype=np.float64))
