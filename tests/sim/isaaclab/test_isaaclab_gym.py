"""Every task is registered in Gymnasium as an Isaac Lab environment, builds through
``gymnasium.make`` and runs: 4 worlds, 20 steps of random actions."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

pytest.importorskip("isaaclab")

from isaaclab_tasks.utils.parse_cfg import load_cfg_from_registry  # noqa: E402

import robot_rl_sim.isaaclab as robot_rl_isaaclab  # noqa: E402
from robot_rl.envs import task_class, task_names  # noqa: E402

TASKS = task_names()


def test_every_task_is_registered() -> None:
    ids = {gym_id for gym_id in gym.registry if gym_id.startswith("RobotRL-")}
    assert ids == {robot_rl_isaaclab.gym_id(task) for task in TASKS}
    assert robot_rl_isaaclab.gym_id("panda_reach") == "RobotRL-PandaReach-v0"


@pytest.mark.parametrize("task", TASKS)
def test_config_entry_points(task: str) -> None:
    gym_id = robot_rl_isaaclab.gym_id(task)
    env_cfg = load_cfg_from_registry(gym_id, "env_cfg_entry_point")
    cls = task_class(task)
    assert env_cfg.task == task
    assert env_cfg.action_space == cls.action_dim
    assert env_cfg.decimation * env_cfg.sim.dt == pytest.approx(cls.config_class().control_dt)
    agent = load_cfg_from_registry(gym_id, "rsl_rl_cfg_entry_point")
    assert agent.obs_groups == {"actor": ["policy"], "critic": ["critic"]}
    assert agent.num_steps_per_env > 0 and agent.max_iterations > 0


@pytest.mark.parametrize("task", TASKS)
def test_gym_make_and_step(task: str, tmp_path) -> None:
    gym_id = robot_rl_isaaclab.gym_id(task)
    cfg = load_cfg_from_registry(gym_id, "env_cfg_entry_point")
    cfg.usd_cache_dir = str(tmp_path)
    env = gym.make(gym_id, cfg=cfg, num_envs=4, device="cpu")
    try:
        inner = env.unwrapped
        obs, _ = env.reset(seed=0)
        assert obs["policy"].shape == (4, cfg.observation_space)
        assert obs["critic"].shape == (4, cfg.state_space)
        generator = torch.Generator().manual_seed(0)
        start = inner.backend.qpos.clone()
        for _ in range(20):
            actions = 2 * torch.rand(4, cfg.action_space, generator=generator) - 1
            obs, reward, terminated, truncated, extras = env.step(actions)
            assert reward.shape == (4,) and torch.isfinite(reward).all()
            assert all(torch.isfinite(value).all() for value in obs.values())
            assert terminated.dtype == torch.bool and truncated.dtype == torch.bool
        assert extras["success"].shape == (4,) and "success_rate" in extras["log"]
        assert ((extras["progress"] >= 0) & (extras["progress"] <= 1)).all()
        # The robot moved under the random actions (joint columns differ from the start).
        assert (inner.backend.qpos - start).abs().max() > 1e-3
    finally:
        env.close()
