"""Fit a :class:`~robot_rl.perception.estimator.KeypointEstimator` to labelled RGB-D frames and
measure it on held-out frames.

    losses = fit(estimator, frames, steps=3000, batch_size=32, seed=0, progress=bar.update)
    report = evaluate(estimator, held_out, baseline=mean_points(frames))

``frames`` is anything with the fields of ``robot_rl_sim.perception_data.Frames`` (rgb, depth,
pixels, points, visible, intrinsics, cam_to_world; numpy or torch). The loss per keypoint in the
image: the KL divergence of the heat-map's softmax from a Gaussian (one cell wide) around the true
pixel (0 when they match), plus the L1 distance of the whole-map soft-argmax from it (in cells).
Hidden and off-image keypoints are fitted to a uniform heat-map: the network learns to say it does
not see them (low confidence) rather than guess, since lifting a hidden point with depth lands on
whatever hides it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from robot_rl.perception import geometry
from robot_rl.perception.estimator import KeypointEstimator
from robot_rl.perception.model import STRIDE, make_inputs, pixel_to_cell, soft_argmax

SIGMA = 1.0
"""Width (cells) of the Gaussian target heat-map."""
COORD_WEIGHT = 0.2


def _tensor(value: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value, dtype=dtype)


def fit(estimator: KeypointEstimator, frames: Any, steps: int, batch_size: int = 32, lr: float = 2e-3,
        seed: int = 0, progress: Callable[[int], None] | None = None) -> list[float]:
    """Train the estimator's network in place for ``steps`` mini-batches; returns the loss of
    each step. ``progress`` is called with 1 after every step."""
    generator = torch.Generator().manual_seed(seed)
    rgb, depth = _tensor(frames.rgb, torch.uint8), _tensor(frames.depth, torch.float32)
    pixels = _tensor(frames.pixels, torch.float32)
    n, h, w = depth.shape
    if n == 0:
        raise ValueError("no training frames")
    visible = _tensor(frames.visible, torch.bool) if hasattr(frames, "visible") else geometry.inside(pixels, h, w)
    net = estimator.net
    net.train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=generator)
        logits = net(make_inputs(rgb[idx], depth[idx]))
        loss = keypoint_loss(logits, pixels[idx], visible[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(1)
    net.eval()
    return losses


def keypoint_loss(logits: torch.Tensor, pixels: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Heat-map logits float[b, K, h, w], true pixels float[b, K, 2] and bool[b, K] which are
    visible. A hidden or off-image keypoint's heat-map is fitted to the uniform distribution, so
    the network learns to spread its mass (low confidence) when it cannot see the point."""
    b, k, h, w = logits.shape
    cells = pixel_to_cell(torch.nan_to_num(pixels, nan=-1e3, posinf=-1e3, neginf=-1e3))
    ys = torch.arange(h, dtype=logits.dtype).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=logits.dtype).view(1, 1, 1, w)
    target = torch.exp(-((xs - cells[..., 0, None, None]) ** 2 + (ys - cells[..., 1, None, None]) ** 2)
                       / (2 * SIGMA**2))
    target = target / target.sum(dim=(2, 3), keepdim=True).clamp_min(1e-12)
    target = torch.where(visible[..., None, None], target, torch.full_like(target, 1.0 / (h * w)))
    log_prob = F.log_softmax(logits.reshape(b, k, -1), dim=2)
    target = target.reshape(b, k, -1)
    divergence = (target * (torch.log(target.clamp_min(1e-12)) - log_prob)).sum(dim=2)  # 0 when it matches
    coord = (soft_argmax(logits) - cells).abs().sum(dim=2) * visible
    return (divergence + COORD_WEIGHT * coord).mean()


def mean_points(frames: Any) -> np.ndarray:
    """float[K, 3]: each keypoint's mean true point over ``frames``: the estimate of a
    baseline that never looks at the image."""
    return np.nanmean(np.asarray(frames.points, dtype=np.float64), axis=0)


@torch.no_grad()
def predict(estimator: KeypointEstimator, frames: Any, batch_size: int = 64):
    """Detections of every frame, with each frame's own camera pose and intrinsics."""
    rgb, depth = _tensor(frames.rgb, torch.uint8), _tensor(frames.depth, torch.float32)
    poses = _tensor(frames.cam_to_world, torch.float64)
    intrinsics = _tensor(frames.intrinsics, torch.float64)
    names = estimator.info.names
    pixels, points, confidence = [], [], []
    for start in range(0, len(rgb), batch_size):
        part = slice(start, start + batch_size)
        found = estimator.detect(rgb[part], depth[part], poses[part], intrinsics[part])
        pixels.append(torch.stack([found.pixels[k] for k in names], 1))
        points.append(torch.stack([found.points[k] for k in names], 1))
        confidence.append(torch.stack([found.confidence[k] for k in names], 1))
    return torch.cat(pixels).numpy(), torch.cat(points).numpy(), torch.cat(confidence).numpy()


def _stats(values: np.ndarray) -> dict[str, float | None]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return {"median": None, "p95": None, "count": 0}
    return {"median": float(np.median(values)), "p95": float(np.percentile(values, 95)), "count": int(len(values))}


def evaluate(estimator: KeypointEstimator, frames: Any, baseline: np.ndarray | None = None,
             predictions: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Per keypoint, on frames where it is visible: 3D error (cm) and pixel error of the
    detections found with at least ``min_confidence`` (median, 95th percentile), the share found,
    and (``baseline`` float[K, 3]) the 3D error of always answering that point; the 3D error of
    hidden keypoints is reported apart. ``predictions``: :func:`predict`'s output for ``frames``,
    when the caller already has it."""
    pixels, points, confidence = predict(estimator, frames) if predictions is None else predictions
    true_pixels = np.asarray(frames.pixels, dtype=np.float64)
    true_points = np.asarray(frames.points, dtype=np.float64)
    visible = np.asarray(frames.visible, dtype=bool)
    h, w = np.asarray(frames.depth).shape[1:]
    in_image = geometry.inside(torch.as_tensor(true_pixels), h, w).numpy()
    report: dict[str, Any] = {"frames": int(len(points)), "min_confidence": estimator.info.min_confidence,
                              "keypoints": {}}
    for i, name in enumerate(estimator.info.names):
        found = np.isfinite(points[:, i]).all(axis=1) & (confidence[:, i] >= estimator.info.min_confidence)
        error_cm = 100 * np.linalg.norm(points[:, i] - true_points[:, i], axis=1)
        error_px = np.linalg.norm(pixels[:, i] - true_pixels[:, i], axis=1)
        seen = visible[:, i]
        hidden = in_image[:, i] & ~seen
        entry = {
            "visible_share": float(seen.mean()),
            "found_share": float(found[seen].mean()) if seen.any() else None,
            "error_3d_cm": _stats(error_cm[seen & found]),
            "error_px": _stats(error_px[seen]),
            "hidden_error_3d_cm": _stats(error_cm[hidden & found]),
            "confidence_median": float(np.median(confidence[seen, i])) if seen.any() else None,
        }
        if baseline is not None:
            entry["baseline_error_3d_cm"] = _stats(100 * np.linalg.norm(baseline[i] - true_points[:, i], axis=1)[seen])
        report["keypoints"][name] = entry
    report["stride"] = STRIDE
    return report
