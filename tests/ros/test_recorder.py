"""The recorder's bags: one per episode, opened by the episode's first transition with the
pre-roll before it, and none for the time between episodes (no bag without a dataset episode)."""

from __future__ import annotations

from pathlib import Path

import pytest

from robot_rl_ros import messages as M
from robot_rl_ros.config import load_robot
from robot_rl_ros.recorder import BagSeries, recorded_topics

pytestmark = pytest.mark.ros

ROBOT = Path(__file__).resolve().parents[2] / "real" / "config" / "panda.yaml"
CONFIG = load_robot(ROBOT)
S = 1_000_000_000  # ns


def counts(bag: Path) -> dict[str, int]:
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        return {c.topic: c.msgcount for c in reader.connections if c.msgcount}


def test_bags_hold_episodes_and_their_preroll_only(tmp_path: Path) -> None:
    states, transitions = CONFIG.topics.joint_states, CONFIG.topics.transition
    state = M.encode(M.joint_state(["a"], [0.0], [0.0], [0.0]))
    step = M.encode(M.float64_array([1.0, 2.0]))
    bags = BagSeries(tmp_path / "rosbag2", "mcap", recorded_topics(CONFIG), preroll_s=1.0)
    for t in range(10):  # 10 s of states before anything happens: only the last second is kept
        bags.write(states, state, t * S)
    assert not (tmp_path / "rosbag2").exists()
    bags.write(transitions, step, 10 * S, starts_episode=True)
    bags.write(transitions, step, 11 * S, starts_episode=True)  # the open episode's bag, not a new one
    bags.end_episode()
    for t in range(12, 20):  # the arm holds at the goal; the recording stops before a next episode
        bags.write(states, state, t * S)
    bags.end_episode()
    assert sorted(p.name for p in (tmp_path / "rosbag2").iterdir()) == ["episode_000000"]
    assert counts(tmp_path / "rosbag2" / "episode_000000") == {states: 1, transitions: 2}  # the state at 9 s
