"""The Gymnasium adapter: shapes, final observations, action rescaling, errors, training through it."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from robot_rl.configs import BudgetConfig, ConfigError, EnvConfig, LogConfig, PPOConfig, TrainConfig
from robot_rl.envs.gym_vector import GymVecEnv, gym_id
from robot_rl.training.runner import Trainer, build_env


class Recorder(gymnasium.Env):
    """Observes the last action it was given; episodes last 3 steps."""

    def __init__(self, observation_space: spaces.Space | None = None, action_space: spaces.Space | None = None):
        self.action_space = action_space or spaces.Box(np.array([0.0, -1.0]), np.array([10.0, 1.0]), dtype=np.float64)
        self.observation_space = observation_space or spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2), {}

    def step(self, action):
        self.t += 1
        return np.array(action, dtype=np.float64), 1.0, False, self.t == 3, {}


def recorders(n: int, mode: AutoresetMode = AutoresetMode.SAME_STEP, **spaces_) -> SyncVectorEnv:
    return SyncVectorEnv([lambda: Recorder(**spaces_)] * n, autoreset_mode=mode)


def test_observations_rewards_and_final_obs_match_single_gymnasium_envs() -> None:
    env = GymVecEnv.make("Pendulum-v1", num_envs=2, seed=3)
    assert env.obs_dims == {"policy": 3, "privileged": 3} and env.action_dim == 1
    assert env.max_episode_steps == 200 and env.control_dt == pytest.approx(0.05) and env.goal == ""
    assert env.action_low.tolist() == [-1.0] and env.action_high.tolist() == [1.0]
    singles = [gymnasium.make("Pendulum-v1") for _ in range(2)]
    expected = np.stack([s.reset(seed=3 + i)[0] for i, s in enumerate(singles)])  # world i is seeded seed + i

    obs, _ = env.reset()
    for group in ("policy", "privileged"):
        assert obs[group].dtype == torch.float32 and obs[group].shape == (2, 3)
    torch.testing.assert_close(obs["policy"], torch.as_tensor(expected, dtype=torch.float32))
    actions = torch.tensor([[0.5], [-0.25]])
    for t in range(200):
        obs, reward, terminated, truncated, info = env.step(actions)
        steps = [s.step(np.array([2.0 * float(a)], dtype=np.float32)) for s, a in zip(singles, actions)]  # [-2, 2]
        assert reward.dtype == torch.float32 and reward.shape == (2,)
        assert terminated.dtype == truncated.dtype == torch.bool and terminated.shape == (2,)
        torch.testing.assert_close(reward, torch.tensor([r for _, r, *_ in steps], dtype=torch.float32))
        torch.testing.assert_close(info["final_obs"]["policy"], torch.as_tensor(np.stack([o for o, *_ in steps])))
        assert truncated.tolist() == [t == 199] * 2 and not terminated.any()
    # The returned observation already starts the next episode; final_obs keeps the last one.
    assert not torch.allclose(obs["policy"], info["final_obs"]["policy"])
    env.close()


def test_unit_actions_map_onto_the_box_bounds_and_are_clipped() -> None:
    env = GymVecEnv(recorders(3))
    env.reset(seed=0)
    obs, *_ = env.step(torch.tensor([[-1.0, -1.0], [0.0, 0.5], [3.0, -7.0]]))
    torch.testing.assert_close(obs["policy"], torch.tensor([[0.0, -1.0], [5.0, 0.5], [10.0, -1.0]]))
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        env.step(torch.zeros(3, 3))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: GymVecEnv.make("CartPole-v1", num_envs=2),
         r"CartPole-v1: .*continuous \(Box\) action space, got Discrete\(2\)"),
        (lambda: GymVecEnv(recorders(2, observation_space=spaces.Dict({"x": spaces.Box(-1, 1, (2,))}))),
         "flat Box observation space"),
        (lambda: GymVecEnv(recorders(2, action_space=spaces.Box(-np.inf, np.inf, (2,)))), "finite bounds"),
        (lambda: GymVecEnv(recorders(2, AutoresetMode.NEXT_STEP)), "needs autoreset_mode=AutoresetMode.SAME_STEP"),
    ],
    ids=["discrete-actions", "dict-observations", "unbounded-actions", "next-step-autoreset"],
)
def test_unsupported_envs_are_refused_with_the_reason(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_importing_the_adapter_does_not_import_mujoco() -> None:
    code = "import sys, robot_rl.envs.gym_vector, robot_rl.training.runner; print('mujoco' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def gym_config(root: Path, task: str = "gym:Pendulum-v1") -> TrainConfig:
    return TrainConfig(
        env=EnvConfig(task=task, num_envs=2),
        algo=PPOConfig(num_steps=16, num_minibatches=2, schedule="fixed", lr=3e-4, actor_hidden=(16,),
                       critic_hidden=(16,)),
        budget=BudgetConfig(env_steps=2 * 2 * 16),
        log=LogConfig(root=str(root), eval_episodes=2, video=False, tensorboard=False, progress_bar=False),
    )


def test_trainer_runs_on_a_gym_task(tmp_path: Path) -> None:
    summary = Trainer(gym_config(tmp_path)).train()
    run = Path(summary["run_dir"])
    assert run.parent == tmp_path / "gym_Pendulum-v1"  # no colon in folder names
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["env_steps"]) for r in rows] == [32, 64]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["model_2.pt"]
    result = json.loads((run / "eval.json").read_text())
    assert result["episodes"] == 2 and result["mean_length"] == 200


def test_halfcheetah_builds_from_a_launch_config(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # MuJoCo writes its compiler warnings to ./MUJOCO_LOG.TXT
    env = build_env(gym_config(tmp_path, "gym:HalfCheetah-v5"), seed=0)
    assert (env.num_envs, env.action_dim, env.obs_dims["policy"]) == (2, 6, 17)
    assert env.max_episode_steps == 1000 and env.control_dt == pytest.approx(0.05)
    obs, _ = env.reset()
    obs, reward, *_ = env.step(torch.zeros(2, 6))
    assert torch.isfinite(obs["policy"]).all() and torch.isfinite(reward).all()
    env.close()


def test_launch_file_validation_knows_gym_tasks(tmp_path: Path) -> None:
    from robot_rl.cli.train import load_config

    assert gym_id("gym:HalfCheetah-v5") == "HalfCheetah-v5" and gym_id("panda_reach") is None
    path = tmp_path / "run.yaml"
    path.write_text("env: {task: 'gym:Pendulum-v1'}\n")
    args = argparse.Namespace(launch=str(path), resume=None, overrides=[])
    assert load_config(args).env.task == "gym:Pendulum-v1"
    path.write_text("env: {task: 'gym:HalfCheeta-v5'}\n")
    with pytest.raises(ConfigError, match=r"run.yaml: env.task: .*HalfCheeta.*doesn't exist"):
        load_config(args)
