"""The scripted panda_push controller: experts push the cube onto the target, failed ones never do."""

from __future__ import annotations

import pytest
import torch

from robot_rl.envs import make


def final_success(qualities: list[str], seed: int = 0, overrides: dict | None = None) -> torch.Tensor:
    from robot_rl_sim.scripted import make_controller

    env = make("panda_push", num_envs=len(qualities), seed=seed, overrides=overrides)
    controller = make_controller(env, qualities, seed=seed)
    env.reset(seed=seed)
    success = torch.zeros(len(qualities), dtype=torch.bool)
    for _ in range(env.max_episode_steps):
        _, _, terminated, truncated, info = env.step(controller.act())
        success = torch.where(terminated | truncated, info["success"], success)
    env.close()
    return success


@pytest.mark.parametrize(("action_space", "gripper"), [("joint", True), ("ee", True), ("ee", False)])
def test_experts_succeed_and_failures_do_not(action_space: str, gripper: bool) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        success = final_success(["expert"] * 12 + ["failed"] * 6,
                                overrides={"action_space": action_space, "gripper_action": gripper})
    finally:
        torch.set_num_threads(threads)
    assert success[:12].float().mean() >= 0.6
    assert not success[12:].any()


def test_steady_experts_stay_on_the_cube_where_experts_rise_off_it() -> None:
    from robot_rl_sim.scripted import ScriptedPusher, make_controller

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    env = make("panda_push", num_envs=16, seed=0, overrides={"action_space": "ee"})
    controller = make_controller(env, ["expert"] * 8 + ["steady"] * 8, seed=0)
    env.reset(seed=0)
    rises, steady_moves, success = torch.zeros(16), [], torch.zeros(16, dtype=torch.bool)
    try:
        for _ in range(env.max_episode_steps):
            on_target = env.task.cube_to_target(env.sim) < ScriptedPusher.done_distance
            actions = controller.act()
            rises += (on_target & (actions[:, 2] > 0)).float()
            steady_moves += actions[8:, :3][on_target[8:]].abs().flatten().tolist()
            _, _, terminated, truncated, info = env.step(actions)
            success = torch.where(terminated | truncated, info["success"], success)
    finally:
        env.close()
        torch.set_num_threads(threads)
    assert success[8:].float().mean() >= 0.6
    # On target the tip stays: under 1 mm per step (the tip sensor lags the state by a physics step).
    assert len(steady_moves) > 0 and max(steady_moves) * env.task.config.ee_step < 1e-3
    assert (rises[:8] > 0).sum() >= 4  # the experts that got there lift off the cube


def test_expert_action_depends_on_the_state_only() -> None:
    """The expert keeps no phase between steps: a controller that has been driving for a while and
    a fresh one act alike in the same state (so the policy's observation determines the action)."""
    from robot_rl_sim.scripted import make_controller

    env = make("panda_push", num_envs=6, seed=3)
    env.reset(seed=3)
    driving = make_controller(env, ["expert"] * 6, seed=0)
    for step in range(40):
        actions = driving.act()
        if step in (10, 25, 39):
            fresh = make_controller(env, ["expert"] * 6, seed=1)
            torch.testing.assert_close(fresh.act(), actions)
        env.step(actions)
    env.close()


def test_controller_checks_its_inputs() -> None:
    from robot_rl_sim.scripted import make_controller

    env = make("panda_push", num_envs=2)
    with pytest.raises(ValueError, match="2 worlds"):
        make_controller(env, ["expert"])
    with pytest.raises(ValueError, match="unknown qualities \\['great'\\]"):
        make_controller(env, ["expert", "great"])
    env.close()


def test_without_a_gripper_action_the_gripper_is_held_closed() -> None:
    from robot_rl_sim.scripted import make_controller

    widths = {}
    for gripper in (True, False):
        env = make("panda_push", num_envs=2, seed=0, overrides={"action_space": "ee", "gripper_action": gripper})
        assert env.action_dim == (4 if gripper else 3) and env.obs_dims["policy"] == (38 if gripper else 37)
        controller = make_controller(env, ["expert", "noisy"], seed=0)
        env.reset(seed=0)
        for _ in range(20):
            action = controller.act()
            assert action.shape == (2, env.action_dim)
            if gripper:
                action[:, -1] = 1.0  # ask for an open gripper
            env.step(action)
        widths[gripper] = env.task.gripper_width(env.sim)
        env.close()
    assert float(widths[True].min()) > 0.03 and float(widths[False].max()) < 0.005
