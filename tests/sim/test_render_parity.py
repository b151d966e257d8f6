"""MuJoCo Warp's ray tracer draws what OpenGL (EGL) draws: same camera, intrinsics, orientation.

Eight worlds of each Panda task after a reset, front camera at 64x64, one sample per pixel
(``DepthRenderer`` against ``WarpRenderer(antialias=False, depth=True)``). Measured over reset
seeds 1-4: mean absolute difference 5.5-5.9 levels (Warp shades per ray, OpenGL per vertex, so
the table is a few levels brighter under the top light); pixels whose largest channel differs
by more than 64 levels (edges, the checker's texture filtering): at most 0.09%; depth off by
more than 1 cm (silhouette pixels): at most 0.14%, median error where both hit ~1e-5 m.
The bounds below are about 1.5-3x those. A changed state breaks them: the cube 10 cm further
along x gives 0.68-0.77% of pixels over 64 levels and 0.59-0.66% off in depth; joint1 turned
by 0.2 rad 2.7% and 5.3%. ~8 s with Warp's kernel cache warm, ~45 s cold (compilation).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

pytest.importorskip("mujoco_warp")

from robot_rl.envs import make  # noqa: E402
from robot_rl_sim.rendering import DepthRenderer, RendererUnavailableError, SceneRenderer  # noqa: E402
from robot_rl_sim.warp_rendering import WarpRenderer  # noqa: E402

CAMERA, SIZE, N = "front", 64, 8
MEAN_LEVELS = 8.0
"""bound on the mean absolute difference, levels of 255"""
FAR_LEVELS, FAR_FRACTION = 64, 0.0025
"""at most this fraction of pixels may differ by more than FAR_LEVELS in some channel"""
DEPTH_M, DEPTH_FRACTION = 0.01, 0.003
"""at most this fraction of pixels may differ in depth by more than DEPTH_M metres"""


def difference(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """(rgb uint8[n, H, W, 3], depth float32[n, H, W]) of two renderers -> parity metrics."""
    levels = np.abs(a[0].astype(np.int16) - b[0].astype(np.int16))
    depth = np.abs(a[1] - b[1])
    return {"mean": float(levels.mean()), "far": float((levels.max(axis=-1) > FAR_LEVELS).mean()),
            "depth_far": float((depth > DEPTH_M).mean())}


def warp_rgbd(warp: WarpRenderer, qpos: np.ndarray, mocap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rgb, depth = warp.render_rgbd(CAMERA, qpos, mocap)
    return rgb.numpy(), depth.numpy()


def within_bounds(metrics: dict[str, float]) -> bool:
    return (metrics["mean"] <= MEAN_LEVELS and metrics["far"] <= FAR_FRACTION
            and metrics["depth_far"] <= DEPTH_FRACTION)


@pytest.fixture(scope="module", params=["panda_reach", "panda_push"])
def scene(request):
    """(model, qpos float64[N, nq], mocap_pos float64[N, nmocap, 3], EGL renderer, Warp renderer)."""
    env = make(request.param, num_envs=N, backend="native", seed=1)
    env.reset(seed=1)
    model = env.sim.model
    qpos = env.sim.qpos.double().numpy().copy()
    mocap = env.sim.mocap_pos.double().numpy().copy()
    env.close()
    try:
        egl = DepthRenderer(copy.copy(model), SIZE, SIZE)
    except RendererUnavailableError as error:
        pytest.skip(str(error))
    warp = WarpRenderer(model, SIZE, SIZE, antialias=False, depth=True)
    yield model, qpos, mocap, egl, warp
    egl.close()
    warp.close()


def test_warp_image_and_depth_match_egl(scene) -> None:
    model, qpos, mocap, egl, warp = scene
    rgb, depth, _ = egl.render_rgbd(CAMERA, qpos, mocap)
    warp_rgb, warp_depth = warp_rgbd(warp, qpos, mocap)
    assert warp_rgb.shape == rgb.shape and warp_rgb.dtype == np.uint8
    metrics = difference((warp_rgb, warp_depth), (rgb, depth))
    print(metrics)
    assert within_bounds(metrics), metrics
    far = model.vis.map.zfar * model.stat.extent
    both = (depth < 0.999 * far) & (warp_depth < 0.999 * far)
    assert both.mean() > 0.5  # the table fills most of the view
    assert np.median(np.abs(warp_depth - depth)[both]) < 1e-3


def test_a_changed_state_breaks_the_bounds(scene) -> None:
    model, qpos, mocap, egl, warp = scene
    expected = egl.render_rgbd(CAMERA, qpos, mocap)[:2]
    moved = qpos.copy()
    if model.nq > 9:
        moved[:, 9] += 0.1  # the cube's free joint: x, 10 cm
    else:
        moved[:, 0] += 0.2  # no cube in panda_reach: turn joint1
    same = difference(warp_rgbd(warp, qpos, mocap), expected)
    changed = difference(warp_rgbd(warp, moved, mocap), expected)
    print(same, changed)
    assert not within_bounds(changed)
    assert changed["far"] > max(FAR_FRACTION, 4 * same["far"])
    assert changed["depth_far"] > max(DEPTH_FRACTION, 4 * same["depth_far"])


def test_antialiased_images_match_egl_multisampling(scene) -> None:
    """EGL multisamples (MuJoCo's offsamples = 4), Warp traces 2x2 rays per pixel: the smoothed
    edges agree about as well as the single-sample images."""
    model, qpos, mocap, _, _ = scene
    egl = SceneRenderer(copy.copy(model), SIZE, SIZE, antialias=True)
    warp = WarpRenderer(model, SIZE, SIZE, antialias=True)
    levels = np.abs(warp.render(CAMERA, torch.from_numpy(qpos), torch.from_numpy(mocap)).numpy().astype(np.int16)
                    - egl.render(CAMERA, qpos, mocap))
    egl.close()
    print(levels.mean(), (levels.max(axis=-1) > FAR_LEVELS).mean())
    assert levels.mean() <= MEAN_LEVELS
    assert (levels.max(axis=-1) > FAR_LEVELS).mean() <= FAR_FRACTION


def test_a_few_worlds_render_as_in_the_full_batch(scene) -> None:
    """Three worlds go through a 4-world batch (sized to a power of two), eight through an
    8-world one: the same worlds give the same pixels."""
    _, qpos, mocap, _, warp = scene
    full = warp.render(CAMERA, qpos, mocap)
    few = warp.render(CAMERA, qpos[[5, 2, 7]], mocap[[5, 2, 7]])
    assert few.shape == (3, SIZE, SIZE, 3)
    assert torch.equal(few, full[[5, 2, 7]])
