"""Shared fixtures for the ROS 2 tests: a private ROS_DOMAIN_ID per test on loopback and node
processes that are always stopped."""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("cyclonedds")
pytest.importorskip("rosbags")

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "real"
# robot_rl_ros lives in real/; the editable install maps it once pyproject lists it, and until
# then the tests (and the node processes they start) find it on the path.
if str(REAL) not in sys.path:
    sys.path.insert(0, str(REAL))

from ros_helpers import Processes  # noqa: E402  (needs the path above)

_DOMAINS = random.Random(os.getpid() ^ time.time_ns()).sample(range(100, 230), 130)


@pytest.fixture
def ros_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment of a test and its node processes: its own domain, loopback discovery only."""
    domain = _DOMAINS.pop()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.delenv("CYCLONEDDS_URI", raising=False)
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", f"{REAL}{os.pathsep}{path}" if path else str(REAL))
    return dict(os.environ)


@pytest.fixture
def processes(ros_env: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(ros_env, tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


POLICY_CACHE = "robot_rl_ros_reach_policy_v1"


@pytest.fixture(scope="session")
def reach_policy(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A panda_reach policy trained with PPO in simulation and exported with ``robot-rl export``:
    the real artefact a deployment gets. Training takes ~45 s of CPU, so the file is kept in
    pytest's cache between runs (``ROBOT_RL_TEST_POLICY=path`` supplies one instead)."""
    override = os.environ.get("ROBOT_RL_TEST_POLICY")
    if override:
        return Path(override)
    from robot_rl.training.export import load_policy

    cache = request.config.cache.mkdir(POLICY_CACHE)
    policy = cache / "policy.pt"
    if policy.is_file():
        try:
            load_policy(policy)
            return policy
        except ValueError:
            policy.unlink()
    import argparse

    from robot_rl.cli import export
    from robot_rl.configs import TrainConfig, load
    from robot_rl.training.runner import Trainer

    root = tmp_path_factory.mktemp("reach_training")
    # The settings of tests/training/test_learning.py's short run (32/32 successes measured).
    cfg = load(TrainConfig, ROOT / "launch" / "train" / "panda_reach.yaml", [
        "--env.num-envs", "64", "--budget.env-steps", "160000", "--log.root", str(root),
        "--log.progress-bar", "false", "--log.video", "false", "--log.tensorboard", "false",
        "--log.eval-episodes", "32"])
    summary = Trainer(cfg).train()
    assert summary["eval"]["success_rate"] >= 0.7, f"the reach policy did not train: {summary['eval']}"
    run_dir = next(root.glob("panda_reach/*"))
    export.run(argparse.Namespace(run_dir=str(run_dir), out=str(policy), checkpoint=None))
    return policy
