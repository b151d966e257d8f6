"""Randomised perception frames: the randomisation is applied and the labels follow it."""

import numpy as np
import pytest
import torch

from robot_rl.perception import geometry
from robot_rl_sim.perception_data import FrameSource, Randomization, View


@pytest.fixture(scope="module")
def states():
    source = FrameSource("panda_push", (64, 64), randomization=Randomization.none())
    try:
        yield source.collect_states(12, seed=0, num_envs=4)
    finally:
        source.close()


def _render(states, randomization, seed, view=None):
    source = FrameSource("panda_push", (64, 64), randomization=randomization, view=view)
    try:
        return source.render(states, seed=seed)
    finally:
        source.close()


def test_without_randomisation_frames_repeat_and_with_it_they_differ(states):
    plain_a = _render(states, Randomization.none(), seed=1)
    plain_b = _render(states, Randomization.none(), seed=2)
    assert np.array_equal(plain_a.rgb, plain_b.rgb) and np.array_equal(plain_a.depth, plain_b.depth)
    randomized = _render(states, Randomization(), seed=1)
    changed = np.abs(randomized.rgb.astype(int) - plain_a.rgb.astype(int)).mean(axis=(1, 2, 3))
    assert (changed > 5).all(), changed
    # the field of view and the camera pose move between frames
    assert np.ptp(randomized.intrinsics[:, 0]) > 1.0
    assert np.ptp(randomized.cam_to_world[:, :3, 3], axis=0).max() > 0.01
    assert (randomized.depth == 0).any()  # holes


def test_labels_follow_the_randomised_camera(states):
    frames = _render(states, Randomization(depth_noise=0.0, depth_holes=0.0), seed=3)
    cube = 0  # KEYPOINTS["panda_push"][0]
    seen = frames.visible[:, cube]
    assert seen.sum() >= 6
    pixels = torch.as_tensor(frames.pixels[seen][:, [cube]])
    lifted = geometry.lift_pixels(pixels, torch.as_tensor(frames.depth[seen]), torch.as_tensor(frames.intrinsics[seen]),
                                  torch.as_tensor(frames.cam_to_world[seen]), window=0)[:, 0].numpy()
    top = frames.points[seen, cube] + np.array([0.0, 0.0, 0.025])  # the marked point: the top face's centre
    # pixels are rounded before lifting: within a pixel's footprint (~1.5 cm at 64 px) of the truth
    assert np.linalg.norm(lifted - top, axis=1).max() < 0.03
    # with the nominal camera instead of each frame's, the same pixels land centimetres away
    nominal = np.tile(frames.cam_to_world[0], (int(seen.sum()), 1, 1))
    wrong = geometry.lift_pixels(pixels, torch.as_tensor(frames.depth[seen]), torch.as_tensor(frames.intrinsics[seen]),
                                 torch.as_tensor(nominal), window=0)[:, 0].numpy()
    assert np.linalg.norm(wrong - top, axis=1).max() > 0.03


def test_a_given_view_and_colours_are_used(states):
    blue = (0.1, 0.2, 0.9)
    view = View(camera_position=(1.3, -0.85, 0.95), camera_lookat=(0.5, 0.0, 0.0), colors={"cube": blue})
    frames = _render(states, Randomization.none(), seed=4, view=view)
    default = _render(states, Randomization.none(), seed=4)
    assert not np.allclose(frames.cam_to_world[0], default.cam_to_world[0])
    seen = frames.visible[:, 0]
    u, v = np.rint(frames.pixels[seen, 0]).astype(int).T
    colour = frames.rgb[seen][np.arange(len(u)), v, u].astype(float)
    assert (colour[:, 2] > colour[:, 0]).mean() > 0.8  # the cube's pixel is blue, not red


def test_unknown_task_and_camera_are_named():
    with pytest.raises(ValueError, match="panda_push, panda_lift, not 'panda_reach'"):
        FrameSource("panda_reach")
    with pytest.raises(ValueError, match="no camera named 'side'"):
        FrameSource("panda_push", camera="side")


def test_the_nominal_camera_is_the_unrandomised_frames_camera(states):
    source = FrameSource("panda_push", (64, 64), randomization=Randomization.none())
    try:
        frames = source.render(states, seed=0)
        pose, intrinsics = source.nominal_pose, source.nominal_intrinsics
    finally:
        source.close()
    np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(frames.cam_to_world[0], pose, atol=1e-9)
    np.testing.assert_allclose(frames.intrinsics[0], intrinsics)
