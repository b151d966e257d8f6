from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2

from robot_rl.cli.main import main


def test_tasks_lists_every_task_with_sizes(capsys) -> None:
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "panda_reach     32          39              8        20" in out
    assert "quadruped_walk  45          56              12       50" in out
    for task in ("panda_push", "panda_lift"):
        assert task in out


def test_sim_demo_writes_a_playable_video(tmp_path: Path, capsys) -> None:
    video = tmp_path / "demo" / "reach.mp4"
    assert main(["sim-demo", "--task", "panda_reach", "--seconds", "1", "--video", str(video),
                 "--size", "60", "80"]) == 0
    assert f"wrote {video} (20 frames, 20 fps)" in capsys.readouterr().out
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 20 and frames[0].shape == (60, 80, 3)
    assert frames[0].std() > 5


def test_unknown_task_exits_with_the_list_of_tasks(capsys) -> None:
    assert main(["sim-demo", "--task", "panda_fly"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'panda_fly'; registered tasks: panda_lift, panda_push, panda_reach, quadruped_walk" in err


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "robot-rl"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "sim-demo" in result.stdout and "tasks" in result.stdout


def test_top_level_overrides_keep_their_values_from_positional_arguments() -> None:
    from robot_rl.cli.main import build_parser, split_overrides

    options = build_parser().get_default("command_options")["finetune"]
    argv = ["finetune", "--launch", "L.yaml", "--dataset", "runs/data/x", "--checkpoint-every", "5", "--sac.utd", "3",
            "--resume=R", "--seed=2"]
    plain, overrides = split_overrides(argv, options)
    assert plain == ["finetune", "--launch", "L.yaml", "--resume=R"]
    assert overrides == ["--dataset", "runs/data/x", "--checkpoint-every", "5", "--sac.utd", "3", "--seed=2"]
    args, unknown = build_parser().parse_known_args(plain)
    assert args.dataset is None and not unknown  # "runs/data/x" was not taken for the positional dataset
