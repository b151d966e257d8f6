"""The safety filter, property-based: whatever a policy asks for, what reaches the robot is
within limits, continuous, inside the workspace, and held when it must be."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from robot_rl_ros.config import load_robot
from robot_rl_ros.kinematics import Arm
from robot_rl_ros.safety import ArmState, SafetyFilter

pytestmark = pytest.mark.ros

CONFIG = load_robot(Path(__file__).resolve().parents[2] / "real" / "config" / "panda.yaml")
DT = 0.05
LOW = np.array(CONFIG.limits.position_lower)
HIGH = np.array(CONFIG.limits.position_upper)
EPS = 1e-9

unit = st.floats(0.0, 1.0)
joint_fractions = st.lists(unit, min_size=7, max_size=7)
wild = st.one_of(st.floats(-10.0, 10.0), st.floats(-1e9, 1e9), st.sampled_from([0.0, 1e300, -1e300]))
targets = st.lists(wild, min_size=8, max_size=8)


def arm_pose(fractions: list[float]) -> np.ndarray:
    return LOW + np.array(fractions) * (HIGH - LOW)


def near_home(offsets: list[float]) -> np.ndarray:
    """Poses around home (tool well inside the workspace box)."""
    return np.array(CONFIG.home) + 0.6 * (np.array(offsets) - 0.5)


def state(q: np.ndarray, gripper: float = 0.02, age: float = 0.0) -> ArmState:
    return ArmState(q=np.clip(q, LOW, HIGH), gripper=gripper, age_s=age)


@settings(max_examples=300, deadline=None)
@given(q=joint_fractions, first=targets, second=targets)
def test_commands_respect_limits_velocity_and_step(q: list[float], first: list[float], second: list[float]) -> None:
    safety = SafetyFilter(CONFIG, DT)
    s = state(arm_pose(q))
    previous = safety.filter(np.array(first), s).command
    decision = safety.filter(np.array(second), s)
    cmd = decision.command
    assert cmd is not None and np.all(np.isfinite(cmd))
    assert np.all(cmd >= safety.low - EPS) and np.all(cmd <= safety.high + EPS)
    assert np.all(np.abs(cmd - previous) <= safety.max_change + EPS)
    # The step bound around the measured position holds wherever it overlaps the hard bounds.
    measured = np.append(s.q, s.gripper)
    low = np.maximum(np.maximum(safety.low, previous - safety.max_change), measured - safety.max_step)
    high = np.minimum(np.minimum(safety.high, previous + safety.max_change), measured + safety.max_step)
    compatible = low <= high
    assert np.all(cmd[compatible] >= low[compatible] - EPS) and np.all(cmd[compatible] <= high[compatible] + EPS)


@settings(max_examples=150, deadline=None)
@given(q=joint_fractions, target=targets)
def test_tool_stays_in_the_workspace(q: list[float], target: list[float]) -> None:
    safety = SafetyFilter(CONFIG, DT)
    start = near_home(q)
    s = state(start)
    cmd = safety.filter(np.array(target), s).command
    before = safety.box_distance(Arm(CONFIG.kinematics).tcp(np.clip(start, LOW, HIGH)))
    after = safety.box_distance(Arm(CONFIG.kinematics).tcp(cmd[:7]))
    assert after <= before + 1e-6  # inside stays inside; outside never moves farther out


@settings(max_examples=100, deadline=None)
@given(q=joint_fractions, delta=st.lists(st.floats(-1.0, 1.0), min_size=7, max_size=7), grip=unit)
def test_safe_targets_pass_unchanged(q: list[float], delta: list[float], grip: float) -> None:
    safety = SafetyFilter(CONFIG, DT)
    start = near_home(q)
    target = np.append(np.clip(start + 0.05 * np.array(delta), LOW, HIGH), 0.04 * grip)
    assume(safety.box_distance(safety.arm.tcp(target[:7])) == 0.0)
    decision = safety.filter(target, state(start, gripper=0.04 * grip))
    assert not decision.hold and not decision.clamped
    np.testing.assert_array_equal(decision.command, target)


@settings(max_examples=100, deadline=None)
@given(q=joint_fractions, target=targets, bad=st.sampled_from([np.nan, np.inf, -np.inf]), where=st.integers(0, 7))
def test_non_finite_targets_hold_the_last_command(q: list[float], target: list[float], bad: float, where: int) -> None:
    safety = SafetyFilter(CONFIG, DT)
    s = state(near_home(q))
    last = safety.filter(np.append(s.q, 0.02), s).command
    poisoned = np.array(target)
    poisoned[where] = bad
    decision = safety.filter(poisoned, s)
    assert decision.hold and decision.reasons == ("target is not finite",)
    np.testing.assert_array_equal(decision.command, last)


def test_wrong_size_and_missing_state() -> None:
    safety = SafetyFilter(CONFIG, DT)
    s = state(np.array(CONFIG.home))
    decision = safety.filter(np.zeros(7), s)
    assert decision.hold and "target has 7 values, expected 8" in decision.reasons[0]
    assert safety.filter(np.zeros(8), None).command is None  # no state: send nothing at all


def test_stale_state_holds_until_fresh_again() -> None:
    safety = SafetyFilter(CONFIG, DT)
    home = np.array(CONFIG.home)
    first = safety.filter(np.append(home + 0.05, 0.04), state(home)).command
    stale = safety.filter(np.append(home + 0.1, 0.04), state(home, age=0.5))
    assert stale.hold and "0.500 s old" in stale.reasons[0]
    np.testing.assert_array_equal(stale.command, first)
    fresh = safety.filter(np.append(home + 0.1, 0.04), state(home + 0.05))
    assert not fresh.hold


@settings(max_examples=50, deadline=None)
@given(targets=st.lists(targets, min_size=1, max_size=5))
def test_estop_latches_until_reset(targets: list[list[float]]) -> None:
    safety = SafetyFilter(CONFIG, DT)
    home = np.array(CONFIG.home)
    safety.filter(np.append(home + 0.05, 0.04), state(home))
    safety.estop()
    where = np.append(home, 0.02)
    for target in targets:  # whatever is asked, and however the arm is measured, it stays put
        decision = safety.filter(np.array(target), state(home + 0.01))
        assert decision.hold and decision.reasons == ("e-stop latched",)
        np.testing.assert_allclose(decision.command, where)
    safety.reset_estop()
    assert not safety.filter(np.append(home, 0.02), state(home)).hold


def test_forward_kinematics_matches_mujoco() -> None:
    mujoco = pytest.importorskip("mujoco")
    from robot_rl_sim.mjcf import load_model

    model = load_model(CONFIG.model)
    data = mujoco.MjData(model)
    arm = Arm(CONFIG.kinematics)
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(LOW, HIGH)
        data.qpos[:7] = q
        mujoco.mj_kinematics(model, data)
        np.testing.assert_allclose(arm.tcp(q), data.site("ee_site").xpos, atol=1e-9)
    # A damped least-squares step moves the tool where asked (to first order).
    q = np.array(CONFIG.home)
    dx = np.array([0.01, -0.005, 0.008])
    np.testing.assert_allclose(arm.tcp(q + arm.joint_step_for(q, dx)) - arm.tcp(q), dx, atol=5e-4)


@settings(max_examples=100, deadline=None)
@given(target=targets)
def test_a_tight_box_shortens_moves(target: list[float]) -> None:
    import dataclasses

    tip = Arm(CONFIG.kinematics).tcp(np.array(CONFIG.home))
    tight = dataclasses.replace(CONFIG, workspace=dataclasses.replace(
        CONFIG.workspace, low=tuple(tip - 0.01), high=tuple(tip + 0.01)))
    safety = SafetyFilter(tight, DT)
    decision = safety.filter(np.array(target), state(np.array(CONFIG.home)))
    assert safety.box_distance(safety.arm.tcp(decision.command[:7])) < 1e-9


def test_an_intended_hold_resends_the_last_safe_command_or_the_estop_hold() -> None:
    safety = SafetyFilter(CONFIG, DT)
    q = near_home([0.0] * 7)
    assert safety.hold(None, "stopping").command is None
    np.testing.assert_array_equal(safety.hold(state(q), "stopping").command, np.append(q, 0.02))  # nothing sent yet
    sent = safety.filter(np.append(q + 0.01, 0.03), state(q)).command
    decision = safety.hold(state(q + 0.005), "goal reached")
    assert decision.hold and decision.reasons == ("goal reached",)
    np.testing.assert_array_equal(decision.command, sent)
    safety.estop()
    np.testing.assert_array_equal(safety.hold(state(q + 0.02), "stopping").command, np.append(q + 0.005, 0.02))
