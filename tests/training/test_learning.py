"""PPO learns: a short CI run and a full (slow) run on panda_reach."""

from __future__ import annotations

from pathlib import Path

import pytest

from robot_rl.configs import TrainConfig, load
from robot_rl.training.runner import Trainer

LAUNCH = Path(__file__).resolve().parents[2] / "launch" / "train" / "panda_reach.yaml"


def reach_config(root: Path, env_steps: int, num_envs: int) -> TrainConfig:
    return load(TrainConfig, LAUNCH, [
        "--env.num-envs", str(num_envs), "--budget.env-steps", str(env_steps), "--log.root", str(root),
        "--log.progress-bar", "false", "--log.video", "false", "--log.tensorboard", "false",
        "--log.eval-episodes", "32",
    ])


def test_ppo_learns_to_reach_in_a_short_run(tmp_path: Path) -> None:
    # 160k env steps (~50 s of CPU; 32/32 successes measured with seeds 0, 1 and 2): the untrained
    # policy succeeds in 0. At 120k the same seed gave 31/32 on one machine and 17/32 on
    # another.
    summary = Trainer(reach_config(tmp_path, 160_000, 64)).train()
    assert summary["eval"]["success_rate"] >= 0.7, summary["eval"]


@pytest.mark.slow
def test_ppo_reaches_ninety_percent_success(tmp_path: Path) -> None:
    summary = Trainer(reach_config(tmp_path, 400_000, 128)).train()
    assert summary["eval"]["success_rate"] >= 0.9, summary["eval"]
