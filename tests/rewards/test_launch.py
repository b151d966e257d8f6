"""Reward modules from launch files: config loading, early failures, and a wrapped env that trains."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from robot_rl.cli.main import main
from robot_rl.configs import ConfigError, RewardModuleConfig, TrainConfig, from_dict, load
from robot_rl.rewards.compose import RewardWrapper
from robot_rl.training import checkpoints
from robot_rl.training.runner import Trainer, build_env

LAUNCH = Path(__file__).resolve().parents[2] / "launch" / "train" / "panda_reach_vlm.yaml"


def test_shipped_vlm_launch_file_loads_with_its_module() -> None:
    cfg = load(TrainConfig, LAUNCH)
    assert cfg.rewards.task_weight == 1.0
    (module,) = cfg.rewards.modules
    assert module == RewardModuleConfig(
        name="vlm_zero_shot", weight=0.5, cameras=("front",), image_size=(224, 224), normalize=True,
        gate="until_success", options={"model": "weights/clip-vit-base-patch32",
                                       "baseline": ["a robot arm next to a green ball"], "alpha": 0.5,
                                       "batch_size": 64, "num_threads": 2})


def test_list_items_take_command_line_overrides() -> None:
    cfg = load(TrainConfig, LAUNCH, ["--rewards.modules.0.options.model", "/data/clip", "--rewards.modules.0.weight",
                                     "2", "--rewards.task-weight", "0"])
    (module,) = cfg.rewards.modules
    assert module.options["model"] == "/data/clip" and module.options["alpha"] == 0.5 and module.weight == 2.0
    assert cfg.rewards.task_weight == 0.0
    with pytest.raises(ConfigError, match=r"rewards.modules.1: expected an index into the list of 1 items"):
        load(TrainConfig, LAUNCH, ["--rewards.modules.1.weight", "2"])


@pytest.mark.parametrize(("module", "message"), [
    ({"weight": 1.0}, "missing key 'rewards.modules[0].name' (required)"),
    ({"name": "vlm_zero_shot", "gate": "later"}, "rewards.modules[0].gate: must be one of 'none', 'until_success'"),
    ({"name": "vlm_zero_shot", "image_size": [84]}, "rewards.modules[0].image_size: expected 2 items, got 1"),
])
def test_module_config_mistakes(module: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_dict(TrainConfig, {"rewards": {"modules": [module]}})
    assert message in str(error.value)


def test_unknown_module_name_fails_at_config_load_listing_the_registered(tmp_path: Path, capsys) -> None:
    assert main(["train", str(LAUNCH), "--rewards.modules.0.name", "vlm_zero_shoot", "--log.root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "rewards.modules[0].name: unknown reward module 'vlm_zero_shoot'; registered reward modules: " in err
    assert "vlm_zero_shot" in err.split("registered reward modules: ")[1]
    assert not list(tmp_path.iterdir())


def test_unknown_module_name_or_option_fails_in_build_env_before_simulation(monkeypatch) -> None:
    import robot_rl.envs

    monkeypatch.setattr(robot_rl.envs, "make", lambda *a, **k: pytest.fail("simulation started"))
    cfg = from_dict(TrainConfig, {"rewards": {"modules": [{"name": "nope"}]}})
    with pytest.raises(ValueError, match=r"rewards.modules\[0\]: unknown reward module 'nope'; registered reward"):
        build_env(cfg)
    cfg = from_dict(TrainConfig, {"rewards": {"modules": [{"name": "vlm_zero_shot", "options": {"modle": "x"}}]}})
    with pytest.raises(ValueError, match=r"unknown options \['modle'\]; valid options: model, goal, baseline"):
        build_env(cfg)


def test_train_without_weights_fails_early_saying_how_to_supply_them(tmp_path: Path, capsys) -> None:
    code = main(["train", str(LAUNCH), "--rewards.modules.0.options.model", str(tmp_path / "clip"),
                 "--log.root", str(tmp_path / "runs")])
    assert code == 2
    err = capsys.readouterr().err
    assert f"rewards.modules[0] (vlm_zero_shot): model '{tmp_path / 'clip'}' not found" in err
    assert "huggingface-cli download openai/clip-vit-base-patch32 --local-dir clip" in err
    assert not (tmp_path / "runs").exists()  # failed before the run directory and the simulation


def vlm_config(root: Path, model: Path, **rewards) -> TrainConfig:
    return from_dict(TrainConfig, {
        "env": {"task": "panda_reach", "num_envs": 2, "task_overrides": {"episode_length_s": 0.15}},
        "rewards": {"modules": [{"name": "vlm_zero_shot", "image_size": [32, 32], "weight": 0.5,
                                 "options": {"model": str(model), "baseline": "a robot arm"}}], **rewards},
        "algo": {"num_steps": 4, "actor_hidden": [16], "critic_hidden": [16]},
        "budget": {"env_steps": 16},
        "log": {"root": str(root), "eval_episodes": 0, "video": False, "tensorboard": False, "progress_bar": False},
    })


@pytest.mark.vlm
def test_build_env_renders_the_default_camera_and_scores_final_observations(tiny_clip: Path, tmp_path: Path) -> None:
    env = build_env(vlm_config(tmp_path, tiny_clip, task_weight=2.0))
    assert isinstance(env, RewardWrapper) and env.task_weight == 2.0
    assert env.image_cameras == ("front",) and env.image_size == (32, 32)  # the task's first camera
    (term,) = env.terms
    obs, _ = env.reset(seed=0)
    assert obs["rgb"]["front"].shape == (2, 32, 32, 3)
    for _ in range(env.max_episode_steps):
        obs, reward, terminated, truncated, info = env.step(torch.full((2, env.action_dim), 0.5))
    assert bool((terminated | truncated).all())
    final = info["final_obs"]["rgb"]["front"]
    assert not torch.equal(final, obs["rgb"]["front"])  # the worlds have reset
    expected = term.module.score(final[:, None], None, env.goal).reward
    torch.testing.assert_close(info["reward_terms"]["vlm_zero_shot/raw"], expected)
    torch.testing.assert_close(reward, 2.0 * info["reward_terms"]["task/raw"] + 0.5 * expected)
    env.close()


@pytest.mark.vlm
def test_training_logs_the_module_reward_per_episode(tiny_clip: Path, tmp_path: Path) -> None:
    cfg = vlm_config(tmp_path, tiny_clip)
    summary = Trainer(cfg).train()
    run = Path(summary["run_dir"])
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert rows and rows[-1]["episode/reward/vlm_zero_shot"] != ""
    assert "episode/reward/vlm_zero_shot/raw" in rows[0] and "episode/reward/reach" in rows[0]
    assert checkpoints.read_config(run) == cfg
