"""``robot-rl reward-eval`` end to end on a small configuration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robot_rl.cli.main import main
from robot_rl.envs import make
from robot_rl_sim.rendering import look_at, recolor


def test_reward_eval_writes_metrics_next_to_the_time_index_baseline(tmp_path: Path, capsys) -> None:
    launch = tmp_path / "eval.yaml"
    launch.write_text(
        "task: panda_reach\nmodule: progress_critic\noptions: {steps: 40}\n"
        "view: {camera: front, image_size: [32, 32]}\nnum_steps: 8\n"
        "train: {expert: 2}\neval: {expert: 1, regressing: 1}\n"
    )
    assert main(["reward-eval", str(launch), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out" / "panda_reach_progress_critic"
    report = json.loads((out / "reward_eval.json").read_text())
    assert (out / "reward_eval.png").stat().st_size > 0
    for key in ("spearman", "pairwise_accuracy", "voc", "time_spearman", "time_pairwise_accuracy", "time_voc"):
        assert np.isfinite(report["reward"][key]), key
    assert report["reward"]["time_voc"] == pytest.approx(1.0)  # the time index is monotone by definition
    assert [e["quality"] for e in report["episodes"]] == ["expert", "regressing"]
    assert len(report["episodes"][0]["reward"]) == 8
    assert "time index  Spearman" in capsys.readouterr().out
    assert (out / "module.pt").is_file()  # the fitted critic, for training launch files


def test_reward_eval_rejects_unknown_modules_before_rendering(tmp_path: Path, capsys) -> None:
    launch = tmp_path / "eval.yaml"
    launch.write_text("task: panda_reach\nmodule: oracle_of_delphi\n")
    assert main(["reward-eval", str(launch)]) == 2
    assert "unknown reward module 'oracle_of_delphi'; registered reward modules:" in capsys.readouterr().err


def test_camera_pose_and_colours_change_the_image() -> None:
    env = make("panda_push", num_envs=1, image_cameras=("front",), image_size=(48, 48))
    before = env.sim.render("front", 48, 48).clone()
    env2 = make("panda_push", num_envs=1, image_cameras=("front",), image_size=(48, 48))
    look_at(env2.sim.model, "front", (0.5, -1.2, 0.6), (0.5, 0.0, 0.0))
    moved = env2.sim.render("front", 48, 48)
    env3 = make("panda_push", num_envs=1, image_cameras=("front",), image_size=(48, 48))
    recolor(env3.sim.model, {"cube": (0.1, 0.2, 0.9, 1.0)})
    blue = env3.sim.render("front", 48, 48)
    assert (before.float() - moved.float()).abs().mean() > 10
    changed = (before != blue).any(dim=-1)
    assert 0 < changed.float().mean() < 0.1  # only the cube's pixels
    assert blue[changed][:, 2].float().mean() > blue[changed][:, 0].float().mean()  # and they turned blue
    with pytest.raises(ValueError, match="no geom named 'ball'"):
        recolor(env3.sim.model, {"ball": (1, 0, 0, 1)})
