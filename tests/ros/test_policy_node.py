"""The policy node on the fake arm: stale state and e-stop make it hold, a person's teleop takes
over and is recorded as data (MCAP bag + LeRobot), malformed joint states get no command, and a
policy with end-effector actions drives the arm through joint targets."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import Probe, wait_for

from robot_rl_ros import messages as M
from robot_rl_ros.config import load_robot
from robot_rl_ros.kinematics import Arm
from robot_rl_ros.observation import RobotReading, for_policy
from robot_rl_ros.qos import LATCHED, SENSOR_DATA
from robot_rl_ros.transition import from_message

pytestmark = pytest.mark.ros

ROBOT = Path(__file__).resolve().parents[2] / "real" / "config" / "panda.yaml"
CONFIG = load_robot(ROBOT)
T = CONFIG.topics
EE_ACTION = np.array([0.2, 0.0, 0.0, 0.9])
"""What the ee test policy always asks for: the tool 6 mm along +x per step, the gripper nearly open."""


def holding_since(probe: Probe, t: float) -> list[bool]:
    return [m.data for m in probe.since(T.holding, t)]


def test_stale_state_estop_and_intervention_are_held_and_recorded(reach_policy: Path, processes,
                                                                  tmp_path: Path) -> None:
    probe = Probe()
    published = probe.listen(T.transition, M.FLOAT64_ARRAY)
    probe.listen(T.holding, M.BOOL)
    commands = probe.listen(CONFIG.command_topic, M.FLOAT64_ARRAY)
    pub = probe.transport.publisher
    freeze, estop, reset = pub("/fake_arm/freeze", M.BOOL), pub(T.estop, M.BOOL, LATCHED), pub(T.estop_reset, M.BOOL)
    twist, delta = pub(T.teleop_twist, M.TWIST), pub(T.teleop_joint_delta, M.FLOAT64_ARRAY)
    out = tmp_path / "rec"
    processes.start("robot_rl_ros.fake_arm", "--ros-args", "-p", f"robot:={ROBOT}", "-p", "camera_hz:=0.0")
    processes.start("robot_rl_ros.recorder", "--ros-args", "-p", f"robot:={ROBOT}", "-p", f"output:={out}",
                    "-p", "storage:=mcap")
    node = processes.start("robot_rl_ros.policy_node", "--ros-args", "-p", f"robot:={ROBOT}",
                           "-p", f"policy:={reach_policy}", "-p", "target:=[0.45, 0.0, 0.35]",
                           "-p", "end_on_success:=false", "-p", "episode_length_s:=1000.0",
                           "-p", "wait_for_recorder_s:=60.0")
    try:
        wait_for(lambda: len(published) > 10, 60, "the policy node's steps")

        # A person drives with a Twist: their action is executed and flagged; both are recorded.
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:
            twist.publish(M.twist((0.0, 1.0, 0.0)))
            time.sleep(0.03)
        steps = [from_message(m) for m in probe.since(T.transition, t0)]
        taken = [s for s in steps if s.intervention]
        assert len(taken) >= 10, [s.intervention for s in steps]
        assert all(not np.allclose(s.action, s.policy_action) for s in taken)
        time.sleep(CONFIG.teleop.timeout_s + 0.2)  # silence hands control back
        t1 = time.monotonic()
        wait_for(lambda: len(probe.since(T.transition, t1)) >= 3, 5, "steps after the person let go")
        assert not any(from_message(m).intervention for m in probe.since(T.transition, t1))

        # Joint deltas: the action is exactly delta / action_scale (and the gripper action).
        t2 = time.monotonic()
        nudge = np.array([0.02, 0, 0, 0, 0, 0, 0, -1.0])
        while time.monotonic() - t2 < 0.5:
            delta.publish(M.float64_array(nudge))
            time.sleep(0.03)
        taken = [from_message(m) for m in probe.since(T.transition, t2) if from_message(m).intervention]
        assert taken and np.allclose(taken[-1].action, [0.2, 0, 0, 0, 0, 0, 0, -1.0])
        time.sleep(CONFIG.teleop.timeout_s + 0.2)

        # Frozen joint states: the safety filter holds within half a second, commands stop changing.
        frozen_at = time.monotonic()
        wait_for(lambda: (freeze.publish(M.boolean(True)) or True) and any(holding_since(probe, frozen_at)), 0.5,
                 "a hold after the state froze", interval=0.05)
        time.sleep(0.3)
        held = [np.asarray(m.data) for m in probe.since(CONFIG.command_topic, time.monotonic() - 0.2)]
        assert held and all(np.array_equal(h, held[0]) for h in held)
        freeze.publish(M.boolean(False))
        t3 = time.monotonic()
        wait_for(lambda: holding_since(probe, t3)[-3:] == [False] * 3, 5, "control again after the state thawed")

        # E-stop: latched through anything until reset.
        estop.publish(M.boolean(True))
        t4 = time.monotonic()
        wait_for(lambda: holding_since(probe, t4)[-5:] == [True] * 5, 5, "the e-stop hold")
        twist.publish(M.twist((1.0, 0.0, 0.0)))  # not even a person moves it
        time.sleep(0.5)
        assert all(holding_since(probe, t4 + 0.1))
        reset.publish(M.boolean(True))
        t5 = time.monotonic()
        wait_for(lambda: holding_since(probe, t5)[-3:] == [False] * 3, 5, "control after the e-stop reset")
        assert commands
    finally:
        processes.stop(node)
        processes.stop_all()
        probe.close()

    transitions = [from_message(m) for _, m in published]
    from robot_rl.data.lerobot import read_frames

    (run_dir,) = out.iterdir()
    frames = read_frames(run_dir / "lerobot").to_pydict()
    assert len(frames["index"]) == len(transitions)
    assert frames["intervention"] == [t.intervention for t in transitions]
    np.testing.assert_allclose(np.array(frames["policy_action"]), [t.policy_action for t in transitions], atol=1e-6)
    np.testing.assert_allclose(np.array(frames["action"]), [t.action for t in transitions], atol=1e-6)
    assert frames["hold"] == [t.hold for t in transitions]

    from rosbags.rosbag2 import Reader

    (bag,) = (run_dir / "rosbag2").iterdir()  # one episode, flushed on SIGINT
    assert next(bag.glob("*.mcap"))
    with Reader(bag) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        recorded = [from_message(M.decode(raw, c.msgtype)) for c, _, raw in reader.messages()
                    if c.topic == T.transition]
    assert counts[T.estop] >= 1 and counts[T.teleop_twist] > 10 and counts[T.joint_states] > 1000
    assert [r.intervention for r in recorded] == [t.intervention for t in transitions]


def test_malformed_joint_states_get_no_command(reach_policy: Path, processes) -> None:
    probe = Probe()
    commands = probe.listen(CONFIG.command_topic, M.FLOAT64_ARRAY)
    states = probe.transport.publisher(T.joint_states, M.JOINT_STATE, SENSOR_DATA)
    node = processes.start("robot_rl_ros.policy_node", "--ros-args", "-p", f"robot:={ROBOT}",
                           "-p", f"policy:={reach_policy}", "-p", "target:=[0.45, 0.0, 0.35]")
    names = list(CONFIG.arm_joints + CONFIG.gripper_joints)
    good = np.append(CONFIG.home, [0.02, 0.02])

    def send_for(seconds: float, **fields) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            states.publish(M.joint_state(**{"names": names, "position": good, "velocity": np.zeros(9), **fields}))
            time.sleep(0.01)

    try:
        wrong_names = dict(names=["j1", "j2"], position=[0.0, 0.0], velocity=[0.0, 0.0])
        wait_for(lambda: send_for(0.2, **wrong_names) or "bad joint state" in processes.output(node), 60,
                 "the node to complain about wrong joint names", interval=0.0)
        nan = good.copy()
        nan[3] = np.nan
        send_for(0.5, position=nan)
        send_for(0.5, position=good[:8])  # a position missing
        assert not commands, "a command was sent for a malformed joint state"
        log = processes.output(node)
        assert "joints ['joint1'" in log and "non-finite" in log and "9 names but 8 positions" in log
        send_for(1.0)
        assert commands, "no command for valid joint states"
    finally:
        probe.close()


@pytest.fixture(scope="module")
def ee_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A panda_reach policy with end-effector actions (``action_space: ee``), exported as offline
    training exports one. Its last layer is a bias only, so it always asks for EE_ACTION and what
    the arm does is known in advance."""
    import torch

    from robot_rl.algorithms.replay import FixedNorm
    from robot_rl.algorithms.sac import SquashedGaussianActor
    from robot_rl.offline.trainer import export_actor

    actor = SquashedGaussianActor(FixedNorm.identity(28), 28, 4, (16,))
    last = actor.actor[0][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.atanh(torch.as_tensor(EE_ACTION, dtype=torch.float32)))
    out = tmp_path_factory.mktemp("ee_policy") / "policy.pt"
    return export_actor(actor, out, "panda_reach", "policy", "tests", overrides={"action_space": "ee"})


def test_an_ee_policy_moves_the_tool_through_joint_targets(ee_policy: Path, processes) -> None:
    from robot_rl.training.export import load_policy

    _, meta = load_policy(ee_policy)
    assert (meta["task_config"]["action_space"], meta["observation_dim"], meta["action_dim"]) == ("ee", 28, 4)
    task, arm = for_policy(CONFIG, meta), Arm(CONFIG.kinematics)
    probe = Probe()
    published = probe.listen(T.transition, M.FLOAT64_ARRAY)
    commands = probe.listen(CONFIG.command_topic, M.FLOAT64_ARRAY)
    twist = probe.transport.publisher(T.teleop_twist, M.TWIST)
    processes.start("robot_rl_ros.fake_arm", "--ros-args", "-p", f"robot:={ROBOT}", "-p", "camera_hz:=0.0")
    node = processes.start("robot_rl_ros.policy_node", "--ros-args", "-p", f"robot:={ROBOT}",
                           "-p", f"policy:={ee_policy}", "-p", "target:=[0.45, 0.0, 0.35]",
                           "-p", "end_on_success:=false", "-p", "episode_length_s:=1000.0")
    try:
        wait_for(lambda: len(published) >= 20, 60, "20 steps of the ee policy")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:  # a person drives along +y for a second
            twist.publish(M.twist((0.0, 1.0, 0.0)))
            time.sleep(0.03)
        time.sleep(0.2)
    finally:
        processes.stop(node)
        processes.stop_all()
        probe.close()

    steps = [from_message(m) for _, m in published]
    sent = np.array([m.data for _, m in commands])
    assert sent.shape[1] == 8  # seven arm joint targets and the gripper, from four actions
    assert all(s.observation.shape == (28,) and s.action.shape == (4,) for s in steps)
    policy_steps = [s for s in steps[:20] if not s.intervention]
    assert len(policy_steps) == 20 and not any(s.hold for s in policy_steps)
    for s in policy_steps:
        np.testing.assert_allclose(s.policy_action, EE_ACTION, atol=1e-6)
        # The command sent this step is the ee step from the measured joints (nothing clamped it).
        expected = task.targets(s.action, RobotReading(s.state[:7], np.zeros(7), s.state[7]))
        assert np.abs(sent - expected).max(axis=1).min() < 1e-9, (s.step, expected)
    tool = [arm.tcp(s.state[:7]) for s in steps]
    moved = tool[19] - tool[0]
    # Along +x, as asked; the lagging arm rises a little on the way (8.4 cm along x, 1.6 cm up, measured).
    assert moved[0] > 0.04 and np.abs(moved[1:]).max() < 0.4 * moved[0], moved

    taken = [i for i, s in enumerate(steps) if s.intervention]
    assert len(taken) >= 10, [s.intervention for s in steps]
    for i in taken:  # the person's action, in the policy's ee space: 5 mm along +y of 30 mm per unit
        np.testing.assert_allclose(steps[i].action, [0.0, 0.005 / 0.03, 0.0, steps[i].policy_action[3]], atol=1e-12)
    moved = tool[taken[-1]] - tool[taken[0]]
    assert moved[1] > 0.02 and np.abs(moved[[0, 2]]).max() < 0.25 * moved[1], moved
