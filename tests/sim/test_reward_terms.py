"""Reward terms, success and progress against values worked out by hand.

Each test puts worlds into a chosen state with ``set_state`` (after which sensors describe
that state exactly) and reads the task's functions.
"""

from __future__ import annotations

import math

import pytest
import torch

from robot_rl.envs import make
from robot_rl_sim.constants import panda, quadruped
from robot_rl_sim.tasks.common import quat_rotate_inverse, yaw_quat


def panda_home(env) -> tuple[torch.Tensor, torch.Tensor]:
    n = env.num_envs
    qpos, qvel = env.task.reset_arm(torch.arange(n), torch.Generator().manual_seed(0))
    qpos[:, env.task._arm_q] = env.task.home  # exactly home, no noise
    return qpos, qvel


def tip_at_home(env) -> torch.Tensor:
    qpos, qvel = panda_home(env)
    env.sim.set_state(torch.arange(env.num_envs), qpos, qvel)
    return env.sim.sensor("ee_pos")[0].clone()


def test_panda_reach_terms() -> None:
    env = make("panda_reach", num_envs=2)
    task, sim = env.task, env.sim
    tip = tip_at_home(env)
    qpos, qvel = panda_home(env)
    # World 0: target 0.1 m away (a 6-8-10 triangle); world 1: 0.03 m away (18-24-30).
    mocap = torch.stack([tip + torch.tensor([0.06, 0.08, 0.0]), tip + torch.tensor([0.018, 0.024, 0.0])])
    sim.set_state(torch.arange(2), qpos, qvel, mocap.unsqueeze(1))
    task.after_reset(sim, torch.arange(2))
    task.actions[:] = torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0])
    task.prev_actions[:] = torch.tensor([0.5, 0, 0, 0, 0, 0, 0, 0.5])
    terms = task.reward_terms(sim)
    # reach = 1 - tanh(d / 0.1): 1 - tanh(1) = 0.238406, 1 - tanh(0.3) = 0.708687
    torch.testing.assert_close(terms["reach"], torch.tensor([0.238406, 0.708687]), atol=1e-4, rtol=0)
    torch.testing.assert_close(terms["distance"], torch.tensor([-0.1, -0.03]), atol=1e-5, rtol=0)
    torch.testing.assert_close(terms["success"], torch.tensor([0.0, 1.0]))
    # action rate = -(0.5^2 + 0.5^2) = -0.5
    torch.testing.assert_close(terms["action_rate"], torch.tensor([-0.5, -0.5]))
    assert task.success(sim).tolist() == [False, True]
    torch.testing.assert_close(task.progress(sim), torch.tensor([0.0, 0.0]))  # at the start distance

    # Bring world 0's target to 0.03 m: it covered 70% of its initial 0.1 m.
    sim.set_state(torch.tensor([0]), qpos[:1], qvel[:1], mocap[1:].unsqueeze(1))
    torch.testing.assert_close(task.progress(sim)[0], torch.tensor(0.7), atol=1e-4, rtol=0)


def test_panda_push_terms_and_termination() -> None:
    env = make("panda_push", num_envs=2)
    task, sim = env.task, env.sim
    qpos, qvel = panda_home(env)
    cube = sim.layout.qpos("cube_joint")
    # Cube at (0.5, 0) on the table; world 0's target at (0.6, 0.1), world 1's at (0.53, 0.06).
    qpos[:, cube] = torch.tensor([0.5, 0.0, panda.CUBE_HALF, 1.0, 0.0, 0.0, 0.0])
    mocap = torch.tensor([[[0.6, 0.1, 0.0]], [[0.53, 0.06, 0.0]]])
    sim.set_state(torch.arange(2), qpos, qvel, mocap)
    task.after_reset(sim, torch.arange(2))
    terms = task.reward_terms(sim)
    # distance sqrt(0.1^2 + 0.1^2) = 0.141421 and sqrt(0.03^2 + 0.06^2) = 0.067082
    torch.testing.assert_close(terms["distance"], torch.tensor([-0.141421, -0.067082]), atol=1e-5, rtol=0)
    # push = 1 - tanh(1.41421) = 0.111615, 1 - tanh(0.67082) = 0.414481
    torch.testing.assert_close(terms["push"], torch.tensor([0.111615, 0.414481]), atol=1e-4, rtol=0)
    assert task.success(sim).tolist() == [False, False]
    # Tip at home, cube centre at (0.5, 0, 0.025): reach = 1 - tanh(|tip - cube| / 0.25).
    tip = sim.sensor("ee_pos")[0]
    expected = 1 - math.tanh(math.dist(tip.tolist(), [0.5, 0.0, panda.CUBE_HALF]) / 0.25)
    assert terms["reach"][0].item() == pytest.approx(expected, abs=1e-5)

    # Cube moved to within 0.02 m of world 0's target: success; cube off the table: terminated.
    qpos[0, cube.start:cube.start + 2] = torch.tensor([0.6, 0.08])
    qpos[1, cube.start:cube.start + 3] = torch.tensor([1.2, 0.0, panda.CUBE_HALF])
    sim.set_state(torch.arange(2), qpos, qvel)
    assert task.success(sim).tolist() == [True, False]
    assert task.terminated(sim).tolist() == [False, True]
    # World 0 went from 0.141421 to 0.02 from its target: progress 1 - 0.02/0.141421 = 0.858579
    assert task.progress(sim)[0].item() == pytest.approx(0.858579, abs=1e-4)


def test_panda_lift_terms() -> None:
    env = make("panda_lift", num_envs=1)
    task, sim = env.task, env.sim
    qpos, qvel = panda_home(env)
    cube = sim.layout.qpos("cube_joint")
    target = torch.tensor([[[0.5, 0.0, 0.225]]])  # 0.2 m above the cube's resting centre
    qpos[:, cube] = torch.tensor([0.5, 0.0, panda.CUBE_HALF, 1.0, 0.0, 0.0, 0.0])
    sim.set_state(torch.arange(1), qpos, qvel, target)
    terms = task.reward_terms(sim)
    assert terms["lift"].item() == pytest.approx(0.0, abs=1e-6)
    assert terms["goal"].item() == 0.0  # the cube has not left the table, so no goal reward yet
    assert terms["grasp"].item() == 0.0  # nothing touches the finger pads
    # Cube halfway up (z = 0.125): lift = 0.5, goal = 1 - tanh(0.1 / 0.1) = 0.238406
    qpos[0, cube.start + 2] = 0.125
    sim.set_state(torch.arange(1), qpos, qvel)
    terms = task.reward_terms(sim)
    assert terms["lift"].item() == pytest.approx(0.5, abs=1e-5)
    assert terms["goal"].item() == pytest.approx(0.238406, abs=1e-4)
    assert not task.success(sim).item()
    qpos[0, cube.start + 2] = 0.2
    sim.set_state(torch.arange(1), qpos, qvel)
    assert task.success(sim).item()  # 0.025 m from the target


def test_quadruped_walk_terms() -> None:
    env = make("quadruped_walk", num_envs=2)
    task, sim, layout = env.task, env.sim, env.sim.layout
    qpos = torch.zeros(2, layout.nq)
    qvel = torch.zeros(2, layout.nv)
    root, root_vel = layout.qpos("root"), layout.qvel("root")
    qpos[:, root] = torch.tensor([0.0, 0.0, quadruped.STAND_HEIGHT, 1.0, 0.0, 0.0, 0.0])
    qpos[:, task._joint_q] = task.stand
    qvel[:, root_vel.start] = 0.5  # forward 0.5 m/s, heading along world x
    task.commands[:] = torch.tensor([[0.5, 0.0, 0.0], [1.0, 0.0, 0.5]])
    sim.set_state(torch.arange(2), qpos, qvel)
    terms = task.reward_terms(sim)
    # World 0 tracks exactly; world 1 misses by 0.5 m/s and 0.5 rad/s: exp(-0.25 / 0.25) = 0.367879
    torch.testing.assert_close(terms["track_lin_vel"], torch.tensor([1.0, 0.367879]), atol=1e-5, rtol=0)
    torch.testing.assert_close(terms["track_ang_vel"], torch.tensor([1.0, 0.367879]), atol=1e-5, rtol=0)
    torch.testing.assert_close(terms["orientation"], torch.zeros(2), atol=1e-8, rtol=0)
    torch.testing.assert_close(terms["lin_vel_z"], torch.zeros(2), atol=1e-8, rtol=0)
    assert task.success(sim).tolist() == [True, False]
    assert task.terminated(sim).tolist() == [False, False]

    # World 0 rolled 1.2 rad about x (beyond max_tilt 1.0); world 1 dropped to 0.1 m.
    roll = 1.2
    qpos[0, root.start + 3:root.start + 7] = torch.tensor([math.cos(roll / 2), math.sin(roll / 2), 0.0, 0.0])
    qpos[1, root.start + 2] = 0.1
    sim.set_state(torch.arange(2), qpos, torch.zeros_like(qvel))
    assert task.terminated(sim).tolist() == [True, True]
    # orientation = -(g_x^2 + g_y^2) with gravity (0, -sin 1.2, -cos 1.2) in the body: -sin^2(1.2)
    assert task.reward_terms(sim)["orientation"][0].item() == pytest.approx(-math.sin(roll) ** 2, abs=1e-5)


def test_quat_rotate_inverse_matches_hand_rotation() -> None:
    # Rotating world x by the inverse of a 90-degree yaw gives body -y.
    q = yaw_quat(torch.tensor([math.pi / 2]))
    out = quat_rotate_inverse(q, torch.tensor([[1.0, 0.0, 0.0]]))
    torch.testing.assert_close(out, torch.tensor([[0.0, -1.0, 0.0]]), atol=1e-6, rtol=0)
