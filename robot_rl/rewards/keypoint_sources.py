"""Where the ``keypoint`` reward's keypoints come from: world points of named keypoints (``cube``,
``target``, ``tip``) in the RGB-D frames of the worlds asked about, NaN where not found.

- :class:`DetectorSource`: a perception model trained in simulation (``robot-rl perception-train``)
  finds them in the colour and depth images; what a robot with a camera does.
- :class:`LabellerSource`: a VLM behind an OpenAI-compatible server marks their pixels on an
  annotated image, lifted with the depth image (KAGI proper).
- :class:`OracleSource`: privileged, for tests and ablations: the simulator's true positions,
  projected into the camera and lifted back at their true depth where the depth image shows them
  unhidden, i.e. a perfect detector at the camera's resolution. Never for a robot.

Every source: ``names`` (what it can find), ``request`` (the frames it reads, a
:class:`~robot_rl.rewards.base.FrameRequest`), ``per_step`` (whether it is fast enough to ask
every control step, e.g. for the tracked point), ``locate(frames, names) -> float32[n, K, 3]``,
``check_scene(task, cameras)`` and ``counts`` (diagnostics).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from robot_rl.perception import KeypointEstimator, geometry
from robot_rl.rewards.base import FrameRequest, Frames


class KeypointSource(Protocol):
    names: tuple[str, ...]
    request: FrameRequest
    per_step: bool
    counts: dict[str, int]

    def locate(self, frames: Frames, names: Sequence[str]) -> torch.Tensor:
        """World points float32[n, K, 3] of ``names`` in ``frames``, NaN where not found."""
        ...

    def check_scene(self, task: str | None, cameras: Sequence[str]) -> None: ...


def _rgbd(frames: Frames, who: str):
    if frames.rgbd is None:
        raise ValueError(f"{who} reads RGB-D frames; the frames passed have none")
    return frames.rgbd


def _check_camera(camera: str, cameras: Sequence[str], who: str) -> None:
    if cameras and camera not in cameras:
        raise ValueError(f"{who} reads camera {camera!r}, which the scene does not have; cameras: {', '.join(cameras)}")


class DetectorSource:
    """Keypoints found by a trained :class:`~robot_rl.perception.KeypointEstimator` in the camera
    and at the image size it was trained for; below ``min_confidence`` (default: the model's)
    a keypoint counts as not found."""

    per_step = True

    def __init__(self, estimator: KeypointEstimator | str | Path, min_confidence: float | None = None) -> None:
        if not isinstance(estimator, KeypointEstimator):
            if not Path(estimator).is_file():
                raise FileNotFoundError(f"perception model {estimator} not found: train one with robot-rl "
                                        "perception-train --task TASK and give its file as options.detector")
            estimator = KeypointEstimator.load(estimator)
        self.estimator = estimator
        info = self.estimator.info
        self.names = info.names
        self.min_confidence = info.min_confidence if min_confidence is None else float(min_confidence)
        self.request = FrameRequest(camera=info.camera, image_size=tuple(info.image_size))
        self.counts = {"low_confidence": 0}
        """Keypoints found with a point but under ``min_confidence``, summed over calls."""

    def check_scene(self, task: str | None, cameras: Sequence[str]) -> None:
        self.estimator.check(task=task, source="the keypoint reward's detector")
        _check_camera(self.request.camera, cameras, "the keypoint reward's detector")

    def locate(self, frames: Frames, names: Sequence[str]) -> torch.Tensor:
        rgbd = _rgbd(frames, "the detector")
        found = self.estimator.detect(rgbd.rgb, rgbd.depth, rgbd.cam_to_world)
        points = []
        for name in names:
            ok = found.found(name, self.min_confidence)
            self.counts["low_confidence"] += int((torch.isfinite(found.points[name]).all(dim=1) & ~ok).sum())
            nan = torch.full_like(found.points[name], float("nan"))
            points.append(torch.where(ok[:, None], found.points[name], nan))
        return torch.stack(points, dim=1).float()


ORACLE_SENSORS: dict[str, str] = {"cube": "cube_pos", "target": "target_pos", "tip": "ee_pos"}
"""Keypoint name -> the simulator sensor holding its true position (Panda cube tasks)."""


class OracleSource:
    """Privileged: true positions (simulator ``sensors``), seen through ``camera``. A keypoint is
    found where its pixel is on the image and the depth image there is no nearer than its own
    depth minus ``margin`` (metres; the object's own surface lies in front of its centre), and
    is reported at its true depth along the ray through its rounded pixel."""

    per_step = True

    def __init__(self, camera: str = "front", image_size: tuple[int, int] = (128, 128),
                 sensors: dict[str, str] | None = None, margin: float = 0.05) -> None:
        self.sensors = dict(ORACLE_SENSORS if sensors is None else sensors)
        self.names = tuple(self.sensors)
        self.margin = float(margin)
        self.request = FrameRequest(camera=camera, image_size=tuple(image_size), sensors=tuple(self.sensors.values()))
        self.counts = {"hidden": 0}
        """Keypoints off the image or hidden behind something, summed over calls."""

    def check_scene(self, task: str | None, cameras: Sequence[str]) -> None:
        _check_camera(self.request.camera, cameras, "the keypoint reward's oracle")

    def locate(self, frames: Frames, names: Sequence[str]) -> torch.Tensor:
        rgbd = _rgbd(frames, "the oracle")
        true = torch.stack([frames.sensors[self.sensors[name]][:, :3].float() for name in names], dim=1)
        cam_to_world = rgbd.cam_to_world.to(true.device)
        pixels, z = geometry.project(true, rgbd.intrinsics, cam_to_world)
        pixels = torch.round(pixels)
        seen = geometry.sample_depth(rgbd.depth.to(true.device), pixels, window=0)
        visible = torch.isfinite(seen) & (seen > z - self.margin) & (z > 0)
        self.counts["hidden"] += int((~visible).sum())
        z = torch.where(visible, z, torch.full_like(z, float("nan")))
        return geometry.lift(pixels, z, rgbd.intrinsics, cam_to_world)


class LabellerSource:
    """Keypoint pixels marked by a VLM server (:class:`~robot_rl.rewards.labellers.pointing.HTTPPointer`)
    on ``camera``'s colour image, lifted with its depth image. One request per world and reset:
    too slow to ask every step."""

    per_step = False

    def __init__(self, labeller: str = "http", options: dict[str, Any] | None = None, camera: str = "front",
                 image_size: tuple[int, int] = (128, 128)) -> None:
        from robot_rl.rewards.labellers.http import HTTPLabellerConfig
        from robot_rl.rewards.labellers.pointing import HTTPPointer, PointingConfig

        if labeller != "http":
            raise ValueError(f"keypoint: labeller must be 'http' (an OpenAI-compatible VLM server), got {labeller!r}")
        options = dict(options or {})
        pointing = {key: options.pop(key) for key in ("describe", "upscale", "grid", "max_tokens") if key in options}
        self.pointer = HTTPPointer(PointingConfig(http=HTTPLabellerConfig(**options), **pointing))
        self.names = tuple(self.pointer.describe)
        self.request = FrameRequest(camera=camera, image_size=tuple(image_size))
        self.counts = self.pointer.counts

    def check_scene(self, task: str | None, cameras: Sequence[str]) -> None:
        _check_camera(self.request.camera, cameras, "the keypoint reward's labeller")

    def locate(self, frames: Frames, names: Sequence[str]) -> torch.Tensor:
        rgbd = _rgbd(frames, "the labeller")
        pixels = self.pointer.point(rgbd.rgb, names, frames.goal)
        return geometry.lift_pixels(pixels.to(rgbd.depth.device), rgbd.depth.float(), rgbd.intrinsics,
                                    rgbd.cam_to_world)
