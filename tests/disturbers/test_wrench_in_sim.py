"""Disturbances reach the physics: a cube in free flight accelerates by F/m, pushes and
privileged actions go through ``apply_wrench``, relaxed contacts let the hand sink."""

from __future__ import annotations

import pytest
import torch

from robot_rl.configs import TrainConfig, from_dict
from robot_rl.configs.train import PrivilegedConfig
from robot_rl.disturbers.hooks import Robustness
from robot_rl.disturbers.privileged import PrivilegedActionEnv
from robot_rl.envs import make
from robot_rl.training.runner import build_env

CUBE_MASS = 0.1  # kg, models/panda/scene_push.xml


def cube_in_the_air(env) -> slice:
    """Lift every world's cube to 0.6 m, away from the arm and the table; its qvel slice."""
    sim = env.sim
    qpos, qvel = sim.qpos.clone(), torch.zeros_like(sim.qvel)
    q = sim.layout.qpos("cube_joint")
    qpos[:, q] = torch.tensor([0.3, 0.45, 0.6, 1.0, 0.0, 0.0, 0.0])
    sim.set_state(torch.arange(env.num_envs), qpos, qvel)
    return sim.layout.qvel("cube_joint")


def cube_acceleration(env, actions: torch.Tensor) -> torch.Tensor:
    """float[N, 3] mean linear acceleration of the cube over one control step."""
    v = cube_in_the_air(env)
    env.step(actions)
    return env.sim.qvel[:, v][:, :3] / env.control_dt


@pytest.fixture(scope="module")
def push_env():
    env = make("panda_push", num_envs=3, seed=0)
    env.reset(seed=0)
    yield env
    env.close()


def test_push_hook_accelerates_the_cube_by_force_over_mass(push_env) -> None:
    cfg = from_dict(TrainConfig, {"env": {"task": "panda_push"},
                                  "robust": {"push": {"max_force": 0.5, "interval_steps": 1, "body": "cube"}}})
    hooks = Robustness.build(cfg, push_env, seed=0)
    hooks.before_step(None)  # draws and applies this step's forces
    force = hooks.pushes.force.clone()
    accel = cube_acceleration(push_env, torch.zeros(3, 8))
    push_env.sim.apply_wrench("cube", torch.zeros(3, 6))
    free_fall = cube_acceleration(push_env, torch.zeros(3, 8))
    torch.testing.assert_close(free_fall[:, 2], torch.full((3,), -9.81), atol=0.02, rtol=0)
    torch.testing.assert_close(accel - free_fall, force / CUBE_MASS, atol=0.02, rtol=0.01)
    assert float(force.abs().max()) > 0.1  # a push that could fail the check


def test_privileged_action_is_a_scaled_wrench_on_the_cube(push_env) -> None:
    env = PrivilegedActionEnv(push_env, PrivilegedConfig(enabled=True, max_force=2.0), scale=0.5)
    assert env.action_dim == 8 and env.privileged_action_dim == 3
    assert env.obs_dims["privileged"] == push_env.obs_dims["privileged"] + 1
    actions = torch.zeros(3, 11)
    actions[:, 8:] = torch.tensor([[1.0, 0.0, 0.0], [0.0, -0.5, 0.0], [0.0, 0.0, 1.0]])
    accel = cube_acceleration(env, actions)
    free_fall = cube_acceleration(env, torch.zeros(3, 8))  # robot actions alone: no virtual force
    expected = 0.5 * 2.0 * actions[:, 8:] / CUBE_MASS     # s · max_force · p / m
    torch.testing.assert_close(accel - free_fall, expected, atol=0.02, rtol=0.01)
    env.set_scale(0.0)
    torch.testing.assert_close(cube_acceleration(env, actions), free_fall, atol=1e-4, rtol=0)


def test_privileged_env_rejects_wrong_action_sizes(push_env) -> None:
    env = PrivilegedActionEnv(push_env, PrivilegedConfig(enabled=True))
    with pytest.raises(ValueError, match=r"shape \(3, 9\)"):
        env.step(torch.zeros(3, 9))
    with pytest.raises(ValueError, match="must lie in"):
        env.set_scale(1.5)


def lowest_tip(scale: float) -> float:
    """How deep the gripper gets when driven straight down into the table for 2 s."""
    cfg = PrivilegedConfig(enabled=True, relax_bodies=("hand", "left_finger", "right_finger", "link7"),
                           relax_depth=0.03)
    env = PrivilegedActionEnv(make("panda_push", num_envs=1, seed=0), cfg, scale=scale)
    env.reset(seed=0)
    cube_in_the_air(env)  # out of the gripper's way
    down = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0]])  # shoulder and elbow lower the hand
    lowest = float("inf")
    for _ in range(40):
        env.step(down)
        lowest = min(lowest, float(env.sim.sensor("ee_pos")[0, 2]))
    env.close()
    return lowest


def test_relaxed_contacts_let_the_gripper_sink_into_the_table() -> None:
    plain, relaxed = lowest_tip(0.0), lowest_tip(1.0)
    assert relaxed < plain - 0.015, (plain, relaxed)


def test_build_env_wires_randomisation_and_privileged_actions() -> None:
    cfg = from_dict(TrainConfig, {"env": {"task": "panda_push", "num_envs": 2}, "robust": {
        "randomization": {"mass_scale": [0.5, 0.6], "max_action_delay": 2},
        "privileged": {"enabled": True}}})
    env = build_env(cfg)
    assert isinstance(env, PrivilegedActionEnv) and env.scale == 0.0  # built physically plain
    assert env.randomization.mass_scale == (0.5, 0.6) and env.randomization.max_action_delay == 2
    env.reset(seed=0)
    assert 0.5 <= float(env.task.dynamics[:, 0].min()) <= float(env.task.dynamics[:, 0].max()) <= 0.6
    env.close()
    twice = from_dict(TrainConfig, {"env": {"task": "panda_push", "task_overrides": {"randomization": {}}},
                                    "robust": {"randomization": {}}})
    with pytest.raises(ValueError, match="given twice"):
        build_env(twice)


def test_unknown_body_is_named_with_the_choices(push_env) -> None:
    cfg = from_dict(TrainConfig, {"robust": {"push": {"max_force": 1.0, "body": "cupe"}}})
    with pytest.raises(ValueError, match="robust.push.body: no body 'cupe'.*cube"):
        Robustness.build(cfg, push_env, seed=0)


def test_gated_privileged_force_acts_only_near_the_gripper(push_env) -> None:
    push_env.reset(seed=0)
    gap = torch.linalg.norm(push_env.sim.sensor("ee_pos") - push_env.sim.sensor("cube_pos"), dim=1)
    radius = float(gap.median())  # some worlds within the radius, some beyond
    near = gap <= radius
    assert bool(near.any()) and bool((~near).any()), gap
    cfg = PrivilegedConfig(enabled=True, max_force=2.0, gate_sensors=("ee_pos", "cube_pos"), gate_radius=radius)
    env = PrivilegedActionEnv(push_env, cfg, scale=1.0)
    push = torch.tensor([[1.0, -0.5, 0.25]]).expand(3, 3)
    wrench = env.privileged_wrench(push)
    torch.testing.assert_close(wrench[near, :3], 2.0 * push[near])  # s · max_force · p where near
    assert torch.equal(wrench[~near], torch.zeros(int((~near).sum()), 6))
    with pytest.raises(ValueError, match="robust.privileged.gate_sensors: no sensor 'tip_pos'"):
        PrivilegedActionEnv(push_env, PrivilegedConfig(enabled=True, gate_sensors=("tip_pos", "cube_pos")))

