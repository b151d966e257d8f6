"""Projection and lifting against hand-computed camera geometry, and against open3d's lift."""

import math

import numpy as np
import pytest
import torch

from robot_rl.perception import geometry


def _camera_looking_down(height: float) -> torch.Tensor:
    """A camera at (0, 0, height) looking straight down, image x along world x, image y along -y."""
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, :3] = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]], dtype=torch.float64)
    pose[2, 3] = height
    return pose[None]


def test_projection_matches_the_pinhole_formula_by_hand():
    intrinsics = (100.0, 100.0, 31.5, 23.5)
    pose = _camera_looking_down(2.0)
    points = torch.tensor([[[0.0, 0.0, 0.0], [0.2, 0.0, 0.0], [0.0, 0.1, 1.0]]])
    pixels, z = geometry.project(points, intrinsics, pose)
    # (0,0,0): on the axis at 2 m; (0.2,0,0): 100*0.2/2 = 10 px right; (0,0.1,1): 1 m away, y flipped: 10 px up
    assert torch.allclose(pixels[0], torch.tensor([[31.5, 23.5], [41.5, 23.5], [31.5, 13.5]]), atol=1e-5)
    assert torch.allclose(z[0], torch.tensor([2.0, 2.0, 1.0]), atol=1e-6)


def test_lift_inverts_projection_per_image_intrinsics():
    torch.manual_seed(0)
    pose = _camera_looking_down(1.5).expand(3, 4, 4)
    intrinsics = torch.tensor([[90.0, 90.0, 31.5, 31.5], [110.0, 110.0, 31.5, 31.5], [70.0, 70.0, 30.0, 33.0]],
                              dtype=torch.float64)
    points = torch.rand(3, 5, 3) * torch.tensor([0.4, 0.4, 0.3]) - torch.tensor([0.2, 0.2, 0.0])
    pixels, z = geometry.project(points, intrinsics, pose)
    back = geometry.lift(pixels, z, intrinsics, pose)
    assert torch.allclose(back, points, atol=1e-5)


def test_lift_pixels_reads_depth_and_agrees_with_open3d():
    pytest.importorskip("open3d")
    from robot_rl.rewards.keypoint import lift_pixels as lift_open3d

    h, w = 48, 64
    fovy = 45.0
    intrinsics = geometry.intrinsics_for(fovy, h, w)
    assert intrinsics[0] == pytest.approx(0.5 * h / math.tan(math.radians(fovy) / 2))
    pose = _camera_looking_down(1.2)
    depth = torch.full((1, h, w), 1.2)  # a floor at z = 0
    pixels = torch.tensor([[[10.0, 7.0], [40.0, 30.0], [63.0, 47.0]]])
    ours = geometry.lift_pixels(pixels, depth, intrinsics, pose)
    theirs = lift_open3d(pixels[0].numpy(), depth[0].numpy(), intrinsics, pose[0].numpy())
    assert np.allclose(ours[0].numpy(), theirs, atol=1e-5)
    assert torch.allclose(ours[0, :, 2], torch.zeros(3), atol=1e-5)  # every point lands on the floor


def test_off_image_and_missing_depth_give_nan_not_zero():
    h, w = 16, 16
    pose = _camera_looking_down(1.0)
    depth = torch.ones(1, h, w)
    depth[0, 4:8, 4:8] = 0.0  # a hole, wider than the median window
    pixels = torch.tensor([[[-3.0, 5.0], [5.5, 5.5], [10.0, 10.0], [15.4, 3.0], [16.0, 3.0]]])
    points = geometry.lift_pixels(pixels, depth, (20.0, 20.0, 7.5, 7.5), pose)
    finite = torch.isfinite(points).all(dim=2)[0]
    assert finite.tolist() == [False, False, True, True, False]


def test_depth_median_ignores_a_few_holes():
    depth = torch.full((1, 9, 9), 2.0)
    depth[0, 4, 4] = 0.0
    depth[0, 3, 4] = float("nan")
    value = geometry.sample_depth(depth, torch.tensor([[[4.0, 4.0]]]))
    assert value.item() == pytest.approx(2.0)
