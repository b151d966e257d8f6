"""The keypoint estimator: learns a tiny synthetic scene, lifts with depth, refuses what it was
not trained for, and its file is checked before use."""

from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch

from robot_rl.perception import EstimatorInfo, Keypoint, KeypointEstimator
from robot_rl.perception.training import evaluate, fit, mean_points
from robot_rl.utils.files import CorruptFileError

H = W = 32
INTRINSICS = (40.0, 40.0, (W - 1) / 2, (H - 1) / 2)
HEIGHT = 1.0


def _pose() -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = np.diag([1.0, -1.0, -1.0])  # looking straight down from HEIGHT
    pose[2, 3] = HEIGHT
    return pose


@dataclass
class _Frames:
    rgb: np.ndarray
    depth: np.ndarray
    pixels: np.ndarray
    points: np.ndarray
    visible: np.ndarray
    intrinsics: np.ndarray
    cam_to_world: np.ndarray


def _scene(n: int, seed: int) -> _Frames:
    """A red 3x3 square and (in 3 frames of 4) a green one on a grey floor, random places;
    keypoints = their centres."""
    rng = np.random.default_rng(seed)
    rgb = np.full((n, H, W, 3), 110, np.uint8)
    rgb += rng.integers(0, 20, rgb.shape, dtype=np.uint8)
    depth = np.full((n, H, W), HEIGHT, np.float32)
    pixels = np.empty((n, 2, 2), np.float32)
    visible = np.ones((n, 2), bool)
    for i in range(n):
        for k, colour in enumerate(((230, 30, 30), (30, 200, 40))):
            u, v = rng.integers(3, W - 4), rng.integers(3, H - 4)
            visible[i, k] = k == 0 or rng.random() < 0.75
            if visible[i, k]:
                rgb[i, v - 1:v + 2, u - 1:u + 2] = colour
            pixels[i, k] = (u, v)
    fx, fy, cx, cy = INTRINSICS
    points = np.stack([(pixels[..., 0] - cx) / fx * HEIGHT, -(pixels[..., 1] - cy) / fy * HEIGHT,
                       np.zeros(pixels.shape[:2])], axis=-1).astype(np.float32)
    return _Frames(rgb, depth, pixels, points, visible, np.tile(INTRINSICS, (n, 1)),
                   np.tile(_pose(), (n, 1, 1)))


def _info(**changes) -> EstimatorInfo:
    info = EstimatorInfo(task="toy", camera="top", image_size=(H, W), intrinsics=INTRINSICS,
                         cam_to_world=tuple(map(tuple, _pose())), keypoints=(Keypoint("red"), Keypoint("green")),
                         width=8)
    return replace(info, **changes)


@pytest.fixture(scope="module")
def trained() -> KeypointEstimator:
    torch.manual_seed(0)
    estimator = KeypointEstimator(_info())
    losses = fit(estimator, _scene(256, seed=0), steps=250, batch_size=32, lr=3e-3, seed=0)
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    return estimator


def test_learns_a_tiny_scene_on_held_out_frames(trained):
    train, held_out = _scene(256, seed=0), _scene(64, seed=1)
    report = evaluate(trained, held_out, baseline=mean_points(train))
    for name in ("red", "green"):
        entry = report["keypoints"][name]
        assert entry["error_px"]["median"] < 1.0, entry
        assert entry["found_share"] > 0.9
        # 1 px is 2.5 cm at 1 m with fx 40: the learned points beat answering the mean position by far
        assert entry["error_3d_cm"]["median"] < 3.0
        assert entry["error_3d_cm"]["median"] < 0.25 * entry["baseline_error_3d_cm"]["median"]


def test_detections_lift_with_depth_and_missing_depth_gives_nan_and_zero_confidence(trained):
    frames = _scene(4, seed=2)
    found = trained.detect(frames.rgb, frames.depth, frames.cam_to_world)
    assert torch.allclose(found.points["red"][:, 2], torch.zeros(4), atol=1e-4)  # on the floor
    depth = frames.depth.copy()
    depth[:] = 0.0  # no depth reading anywhere
    lost = trained.detect(frames.rgb, depth, frames.cam_to_world)
    assert torch.isnan(lost.points["red"]).all() and (lost.confidence["red"] == 0).all()
    assert not lost.found("red", 0.0).any()


def test_an_absent_keypoint_has_low_confidence(trained):
    frames = _scene(64, seed=3)
    confidence = trained.detect(frames.rgb, frames.depth).confidence["green"]
    shown = confidence[torch.as_tensor(frames.visible[:, 1])]
    absent = confidence[~torch.as_tensor(frames.visible[:, 1])]
    assert len(absent) >= 5
    assert absent.max() < trained.info.min_confidence <= shown.median()


def test_wrong_image_size_task_and_camera_are_named():
    estimator = KeypointEstimator(_info())
    with pytest.raises(ValueError, match="reads rgb"):
        estimator.detect(np.zeros((1, 16, 16, 3), np.uint8), np.ones((1, 16, 16), np.float32))
    with pytest.raises(ValueError, match="task 'toy', not 'panda_push'.*perception-train --task panda_push"):
        estimator.check(task="panda_push")
    with pytest.raises(ValueError, match="camera 'top', not 'front'"):
        estimator.check(camera="front")
    with pytest.raises(ValueError, match="32x32 images .* gives 64x48"):
        estimator.check(image_size=(64, 48))
    estimator.check(task="toy", camera="top", image_size=(H, W))


def test_file_round_trip_and_damage(tmp_path, trained):
    path = trained.save(tmp_path / "perception.pt")
    loaded = KeypointEstimator.load(path)
    frames = _scene(3, seed=4)
    a = trained.detect(frames.rgb, frames.depth).pixels["green"]
    b = loaded.detect(frames.rgb, frames.depth).pixels["green"]
    assert torch.equal(a, b)
    assert loaded.info == trained.info
    data = bytearray(path.read_bytes())
    (tmp_path / "short.pt").write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(CorruptFileError, match="short.pt"):
        KeypointEstimator.load(tmp_path / "short.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CorruptFileError, match="not a perception model"):
        KeypointEstimator.load(tmp_path / "other.pt")
