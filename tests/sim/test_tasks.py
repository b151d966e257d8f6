"""Smoke tests over every registered task: shapes, finiteness, seeding, autoreset, rendering."""

from __future__ import annotations

import warnings

import pytest
import torch
from gymnasium.utils.env_checker import check_env

from robot_rl.envs import make, task_class, task_names
from robot_rl.envs.gym_adapter import GymEnv
from robot_rl.registry import UnknownNameError

TASKS = task_names()
N = 6


def random_actions(env, steps: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [2 * torch.rand(env.num_envs, env.action_dim, generator=gen) - 1 for _ in range(steps)]


def test_registry_has_the_four_tasks() -> None:
    assert {"panda_reach", "panda_push", "panda_lift", "quadruped_walk"} <= set(TASKS)


def test_unknown_task_lists_registered_tasks() -> None:
    with pytest.raises(UnknownNameError, match="unknown task 'panda_fly'; registered tasks: .*panda_reach"):
        make("panda_fly")


@pytest.mark.parametrize("task", TASKS)
def test_reset_step_shapes_and_values(task: str) -> None:
    env = make(task, num_envs=N)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"policy", "privileged"}
    for group, dim in env.obs_dims.items():
        assert obs[group].shape == (N, dim) and obs[group].dtype == torch.float32
    assert env.goal and isinstance(env.goal, str)
    for actions in random_actions(env, 30, seed=1):
        obs, reward, terminated, truncated, info = env.step(actions)
        assert reward.shape == (N,) and reward.dtype == torch.float32
        assert terminated.dtype == torch.bool and truncated.dtype == torch.bool
        for group in ("policy", "privileged"):
            assert torch.isfinite(obs[group]).all(), group
        assert torch.isfinite(reward).all()
        assert set(info["reward_terms"]) <= set(task_class(task).reward_term_names())
        total = sum(info["reward_terms"].values())
        torch.testing.assert_close(total, reward)
        assert ((info["progress"] >= 0) & (info["progress"] <= 1)).all()
        assert info["success"].dtype == torch.bool


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_rollout_and_other_seed_differs(task: str) -> None:
    def rollout(seed: int) -> list[torch.Tensor]:
        env = make(task, num_envs=N)
        obs, _ = env.reset(seed=seed)
        out = [obs["policy"]]
        for actions in random_actions(env, 20, seed=3):
            obs, reward, *_ = env.step(actions)
            out += [obs["policy"], reward]
        env.close()
        return out

    first, again, other = rollout(7), rollout(7), rollout(8)
    for a, b in zip(first, again):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(first[0], other[0])


@pytest.mark.parametrize("task", TASKS)
def test_time_limit_truncates_and_resets(task: str) -> None:
    env = make(task, num_envs=N, overrides={"episode_length_s": 3 * task_class(task).config_class().control_dt})
    env.reset(seed=0)
    zero = torch.zeros(N, env.action_dim)
    for _ in range(3):
        obs, _, terminated, truncated, info = env.step(zero)
    assert (truncated | terminated).all()
    assert (env.episode_steps == 0).all()
    # The returned observation belongs to the new episode, final_obs to the old one.
    assert not torch.equal(obs["policy"], info["final_obs"]["policy"])


@pytest.mark.parametrize("task", TASKS)
def test_rgb_observations_and_render(task: str) -> None:
    camera = task_class(task).cameras[0]
    env = make(task, num_envs=2, image_cameras=(camera,), image_size=(48, 64))
    obs, _ = env.reset(seed=0)
    images = obs["rgb"][camera]
    assert images.shape == (2, 48, 64, 3) and images.dtype == torch.uint8
    assert images.float().std() > 5, "image is blank"
    frame = env.render(height=30, width=40, env_ids=torch.tensor([1]))
    assert frame.shape == (1, 30, 40, 3)


def test_unknown_camera_is_an_error() -> None:
    with pytest.raises(ValueError, match="camera 'top' is not in the panda_reach scene; cameras: front, wrist"):
        make("panda_reach", image_cameras=("top",))


def test_unknown_config_field_and_reward_term_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown config fields \\['speed'\\]"):
        make("panda_reach", overrides={"speed": 1.0})
    with pytest.raises(ValueError, match="unknown reward terms \\['style'\\]; valid terms: reach"):
        make("panda_reach", overrides={"reward_weights": {"style": 1.0}})


@pytest.mark.parametrize("task", TASKS)
def test_gymnasium_check_env(task: str) -> None:
    camera = task_class(task).cameras[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium warns about unbounded Box spaces
        check_env(GymEnv(make(task)), skip_render_check=True)
        check_env(GymEnv(make(task, image_cameras=(camera,), image_size=(32, 32)), render_mode="rgb_array"),
                  skip_render_check=False)


def test_gym_adapter_rejects_batches() -> None:
    with pytest.raises(ValueError, match="num_envs=2"):
        GymEnv(make("panda_reach", num_envs=2))
