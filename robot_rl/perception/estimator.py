"""A trained keypoint estimator: the network plus what it was trained for (task, camera, image
size, intrinsics, keypoints), loaded from one checked file and refusing inputs it was not made for.

    estimator = KeypointEstimator.load("runs/perception/panda_push/perception.pt")
    estimator.check(task="panda_push", camera="front", image_size=(128, 128))   # ValueError on mismatch
    found = estimator.detect(rgb, depth, cam_to_world)   # uint8[n,H,W,3], float[n,H,W], float[n,4,4]
    found.points["cube"], found.confidence["cube"]       # float32[n, 3] world (NaN: not found), float32[n]

Each keypoint is a visible surface point (e.g. the centre of the cube's top face) that the
network marks in the image; :meth:`detect` lifts its pixel with the depth image and the camera
pose and adds the keypoint's world ``offset`` (e.g. half the cube's size down, to its centre).
A keypoint whose pixel is off the image or has no valid depth comes back NaN with confidence 0,
never as a silent zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from robot_rl.perception import geometry
from robot_rl.perception.model import KeypointNet, decode, make_inputs
from robot_rl.utils.files import read_checked, write_checked

FORMAT = "robot_rl.perception/1"


@dataclass(frozen=True)
class Keypoint:
    name: str
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """World offset (metres) from the marked surface point to the point reported."""


@dataclass(frozen=True)
class EstimatorInfo:
    """What an estimator was trained for; stored in its file."""

    task: str
    camera: str
    image_size: tuple[int, int]
    """(H, W) of the images it reads."""
    intrinsics: tuple[float, float, float, float]
    """(fx, fy, cx, cy) in pixels at image_size."""
    cam_to_world: tuple[tuple[float, ...], ...]
    """Nominal camera pose float[4][4] (OpenCV frame) it was trained around; a robot supplies its
    calibrated pose instead."""
    keypoints: tuple[Keypoint, ...]
    min_confidence: float = 0.3
    """Below this a detection counts as not found (a policy node holds)."""
    width: int = 16
    """Channels of the network's first stage."""
    evaluation: dict[str, Any] = field(default_factory=dict)
    """The held-out errors measured after training (perception_eval.json)."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keypoints)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values only (what a weights-only file may hold)."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> EstimatorInfo:
        raw = dict(raw)
        raw["keypoints"] = tuple(Keypoint(k["name"], tuple(k["offset"])) for k in raw["keypoints"])
        raw["image_size"] = tuple(raw["image_size"])
        raw["intrinsics"] = tuple(raw["intrinsics"])
        raw["cam_to_world"] = tuple(tuple(r) for r in raw["cam_to_world"])
        return cls(**raw)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        return value.item()
    return value


@dataclass(frozen=True)
class Detections:
    """Per keypoint name: ``pixels`` float32[n, 2] (u, v), ``points`` float32[n, 3] world (NaN
    where not found), ``confidence`` float32[n] in [0, 1] (0 where not found)."""

    pixels: dict[str, torch.Tensor]
    points: dict[str, torch.Tensor]
    confidence: dict[str, torch.Tensor]

    def found(self, name: str, min_confidence: float) -> torch.Tensor:
        """bool[n]: the keypoint has a finite point with at least ``min_confidence``."""
        return torch.isfinite(self.points[name]).all(dim=1) & (self.confidence[name] >= min_confidence)


class KeypointEstimator:
    def __init__(self, info: EstimatorInfo, net: KeypointNet | None = None) -> None:
        self.info = info
        self.net = net if net is not None else KeypointNet(len(info.keypoints), info.width)
        self.net.eval()

    # -- checks ---------------------------------------------------------------------------------

    def check(self, task: str | None = None, camera: str | None = None,
              image_size: tuple[int, int] | None = None, source: str = "the estimator") -> None:
        """ValueError naming the first mismatch between what the estimator was trained for and
        what it is asked to read."""
        info = self.info
        if task is not None and task != info.task:
            raise ValueError(f"{source} was trained for task {info.task!r}, not {task!r}; "
                             f"train one with: robot-rl perception-train --task {task}")
        if camera is not None and camera != info.camera:
            raise ValueError(f"{source} was trained on camera {info.camera!r}, not {camera!r}; use that camera "
                             "or train one for this camera (--camera)")
        if image_size is not None and tuple(image_size) != tuple(info.image_size):
            raise ValueError(f"{source} reads {info.image_size[0]}x{info.image_size[1]} images (HxW), the camera "
                             f"gives {image_size[0]}x{image_size[1]}; set the camera to that size or train with "
                             f"--image-size {image_size[0]} {image_size[1]}")

    # -- inference ------------------------------------------------------------------------------

    @torch.no_grad()
    def detect(self, rgb: torch.Tensor, depth: torch.Tensor, cam_to_world: torch.Tensor | None = None,
               intrinsics: torch.Tensor | None = None) -> Detections:
        """rgb uint8[n, H, W, 3], depth float[n, H, W] (metres, 0/NaN = no reading), camera
        poses float[n, 4, 4] and intrinsics (fx, fy, cx, cy) or float[n, 4] (None: the nominal
        ones it was trained around; a robot passes its calibration) -> :class:`Detections`."""
        rgb, depth = torch.as_tensor(rgb), torch.as_tensor(depth)
        if rgb.ndim == 3:
            rgb, depth = rgb[None], depth[None]
        h, w = self.info.image_size
        if tuple(rgb.shape[1:]) != (h, w, 3) or tuple(depth.shape[1:]) != (h, w):
            raise ValueError(f"the estimator reads rgb [n, {h}, {w}, 3] and depth [n, {h}, {w}], got "
                             f"{tuple(rgb.shape)} and {tuple(depth.shape)}")
        n = rgb.shape[0]
        if cam_to_world is None:
            cam_to_world = torch.tensor(self.info.cam_to_world, dtype=torch.float64).expand(n, 4, 4)
        cam_to_world = torch.as_tensor(cam_to_world, dtype=torch.float64).reshape(-1, 4, 4).expand(n, 4, 4)
        device = next(self.net.parameters()).device
        logits = self.net(make_inputs(rgb.to(device), depth.to(device)))
        pixels, confidence = decode(logits)
        pixels, confidence = pixels.cpu(), confidence.cpu()
        intrinsics = self.info.intrinsics if intrinsics is None else torch.as_tensor(intrinsics, dtype=torch.float64)
        points = geometry.lift_pixels(pixels, depth.float().cpu(), intrinsics, cam_to_world)
        offsets = torch.tensor([k.offset for k in self.info.keypoints], dtype=torch.float32)
        points = points + offsets
        confidence = torch.where(torch.isfinite(points).all(dim=2), confidence, torch.zeros_like(confidence))
        names = self.info.names
        return Detections(pixels={k: pixels[:, i] for i, k in enumerate(names)},
                          points={k: points[:, i] for i, k in enumerate(names)},
                          confidence={k: confidence[:, i] for i, k in enumerate(names)})

    # -- files ----------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        return write_checked(Path(path), {"format": FORMAT, "info": self.info.to_dict(),
                                          "state_dict": self.net.state_dict()})

    @classmethod
    def load(cls, path: str | Path) -> KeypointEstimator:
        """The estimator in ``path``, read weights-only and checksum-verified (no code runs);
        CorruptFileError or ValueError with one line naming the file otherwise."""
        payload = read_checked(Path(path), FORMAT, "perception model")
        try:
            info = EstimatorInfo.from_dict(payload["info"])
            net = KeypointNet(len(info.keypoints), info.width)
            net.load_state_dict(payload["state_dict"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"{path} is not a usable perception model ({type(error).__name__}: "
                             f"{str(error).splitlines()[0][:200]})") from None
        return cls(info, net)
