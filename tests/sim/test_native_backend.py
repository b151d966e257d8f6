"""The native MuJoCo backend: wrenches, per-world randomisation, latency, noise, model errors."""

from __future__ import annotations

import pytest
import torch

from robot_rl.envs import Randomization, make
from robot_rl_sim.mjcf import load_model
from robot_rl_sim.mujoco_native import NativeBackend


def test_apply_wrench_pushes_only_the_worlds_it_is_given_for() -> None:
    env = make("panda_push", num_envs=2)
    env.reset(seed=0)
    start = env.sim.sensor("cube_pos").clone()
    wrench = torch.zeros(2, 6)
    # 1.3 N along +y on world 0's cube: 0.1 kg against ~1 N of friction accelerates it at
    # ~3 m/s^2, so it slides ~6 cm in 0.2 s.
    wrench[0, 1] = 1.3
    env.sim.apply_wrench("cube", wrench)
    hold = torch.zeros(2, env.action_dim)
    for _ in range(4):
        env.step(hold)
    moved = env.sim.sensor("cube_pos") - start
    assert 0.03 < moved[0, 1] < 0.1
    assert moved[1].abs().max() < 1e-3
    env.sim.apply_wrench("cube", torch.zeros(2, 6))
    before = env.sim.sensor("cube_pos").clone()
    for _ in range(10):
        env.step(hold)
    assert (env.sim.sensor("cube_pos")[0, 1] - before[0, 1]).abs() < 0.03  # friction stops it


def test_apply_wrench_unknown_body_names_the_bodies() -> None:
    env = make("panda_reach")
    with pytest.raises(KeyError, match="no body named 'cube'; it has: world, link0"):
        env.sim.apply_wrench("cube", torch.zeros(1, 6))


def test_gain_randomisation_changes_dynamics_per_world() -> None:
    soft = Randomization(gain_scale=(0.3, 0.3))
    envs = [make("quadruped_walk", num_envs=2), make("quadruped_walk", num_envs=2, overrides={"randomization": soft})]
    heights = []
    for env in envs:
        env.reset(seed=0)
        for _ in range(50):
            env.step(torch.zeros(2, env.action_dim))
        heights.append(env.sim.sensor("trunk_pos")[:, 2])
    assert (heights[1] < heights[0] - 0.01).all(), heights  # softer legs sag further
    torch.testing.assert_close(envs[1].task.dynamics[:, 2], torch.full((2,), 0.3))
    privileged = envs[1].task.observe(envs[1].sim)["privileged"]
    torch.testing.assert_close(privileged[:, -3:], envs[1].task.dynamics)


def test_mass_randomisation_draws_within_range_and_differs_per_world() -> None:
    env = make("panda_push", num_envs=8, overrides={"randomization": Randomization(mass_scale=(0.5, 2.0))})
    env.reset(seed=0)
    scales = env.task.dynamics[:, 0]
    assert ((scales >= 0.5) & (scales <= 2.0)).all() and scales.unique().numel() == 8
    cube = env.sim.layout.body("cube")
    masses = torch.tensor([m.body_mass[cube] for m in env.sim._models])
    torch.testing.assert_close(masses, 0.1 * scales.double(), rtol=1e-5, atol=0)


def test_observation_noise_only_touches_the_policy_group() -> None:
    clean = make("panda_reach", num_envs=64)
    noisy = make("panda_reach", num_envs=64, overrides={"randomization": Randomization(obs_noise_std=0.1)})
    obs_clean, _ = clean.reset(seed=3)
    obs_noisy, _ = noisy.reset(seed=3)
    torch.testing.assert_close(obs_noisy["privileged"], obs_clean["privileged"])
    diff = obs_noisy["policy"] - obs_clean["policy"]
    assert 0.09 < diff.std().item() < 0.11


def test_action_delay_applies_each_worlds_action_late() -> None:
    env = make("panda_reach", num_envs=16, overrides={"randomization": Randomization(max_action_delay=2)})
    env.reset(seed=0)
    delays = env._delays.clone()
    assert set(delays.tolist()) == {0, 1, 2}
    impulse = torch.full((16, env.action_dim), 0.5)
    applied = []
    for step in range(4):
        env.step(impulse if step == 0 else torch.zeros(16, env.action_dim))
        applied.append(env.task.actions[:, 0].clone())
    applied = torch.stack(applied, dim=1)  # [N, steps]
    for world, delay in enumerate(delays.tolist()):
        expected = torch.zeros(4)
        expected[delay] = 0.5
        torch.testing.assert_close(applied[world], expected)


def test_missing_mjcf_names_the_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="MJCF file not found: .*nowhere.xml"):
        load_model(tmp_path / "nowhere.xml")


def test_invalid_mjcf_names_the_file_and_line(tmp_path) -> None:
    path = tmp_path / "broken.xml"
    path.write_text("<mujoco>\n  <worldbody>\n    <geom type='sphere' size='-1 x'/>\n  </worldbody>\n</mujoco>\n")
    with pytest.raises(ValueError, match=r"MuJoCo could not load .*broken.xml: (?s:.*)line 3"):
        load_model(path)


def test_native_backend_refuses_a_gpu_device() -> None:
    with pytest.raises(ValueError, match="runs on the CPU, not 'cuda'; use backend='warp'"):
        NativeBackend("panda/scene_reach.xml", 1, device="cuda")


def test_render_rgbd_gives_each_worlds_images_depth_pose_and_intrinsics() -> None:
    from robot_rl.perception import geometry

    env = make("panda_push", num_envs=3)
    env.reset(seed=0)
    ids = torch.tensor([2, 0])
    frames = env.render_rgbd("front", 48, 64, ids)
    assert frames.rgb.shape == (2, 48, 64, 3) and frames.rgb.dtype == torch.uint8
    assert frames.depth.shape == (2, 48, 64) and frames.depth.dtype == torch.float32
    assert frames.cam_to_world.shape == (2, 4, 4) and frames.cam_to_world.dtype == torch.float64
    assert frames.intrinsics == pytest.approx(geometry.intrinsics_for(45.0, 48, 64))
    # The colour image is the plain render without multisampling, world for world.
    assert torch.equal(frames.rgb, env.sim.render("front", 48, 64, ids, antialias=False))
    # Each world's cube lifts back from its own pixel (to its visible surface, within a few cm).
    cube = env.sim.sensor("cube_pos")[ids]
    pixels, _ = geometry.project(cube[:, None], frames.intrinsics, frames.cam_to_world)
    lifted = geometry.lift_pixels(pixels, frames.depth, frames.intrinsics, frames.cam_to_world)[:, 0]
    assert (torch.linalg.norm(lifted - cube, dim=1) < 0.05).all()
    with pytest.raises(ValueError, match="camera 'top' is not in the panda_push scene"):
        env.render_rgbd("top", 48, 64)
