"""Pinhole camera geometry over batches, in torch: project world points to pixels and lift pixels
with a depth image back to world points.

Conventions, the same as :mod:`robot_rl.rewards.keypoint` (which lifts through open3d) and
``robot_rl_sim.rendering``: intrinsics (fx, fy, cx, cy) in pixels with pixel (0, 0) centred at
(0, 0); camera-to-world poses float[..., 4, 4] in the OpenCV frame (x right, y down, z forward);
depth is the distance along the viewing axis in metres, 0 (or NaN) where there is no reading.
Intrinsics are one (fx, fy, cx, cy) for all images or float[n, 4], one row per image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def project(points: torch.Tensor, intrinsics: Sequence[float] | torch.Tensor,
            cam_to_world: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World points float[n, K, 3] seen by cameras cam_to_world float[n, 4, 4] -> pixels
    float[n, K, 2] (u = column, v = row) and camera-frame depth float[n, K] (≤ 0: behind)."""
    world_to_cam = torch.linalg.inv(cam_to_world.double())
    cam = points.double() @ world_to_cam[:, :3, :3].transpose(1, 2) + world_to_cam[:, None, :3, 3]
    fx, fy, cx, cy = _intrinsics(intrinsics, cam.dtype)
    z = cam[..., 2]
    safe = torch.where(z.abs() < 1e-9, torch.full_like(z, 1e-9), z)
    pixels = torch.stack([fx * cam[..., 0] / safe + cx, fy * cam[..., 1] / safe + cy], dim=-1)
    return pixels.to(points.dtype), z.to(points.dtype)


def _intrinsics(intrinsics, dtype: torch.dtype) -> tuple[torch.Tensor | float, ...]:
    """(fx, fy, cx, cy) as four floats, or as four float[n, 1] columns for per-image intrinsics
    given as float[n, 4]."""
    values = torch.as_tensor(intrinsics, dtype=dtype)
    if values.ndim == 1:
        return tuple(float(v) for v in values)
    return tuple(values[:, i:i + 1] for i in range(4))


def inside(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """bool[...]: pixels float[..., 2] whose nearest pixel lies in a height x width image."""
    u, v = torch.round(pixels[..., 0]), torch.round(pixels[..., 1])
    return (u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1)


def sample_depth(depth: torch.Tensor, pixels: torch.Tensor, window: int = 1) -> torch.Tensor:
    """Depth float[n, H, W] read at pixels float[n, K, 2] -> float[n, K]: the median of the valid
    readings (> 0, finite) in the (2·window+1)² neighbourhood of the nearest pixel, NaN where the
    pixel is off the image or no reading there is valid."""
    n, h, w = depth.shape
    k = pixels.shape[1]
    u = torch.round(pixels[..., 0]).long()
    v = torch.round(pixels[..., 1]).long()
    offsets = torch.arange(-window, window + 1, device=depth.device)
    du, dv = torch.meshgrid(offsets, offsets, indexing="xy")
    cols = u[..., None] + du.reshape(-1)
    rows = v[..., None] + dv.reshape(-1)
    ok = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    flat = rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)
    values = torch.gather(depth.reshape(n, 1, h * w).expand(n, k, h * w), 2, flat).float()
    ok &= torch.isfinite(values) & (values > 0)
    values = torch.where(ok, values, torch.full_like(values, float("nan")))
    centre_ok = inside(pixels, h, w)
    result = torch.nanmedian(values, dim=2).values
    return torch.where(centre_ok & ok.any(dim=2), result, torch.full_like(result, float("nan")))


def lift(pixels: torch.Tensor, z: torch.Tensor, intrinsics: Sequence[float] | torch.Tensor,
         cam_to_world: torch.Tensor) -> torch.Tensor:
    """Pixels float[n, K, 2] at camera-frame depth z float[n, K] -> world points float[n, K, 3]
    (NaN where z is NaN)."""
    fx, fy, cx, cy = _intrinsics(intrinsics, torch.float64)
    pixels, z = pixels.double(), z.double()
    cam = torch.stack([(pixels[..., 0] - cx) / fx * z, (pixels[..., 1] - cy) / fy * z, z], dim=-1)
    world = cam @ cam_to_world.double()[:, :3, :3].transpose(1, 2) + cam_to_world.double()[:, None, :3, 3]
    return world.float()


def lift_pixels(pixels: torch.Tensor, depth: torch.Tensor, intrinsics: Sequence[float] | torch.Tensor,
                cam_to_world: torch.Tensor, window: int = 1) -> torch.Tensor:
    """Pixels float[n, K, 2] of depth images float[n, H, W] -> world points float[n, K, 3], NaN
    where the pixel is off the image or has no valid depth (see :func:`sample_depth`)."""
    return lift(pixels, sample_depth(depth, pixels, window), intrinsics, cam_to_world)


def intrinsics_for(fovy_deg: float, height: int, width: int) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of a camera with vertical field of view ``fovy_deg`` and square pixels
    (MuJoCo's cameras) rendered at height x width."""
    import math

    f = 0.5 * height / math.tan(math.radians(fovy_deg) / 2.0)
    return f, f, (width - 1) / 2.0, (height - 1) / 2.0
