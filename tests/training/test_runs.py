"""Training runs end to end: run directory, checkpoints, resume, export, interruption, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from robot_rl.cli.main import main
from robot_rl.configs import BudgetConfig, EnvConfig, LogConfig, PPOConfig, TrainConfig
from robot_rl.training import checkpoints
from robot_rl.training.checkpoints import CheckpointError, load_checkpoint, restore_model
from robot_rl.training.export import load_policy
from robot_rl.training.runner import Trainer, build_env, deterministic_policy


def small_config(root: Path, task: str = "panda_reach", steps: int = 2 * 8 * 8, **log) -> TrainConfig:
    return TrainConfig(
        env=EnvConfig(task=task, num_envs=8),
        algo=PPOConfig(num_steps=8, actor_hidden=(32, 32), critic_hidden=(32, 32)),
        budget=BudgetConfig(env_steps=steps),
        log=LogConfig(root=str(root), progress_bar=False, **{"eval_episodes": 0, "video": False, **log}),
    )


def test_run_directory_holds_every_artifact(tmp_path: Path) -> None:
    cfg = small_config(tmp_path, eval_episodes=4, video=True, video_seconds=0.5, checkpoint_every=1)
    summary = Trainer(cfg).train()
    run = Path(summary["run_dir"])
    assert run.parent == tmp_path / "panda_reach"
    for name in ("config.yaml", "metrics.csv", "curves.png", "eval.json", "rollout.mp4"):
        assert (run / name).is_file(), name
    assert list(run.glob("events.out.tfevents.*")), "no TensorBoard events"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["model_1.pt", "model_2.pt"]
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["iteration"]) for r in rows] == [1, 2]
    assert [int(r["env_steps"]) for r in rows] == [64, 128]
    for column in ("episode/return", "episode/success", "episode/reward/reach", "train/kl", "train/lr", "perf/fps"):
        assert column in rows[0]
    result = json.loads((run / "eval.json").read_text())
    assert result["episodes"] == 4 and len(result["returns"]) == 4 and 0 <= result["success_rate"] <= 1
    assert checkpoints.read_config(run) == cfg


def test_checkpoint_loads_weights_only_and_resume_continues(tmp_path: Path) -> None:
    cfg = small_config(tmp_path)
    first = Trainer(cfg)
    first.train()
    path = checkpoints.latest_checkpoint(first.run_dir)
    payload = torch.load(path, weights_only=True)
    assert payload["iteration"] == 2 and payload["env_steps"] == 128 and payload["task"] == "panda_reach"

    longer = TrainConfig(**{**cfg.__dict__, "budget": BudgetConfig(env_steps=4 * 64)})
    resumed = Trainer(longer, resume=first.run_dir)
    for key, value in payload["model"].items():
        torch.testing.assert_close(resumed.ppo.model.state_dict()[key], value)
    summary = resumed.train()
    assert summary["iterations"] == 4 and summary["env_steps"] == 256
    rows = list(csv.DictReader(open(first.run_dir / "metrics.csv")))
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4]


def test_exported_policy_acts_like_the_training_policy(tmp_path: Path) -> None:
    cfg = small_config(tmp_path)
    run = Path(Trainer(cfg).train()["run_dir"])
    out = tmp_path / "policy.pt"
    assert main(["export", str(run), "--out", str(out)]) == 0
    policy, meta = load_policy(out)
    assert meta["task"] == "panda_reach" and meta["observation_dim"] == 32 and meta["action_dim"] == 8
    assert meta["control_dt"] == pytest.approx(0.05) and meta["task_config"]["action_scale"] == pytest.approx(0.1)

    _, model, _ = restore_model(run)
    env = build_env(cfg, num_envs=8)
    obs, _ = env.reset(seed=5)
    for _ in range(5):
        expected = deterministic_policy(model, "policy")(obs)
        torch.testing.assert_close(policy(obs["policy"]), expected, atol=1e-6, rtol=1e-6)
        obs, *_ = env.step(expected)


def test_corrupted_and_mismatched_checkpoints_say_so(tmp_path: Path) -> None:
    cfg = small_config(tmp_path)
    run = Path(Trainer(cfg).train()["run_dir"])
    good = checkpoints.latest_checkpoint(run)
    with pytest.raises(CheckpointError, match="was trained on task 'panda_reach', not 'panda_push'"):
        load_checkpoint(good, task="panda_push")
    with pytest.raises(CheckpointError, match="observation/action sizes .* but this environment has"):
        load_checkpoint(good, task="panda_reach", dims={"actor_obs": 42, "critic_obs": 50, "actions": 8})
    broken = tmp_path / "broken.pt"
    broken.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="broken.pt is truncated or not a torch file"):
        load_checkpoint(broken)
    stranger = tmp_path / "stranger.pt"
    torch.save({"weights": torch.zeros(3)}, stranger)
    with pytest.raises(CheckpointError, match="stranger.pt is not a robot_rl PPO checkpoint"):
        load_checkpoint(stranger)
    # Resuming a panda_push run from a panda_reach checkpoint fails before training.
    push = TrainConfig(**{**cfg.__dict__, "env": EnvConfig(task="panda_push", num_envs=8)})
    with pytest.raises(CheckpointError, match="not 'panda_push'"):
        Trainer(push, resume=run)


def test_interrupt_saves_a_checkpoint_and_stops_cleanly(tmp_path: Path) -> None:
    cfg = small_config(tmp_path, steps=10 * 64)
    trainer = Trainer(cfg)
    real_step, calls = trainer.env.step, []

    def step(actions):
        calls.append(1)
        if len(calls) == 20:  # in the third iteration
            raise KeyboardInterrupt
        return real_step(actions)

    trainer.env.step = step
    summary = trainer.train()
    assert summary["interrupted"] and summary["iterations"] == 2
    assert Path(summary["checkpoint"]).name == "model_2.pt"
    assert load_checkpoint(Path(summary["checkpoint"]))["iteration"] == 2
    assert not (trainer.run_dir / "eval.json").exists()


def test_sigterm_saves_a_checkpoint_like_an_interrupt(tmp_path: Path) -> None:
    import os
    import signal

    before = signal.getsignal(signal.SIGTERM)
    trainer = Trainer(small_config(tmp_path, steps=10 * 64))
    real_step, calls = trainer.env.step, []

    def step(actions):
        calls.append(1)
        if len(calls) == 20:  # in the third iteration, as `kill` would
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(actions)

    trainer.env.step = step
    summary = trainer.train()
    assert summary["interrupted"] and Path(summary["checkpoint"]).name == "model_2.pt"
    assert signal.getsignal(signal.SIGTERM) is before  # the handler lives only while training


def test_train_cli_reports_bad_launch_files_before_simulating(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("env: {task: panda_fly}\n")
    assert main(["train", str(path), "--log.root", str(tmp_path)]) == 2
    assert "env.task: unknown task 'panda_fly'; registered tasks:" in capsys.readouterr().err
    assert main(["train", str(path), "--env.num-envs", "0"]) == 2
    assert f"{path}: env.num_envs: must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "panda_fly").exists()


def test_trained_policy_is_reproducible_for_a_seed(tmp_path: Path) -> None:
    weights = []
    for name in ("a", "b"):
        trainer = Trainer(small_config(tmp_path / name))
        trainer.train()
        weights.append(trainer.ppo.model.state_dict())
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], rtol=0, atol=0)


def test_exported_file_loads_with_torch_alone(tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = small_config(tmp_path)
    run = Path(Trainer(cfg).train()["run_dir"])
    out = tmp_path / "policy.pt"
    assert main(["export", str(run), "--out", str(out)]) == 0
    script = (
        "import sys, json, torch\n"
        "sys.modules['robot_rl'] = None  # the training code must not be needed\n"
        f"files = {{'robot_rl.json': ''}}\n"
        f"program = torch.export.load({str(out)!r}, extra_files=files)\n"
        "meta = json.loads(files['robot_rl.json'])\n"
        "action = program.module()(torch.zeros(3, meta['observation_dim']))\n"
        "print(tuple(action.shape), bool((action.abs() <= 1).all()))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(3, 8) True"


def test_resume_after_a_kill_drops_the_rows_past_the_last_checkpoint(tmp_path: Path) -> None:
    cfg = small_config(tmp_path, steps=3 * 64, checkpoint_every=2)
    first = Trainer(cfg)
    first.train()
    (first.run_dir / "checkpoints" / "model_3.pt").unlink()  # as if SIGKILLed after logging iteration 3
    rows = list(csv.DictReader(open(first.run_dir / "metrics.csv")))
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3]
    longer = TrainConfig(**{**cfg.__dict__, "budget": BudgetConfig(env_steps=4 * 64)})
    Trainer(longer, resume=first.run_dir).train()
    rows = list(csv.DictReader(open(first.run_dir / "metrics.csv")))
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4]  # iteration 3 once, from the resumed run
