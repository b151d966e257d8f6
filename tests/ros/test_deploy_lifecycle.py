"""A deployment stops when told: SIGINT, SIGTERM, SIGHUP or SIGKILL of the real ``robot-rl deploy``
leave no node running (checked by pid), a fixed target is one episode held at the goal (one bag,
one dataset episode), ``--episodes K`` ends deploy by itself, and a new goal on the target topic
starts the next episode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import Probe, wait_for

from robot_rl_ros import messages as M
from robot_rl_ros.config import load_robot
from robot_rl_ros.qos import LATCHED
from robot_rl_ros.transition import from_message

pytestmark = pytest.mark.ros

ROBOT = Path(__file__).resolve().parents[2] / "real" / "config" / "panda.yaml"
CONFIG = load_robot(ROBOT)
T = CONFIG.topics
GOAL = (0.5, 0.1, 0.3)  # the README's --target, inside panda_reach's training range


def children(pid: int) -> list[int]:
    """Pids whose parent is ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie may wait for a PID 1 that never reaps)."""
    try:
        os.kill(pid, 0)
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def start_deploy(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "robot_rl.cli.deploy", "--robot", str(ROBOT), *args], env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def recorded(root: Path) -> tuple[list[str], int]:
    """(bag folders, dataset episodes) of the one recording under ``root``."""
    from robot_rl.data.lerobot import read_info

    (run_dir,) = root.iterdir()
    bags = sorted(p.name for p in (run_dir / "rosbag2").iterdir())
    return bags, read_info(run_dir / "lerobot")["total_episodes"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name)
def test_a_signal_to_deploy_stops_every_node_and_a_fixed_target_is_one_held_episode(
        sig: signal.Signals, reach_policy: Path, ros_env: dict[str, str], tmp_path: Path) -> None:
    probe = Probe()
    published = probe.listen(T.transition, M.FLOAT64_ARRAY)
    commands = probe.listen(CONFIG.command_topic, M.FLOAT64_ARRAY)
    log = tmp_path / "deploy.log"
    deploy = start_deploy("--policy", str(reach_policy), "--fake-arm", "--camera-hz", "0", "--record",
                          str(tmp_path / "rec"), "--target", *map(str, GOAL), env=ros_env, log=log)
    nodes: list[int] = []
    try:
        wait_for(lambda: any(from_message(m).done for _, m in published), 120, "the first episode's end")
        nodes = children(deploy.pid)
        assert len(nodes) == 3, (nodes, log.read_text()[-2000:])  # fake_arm, recorder, policy_node
        # A fixed target: the arm holds at the goal, with the same command, and no episode starts.
        time.sleep(1.5)
        held = time.monotonic() - 1.0
        steps = [from_message(m) for _, m in published]
        assert [(t.episode, t.done, t.success) for t in steps if t.done] == [(0, True, True)]
        assert {t.episode for t in steps} == {0}
        last = [np.asarray(m.data) for when, m in commands if when >= held]
        assert len(last) >= 5 and all(np.array_equal(c, last[0]) for c in last), "the arm is not held"

        started = time.monotonic()
        deploy.send_signal(sig)
        if sig == signal.SIGKILL:  # nobody is left to stop the nodes: they stop because deploy died
            deploy.wait(10)
            wait_for(lambda: not any(alive(pid) for pid in nodes), 60, "the nodes to stop after deploy died")
        else:
            assert deploy.wait(90) == 128 + sig
            assert not any(alive(pid) for pid in nodes), [pid for pid in nodes if alive(pid)]
            assert (f"robot-rl deploy: stopped by {sig.name}; all nodes stopped; 1 episode(s) recorded in "
                    in log.read_text().splitlines()[-1]), log.read_text()[-2000:]
        assert time.monotonic() - started < 60
    finally:
        probe.close()
        if deploy.poll() is None:
            deploy.kill()
            deploy.wait(10)
        for pid in nodes:  # never leave a node behind for the next test, even when this one failed
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    # The recorder stopped cleanly even after SIGKILL of deploy (its node got SIGTERM): one
    # episode, one bag, no bag for the time the arm held.
    assert recorded(tmp_path / "rec") == (["episode_000000"], 1)


def test_episodes_k_ends_deploy_by_itself_with_a_fixed_target(reach_policy: Path, ros_env: dict[str, str],
                                                              tmp_path: Path) -> None:
    log = tmp_path / "deploy.log"
    started = time.monotonic()
    deploy = start_deploy("--policy", str(reach_policy), "--fake-arm", "--camera-hz", "0", "--episodes", "3",
                          "--record", str(tmp_path / "rec"), "--target", *map(str, GOAL), env=ros_env, log=log)
    nodes: list[int] = []
    try:
        wait_for(lambda: len(children(deploy.pid)) == 3 or deploy.poll() is not None, 60, "deploy's nodes")
        nodes = children(deploy.pid)
        assert deploy.wait(150) == 0, log.read_text()[-3000:]
    finally:
        if deploy.poll() is None:
            deploy.kill()
            deploy.wait(10)
    text = log.read_text()
    assert "the only goal is reached: stopping after 1 of 3 episodes" in text
    assert "robot-rl deploy: the policy node finished its episodes; all nodes stopped; 1 episode(s)" in text
    assert nodes and not any(alive(pid) for pid in nodes)
    assert recorded(tmp_path / "rec") == (["episode_000000"], 1)
    assert time.monotonic() - started < 150
    # The policy node's summary lands beside the recording.
    (run_dir,) = (tmp_path / "rec").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["task"], summary["episodes"], summary["successes"], summary["success_rate"]) == (
        "panda_reach", 1, 1, 1.0)
    assert summary["success_judged_from"] == "the measured tool position"
    assert 0 < summary["median_latency_ms"] <= summary["p95_latency_ms"] < 1000 * 0.05  # within a control period
    assert summary["median_perception_ms"] is None and summary["control_steps"] > 0
    assert f"summary in {run_dir / 'summary.json'}" in text


def test_a_new_goal_on_the_target_topic_starts_the_next_episode(reach_policy: Path, processes) -> None:
    probe = Probe()
    published = probe.listen(T.transition, M.FLOAT64_ARRAY)
    target = probe.transport.publisher(T.target, M.FLOAT64_ARRAY, LATCHED)
    processes.start("robot_rl_ros.fake_arm", "--ros-args", "-p", f"robot:={ROBOT}", "-p", "camera_hz:=0.0")
    node = processes.start("robot_rl_ros.policy_node", "--ros-args", "-p", f"robot:={ROBOT}",
                           "-p", f"policy:={reach_policy}")
    ends = lambda: [t for t in map(from_message, (m for _, m in published)) if t.done]  # noqa: E731
    try:
        target.publish(M.float64_array(np.array(GOAL)))
        wait_for(lambda: ends(), 90, "the first episode's end")
        target.publish(M.float64_array(np.array(GOAL)))  # the same goal again changes nothing
        time.sleep(1.5)
        assert [(t.episode, t.success) for t in ends()] == [(0, True)]
        assert {from_message(m).episode for _, m in published} == {0}
        target.publish(M.float64_array(np.array([0.4, -0.15, 0.25])))
        wait_for(lambda: len(ends()) == 2, 30, "the second goal's episode")
        assert [(t.episode, t.success) for t in ends()] == [(0, True), (1, True)]
        assert "holding at the goal until /policy/target differs" in processes.output(node)
    finally:
        probe.close()
