"""Data-parallel PPO under torchrun: two CPU processes on the gloo backend (two launches, ~12 s each)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from robot_rl.training.checkpoints import load_checkpoint

REPO = Path(__file__).resolve().parents[2]
CHECK = Path(__file__).resolve().parent / "distributed_check.py"
TORCHRUN = Path(sys.executable).parent / "torchrun"
NUM_ENVS, NUM_STEPS, ITERATIONS, PROCESSES = 8, 8, 3, 2
STEPS_PER_ITERATION = NUM_STEPS * NUM_ENVS * PROCESSES  # every process's worlds count


def torchrun(*args: str | int | Path) -> subprocess.CompletedProcess[str]:
    """Run ``torchrun --standalone`` (a free rendezvous port per call) on two processes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([str(TORCHRUN), "--standalone", "--nproc-per-node", str(PROCESSES), *map(str, args)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"exit code {result.returncode}\n{result.stdout}\n{result.stderr[-4000:]}"
    return result


def test_train_command_writes_one_run_counting_every_process(tmp_path: Path) -> None:
    result = torchrun("-m", "robot_rl.cli.main", "train", "launch/train/panda_reach.yaml",
                      "--env.num-envs", NUM_ENVS, "--algo.num-steps", NUM_STEPS,
                      "--budget.env-steps", ITERATIONS * STEPS_PER_ITERATION, "--log.root", tmp_path,
                      "--log.eval-episodes", "0", "--log.video", "false", "--log.progress-bar", "false",
                      "--log.tensorboard", "false")
    runs = list(tmp_path.glob("*/*"))
    assert [run.parent.name for run in runs] == ["panda_reach"], runs  # rank 1 wrote no directory of its own
    run = runs[0]
    assert result.stdout.count("run directory:") == 1 and str(run) in result.stdout  # only rank 0 reports
    assert (run / "config.yaml").is_file()
    lines = (run / "metrics.csv").read_text().splitlines()
    env_steps = [int(line.split(",")[1]) for line in lines[1:]]
    assert env_steps == [STEPS_PER_ITERATION * i for i in range(1, ITERATIONS + 1)]
    checkpoints = list((run / "checkpoints").glob("*.pt"))
    assert [c.name for c in checkpoints] == [f"model_{ITERATIONS}.pt"]
    payload = load_checkpoint(checkpoints[0], "panda_reach")
    assert payload["iteration"] == ITERATIONS
    assert payload["env_steps"] == ITERATIONS * NUM_STEPS * NUM_ENVS * PROCESSES


@pytest.fixture(scope="module")
def distributed_check(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Output of distributed_check.py: every scenario in one launch, which takes most of the time."""
    return torchrun(CHECK, tmp_path_factory.mktemp("distributed_check")).stdout


def test_ranks_collect_different_data_and_end_with_identical_weights(distributed_check: str) -> None:
    # distributed_check.py all-gathers every parameter, normaliser statistic and Adam moment and
    # asserts they are equal bit for bit on every rank, and that the ranks' observations differ.
    assert f"passed: sync: {PROCESSES} ranks, {ITERATIONS} iterations" in distributed_check


@pytest.mark.parametrize("by", ["clock", "callback"])
def test_every_rank_stops_when_rank_0_alone_wants_to(distributed_check: str, by: str) -> None:
    # After 2 of 3 iterations rank 0's clock passes the time budget, or its train callback asks
    # to stop; rank 1's does not. Were the ranks to decide alone, rank 1 would block in the next
    # all-reduce until the timeout.
    assert f"passed: {by}: {PROCESSES} ranks, 2 iterations" in distributed_check


def test_h_infinity_ranks_share_one_oracle_and_one_multiplier(distributed_check: str) -> None:
    # distributed_check.py checks that the ranks' own reference worlds measured different
    # oracles and that every rank nonetheless holds the same oracle, termination rate and λ.
    assert f"passed: hinf: {PROCESSES} ranks" in distributed_check
