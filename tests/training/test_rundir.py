"""The run-directory module every writer uses: creation, one writer at a time, metrics cut back on resume."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robot_rl.cli.main import main
from robot_rl.training.rundir import MetricsLog, RunDir, RunDirError, RunLockedError, config_changes

HOLD = ("import sys, time\n"
        "from robot_rl.training.rundir import RunDir\n"
        "run = RunDir.resume(sys.argv[1]); print('held', flush=True); time.sleep(60)\n")


def holder(run: Path) -> subprocess.Popen:
    """Another process holding ``run``, as a second ``robot-rl train --resume`` would."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_create_makes_a_fresh_locked_folder(tmp_path: Path) -> None:
    first, second = RunDir.create(tmp_path, "gym:HalfCheetah-v5"), RunDir.create(tmp_path, "gym:HalfCheetah-v5")
    assert first.path != second.path and first.path.parent == tmp_path / "gym_HalfCheetah-v5"
    assert (first.path / "checkpoints").is_dir() and (first.path / ".lock").read_text() == str(os.getpid())
    first.close()
    second.close()


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "panda_reach")
    run.write_config({"seed": 0})
    with pytest.raises(RunLockedError, match=r"in use by another process \(pid \d+\); .*kill"):
        RunDir.resume(run.path)  # even from the same process
    run.close()
    RunDir.resume(run.path).close()  # free once released

    process = holder(run.path)
    try:
        with pytest.raises(RunLockedError, match=rf"pid {process.pid}\)"):
            RunDir.resume(run.path)
    finally:
        process.kill()  # SIGKILL: the kernel releases the lock with the process
        process.wait(timeout=10)
    RunDir.resume(run.path).close()


def test_two_resumes_of_one_run_the_second_is_refused(tmp_path: Path, capsys) -> None:
    launch = tmp_path / "tiny.yaml"
    launch.write_text("env: {task: panda_reach, num_envs: 4}\nalgo: {num_steps: 8, actor_hidden: [16], "
                      "critic_hidden: [16]}\nbudget: {env_steps: 32}\n"
                      f"log: {{root: {tmp_path}, eval_episodes: 0, video: false, progress_bar: false}}\n")
    assert main(["train", str(launch)]) == 0
    run = next((tmp_path / "panda_reach").iterdir())
    process = holder(run)
    try:
        started = time.monotonic()
        assert main(["train", "--resume", str(run), "--budget.env-steps", "64"]) == 2
        err = capsys.readouterr().err
        assert f"{run} is in use by another process (pid {process.pid})" in err and len(err.splitlines()) == 1
        assert time.monotonic() - started < 30  # refused before any simulation
    finally:
        process.kill()
        process.wait(timeout=10)
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["model_1.pt"]


def test_metrics_are_cut_back_to_the_checkpoint_on_resume(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "t")
    log = run.metrics(["iteration", "env_steps", "loss"])
    for i in range(1, 6):
        log.write({"iteration": i, "env_steps": 64 * i, "loss": 0.5})
    run.close()
    run.write_config({"seed": 0})
    run = RunDir.resume(run.path)
    log = run.metrics(["iteration", "env_steps", "loss", "new"], resume_step=128)  # checkpoint at env step 128
    log.write({"iteration": 3, "env_steps": 192, "loss": 0.25, "new": 1})
    rows = list(csv.DictReader(open(run.path / "metrics.csv")))
    assert [int(r["env_steps"]) for r in rows] == [64, 128, 192]
    assert [r["new"] for r in rows] == ["", "", "1"]
    assert [p.name for p in run.path.iterdir() if p.name.endswith(".tmp")] == []
    run.close()


def test_unusable_roots_are_named_with_the_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(RunDirError, match=rf"cannot write {blocker}: it is a file, not a folder; choose another root"):
        RunDir.create(blocker, "panda_reach")
    with pytest.raises(RunDirError, match=rf"cannot write {blocker}: it is a file, not a folder"):
        RunDir.create(blocker / "deeper", "panda_reach")
    with pytest.raises(RunDirError, match="has no config.yaml"):
        RunDir.resume(tmp_path)


def test_metrics_log_keeps_the_old_header_when_nothing_is_new(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    MetricsLog(path, ["a", "b"]).write({"a": 1, "b": 2})
    MetricsLog.open(path, ["b"], append=True).write({"a": 3, "b": 4})
    assert list(csv.reader(open(path))) == [["a", "b"], ["1", "2"], ["3", "4"]]


def test_config_changes_name_each_setting() -> None:
    assert config_changes({"algo": {"lr": 1e-3, "gamma": 0.99}, "seed": 0},
                          {"algo": {"lr": 3e-4, "gamma": 0.99}, "seed": 0, "extra": True}) == \
        ["algo.lr 0.001 -> 0.0003", "extra None -> True"]
