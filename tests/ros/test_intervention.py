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
from robot_rl_ros.observation import PandaReach, RobotReading

pytestmark = pytest.mark.ros

CONFIG = load_robot(Path(__file__).resolve().parents[2] / "real" / "config" / "panda.yaml")
JOINT = PandaReach(CONFIG, {"action_space": "joint", "action_scale": 0.1})
EE = PandaReach(CONFIG, {"action_space": "ee", "ee_step": 0.03})
ARM = JOINT.arm
READING = RobotReading(np.array(CONFIG.home), np.zeros(7), 0.08)
POLICY = np.full(8, 0.5)
EE_POLICY = np.full(4, 0.5)


def test_twist_moves_the_tool_that_way_and_expires() -> None:
    source = TwistSource(JOINT, control_dt=0.05, linear_speed=0.1, timeout_s=0.1)
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
    twist = TwistSource(JOINT, 0.05, 0.1, 1.0)
    deltas = JointDeltaSource(JOINT, timeout_s=1.0)
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


def test_a_twist_is_an_ee_action_of_the_tool_displacement() -> None:
    """ee space: the step's tool displacement over ee_step, no joint solve; clipped to ±1."""
    source = TwistSource(EE, control_dt=0.05, linear_speed=0.1, timeout_s=1.0)
    source.on_message(M.twist((0.0, 1.0, -0.5), (0.0, 0.0, 1.0)))
    person = source.read(READING, EE_POLICY)
    # 0.1 m/s for 0.05 s: 5 mm along +y and 2.5 mm down, of 30 mm per unit action.
    assert person.active
    np.testing.assert_allclose(person.action, [0.0, 0.005 / 0.03, -0.0025 / 0.03, 1.0], atol=1e-12)
    fast = TwistSource(EE, control_dt=0.05, linear_speed=1.0, timeout_s=1.0)
    fast.on_message(M.twist((3.0, -1.0, 0.0)))
    np.testing.assert_allclose(fast.read(READING, EE_POLICY).action, [1.0, -1.0, 0.0, 0.5])  # gripper: the policy's
    # Executed, it moves the tool about that far (the ee step is damped, and levels the tool).
    moved = ARM.tcp(EE.targets(person.action, READING)[:7]) - ARM.tcp(READING.q)
    np.testing.assert_allclose(moved, [0.0, 0.005, -0.0025], atol=1e-3)


def test_a_joint_delta_is_an_ee_action_of_the_tool_displacement_it_makes() -> None:
    """ee space: a joint delta becomes the tool displacement it would make, over ee_step; the
    message still carries J joint deltas and the gripper."""
    source = JointDeltaSource(EE, timeout_s=1.0)
    dq = np.array([0.05, 0.0, 0.0, 0.03, 0.0, -0.02, 0.1])
    source.on_message(M.float64_array(np.append(dq, -1.0)))
    person = source.read(READING, EE_POLICY)
    displacement = ARM.tcp(READING.q + dq) - ARM.tcp(READING.q)
    assert person.active and person.action.shape == (4,)
    np.testing.assert_allclose(person.action, np.append(displacement / 0.03, -1.0), atol=1e-12)
    assert np.abs(person.action[:3]).max() > 0.2  # the delta moves the tool centimetres, not nothing
    moved = ARM.tcp(EE.targets(person.action, READING)[:7]) - ARM.tcp(READING.q)
    np.testing.assert_allclose(moved, displacement, atol=0.15 * np.linalg.norm(displacement))
    # Half a radian of the base joint swings the tool 15 cm along +y and about 4 cm back: ±1 at most.
    source.on_message(M.float64_array([0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]))
    np.testing.assert_allclose(source.read(READING, EE_POLICY).action, [-1.0, 1.0, 0.0, 1.0], atol=1e-12)
    source.on_message(M.float64_array([0.01, 0.0, 0.0, 1.0]))  # four numbers: an ee action, not a joint delta
    assert source.read(READING, EE_POLICY) == NOBODY


def test_a_policy_without_a_gripper_action_gets_arm_actions_only() -> None:
    arm_only = PandaReach(CONFIG, {"action_space": "ee", "ee_step": 0.03, "gripper_action": False})
    assert arm_only.action_dim == 3 and EE.action_dim == 4
    twist = TwistSource(arm_only, control_dt=0.05, linear_speed=0.1, timeout_s=1.0)
    twist.on_message(M.twist((0.0, 1.0, -0.5), (0.0, 0.0, 1.0)))  # angular.z would open the gripper
    np.testing.assert_allclose(twist.read(READING, EE_POLICY[:3]).action, [0.0, 0.005 / 0.03, -0.0025 / 0.03])
    deltas = JointDeltaSource(arm_only, timeout_s=1.0)
    dq = np.array([0.05, 0.0, 0.0, 0.03, 0.0, -0.02, 0.1])
    deltas.on_message(M.float64_array(np.append(dq, 1.0)))
    action = deltas.read(READING, EE_POLICY[:3]).action
    np.testing.assert_allclose(action, (ARM.tcp(READING.q + dq) - ARM.tcp(READING.q)) / 0.03, atol=1e-12)
    assert arm_only.targets(action, READING)[7] == 0.0  # the gripper stays closed
