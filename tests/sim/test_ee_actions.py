"""The Panda tasks' end-effector action space: the tip Jacobian built from the arm's kinematic
sensors, tip motion along the commanded axis with the tool kept pointing down, and its errors."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from robot_rl.envs import make
from robot_rl_sim.constants import panda

EE = {"action_space": "ee"}


def test_tip_jacobian_matches_mujoco() -> None:
    """At reset states spread over the workspace (sensors describe the state exactly there), the
    Jacobian from link origins and axes equals mj_jacSite's, linear and angular rows."""
    env = make("panda_push", num_envs=6, overrides={**EE, "joint_noise": 0.6})
    env.reset(seed=4)
    jacobian = env.task.tip_jacobian(env.sim).double().numpy()
    model, data = env.sim.model, mujoco.MjData(env.sim.model)
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, panda.EE_SITE)
    dofs = [model.jnt_dofadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j)] for j in panda.ARM_JOINTS]
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    for i in range(env.num_envs):
        data.qpos[:] = env.sim.qpos[i].double().numpy()
        mujoco.mj_forward(model, data)
        mujoco.mj_jacSite(model, data, jacp, jacr, site)
        np.testing.assert_allclose(jacobian[i], np.vstack([jacp[:, dofs], jacr[:, dofs]]), atol=2e-6)
    env.close()


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_an_ee_action_moves_the_tip_along_its_axis_with_the_tool_down(axis: int) -> None:
    env = make("panda_push", num_envs=4, overrides=EE)
    env.reset(seed=1)
    assert env.action_dim == 4 and env.obs_dims["policy"] == 38
    step = env.task.config.ee_step
    for sign in (1.0, -1.0):
        action = torch.zeros(4, 4)
        action[:, axis], action[:, 3] = sign, 1.0
        start = env.sim.sensor("ee_pos").clone()
        for _ in range(4):
            env.step(action)
        moved = (env.sim.sensor("ee_pos") - start) / 4
        along = sign * moved[:, axis]
        across = moved.clone()
        across[:, axis] = 0
        assert (along > 0.5 * step).all() and (along < 1.05 * step).all(), moved
        assert (across.norm(dim=1) < 0.25 * along).all(), moved
        assert (env.sim.sensor("ee_zaxis")[:, 2] < -0.995).all()  # still pointing down
    env.close()


def test_the_gripper_is_the_last_action() -> None:
    env = make("panda_push", num_envs=2, overrides=EE)
    env.reset(seed=0)
    for _ in range(10):
        env.step(torch.tensor([[0.0, 0.0, 0.0, -1.0], [0.0, 0.0, 0.0, 1.0]]))
    width = env.task.gripper_width(env.sim)
    assert width[0] < 0.01 and width[1] > 0.07
    env.close()


def test_bad_action_space_settings_are_named() -> None:
    with pytest.raises(ValueError, match="action_space 'cartesian' is not one of joint, ee"):
        make("panda_reach", overrides={"action_space": "cartesian"})
    with pytest.raises(ValueError, match="ee_step must be positive"):
        make("panda_reach", overrides={**EE, "ee_step": 0.0})
