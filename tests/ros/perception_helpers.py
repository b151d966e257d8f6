"""Perception pieces for the ROS tests: estimator files made for a task and camera (untrained
network, so tests replace ``detect``), a push policy that never moves, the scripted pusher as a
policy file, and the policy node run in this process so its estimator can be replaced."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ros_helpers import Stop
from torch import nn

PUSH = {"action_space": "ee", "gripper_action": False, "observation": "perceived"}
"""Push trained as HIL-SERL does: ee actions, gripper held closed, the cube as perceived (33 obs)."""


def estimator_info(task: str = "panda_push", camera: str = "front", size: tuple[int, int] = (128, 128)) -> Any:
    """What perception-train writes for ``task`` seen by the MJCF ``camera`` at ``size`` (H, W)."""
    import mujoco

    from robot_rl.perception import EstimatorInfo, Keypoint
    from robot_rl_sim.constants import panda
    from robot_rl_sim.mjcf import load_model
    from robot_rl_sim.rendering import camera_extrinsics, camera_intrinsics

    model = load_model(f"panda/{panda.SCENES[task.removeprefix('panda_')]}")
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    pose = camera_extrinsics(model, data, camera)
    return EstimatorInfo(task=task, camera=camera, image_size=size,
                         intrinsics=camera_intrinsics(model, camera, *size),
                         cam_to_world=tuple(tuple(float(v) for v in row) for row in pose),
                         keypoints=(Keypoint("cube", (0.0, 0.0, -panda.CUBE_HALF)), Keypoint("target")), width=8)


def estimator_file(path: Path, **kwargs: Any) -> Path:
    from robot_rl.perception import KeypointEstimator

    KeypointEstimator(estimator_info(**kwargs)).save(path)
    return path


def detections(points: dict[str, np.ndarray], confidence: dict[str, float]) -> Any:
    """Detections of one image with the given world points (NaN: not found) and confidences."""
    from robot_rl.perception import Detections

    return Detections(pixels={k: torch.zeros(1, 2) for k in points},
                      points={k: torch.as_tensor(np.asarray(v, dtype=np.float32)).reshape(1, 3)
                              for k, v in points.items()},
                      confidence={k: torch.tensor([float(c)]) for k, c in confidence.items()})


class Holder(nn.Module):
    """What ``export_actor`` reads from an actor: ``actor_norm`` and ``actor``."""

    def __init__(self, actor: nn.Module) -> None:
        super().__init__()
        self.actor_norm, self.actor = nn.Identity(), actor


class Constant(nn.Module):
    def __init__(self, action: list[float]) -> None:
        super().__init__()
        self.register_buffer("action", torch.tensor(action, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.action.expand(obs.shape[0], -1) + 0.0 * obs[:, :1]


class ScriptedPush(nn.Module):
    """``robot_rl_sim.scripted.ScriptedPusher``'s expert written as a network over the perceived
    push observation (ee actions, no gripper action: tip at 18:21, cube 21:24, goal 24:27): hover
    behind the cube on the line from the goal through it, lower, push, back off on the goal."""

    def __init__(self, ee_step: float = 0.03) -> None:
        super().__init__()
        from robot_rl_sim.constants import panda
        from robot_rl_sim.scripted import ScriptedPusher as P

        self.ee_step, self.max_step = ee_step, P.max_tip_step
        self.behind, self.low, self.hover, self.lead = P.behind, P.low, P.hover, P.lead
        self.done, self.line, self.over, self.half = P.done_distance, P.line_tolerance, P.over_tolerance, \
            panda.CUBE_HALF

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        tip, cube, goal = obs[:, 18:21], obs[:, 21:24], obs[:, 24:26]
        path = goal - cube[:, :2]
        distance = torch.linalg.norm(path, dim=1, keepdim=True)
        direction = path / distance.clamp_min(1e-6)
        pre = cube[:, :2] - self.behind * direction
        offset = tip[:, :2] - pre
        along = (offset * direction).sum(1, keepdim=True)
        sideways = offset - along * direction
        low = tip[:, 2:3] < self.low + 0.4 * self.hover
        pushing = low & (torch.linalg.norm(sideways, dim=1, keepdim=True) < self.line) & (along > -0.02) & (
            along < 0.04)
        lead = torch.clamp(distance, max=self.lead)
        low_z, high_z = torch.full_like(along, self.low), torch.full_like(along, self.low + self.hover)
        push = torch.cat([pre + (self.behind - self.half + lead) * direction - sideways, low_z], 1)
        lower = torch.cat([pre, low_z], 1)
        rise = torch.cat([tip[:, :2], high_z], 1)
        approach = torch.cat([pre, high_z], 1)
        over = torch.linalg.norm(offset, dim=1, keepdim=True) < self.over
        target = torch.where(pushing, push, torch.where(over, lower, torch.where(low, rise, approach)))
        target = torch.where(distance < self.done, rise, target)
        step = target - tip
        step = step * torch.clamp(self.max_step / torch.linalg.norm(step, dim=1, keepdim=True).clamp_min(1e-9), max=1.0)
        return torch.clamp(step / self.ee_step, -1.0, 1.0)


def push_policy(path: Path, actor: nn.Module) -> Path:
    from robot_rl.offline.trainer import export_actor

    return export_actor(Holder(actor), path, "panda_push", "policy", "tests", overrides=PUSH)


class NodeThread:
    """A policy node built and spun in this process (its estimator can be replaced)."""

    def __init__(self, node: Any) -> None:
        self.node, self.stop = node, Stop()
        self.error: BaseException | None = None
        self.result: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.result = self.node.spin(self.stop)
        except BaseException as error:  # noqa: BLE001 - handed to the test
            self.error = error

    def start(self) -> NodeThread:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.event.set()
        self.thread.join(10)
        self.node.close()


def replace_detect(node: Any, detect: Callable[..., Any]) -> None:
    node.perception.estimator.detect = detect
