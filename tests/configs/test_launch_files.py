"""Launch files: every shipped file loads; mistakes fail early naming file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from robot_rl.configs import ConfigError, TrainConfig, load, parse_overrides
from robot_rl.envs import task_class

LAUNCH = Path(__file__).resolve().parents[2] / "launch" / "train"


@pytest.mark.parametrize("path", sorted(LAUNCH.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_launch_file_loads(path: Path) -> None:
    cfg = load(TrainConfig, path)
    assert isinstance(cfg, TrainConfig)
    if not cfg.env.task.startswith("gym:"):
        task_class(cfg.env.task)


def test_shipped_launch_files_cover_the_tasks() -> None:
    tasks = {load(TrainConfig, p).env.task for p in LAUNCH.glob("*.yaml")}
    assert {"panda_reach", "panda_push", "panda_lift", "quadruped_walk"} <= tasks


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_valid_file_with_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "env: {task: panda_push, num_envs: 32}\nalgo: {lr: 3e-4, actor_hidden: [64, 64]}\n")
    cfg = load(TrainConfig, path, ["--algo.lr", "1e-3", "--env.num-envs", "128", "--budget.minutes=2.5"])
    assert cfg.env.task == "panda_push" and cfg.env.num_envs == 128
    assert cfg.algo.lr == 1e-3 and cfg.algo.actor_hidden == (64, 64)
    assert cfg.budget.minutes == 2.5


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("algo: {lrr: 1.0}\n", [], "unknown key 'algo.lrr'; valid keys here: num_steps, num_epochs"),
        ("envs: {}\n", [], "unknown key 'envs'; valid keys here: env, rewards, algo, budget, log, seed"),
        ("algo: {lr: fast}\n", [], "algo.lr: expected a number, got 'fast'"),
        ("algo: {lr: -0.1}\n", [], "algo.lr: must be > 0.0, got -0.1"),
        ("env: {num_envs: 0}\n", [], "env.num_envs: must be >= 1, got 0"),
        ("env: {num_envs: 2.5}\n", [], "env.num_envs: expected an integer, got 2.5"),
        ("algo: {schedule: cosine}\n", [], "algo.schedule: must be one of 'adaptive', 'fixed', got 'cosine'"),
        ("algo: {actor_hidden: 64}\n", [], "algo.actor_hidden: expected a list, got 64"),
        ("seed: 0\n", ["--algo.gamma", "1.5"], "algo.gamma: must be <= 1.0, got 1.5"),
        ("seed: 0\n", ["--algo.gamma"], "override --algo.gamma has no value"),
        ("- a\n- b\n", [], "expected a mapping at the top level, got list"),
        ("env: {task: [\n", [], "not valid YAML"),
    ],
)
def test_mistakes_name_file_key_and_reason(tmp_path: Path, text: str, overrides: list[str], message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load(TrainConfig, path, overrides)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_missing_launch_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="launch file not found"):
        load(TrainConfig, tmp_path / "nope.yaml")


def test_parse_overrides_nests_and_parses_values() -> None:
    assert parse_overrides(["--a.b-c", "3", "--a.d=[1, 2]", "--e", "true"]) == {
        "a": {"b_c": 3, "d": [1, 2]}, "e": True}
