"""Camera topics to keypoints for the policy node: the newest colour and depth images paired by
stamp, the camera's intrinsics from CameraInfo, and the estimator trained in simulation
(``robot_rl.perception``, inference in the core) run on them at the control rate.

    estimator = load_estimator("perception.pt", "panda_push", ("cube",), config)   # refuses a misfit
    camera = CameraTracker(config)            # subscribe its on_colour / on_depth / on_info
    perception = Perception(estimator, camera, config, ("cube",), max_age_s=0.2)
    estimate = perception.estimate()          # .points["cube"] float64[3]; .problem: why not usable

An estimate is not usable (the node holds) when no colour/depth pair has arrived, the pair is
older than ``max_age_s``, the image size is not the one the estimator reads, or a keypoint came
back NaN (off the image, no valid depth) or below the estimator's ``min_confidence``.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl_ros import messages as M
from robot_rl_ros.config import RobotConfig
from robot_rl_ros.node import NodeError, Shutdown

PAIR_TOLERANCE_NS = 5_000_000
"""Colour and depth stamps this close (5 ms) are one frame; RGB-D drivers stamp both alike."""


def load_estimator(path: str | Path, task: str, keypoints: tuple[str, ...], config: RobotConfig,
                   ) -> Any:
    """The perception model in ``path``, checked against the policy's task, the robot's camera
    (name and image size) and the keypoints the observation needs; ValueError (or
    FileNotFoundError) naming the mismatch otherwise."""
    from robot_rl.perception import KeypointEstimator

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"perception model not found: {path}; train one with "
                                f"`robot-rl perception-train --task {task}`")
    estimator = KeypointEstimator.load(path)
    camera = config.camera
    estimator.check(task=task, camera=camera.name, image_size=(camera.height, camera.width),
                    source=f"the perception model {path}")
    missing = [k for k in keypoints if k not in estimator.info.names]
    if missing:
        raise ValueError(f"the perception model {path} finds {', '.join(estimator.info.names)} but {task} needs "
                         f"{', '.join(missing)}")
    return estimator


@dataclass(frozen=True)
class Frame:
    stamp_ns: int
    arrived: float
    """time.monotonic() when it arrived."""
    image: np.ndarray


class CameraTracker:
    """Keeps the last few colour and depth images (decoded) and the newest camera info; the
    callbacks run on the transport thread."""

    def __init__(self, config: RobotConfig, history: int = 4) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.colour: collections.deque[Frame] = collections.deque(maxlen=history)
        self.depth: collections.deque[Frame] = collections.deque(maxlen=history)
        self.info: Any = None
        self.errors: dict[str, str] = {}
        """Topic -> why its newest message could not be read."""

    def _keep(self, box: collections.deque[Frame], topic: str, msg: Any, decode: Any) -> None:
        try:
            image = np.array(decode(msg))  # its own writable copy, not a view of the message
        except ValueError as error:
            self.errors[topic] = str(error)
            return
        self.errors.pop(topic, None)
        with self.lock:
            box.append(Frame(M.stamp_ns(msg.header), time.monotonic(), image))

    def on_colour(self, msg: Any) -> None:
        self._keep(self.colour, self.config.topics.image, msg, M.image_to_numpy)

    def on_depth(self, msg: Any) -> None:
        self._keep(self.depth, self.config.topics.depth, msg, M.depth_to_numpy)

    def on_info(self, msg: Any) -> None:
        self.info = msg

    def pair(self) -> tuple[Frame, Frame] | None:
        """The newest colour image with a depth image of the same stamp, or None."""
        with self.lock:
            colour, depth = list(self.colour), list(self.depth)
        for c in reversed(colour):
            for d in reversed(depth):
                if abs(c.stamp_ns - d.stamp_ns) <= PAIR_TOLERANCE_NS:
                    return c, d
        return None

    def wait(self, shutdown: Shutdown, timeout_s: float) -> None:
        """Wait for the first colour image, depth image and camera info; NodeError naming the
        topics that stayed silent, or a camera whose images are not the configured size."""
        topics, camera = self.config.topics, self.config.camera
        deadline = time.monotonic() + timeout_s
        while True:
            silent = [topic for topic, box in ((topics.image, self.colour), (topics.depth, self.depth),
                                               (topics.camera_info, [self.info] if self.info else [])) if not box]
            if not silent:
                break
            if time.monotonic() > deadline:
                what = {topics.image: "colour image", topics.depth: "depth image", topics.camera_info: "camera info"}
                unread = "".join(f" ({self.errors[t]})" for t in silent if t in self.errors)
                raise NodeError(f"no {' and no '.join(f'{what[t]} on {t}' for t in silent)} within {timeout_s:g} s"
                                f"{unread}; the perception model needs colour, depth and camera info: start the "
                                "camera's depth stream (registered to colour) or set topics.image/depth/camera_info "
                                "in the robot config")
            if shutdown.wait(0.05):
                return
        size = (int(self.info.height), int(self.info.width))
        if size != (camera.height, camera.width):
            raise NodeError(f"the camera on {topics.camera_info} gives {size[0]}x{size[1]} images (HxW) but the robot "
                            f"config's camera says {camera.height}x{camera.width}, what the perception model was "
                            "checked for; set the driver's resolution or the config's camera size")


@dataclass
class Estimate:
    points: dict[str, np.ndarray] = field(default_factory=dict)
    """Keypoint -> world point float64[3] (m)."""
    confidence: dict[str, float] = field(default_factory=dict)
    stamp_ns: int = 0
    """Stamp of the images it was estimated from."""
    problem: str | None = None
    """Why it cannot be used (the node holds), None when it can."""


class Perception:
    """Runs the estimator on the newest colour/depth pair, once per pair."""

    def __init__(self, estimator: Any, camera: CameraTracker, config: RobotConfig, keypoints: tuple[str, ...],
                 max_age_s: float) -> None:
        import torch

        self.torch = torch
        self.estimator, self.camera, self.config = estimator, camera, config
        self.keypoints, self.max_age_s = keypoints, max_age_s
        self.min_confidence = float(estimator.info.min_confidence)
        self.pose = (torch.tensor(config.camera.pose, dtype=torch.float64).reshape(1, 4, 4)
                     if config.camera.pose else None)
        self.last: Estimate | None = None
        self.seconds: list[float] = []
        """Time each estimator run took (s)."""

    def age(self, frame: Frame) -> float:
        """Seconds since the frame was taken: since it arrived, and since its stamp when the
        camera's clock is this machine's (``state_clock_synced``)."""
        age = time.monotonic() - frame.arrived
        if self.config.state_clock_synced:
            age = max(age, (M.now_ns() - frame.stamp_ns) * 1e-9)
        return age

    def estimate(self) -> Estimate:
        pair = self.camera.pair()
        topics = self.config.topics
        if pair is None:
            return Estimate(problem=f"no colour and depth images with the same stamp on {topics.image} and "
                                    f"{topics.depth}")
        colour, depth = pair
        age = max(self.age(colour), self.age(depth))
        if age > self.max_age_s:
            return Estimate(problem=f"camera images are {age:.2f} s old (max_image_age_s {self.max_age_s:g})")
        h, w = self.estimator.info.image_size
        if colour.image.shape[:2] != (h, w) or depth.image.shape != (h, w):
            return Estimate(problem=f"the camera sends {colour.image.shape[0]}x{colour.image.shape[1]} colour and "
                                    f"{depth.image.shape[0]}x{depth.image.shape[1]} depth images; the perception "
                                    f"model reads {h}x{w}")
        if self.last is None or self.last.stamp_ns != colour.stamp_ns:
            self.last = self._detect(colour, depth)
        return self.last

    def _detect(self, colour: Frame, depth: Frame) -> Estimate:
        torch = self.torch
        rgb, metres = torch.from_numpy(colour.image)[None], torch.from_numpy(depth.image)[None]
        kwargs = {}
        info = self.camera.info
        if info is not None:
            intrinsics = M.intrinsics_of(info)
            if not np.allclose(intrinsics, self.estimator.info.intrinsics, rtol=1e-4, atol=1e-3):
                kwargs["intrinsics"] = torch.tensor(intrinsics, dtype=torch.float64)  # this camera's calibration
        start = time.perf_counter()
        found = self.estimator.detect(rgb, metres, self.pose, **kwargs)
        self.seconds.append(time.perf_counter() - start)
        estimate = Estimate(stamp_ns=colour.stamp_ns)
        problems = []
        for name in self.keypoints:
            point = found.points[name][0].double().numpy()
            confidence = float(found.confidence[name][0])
            estimate.points[name], estimate.confidence[name] = point, confidence
            if not np.all(np.isfinite(point)):
                problems.append(f"{name} not found (off the image or no valid depth at its pixel)")
            elif confidence < self.min_confidence:
                problems.append(f"{name} found with confidence {confidence:.2f} < {self.min_confidence:g}")
        estimate.problem = "; ".join(problems) or None
        return estimate
