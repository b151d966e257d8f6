"""Teleop sources and the mux, by hand: a person's input becomes an action in the policy's space
and only while they keep sending it; the keyboard maps keys to tool directions."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from robot_rl.teleop import KEYS
from robot_rl_ros import messages as M
from robot_rl_ros.config import load_robot
from robot_rl_ros.intervention import NOBODY, JointDeltaSource, KeyboardTeleop, Mux, TwistSource
from robot_rl_ros.kinematics import Arm
from robot_rl_ros.observation import RobotReading

pytestmark = pytest.mark.ros

CONFIG = load_robot(Path(__file__).resolve().parents[2] / "real" / "config" / "panda.yaml")
ARM = Arm(CONFIG.kinematics)
READING = RobotReading(np.array(CONFIG.home), np.zeros(7), 0.08)
POLICY = np.full(8, 0.5)


def test_twist_moves_the_tool_that_way_and_expires() -> None:
    source = TwistSource(ARM, action_scale=0.1, control_dt=0.05, linear_speed=0.1, timeout_s=0.1)
    assert source.read(READING, POLICY) == NOBODY
    source.on_message(M.twist((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)))
    person = source.read(READING, POLICY)
    assert person.active and person.action[7] == -1.0  # angular.z < 0 closes the gripper
    moved = ARM.tcp(READING.q + 0.1 * person.action[:7]) - ARM.tcp(READING.q)
    # 0.1 m/s for 0.05 s along +y, to first order.
    np.testing.assert_allclose(moved, [0.0, 0.005, 0.0], atol=5e-4)
    time.sleep(0.15)
    assert source.read(READING, POLICY) == NOBODY  # silence hands control back


def test_joint_deltas_and_the_mux_order() -> None:
    twist = TwistSource(ARM, 0.1, 0.05, 0.1, 1.0)
    deltas = JointDeltaSource(action_scale=0.1, action_dim=8, timeout_s=1.0)
    mux = Mux([twist, deltas])
    assert mux.read(READING, POLICY) == NOBODY
    deltas.on_message(M.float64_array([0.05, 0, 0, 0, 0, 0, -0.5, 1.0]))
    np.testing.assert_allclose(mux.read(READING, POLICY).action, [0.5, 0, 0, 0, 0, 0, -1.0, 1.0])  # clipped to ±1
    twist.on_message(M.twist((1.0, 0.0, 0.0)))
    person = mux.read(READING, POLICY)
    assert person.active and person.action[7] == POLICY[7]  # the first source wins; gripper left to the policy
    deltas.on_message(M.float64_array([np.nan] * 8))
    assert deltas.read(READING, POLICY) == NOBODY  # malformed teleop never takes over


def test_keyboard_keys_toggle_and_decay() -> None:
    keys = KeyboardTeleop(hold_s=0.1)
    assert keys.press(" ", 0.0) and keys.active
    keys.press("w", 1.0)
    assert keys.twist(1.05).linear.x == 1.0 and keys.twist(1.2).linear.x == 0.0
    keys.press("c", 2.0)
    assert keys.twist(2.0).angular.z == -1.0
    assert set(KEYS) == set("wsadrfoc")
    assert not keys.press("q", 3.0)


def test_a_policy_with_end_effector_actions_is_refused_by_name() -> None:
    from robot_rl_ros.observation import for_policy

    config = load_robot(Path(__file__).resolve().parents[2] / "real" / "config" / "panda.yaml")
    metadata = {"task": "panda_reach", "observation_dim": 28, "action_dim": 4,
                "task_config": {"action_space": "ee", "action_scale": 0.1}}
    with pytest.raises(ValueError, match="acts in the 'ee' action space.*train.*action_space: joint"):
        for_policy(config, metadata)
