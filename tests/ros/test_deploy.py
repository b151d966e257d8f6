"""End to end: an exported sim policy deployed with ``robot-rl deploy`` on the fake arm reaches
its goals, and the recorder's rosbag2 and LeRobot dataset hold exactly what was published.
Plus the errors that must stop a deployment before the robot moves."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import Probe, wait_for

from robot_rl_ros import messages as M
from robot_rl_ros.config import load_robot
from robot_rl_ros.kinematics import Arm
from robot_rl_ros.qos import SENSOR_DATA
from robot_rl_ros.transition import from_message

pytestmark = pytest.mark.ros

ROBOT = Path(__file__).resolve().parents[2] / "real" / "config" / "panda.yaml"
CONFIG = load_robot(ROBOT)
GOALS = [(0.5, 0.1, 0.3), (0.4, -0.15, 0.25)]  # inside the training range of panda_reach


def deploy(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robot_rl.cli.deploy", "--robot", str(ROBOT), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def read_bag(path: Path) -> dict[str, list]:
    from rosbags.rosbag2 import Reader

    out: dict[str, list] = {}
    with Reader(path) as reader:
        for connection, _, raw in reader.messages():
            out.setdefault(connection.topic, []).append(M.decode(raw, connection.msgtype))
    return out


def test_policy_reaches_goals_on_fake_arm_and_recordings_match(reach_policy: Path, ros_env: dict[str, str],
                                                               tmp_path: Path) -> None:
    probe = Probe()
    states = probe.listen(CONFIG.topics.joint_states, M.JOINT_STATE, SENSOR_DATA)
    published = probe.listen(CONFIG.topics.transition, M.FLOAT64_ARRAY)
    try:
        result = deploy("--policy", str(reach_policy), "--fake-arm", "--record", str(tmp_path / "rec"),
                        "--storage", "sqlite3", "--episodes", "2", "--target", *map(str, np.ravel(GOALS)),
                        "--camera-hz", "15", "--param", "fake_arm.image_width:=32",
                        "--param", "fake_arm.image_height:=24", env=ros_env, timeout=150)
        assert result.returncode == 0, result.stderr[-3000:]
        wait_for(lambda: any(from_message(m).done and from_message(m).episode == 1 for _, m in published), 5,
                 "the last transition at the probe")
    finally:
        probe.close()

    transitions = [from_message(m) for _, m in published]
    ends = [t for t in transitions if t.done]
    assert [(t.episode, t.success) for t in ends] == [(0, True), (1, True)], ends
    # Independently of the policy node: the arm's measured tool is at the last goal when the last
    # episode ends (the last state heard before its final transition; afterwards the arm still
    # carries out the final command, up to action_scale per joint).
    end = next(t for (t, _), tr in zip(published, transitions, strict=True) if tr.done and tr.episode == 1)
    final = [m for t, m in states if t <= end][-1]
    q = np.asarray(final.position[:7])
    assert np.linalg.norm(Arm(CONFIG.kinematics).tcp(q) - np.array(GOALS[1])) < 0.05

    run_dir = next((tmp_path / "rec").iterdir())
    # rosbag2 (sqlite3), one per episode, read back with rosbags.
    bags = sorted((run_dir / "rosbag2").iterdir())
    assert [b.name for b in bags] == ["episode_000000", "episode_000001"]  # no bag after the last episode
    assert (bags[0] / f"{bags[0].name}.db3").is_file()
    in_bags = [from_message(m) for bag in bags for m in read_bag(bag).get(CONFIG.topics.transition, [])]
    assert [(t.episode, t.step) for t in in_bags] == [(t.episode, t.step) for t in transitions]
    first = read_bag(bags[0])
    assert len(first[CONFIG.topics.joint_states]) > 100 and first[CONFIG.topics.image]
    depth, info = first[CONFIG.topics.depth][-1], first[CONFIG.topics.camera_info][-1]
    assert (depth.encoding, depth.width, depth.height, info.width, info.height) == ("32FC1", 32, 24, 32, 24)
    assert len(first[CONFIG.command_topic]) == sum(t.episode == 0 for t in transitions)

    # LeRobot v3, read back with pyarrow: every published step, value for value.
    from robot_rl.data.lerobot import read_episodes, read_frames, read_info

    root = run_dir / "lerobot"
    info = read_info(root)
    assert info["codebase_version"] == "v3.0" and info["total_frames"] == len(transitions) and info["fps"] == 20
    assert [e["length"] for e in read_episodes(root)] == [sum(t.episode == i for t in transitions) for i in (0, 1)]
    frames = read_frames(root).to_pydict()
    for i, t in enumerate(transitions):
        np.testing.assert_allclose(frames["observation.policy"][i], t.observation, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(frames["action"][i], t.action, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(frames["policy_action"][i], t.policy_action, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(frames["observation.state"][i], t.state, rtol=1e-6, atol=1e-6)
        assert frames["intervention"][i] is t.intervention is False
        assert (frames["episode_index"][i], frames["frame_index"][i]) == (t.episode, t.step)
        assert (frames["next.reward"][i], frames["next.done"][i]) == (t.reward, t.done)
    png = frames["observation.images.front"][0]["bytes"]
    assert png.startswith(b"\x89PNG")
    cv2 = pytest.importorskip("cv2")
    assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).shape == (24, 32, 3)


def test_deploy_without_recording_prints_the_summary(reach_policy: Path, ros_env: dict[str, str]) -> None:
    result = deploy("--policy", str(reach_policy), "--fake-arm", "--camera-hz", "0", "--episodes", "1",
                    "--target", *map(str, GOALS[0]), env=ros_env, timeout=150)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["episodes"], summary["successes"], summary["success_rate"]) == (1, 1, 1.0)
    assert summary["median_latency_ms"] > 0
    assert "nothing recorded (no --record); summary printed" in result.stderr


def test_deploy_refuses_bad_inputs_before_starting_anything(reach_policy: Path, ros_env: dict[str, str],
                                                           tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import torch

    from robot_rl.cli.deploy import main
    from robot_rl.training.export import METADATA

    assert main(["--robot", str(ROBOT), "--policy", str(tmp_path / "missing.pt"), "--fake-arm"]) == 2
    assert "policy file not found" in capsys.readouterr().err

    # A policy for another observation size (an exported program with robot_rl metadata).
    program = torch.export.export(torch.nn.Linear(10, 8), (torch.zeros(1, 10),))
    other = tmp_path / "other.pt"
    torch.export.save(program, str(other), extra_files={METADATA: (
        '{"task": "panda_reach", "observation_dim": 10, "action_dim": 8, "control_dt": 0.05}')})
    assert main(["--robot", str(ROBOT), "--policy", str(other), "--fake-arm"]) == 2
    assert "the policy expects 10 observations but panda_reach on panda gives 32" in capsys.readouterr().err

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    started = time.monotonic()
    assert main(["--robot", str(ROBOT), "--policy", str(reach_policy), "--record", str(blocker / "rec")]) == 2
    assert "is not writable" in capsys.readouterr().err
    assert time.monotonic() - started < 30  # refused up front, no node was started

    assert main(["--robot", str(tmp_path / "nope.yaml"), "--policy", str(reach_policy)]) == 2
    assert "robot config not found" in capsys.readouterr().err


def test_policy_node_stops_with_a_clear_error_when_the_policy_is_missing(processes, tmp_path: Path) -> None:
    probe = Probe()
    commands = probe.listen(CONFIG.command_topic, M.FLOAT64_ARRAY)
    try:
        proc = processes.start("robot_rl_ros.policy_node", "--ros-args", "-p", f"robot:={ROBOT}",
                               "-p", f"policy:={tmp_path / 'missing.pt'}")
        assert proc.wait(60) == 2
        assert "error: policy file not found" in processes.output(proc)
        assert not commands
    finally:
        probe.close()
