"""The fake arm behaves like a careful ros2_control driver: limits, malformed commands, stale
commands, trajectories, e-stop, and its fault switches (delay, drops, frozen state)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import Probe, wait_for

from robot_rl_ros import messages as M
from robot_rl_ros.config import load_robot
from robot_rl_ros.qos import LATCHED, SENSOR_DATA

pytestmark = pytest.mark.ros

ROBOT = Path(__file__).resolve().parents[2] / "real" / "config" / "panda.yaml"
CONFIG = load_robot(ROBOT)
HOME = np.array(CONFIG.home)
UPPER = np.array(CONFIG.limits.position_upper)


def arm(probe: Probe) -> np.ndarray:
    return np.asarray(probe.latest(CONFIG.topics.joint_states).position[:7])


def settle(probe: Probe, target: np.ndarray, what: str, timeout: float = 10.0) -> None:
    wait_for(lambda: np.abs(arm(probe) - target).max() < 0.02, timeout, what)


def test_fake_arm_commands_limits_stale_hold_trajectory_and_estop(processes) -> None:
    processes.start("robot_rl_ros.fake_arm", "--ros-args", "-p", f"robot:={ROBOT}", "-p", "camera_hz:=0.0",
                    "-p", "command_timeout_s:=0.4")
    probe = Probe()
    probe.listen(CONFIG.topics.joint_states, M.JOINT_STATE, SENSOR_DATA)
    commands = probe.transport.publisher(CONFIG.command_topic, M.FLOAT64_ARRAY)
    trajectory = probe.transport.publisher(f"/{CONFIG.controller}/joint_trajectory", M.JOINT_TRAJECTORY)
    estop = probe.transport.publisher(CONFIG.topics.estop, M.BOOL, LATCHED)
    reset = probe.transport.publisher(CONFIG.topics.estop_reset, M.BOOL, LATCHED)

    def stream(command: np.ndarray, seconds: float, publisher=commands) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            publisher.publish(M.float64_array(command))
            time.sleep(0.02)

    try:
        wait_for(lambda: probe.latest(CONFIG.topics.joint_states) is not None, 30, "the fake arm's joint states")
        state = probe.latest(CONFIG.topics.joint_states)
        assert list(state.name) == list(CONFIG.arm_joints + CONFIG.gripper_joints)
        settle(probe, HOME, "the home pose")

        # Beyond the limits: joint 4's upper limit is -0.0698 rad; the arm stops there.
        beyond = HOME.copy()
        beyond[3] = 1.0
        stream(np.append(beyond, 0.04), 1.5)
        assert arm(probe)[3] <= UPPER[3] + 0.01
        assert abs(arm(probe)[3] - UPPER[3]) < 0.05

        # Malformed commands (wrong size, NaN) are ignored; stale commands leave it holding.
        stream(np.append(HOME, 0.04), 1.5)
        settle(probe, HOME, "home again")
        stream(np.zeros(5), 0.5)
        poisoned = np.append(HOME + 0.3, 0.04)
        poisoned[2] = np.nan
        stream(poisoned, 0.5)
        assert np.abs(arm(probe) - HOME).max() < 0.02
        time.sleep(0.6)  # past command_timeout_s: holds where it is
        assert np.abs(arm(probe) - HOME).max() < 0.02

        # A joint trajectory (the joint_trajectory_controller interface) is followed.
        goal = HOME + np.array([0.3, 0.1, 0.0, 0.1, 0.0, 0.0, 0.0])
        trajectory.publish(M.joint_trajectory(CONFIG.command_joints, [np.append(goal, 0.04)], [0.5]))
        settle(probe, goal, "the trajectory's end point")

        # E-stop: latched, commands ignored until reset.
        estop.publish(M.boolean(True))
        time.sleep(0.3)
        stream(np.append(HOME, 0.04), 1.0)
        assert np.abs(arm(probe) - goal).max() < 0.02
        reset.publish(M.boolean(True))
        time.sleep(0.3)
        stream(np.append(HOME, 0.04), 1.5)
        settle(probe, HOME, "home after the e-stop reset")
    finally:
        probe.close()


def test_fake_arm_faults_delay_drops_and_freeze(processes) -> None:
    processes.start("robot_rl_ros.fake_arm", "--ros-args", "-p", f"robot:={ROBOT}", "-p", "camera_hz:=0.0",
                    "-p", "delay_s:=0.1", "-p", "drop_rate:=0.5")
    probe = Probe()
    states = probe.listen(CONFIG.topics.joint_states, M.JOINT_STATE, SENSOR_DATA)
    freeze = probe.transport.publisher("/fake_arm/freeze", M.BOOL)
    try:
        wait_for(lambda: len(states) > 50, 30, "joint states")
        start, count = time.monotonic(), len(states)
        time.sleep(1.0)
        rate = (len(states) - count) / (time.monotonic() - start)
        assert 100 < rate < 400, rate  # half of 500 Hz is dropped (a loaded machine publishes a bit slower)
        recent = states[-50:]
        ages = [time.time() - (time.monotonic() - t) - M.stamp_ns(m.header) * 1e-9 for t, m in recent]
        assert 0.09 < float(np.median(ages)) < 0.3  # stamped 0.1 s before they arrive

        wait_for(lambda: (freeze.publish(M.boolean(True)) or True) and
                 len({M.stamp_ns(m.header) for _, m in states[-20:]}) == 1, 5, "a frozen state", interval=0.2)
        frozen_count = len(states)
        time.sleep(0.3)
        assert len(states) > frozen_count  # still publishing, the same state again
    finally:
        probe.close()
