"""The red cube that panda_push and panda_lift manipulate, and what those tasks share."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from robot_rl.envs.backend import Backend, Layout
from robot_rl.envs.task import uniform
from robot_rl_sim.constants import panda
from robot_rl_sim.tasks.common import PandaConfig, PandaTask, yaw_quat


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


@dataclass(frozen=True)
class CubeTaskConfig(PandaConfig):
    """What the tabletop cube tasks share."""

    initial_arm: tuple[float, ...] = panda.TABLE_READY_QPOS
    cube_low: tuple[float, float] = (0.4, -0.15)
    """Lower corner of the area the cube starts in (x, y metres)."""
    cube_high: tuple[float, float] = (0.6, 0.15)
    success_distance: float = 0.05
    reach_scale: float = 0.25
    """Width of the tip-to-cube kernel 1 - tanh(d / scale): wide enough to pull the tip down
    to the cube from where episodes start."""


class CubeTask(PandaTask):
    """A Panda task around the cube. Observation ``"policy"`` (42; 38 with ``"ee"`` actions):
    robot state (23 / 19), tip, cube position and orientation, target, cube minus tip, target
    minus cube. ``"privileged"`` (50 / 46): policy + cube velocity, finger-pad contact forces,
    (mass, friction, gain) scales."""

    randomized_bodies = ("cube",)
    config: CubeTaskConfig

    def __init__(self, config: CubeTaskConfig, num_envs: int, device: torch.device, layout: Layout) -> None:
        super().__init__(config, num_envs, device, layout)
        self.cube = Cube(layout, device)
        self._target = layout.mocap_row("target")

    def start_cube(self, qpos: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Place the cube at a random start in qpos float32[n, nq]; returns its xy float32[n, 2]."""
        start = uniform(self.config.cube_low, self.config.cube_high, (qpos.shape[0], 2), generator, self.device)
        self.cube.place(qpos, start, generator)
        return start

    def tip_to_cube(self, sim: Backend) -> torch.Tensor:
        """float32[N], metres."""
        return torch.linalg.norm(self.cube.position(sim) - sim.sensor("ee_pos"), dim=1)

    def observe(self, sim: Backend) -> dict[str, torch.Tensor]:
        tip, cube, target = sim.sensor("ee_pos"), self.cube.position(sim), sim.sensor("target_pos")
        policy = torch.cat([self.robot_obs(sim), tip, cube, sim.sensor("cube_quat"), target,
                            cube - tip, target - cube], dim=1)
        privileged = torch.cat([policy, sim.sensor("cube_linvel"), self.cube.touches(sim), self.dynamics], dim=1)
        return {"policy": policy, "privileged": privileged}

    def terminated(self, sim: Backend) -> torch.Tensor:
        return self.cube.off_table(sim)
