"""Hostile values in launch files: NaN/inf, empty files and impossible combinations
(worlds that cannot fit in memory: test_memory.py) each stop with one line naming the file, the key and the fix."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from robot_rl.cli.main import main
from robot_rl.configs import ConfigError, TrainConfig, from_dict, load, parse_overrides
from robot_rl.configs.offline import OfflineConfig

LAUNCH = Path(__file__).resolve().parents[2] / "launch"


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("algo: {lr: .nan}\n", [], "algo.lr: must be a finite number, got nan"),
        ("algo: {lr: .inf}\n", [], "algo.lr: must be a finite number, got inf"),
        ("algo: {gamma: .nan}\n", [], "algo.gamma: must be a finite number, got nan"),
        ("algo: {entropy_coef: -.inf}\n", [], "algo.entropy_coef: must be a finite number, got -inf"),
        ("budget: {minutes: .inf}\n", [], "budget.minutes: must be a finite number, got inf"),
        ("rewards: {weights: {reach: .nan}}\n", [], "rewards.weights.reach: must be a finite number, got nan"),
        ("rewards: {modules: [{name: preference, weight: .nan}]}\n", [],
         "rewards.modules[0].weight: must be a finite number, got nan"),
        ("rewards: {modules: [{name: preference, options: {alpha: [1.0, .nan]}}]}\n", [],
         "rewards.modules[0].options.alpha[1]: must be a finite number, got nan"),
        ("env: {task_overrides: {control_dt: .nan}}\n", [], "env.task_overrides.control_dt: must be a finite number"),
        ("seed: 0\n", ["--algo.lr", "nan"], "algo.lr: must be a finite number, got nan"),
        ("seed: 0\n", ["--algo.gamma=.nan"], "algo.gamma: must be a finite number, got nan"),
        ("seed: 0\n", ["--robust.hinf.max-force", "inf"], "robust.hinf.max_force: must be a finite number, got inf"),
    ],
)
def test_non_finite_values_name_file_and_key(tmp_path: Path, text: str, overrides: list[str], message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load(TrainConfig, path, overrides)
    assert str(error.value).startswith(f"{path}: {message}")


def test_offline_configs_refuse_non_finite_values(tmp_path: Path) -> None:
    path = write(tmp_path, "algo: sac\nsac: {gamma: .nan}\n")
    with pytest.raises(ConfigError, match=rf"^{path}: sac.gamma: must be a finite number, got nan$"):
        load(OfflineConfig, path)
    with pytest.raises(ConfigError, match=r"^iql.temperature: must be a finite number, got inf$"):
        from_dict(OfflineConfig, {"iql": {"temperature": math.inf}})


def test_robot_file_refuses_an_infinite_velocity_limit(tmp_path: Path) -> None:
    from robot_rl_ros.config import load_robot

    text = (Path(__file__).resolve().parents[2] / "real" / "config" / "panda.yaml").read_text()
    assert "velocity: [2.175, " in text
    path = write(tmp_path, text.replace("velocity: [2.175, ", "velocity: [.inf, "), "robot.yaml")
    with pytest.raises(ConfigError, match=rf"^{path}: limits.velocity\[0\]: must be a finite number, got inf$"):
        load_robot(path)


def test_ros_parameters_refuse_nan() -> None:
    from robot_rl_ros.fake_arm import FakeArmParams
    from robot_rl_ros.params import parse

    with pytest.raises(ConfigError, match=r"^fake_arm: parameter state_hz: must be a finite number, got nan$"):
        parse(FakeArmParams, ["--ros-args", "-p", "robot:=r.yaml", "-p", "state_hz:=.nan"], "fake_arm", "")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n# and another\n", "---\n"])
def test_empty_launch_file_is_an_error(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"^{path}: the file is empty or holds only comments"):
        load(TrainConfig, path)


def test_an_explicit_empty_mapping_keeps_the_defaults(tmp_path: Path) -> None:
    assert load(TrainConfig, write(tmp_path, "{}  # every default\n")) == TrainConfig()


def test_minibatches_larger_than_the_batch(tmp_path: Path) -> None:
    path = write(tmp_path, "env: {num_envs: 2}\nalgo: {num_steps: 8}\n")
    with pytest.raises(ConfigError) as error:
        load(TrainConfig, path, ["--algo.num-minibatches", "17"])
    assert str(error.value) == (f"{path}: algo.num_minibatches: must be at most the batch of algo.num_steps x "
                                "env.num_envs = 8 x 2 = 16, got 17; use fewer mini-batches or more steps or worlds")
    assert load(TrainConfig, path, ["--algo.num-minibatches", "16"]).algo.num_minibatches == 16


def test_override_below_a_scalar_override() -> None:
    with pytest.raises(ConfigError, match=r"^override --log.video: --log was already given the value 5, not a mapping"):
        parse_overrides(["--log", "5", "--log.video", "false"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--log", "5", "--log.video", "false"], "override --log.video: --log was already given the value 5"),
        (["--log", "5"], "log: expected a mapping of LogConfig fields, got 5"),
        (["--algo.lr", ".inf"], "algo.lr: must be a finite number, got inf"),
        (["--algo.gamma", ".nan"], "algo.gamma: must be a finite number, got nan"),
        (["--env.num-envs", "1", "--algo.num-minibatches", "100"], "algo.num_minibatches: must be at most the batch"),
    ],
)
def test_train_cli_prints_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("robot_rl.training.runner.Trainer", _no_trainer)
    launch = str(LAUNCH / "train" / "panda_reach.yaml")
    assert main(["train", launch, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robot-rl train: error: {launch}: {message}") and err.count("\n") == 1


def test_train_cli_refuses_an_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("robot_rl.training.runner.Trainer", _no_trainer)
    path = write(tmp_path, "# nothing here yet\n")
    assert main(["train", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"robot-rl train: error: {path}: the file is empty")


def _no_trainer(*args, **kwargs):
    raise AssertionError("the config should have been refused before any world was built")


def test_offline_and_ros_parameter_files_refuse_an_empty_file(tmp_path: Path, capsys) -> None:
    from robot_rl_ros.params import parse_ros_args

    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here yet\n")
    assert main(["offline-train", str(tmp_path), "--launch", str(empty)]) == 2
    assert f"{empty}: the file is empty or holds only comments" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="the file is empty or holds only comments"):
        parse_ros_args(["--ros-args", "--params-file", str(empty)], "policy_node")
