"""Keypoint rewards: depth rendering and camera geometry, lifting pixels to 3D with open3d, and the
gated waypoint reward, on a rendered panda_reach scene."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from robot_rl.envs import make
from robot_rl.rewards.base import REWARDS, RewardModule
from robot_rl.rewards.keypoint import KeypointReward, lift_pixels, project_points
from robot_rl.rewards.metrics import spearman

mujoco = pytest.importorskip("mujoco")
pytest.importorskip("open3d")

H, W = 240, 320
RADIUS = 0.02  # the target sphere of scene_reach.xml


@pytest.fixture(scope="module")
def scene():
    """A panda_reach world, an expert episode of it, and an RGB-D renderer of its model in which the
    target sphere is opaque (MuJoCo draws transparent geoms without writing depth)."""
    from robot_rl_sim.episodes import render_episodes
    from robot_rl_sim.rendering import DepthRenderer

    env = make("panda_reach", num_envs=1, image_cameras=("front",), image_size=(64, 64), seed=3)
    episode = render_episodes(env, ["expert"], num_steps=30, seed=3)[0]
    model = copy.copy(env.sim.model)
    model.geom_rgba[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "target"), 3] = 1.0
    renderer = DepthRenderer(model, H, W)
    try:
        yield env, episode, renderer
    finally:
        renderer.close()
        env.close()


def _world(env, episode, t: int):
    model = env.sim.model
    data = mujoco.MjData(model)
    data.qpos[:] = episode.qpos[t]
    data.mocap_pos[:] = episode.mocap_pos[t]
    mujoco.mj_forward(model, data)
    return model, data


def test_depth_and_camera_geometry_match_ray_casting(scene) -> None:
    env, episode, renderer = scene
    model, data = _world(env, episode, 0)
    _, depth, pose = renderer.render_rgbd("front", episode.qpos[:1].astype(np.float64),
                                          episode.mocap_pos[:1].astype(np.float64))
    fx, fy, cx, cy = renderer.intrinsics("front")
    assert fx == fy == pytest.approx(0.5 * H / np.tan(np.deg2rad(45.0) / 2))  # fovy 45 in scene_reach.xml
    geom = np.zeros(1, np.int32)
    for u, v in [(10, 200), (160, 120), (300, 180), (80, 230), (200, 90)]:
        ray = pose[0][:3, :3] @ np.array([(u - cx) / fx, (v - cy) / fy, 1.0])  # z-component 1 in the camera
        hit = mujoco.mj_ray(model, data, pose[0][:3, 3], ray, None, 1, -1, geom)
        assert hit > 0
        assert depth[0, v, u] == pytest.approx(hit, abs=2e-3)  # mj_ray's distance is in units of |ray|: z-depth


def test_target_pixel_lifts_back_to_the_sphere_surface(scene) -> None:
    env, episode, renderer = scene
    qpos, mocap = episode.qpos[:1].astype(np.float64), episode.mocap_pos[:1].astype(np.float64)
    _, depth, pose = renderer.render_rgbd("front", qpos, mocap)
    intrinsics = renderer.intrinsics("front")
    centre = mocap[0, env.sim.layout.mocap_row("target")]
    pixel = np.rint(project_points(centre, intrinsics, pose[0]))  # as a user or a VLM would mark it
    lifted = lift_pixels(pixel, depth[0], intrinsics, pose[0])[0]
    # Where the ray through that pixel meets the sphere first.
    fx, fy, cx, cy = intrinsics
    origin = pose[0][:3, 3]
    ray = pose[0][:3, :3] @ np.array([(pixel[0, 0] - cx) / fx, (pixel[0, 1] - cy) / fy, 1.0])
    ray /= np.linalg.norm(ray)
    along = ray @ (centre - origin)
    surface = origin + (along - np.sqrt(RADIUS**2 - np.sum((origin + along * ray - centre) ** 2))) * ray
    assert np.linalg.norm(lifted - surface) < 0.01
    assert abs(np.linalg.norm(lifted - centre) - RADIUS) < 0.01
    # Pixels are (column, row); off-image pixels and pixels without depth are refused.
    with pytest.raises(ValueError, match="outside"):
        lift_pixels([[W, 0]], depth[0], intrinsics, pose[0])
    with pytest.raises(ValueError, match="no depth"):
        KeypointReward.from_pixels([[0, 0]], np.zeros((H, W), np.float32), intrinsics, pose[0])


def test_waypoint_reward_hand_computed() -> None:
    module = REWARDS.get("keypoint")(waypoints=[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], tolerance=0.1,
                                     success_reward=2.0)
    assert isinstance(module, RewardModule)
    # Start 0.5 m from the first waypoint: that leg is 0.5 long and none of it is covered.
    out = module.score_points(torch.tensor([[0.5, 0.0, 0.0]]))
    assert out.reward.tolist() == pytest.approx([-0.5]) and out.progress.tolist() == pytest.approx([0.0])
    # Within tolerance of the first: on to the second, 0.95 away on a leg of 1 -> (1 + 0.05) / 2.
    out = module.score_points(torch.tensor([[0.05, 0.0, 0.0]]))
    assert out.reward.tolist() == pytest.approx([-0.95]) and out.progress.tolist() == pytest.approx([0.525])
    assert module.next_index.tolist() == [1] and not bool(out.done[0])
    # Both passed: no distance left, progress 1, done.
    out = module.score_points(torch.tensor([[1.0, 0.0, 0.05]]))
    assert out.reward.tolist() == [0.0] and out.progress.tolist() == [1.0] and bool(out.done[0])
    # Sparse success takes over from the dense term.
    module.reset()
    state = torch.tensor([[9.0, 0.3, 0.0, 0.4], [9.0, 0.3, 0.0, 0.4]])
    gated = KeypointReward([[0.0, 0.0, 0.0]], tracked_state=(1, 4))
    out = gated.score(None, state, "", success=torch.tensor([True, False]))
    assert out.reward.tolist() == pytest.approx([1.0, -0.5]) and out.done.tolist() == [True, False]
    # Per-world state: resetting one world sends it back to the first waypoint.
    module.score_points(torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]]))
    assert module.next_index.tolist() == [1, 0]
    module.reset(torch.tensor([0]))
    assert module.next_index.tolist() == [0, 0]


def test_lifted_keypoint_guides_the_expert_tip(scene) -> None:
    env, episode, renderer = scene
    _, depth, pose = renderer.render_rgbd("front", episode.qpos[:1].astype(np.float64),
                                          episode.mocap_pos[:1].astype(np.float64))
    intrinsics = renderer.intrinsics("front")
    centre = episode.mocap_pos[0, env.sim.layout.mocap_row("target")]
    pixel = np.rint(project_points(centre, intrinsics, pose[0]))
    start = episode.tip[0]
    # A KAGI-style plan: halfway to the marked target, then the target itself.
    target = lift_pixels(pixel, depth[0], intrinsics, pose[0])[0]
    module = KeypointReward([(start + target) / 2, target], tracked_state=(0, 3), tolerance=0.04)
    rewards, progress, legs = [], [], []
    for t in range(len(episode.progress)):
        state = torch.from_numpy(episode.tip[t:t + 1])
        out = module.score(None, state, "", success=torch.from_numpy(episode.success[t:t + 1]))
        rewards.append(float(out.reward[0]))
        progress.append(float(out.progress[0]))
        legs.append(int(module.next_index[0]))
    rewards, legs = np.array(rewards), np.array(legs)
    assert legs[0] == 0 and legs.max() == 2 and np.all(np.diff(legs) >= 0)
    # The dense term rises along each leg (it drops when the next waypoint takes over: KAGI's shape).
    dense = ~episode.success
    for leg in (0, 1):
        steps = np.diff(rewards[dense & (legs == leg)])
        assert len(steps) > 2 and np.all(steps > -1e-3)
    assert np.all(rewards[episode.success] == 1.0) and episode.success[-1]
    assert spearman(progress, episode.progress) > 0.95
