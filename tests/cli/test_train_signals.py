"""``robot-rl train`` stopped by SIGINT/SIGTERM/SIGHUP in each phase: one line saying what was saved
and how to go on, exit code 130, no traceback and no temporary file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def launch(tmp_path: Path, env_steps: int, eval_episodes: int) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text("env: {task: panda_reach, num_envs: 8}\nalgo: {num_steps: 8, actor_hidden: [16], "
                    f"critic_hidden: [16]}}\nbudget: {{env_steps: {env_steps}}}\n"
                    f"log: {{root: {tmp_path}, eval_episodes: {eval_episodes}, video: false, progress_bar: false, "
                    "checkpoint_every: 1000, tensorboard: false}\n")
    return path


def wait_for(condition, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def start(tmp_path: Path, env_steps: int, eval_episodes: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "robot_rl.cli.main", "train", str(launch(tmp_path, env_steps,
                                                                                           eval_episodes))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})


def rows(run: Path) -> int:
    path = run / "metrics.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.is_file() else 0


def interrupted(tmp_path: Path, process: subprocess.Popen, ready, signum: int) -> tuple[Path, str]:
    """Send ``signum`` once ``ready(runs folder)`` holds; the run directory and what stderr said,
    checked to be one line, no traceback, exit code 130, no temporary file."""
    runs = tmp_path / "panda_reach"
    try:
        wait_for(lambda: runs.is_dir() and any(ready(run) for run in runs.iterdir()))
        process.send_signal(signum)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    run = next(runs.iterdir())
    assert process.returncode == 130, err
    assert "Traceback" not in err and err.strip().count("\n") == 0, err
    assert [p for p in run.rglob("*") if p.name.endswith(".tmp")] == []
    return run, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_rollouts_saves_and_names_the_resume_command(tmp_path: Path, signum: int) -> None:
    process = start(tmp_path, env_steps=10_000_000, eval_episodes=0)
    run, err = interrupted(tmp_path, process, lambda run: rows(run) >= 2, signum)
    saved = sorted((run / "checkpoints").iterdir())
    assert [p.name for p in saved] == [f"model_{rows(run)}.pt"]  # the checkpoint matches the last logged row
    assert f"interrupted: saved {saved[0]}; continue with: robot-rl train --resume {run}" in err


def test_a_signal_during_the_final_evaluation_keeps_the_checkpoint(tmp_path: Path) -> None:
    process = start(tmp_path, env_steps=64, eval_episodes=512)
    run, err = interrupted(tmp_path, process, lambda run: (run / "checkpoints" / "model_1.pt").is_file(),
                           signal.SIGTERM)
    assert (f"interrupted during the final evaluation: training is done and {run}/checkpoints/model_1.pt is saved; "
            f"evaluate it with: robot-rl eval {run}") in err
    assert not (run / "eval.json").exists()
