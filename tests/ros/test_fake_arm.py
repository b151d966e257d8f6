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


def test_fake_arm_publishes_depth_and_camera_info_that_match_the_renderer(processes, tmp_path: Path) -> None:
    """Colour, depth and camera info share a stamp and frame; K is the MJCF camera's; the depth at
    the cube's top centre is its true distance from the camera; and stopping with the camera on
    exits cleanly (it crashed with SIGSEGV about every other stop)."""
    import mujoco

    from robot_rl_sim.mjcf import load_model
    from robot_rl_sim.rendering import camera_extrinsics, camera_intrinsics

    topics, cam = CONFIG.topics, CONFIG.camera
    cube = (0.55, 0.08, 0.4)
    truth = tmp_path / "truth.csv"
    probe = Probe()
    colour = probe.listen(topics.image, M.IMAGE, SENSOR_DATA)
    depth = probe.listen(topics.depth, M.IMAGE, SENSOR_DATA)
    info = probe.listen(topics.camera_info, M.CAMERA_INFO, SENSOR_DATA)
    arm_proc = processes.start("robot_rl_ros.fake_arm", "--ros-args", "-p", f"robot:={ROBOT}", "-p", "camera_hz:=30.0",
                               "-p", "scene:=panda/scene_push.xml", "-p", f"cube:={list(cube)}",
                               "-p", f"ground_truth:={truth}")
    try:
        wait_for(lambda: len(colour) > 3 and len(depth) > 3 and len(info) > 3, 60, "colour, depth and camera info")
        stamps = {M.stamp_ns(m.header) for _, m in colour[-3:]}
        pair = next(m for _, m in reversed(depth) if M.stamp_ns(m.header) in stamps)
        rgb_msg = next(m for _, m in colour if M.stamp_ns(m.header) == M.stamp_ns(pair.header))
        camera_info = info[-1][1]
    finally:
        probe.close()
    assert processes.stop(arm_proc) == 0, processes.output(arm_proc)[-2000:]

    assert (pair.encoding, pair.height, pair.width, pair.header.frame_id) == ("32FC1", cam.height, cam.width, "front")
    assert (camera_info.height, camera_info.width, camera_info.header.frame_id) == (cam.height, cam.width, "front")
    model = load_model("panda/scene_push.xml")
    assert M.intrinsics_of(camera_info) == pytest.approx(camera_intrinsics(model, "front", cam.height, cam.width))

    # Where the cube's top centre must be: the MJCF camera's pose and K applied to the true position.
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    pose = camera_extrinsics(model, data, "front")
    top = np.array([cube[0], cube[1], 2 * model.geom("cube").size[2]])
    in_camera = np.linalg.inv(pose) @ np.append(top, 1.0)
    fx, fy, cx, cy = M.intrinsics_of(camera_info)
    u, v = fx * in_camera[0] / in_camera[2] + cx, fy * in_camera[1] / in_camera[2] + cy
    metres, rgb = M.depth_to_numpy(pair), M.image_to_numpy(rgb_msg)
    row, col = int(round(v)), int(round(u))
    assert metres[row, col] == pytest.approx(in_camera[2], abs=0.004), (metres[row - 1:row + 2, col - 1:col + 2],
                                                                       in_camera[2])
    r, g, b = rgb[row, col].astype(int)
    assert r > 2 * g and r > 2 * b, rgb[row, col]  # the red cube is seen there
    assert np.isfinite(metres).all() and metres[metres > 0].min() > 0.5  # nothing closer than the table's edge
    assert (metres == 0).any()  # no reading where nothing is within the far plane, as depth cameras report

    # Ground truth goes to the file only: the cube rests where it was put.
    rows = np.loadtxt(truth, delimiter=",", ndmin=2)
    assert len(rows) >= 2
    np.testing.assert_allclose(rows[-1, 1:], [cube[0], cube[1], model.geom("cube").size[2]], atol=2e-3)


def test_fake_arm_stops_cleanly_with_the_camera_on(processes) -> None:
    for _ in range(3):  # the crash came at interpreter exit, about every other stop
        proc = processes.start("robot_rl_ros.fake_arm", "--ros-args", "-p", f"robot:={ROBOT}", "-p", "camera_hz:=60.0",
                               "-p", "image_width:=64", "-p", "image_height:=48")
        wait_for(lambda p=proc: "simulating panda" in processes.output(p), 60, "the fake arm to run")
        time.sleep(1.0)
        assert processes.stop(proc) == 0, processes.output(proc)[-2000:]
