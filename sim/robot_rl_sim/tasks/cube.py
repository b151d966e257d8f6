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
    observation: str = "state"
    """``"state"``: the policy sees the cube's true pose. ``"perceived"``: it sees what a camera
    estimator gives a real robot, the cube's centre only (no orientation), with the estimator's
    error simulated by ``perception_bias`` and ``perception_noise``; the privileged critic keeps
    the true state. Policies trained so can be deployed with ``robot-rl deploy --perception``."""
    perception_bias: float = 0.0
    """Std (metres, per axis) of an error drawn once per episode and added to the perceived cube
    centre: the estimator's slowly varying error for one scene (``perception_eval.json``)."""
    perception_noise: float = 0.0
    """Std (metres, per axis) of an error drawn at every step and added on top."""


OBSERVATIONS = ("state", "perceived")


class CubeTask(PandaTask):
    """A Panda task around the cube. Observation ``"policy"`` (42; 38 with ``"ee"`` actions):
    robot state (23 / 19), tip, cube position and orientation, target, cube minus tip, target
    minus cube. ``"privileged"`` (50 / 46): the state policy observation + cube velocity,
    finger-pad contact forces, (mass, friction, gain) scales.

    With ``observation="perceived"`` the policy observation (38; 34 with ``"ee"`` actions) is
    robot state, tip, perceived cube centre, target, perceived cube minus tip, target minus
    perceived cube: what ``real/robot_rl_ros/observation.py`` builds from a camera estimate."""

    randomized_bodies = ("cube",)
    config: CubeTaskConfig

    def __init__(self, config: CubeTaskConfig, num_envs: int, device: torch.device, layout: Layout) -> None:
        super().__init__(config, num_envs, device, layout)
        if config.observation not in OBSERVATIONS:
            raise ValueError(f"observation {config.observation!r} is not one of {', '.join(OBSERVATIONS)}")
        if config.perception_bias < 0 or config.perception_noise < 0:
            raise ValueError("perception_bias and perception_noise are standard deviations (metres) and "
                             f"cannot be negative, got {config.perception_bias} and {config.perception_noise}")
        self.cube = Cube(layout, device)
        self._target = layout.mocap_row("target")
        self.cube_bias = torch.zeros(num_envs, 3, device=device)
        """float32[N, 3]: this episode's error of the perceived cube centre (metres)."""
        self._noise = torch.Generator(device=device)
        self._noise.manual_seed(0)  # re-seeded from the reset generator at the first reset
        self._noise_seeded = False

    def start_cube(self, qpos: torch.Tensor, generator: torch.Generator, env_ids: torch.Tensor) -> torch.Tensor:
        """Place the cube at a random start in qpos float32[n, nq] of worlds env_ids int64[n];
        returns its xy float32[n, 2]. Draws the perceived cube's episode error too."""
        start = uniform(self.config.cube_low, self.config.cube_high, (qpos.shape[0], 2), generator, self.device)
        self.cube.place(qpos, start, generator)
        cfg = self.config
        if cfg.observation == "perceived" and (cfg.perception_bias > 0 or cfg.perception_noise > 0):
            if not self._noise_seeded:
                self._noise.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator, device=self.device)))
                self._noise_seeded = True
            self.cube_bias[env_ids] = cfg.perception_bias * torch.randn(
                (len(env_ids), 3), generator=generator, device=self.device)
        return start

    def tip_to_cube(self, sim: Backend) -> torch.Tensor:
        """float32[N], metres."""
        return torch.linalg.norm(self.cube.position(sim) - sim.sensor("ee_pos"), dim=1)

    def perceived_cube(self, sim: Backend) -> torch.Tensor:
        """float32[N, 3]: the cube centre as the policy sees it (true with ``observation="state"``)."""
        cube = self.cube.position(sim)
        if self.config.observation != "perceived":
            return cube
        cube = cube + self.cube_bias
        if self.config.perception_noise > 0:
            cube = cube + self.config.perception_noise * torch.randn(
                cube.shape, generator=self._noise, device=self.device)
        return cube

    def observe(self, sim: Backend) -> dict[str, torch.Tensor]:
        tip, cube, target = sim.sensor("ee_pos"), self.cube.position(sim), sim.sensor("target_pos")
        robot = self.robot_obs(sim)
        state = torch.cat([robot, tip, cube, sim.sensor("cube_quat"), target, cube - tip, target - cube], dim=1)
        privileged = torch.cat([state, sim.sensor("cube_linvel"), self.cube.touches(sim), self.dynamics], dim=1)
        if self.config.observation == "perceived":
            seen = self.perceived_cube(sim)
            policy = torch.cat([robot, tip, seen, target, seen - tip, target - seen], dim=1)
        else:
            policy = state
        return {"policy": policy, "privileged": privileged}

    def terminated(self, sim: Backend) -> torch.Tensor:
        return self.cube.off_table(sim)
