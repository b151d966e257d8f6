"""Runs with disturbers end to end: checkpoints and resume, export, robustness-eval, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from robot_rl.cli.main import main
from robot_rl.configs import TrainConfig, from_dict
from robot_rl.training import checkpoints
from robot_rl.training.export import load_policy
from robot_rl.training.runner import Trainer


def tiny(root: Path, task: str, robust: dict, iterations: int = 2, **env) -> TrainConfig:
    return from_dict(TrainConfig, {
        "env": {"task": task, "num_envs": 8, **env},
        "algo": {"num_steps": 8, "actor_hidden": [16], "critic_hidden": [16]},
        "budget": {"env_steps": iterations * 64},
        "log": {"root": str(root), "progress_bar": False, "video": False, "tensorboard": False, "eval_episodes": 0,
                "checkpoint_every": 1},
        "robust": robust})


HINF = {"hinf": {"enabled": True, "oracle": {"track_lin_vel": 1.0}, "hidden": [16], "termination_cost": 1.0,
                 "eta": 0.1},
        "push": {"max_force": 10.0}}
SHORT = {"task_overrides": {"episode_length_s": 0.4}}


def test_hinf_run_resumes_its_disturber_and_multiplier(tmp_path: Path) -> None:
    cfg = tiny(tmp_path, "quadruped_walk", HINF, **SHORT)
    first = Trainer(cfg)
    first.train()
    run = first.run_dir
    assert (run / "checkpoints" / "robust_2.pt").is_file() and (run / "robust.png").is_file()
    lam = first.robust.hinf.multiplier
    assert lam > 0  # an untrained walker violates the constraint
    longer = from_dict(TrainConfig, {**checkpoints.to_dict(cfg), "budget": {"env_steps": 3 * 64}})
    resumed = Trainer(longer, resume=run)
    assert resumed.robust.hinf.multiplier == lam
    for key, value in first.robust.hinf.policy.model.state_dict().items():
        torch.testing.assert_close(resumed.robust.hinf.policy.model.state_dict()[key], value)
    resumed.train()
    assert resumed.iteration == 3


def test_robustness_eval_sweeps_and_runs_the_trained_disturber(tmp_path: Path, capsys) -> None:
    run = Trainer(tiny(tmp_path, "quadruped_walk", HINF, **SHORT)).train()["run_dir"]
    code = main(["robustness-eval", run, "--magnitudes", "0", "300", "--directions", "2", "--episodes", "2",
                 "--push-start", "2", "--push-steps", "10"])
    assert code == 0
    result = json.loads((Path(run) / "robustness.json").read_text())
    assert [r["magnitude"] for r in result["sweep"]] == [0.0, 300.0]
    assert [r["magnitude"] for r in result["adversary"]] == [300.0]
    assert all(r["episodes"] == 4 and len(r["by_direction"]) == 2 for r in result["sweep"])
    # 300 N for 0.2 s knocks over a 12 kg robot that stands unpushed
    assert result["sweep"][0]["fall_rate"] < result["sweep"][1]["fall_rate"]
    assert (Path(run) / "robustness.png").is_file()
    assert "adversary  300.0 N" in capsys.readouterr().out


def test_privileged_run_exports_robot_actions_only(tmp_path: Path) -> None:
    run = Trainer(tiny(tmp_path, "panda_push", {"privileged": {"enabled": True}})).train()["run_dir"]
    assert checkpoints.load_checkpoint(checkpoints.latest_checkpoint(Path(run)))["dims"]["actions"] == 11
    assert main(["export", run, "--out", str(tmp_path / "policy.pt")]) == 0
    policy, meta = load_policy(tmp_path / "policy.pt")
    assert meta["action_dim"] == 8 and policy(torch.zeros(5, meta["observation_dim"])).shape == (5, 8)
    assert main(["eval", run, "--episodes", "2"]) == 0  # evaluated at zero privilege


def test_robustness_eval_refuses_bad_arguments(tmp_path: Path, capsys) -> None:
    assert main(["robustness-eval", str(tmp_path), "--episodes", "0"]) == 2
    assert "--episodes must be at least 1" in capsys.readouterr().err


def test_missing_oracle_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="robust.hinf.oracle: give the oracle"):
        Trainer(tiny(tmp_path, "quadruped_walk", {"hinf": {"enabled": True}}))


def test_relative_oracle_run_logs_and_resumes_its_measured_oracle(tmp_path: Path) -> None:
    relative = {"hinf": {"enabled": True, "oracle_mode": "relative", "cost_terms": ["track_lin_vel"],
                         "reference_fraction": 0.25, "hidden": [16]}}
    cfg = tiny(tmp_path, "quadruped_walk", relative, **SHORT)
    first = Trainer(cfg)
    first.train()
    oracle = first.robust.hinf.oracle["track_lin_vel"]
    assert 0.0 < oracle <= 1.0 and first.robust.hinf.reference == 2  # 2 of the 8 worlds are never pushed
    longer = from_dict(TrainConfig, {**checkpoints.to_dict(cfg), "budget": {"env_steps": 3 * 64}})
    resumed = Trainer(longer, resume=first.run_dir)
    assert resumed.robust.hinf.oracle["track_lin_vel"] == pytest.approx(oracle)


def test_relative_oracle_needs_cost_terms(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="robust.hinf.cost_terms"):
        Trainer(tiny(tmp_path, "quadruped_walk", {"hinf": {"enabled": True, "oracle_mode": "relative"}}))


def test_robustness_eval_attacks_with_a_relative_oracle_disturber_on_one_world(tmp_path: Path) -> None:
    relative = {"hinf": {"enabled": True, "oracle_mode": "relative", "cost_terms": ["track_lin_vel"],
                         "hidden": [16]}}
    run = Trainer(tiny(tmp_path, "quadruped_walk", relative, **SHORT)).train()["run_dir"]
    # One world leaves no reference world: evaluation must not need one.
    assert main(["robustness-eval", run, "--magnitudes", "0", "50", "--directions", "1", "--episodes", "1",
                 "--push-start", "2", "--push-steps", "4"]) == 0
    result = json.loads((Path(run) / "robustness.json").read_text())
    assert [r["magnitude"] for r in result["adversary"]] == [50.0]
