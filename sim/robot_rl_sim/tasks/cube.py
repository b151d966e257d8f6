"""The red cube that panda_push and panda_lift manipulate."""

from __future__ import annotations

import math

import torch

from robot_rl.envs.backend import Backend, Layout
from robot_rl.envs.task import uniform
from robot_rl_sim.constants import panda
from robot_rl_sim.tasks.common import yaw_quat


class Cube:
    """Reads and places the free-jointed ``cube`` body of a Panda scene."""

    def __init__(self, layout: Layout, device: torch.device) -> None:
        self._qpos = layout.qpos("cube_joint")
        self.device = device

    def place(self, qpos: torch.Tensor, xy: torch.Tensor, generator: torch.Generator) -> None:
        """Write into qpos float32[n, nq] a cube resting on the table at xy float32[n, 2], random yaw."""
        n = xy.shape[0]
        yaw = uniform(-math.pi, math.pi, (n,), generator, self.device)
        z = torch.full((n, 1), panda.TABLE_Z + panda.CUBE_HALF, device=self.device)
        qpos[:, self._qpos] = torch.cat([xy, z, yaw_quat(yaw)], dim=1)

    @staticmethod
    def position(sim: Backend) -> torch.Tensor:
        """float32[N, 3]"""
        return sim.sensor("cube_pos")

    @staticmethod
    def off_table(sim: Backend) -> torch.Tensor:
        """bool[N]: the cube fell off the table or left the robot's reach."""
        pos = sim.sensor("cube_pos")
        return (pos[:, 2] < panda.TABLE_Z - 0.05) | (torch.linalg.norm(pos[:, :2], dim=1) > 1.0)

    @staticmethod
    def touches(sim: Backend) -> torch.Tensor:
        """float32[N, 2]: contact normal force on the left and right finger pads, newtons."""
        return torch.cat([sim.sensor("left_touch"), sim.sensor("right_touch")], dim=1)
