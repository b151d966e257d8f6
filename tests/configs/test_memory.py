"""The memory estimate of a training launch file, checked before any world is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from robot_rl.cli.main import main
from robot_rl.configs import ConfigError, TrainConfig, load
from robot_rl.configs.memory import available_bytes, check_memory, estimate

LAUNCH = Path(__file__).resolve().parents[2] / "launch"


def _no_trainer(*args, **kwargs):
    raise AssertionError("the config should have been refused before any world was built")



@pytest.mark.parametrize(("name", "measured_kb"), [("panda_reach", 65), ("panda_push", 116)])
def test_estimate_is_near_the_measured_peak(name: str, measured_kb: float) -> None:
    """Measured peak RSS growth per world, 64 vs 4096 worlds training 2 iterations (robot_rl/configs/memory.py)."""
    need = estimate(load(TrainConfig, LAUNCH / "train" / f"{name}.yaml"))
    assert need is not None and need.images == 0 and need.fixed == 0
    assert abs(need.per_world / 1024 - measured_kb) < 0.15 * measured_kb


def test_estimate_counts_rendered_images() -> None:
    cfg = load(TrainConfig, LAUNCH / "train" / "panda_reach_learned_pixels.yaml")
    need = estimate(cfg)
    plain = estimate(load(TrainConfig, LAUNCH / "train" / "panda_reach.yaml",
                          ["--algo.actor-hidden", "[128, 128]"]))
    assert need is not None and plain is not None
    assert need.images == 18 * 64 * 64 * 3  # one front camera at 64x64
    assert need.fixed == 16_384 * 64 * 64 * 3  # the online preference pool
    assert need.per_world - plain.per_world == need.images


def test_no_estimate_where_worlds_do_not_live_in_this_process() -> None:
    assert estimate(load(TrainConfig, LAUNCH / "train" / "halfcheetah_gym.yaml")) is None
    assert estimate(load(TrainConfig, LAUNCH / "train" / "quadruped_walk.yaml")) is None  # warp


def test_check_memory_names_estimate_available_and_fix(tmp_path: Path) -> None:
    cfg = load(TrainConfig, LAUNCH / "train" / "panda_reach.yaml", ["--env.num-envs", "10000000"])
    per_world = estimate(cfg).per_world
    with pytest.raises(ConfigError) as error:
        check_memory(cfg, "x.yaml", available=1 << 30)
    fit = (1 << 30) // per_world
    message = str(error.value)
    assert message.startswith(f"x.yaml: env.num_envs: 10000000 worlds need about "
                              f"{10_000_000 * per_world / (1 << 30):.1f} GB ({per_world / 1024:.1f} KB per world: "
                              "physics ")
    assert message.endswith(f"but 1.0 GB is available; use at most --env.num-envs {fit}")
    check_memory(load(TrainConfig, LAUNCH / "train" / "panda_reach.yaml", ["--env.num-envs", str(fit)]),
                 "x.yaml", available=1 << 30)


def test_torchrun_processes_on_one_machine_count_together(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load(TrainConfig, LAUNCH / "train" / "panda_reach.yaml", ["--env.num-envs", "1000"])
    available = 3 * 1000 * estimate(cfg).per_world
    check_memory(cfg, "x.yaml", available=available)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    with pytest.raises(ConfigError, match="env.num_envs: 1000 x 4 processes worlds need about"):
        check_memory(cfg, "x.yaml", available=available)


def test_available_memory_is_read() -> None:
    available = available_bytes()
    assert available is not None and 0 < available < 1 << 50


def test_train_cli_refuses_ten_million_worlds_before_building_any(capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("robot_rl.training.runner.Trainer", _no_trainer)
    monkeypatch.setattr("robot_rl.configs.memory.available_bytes", lambda: 16 << 30)
    launch = str(LAUNCH / "train" / "panda_reach.yaml")
    assert main(["train", launch, "--env.num-envs", "10000000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robot-rl train: error: {launch}: env.num_envs: 10000000 worlds need about ")
    assert "but 16.0 GB is available; use at most --env.num-envs " in err and err.count("\n") == 1
