"""``robot-rl perception-train`` end to end at a tiny size: the files it promises, and bad input."""

import json
import re

import pytest

from robot_rl.cli.main import main
from robot_rl.perception import KeypointEstimator


def test_writes_model_evaluation_and_overlays(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUJOCO_GL", "egl")
    out = tmp_path / "perception"
    assert main(["perception-train", "--task", "panda_push", "--out", str(out), "--image-size", "32", "32",
                 "--frames", "24", "--eval-frames", "8", "--steps", "2", "--batch-size", "4"]) == 0
    report = json.loads((out / "perception_eval.json").read_text())
    for condition in ("in_distribution", "unseen_view"):
        cube = report[condition]["keypoints"]["cube"]
        assert set(cube) >= {"error_3d_cm", "error_px", "found_share", "baseline_error_3d_cm", "visible_share"}
        assert report[condition]["frames"] == 8
    assert report["unseen_view"]["colors"]["cube"] == [0.15, 0.35, 0.9]
    estimator = KeypointEstimator.load(out / "perception.pt")
    estimator.check(task="panda_push", camera="front", image_size=(32, 32))
    assert estimator.info.names == ("cube", "target", "tip")
    assert estimator.info.evaluation["in_distribution"]["frames"] == 8
    assert (out / "overlays" / "in_distribution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "loss.csv").read_text().splitlines()) == 3
    assert main(["perception-train", "--task", "panda_push", "--out", str(out)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--eval-colors", "cube=2,0,0"], "values in \\[0, 1\\]"),
    (["--eval-colors", "sky=0,0,1"], "PART must be"),
    (["--steps", "0"], "--steps must be at least 1"),
    (["--image-size", "8", "8"], "at least 16 x 16"),
])
def test_bad_arguments_are_named(tmp_path, capsys, args, message):
    assert main(["perception-train", "--task", "panda_push", "--out", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "x").exists()
