"""The arm's DH kinematics: the analytic Jacobian and tool axis against finite differences, and
the end-effector action step against the simulator's, configuration for configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robot_rl_ros.config import load_robot
from robot_rl_ros.kinematics import EE_DAMPING, IK_TILT_WEIGHT, Arm

pytestmark = pytest.mark.ros

CONFIG = load_robot(Path(__file__).resolve().parents[2] / "real" / "config" / "panda.yaml")
ARM = Arm(CONFIG.kinematics)
LOW, HIGH = np.array(CONFIG.limits.position_lower), np.array(CONFIG.limits.position_upper)
TABLE_READY = (0.0, 0.1125, 0.0, -2.5686, 0.0, 2.6811, 0.7854)  # the tabletop tasks' start, pointing down
# Home, the tabletop start and random joint angles over the whole range: spread-out configurations.
POSES = np.vstack([CONFIG.home, TABLE_READY, np.random.default_rng(3).uniform(LOW, HIGH, (6, 7))])
# Sim-vs-DH agreement of the ee step (rad): the simulator computes in float32; 2.2e-6 measured.
PARITY_ATOL = 5e-6


def skew_vector(s: np.ndarray) -> np.ndarray:
    """w float[3] of a skew-symmetric s float[3, 3] = [w]x."""
    return np.array([s[2, 1], s[0, 2], s[1, 0]])


@pytest.mark.parametrize("q", POSES, ids=[f"pose{i}" for i in range(len(POSES))])
def test_the_analytic_jacobian_and_tool_axis_match_finite_differences(q: np.ndarray) -> None:
    jac, eps = ARM.geometric_jacobian(q), 1e-6
    assert jac.shape == (6, 7)
    steps = np.eye(7) * eps
    central = (ARM.tcp(q + steps) - ARM.tcp(q - steps)).T / (2 * eps)  # d tcp / d q, column per joint
    np.testing.assert_allclose(jac[:3], central, atol=1e-8)
    rotation = ARM.frames(q).rotation
    z = ARM.tool_z(q)
    np.testing.assert_allclose(z, rotation[:, 2], atol=0)
    assert abs(np.linalg.norm(z) - 1.0) < 1e-12
    for i in range(7):
        step = np.eye(7)[i] * eps
        after, before = ARM.frames(q + step).rotation, ARM.frames(q - step).rotation
        # dR/dq_i = [w_i]x R: w_i is the tool's angular velocity per unit joint i velocity.
        spin = (after - before) / (2 * eps) @ rotation.T
        np.testing.assert_allclose(spin, -spin.T, atol=1e-8)
        np.testing.assert_allclose(jac[3:, i], skew_vector(spin), atol=1e-8)
        dz = (ARM.tool_z(q + step) - ARM.tool_z(q - step)) / (2 * eps)
        np.testing.assert_allclose(dz, np.cross(jac[3:, i], z), atol=1e-8)


def test_batches_give_what_single_configurations_give() -> None:
    displacement = np.array([0.01, -0.02, 0.005])
    jac, step = ARM.geometric_jacobian(POSES), ARM.ee_joint_step(POSES, displacement)
    assert jac.shape == (len(POSES), 6, 7) and step.shape == (len(POSES), 7)
    for i, q in enumerate(POSES):
        np.testing.assert_allclose(jac[i], ARM.geometric_jacobian(q), atol=1e-15)
        np.testing.assert_allclose(step[i], ARM.ee_joint_step(q, displacement), atol=1e-15)


def test_the_ee_step_moves_the_tool_and_levels_it() -> None:
    """From the tabletop start (pointing down) a small step moves the tool by about the
    displacement (less, by the damping); from a tilted pose a zero displacement turns it down."""
    q = np.array(TABLE_READY)
    dx = np.array([0.01, -0.01, 0.005])
    moved = ARM.tcp(q + ARM.ee_joint_step(q, dx)) - ARM.tcp(q)
    assert np.linalg.norm(moved - dx) < 0.2 * np.linalg.norm(dx), moved
    tilted = q + np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.0])  # the wrist pitched by 0.3 rad
    before = ARM.tool_z(tilted)[2]
    after = ARM.tool_z(tilted + ARM.ee_joint_step(tilted, np.zeros(3)))[2]
    assert before > -0.96 and after < -0.99  # cos(0.3) = 0.955 before; most of the tilt is gone after


def test_the_ee_step_equals_the_simulators() -> None:
    """Arm joints set in the native MuJoCo panda_reach (``action_space: ee``), the task's own
    ``ee_joint_step`` per displacement against the DH arm's, with the DH arm given the
    simulator's float32 joint angles; the tool axis and Jacobian agree as well."""
    pytest.importorskip("mujoco")
    import torch

    from robot_rl.envs import make
    from robot_rl_sim.constants import panda
    from robot_rl_sim.tasks.common import EE_DAMPING as SIM_DAMPING

    assert (IK_TILT_WEIGHT, EE_DAMPING) == (panda.IK_TILT_WEIGHT, SIM_DAMPING)
    env = make("panda_reach", num_envs=len(POSES), overrides={"action_space": "ee"})
    try:
        env.reset(seed=0)
        sim = env.sim
        qpos = sim.qpos.clone()
        arm_columns = [sim.layout.qpos(j).start for j in panda.ARM_JOINTS]
        qpos[:, arm_columns] = torch.as_tensor(POSES, dtype=torch.float32)
        sim.set_state(torch.arange(len(POSES)), qpos, torch.zeros_like(sim.qvel))
        q = sim.qpos[:, arm_columns].double().numpy()
        np.testing.assert_allclose(ARM.tool_z(q), sim.sensor("ee_zaxis").double().numpy(), atol=1e-6)
        np.testing.assert_allclose(ARM.geometric_jacobian(q), env.task.tip_jacobian(sim).double().numpy(),
                                   atol=2e-6)
        worst = 0.0
        for d in ([0.03, 0.0, 0.0], [0.0, -0.03, 0.0], [0.0, 0.0, 0.03], [0.012, 0.02, -0.025], [0.0, 0.0, 0.0]):
            displacement = torch.tensor(d, dtype=torch.float32).expand(len(POSES), 3)
            expected = env.task.ee_joint_step(sim, displacement).double().numpy()
            got = ARM.ee_joint_step(q, displacement.double().numpy())
            assert np.abs(expected).max() > 0.05  # steps of a few degrees, not a comparison of zeros
            np.testing.assert_allclose(got, expected, atol=PARITY_ATOL, rtol=0)
            worst = max(worst, float(np.abs(got - expected).max()))
        print(f"largest sim-vs-DH ee step difference: {worst:.2e} rad")
    finally:
        env.close()
