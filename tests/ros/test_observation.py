"""The policy node's observation and action mapping equal the simulated task's, value for value,
in both action spaces (reach; push and lift from the perceived cube), and a policy that does not
fit the robot is refused naming why."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robot_rl_ros.config import load_robot
from robot_rl_ros.observation import RobotReading, for_policy

pytestmark = pytest.mark.ros

CONFIG = load_robot(Path(__file__).resolve().parents[2] / "real" / "config" / "panda.yaml")
POSE = np.array([0.2, 0.3, -0.1, -2.2, 0.15, 2.4, 0.6])  # inside the joint limits, tool tilted a little
ACTIONS = {"joint": [0.5, -1.0, 0.25, 0.0, 0.75, -0.3, 1.0, -0.5], "ee": [0.5, -1.0, 0.25, -0.5]}


def sim_metadata(env: Any, task: str = "panda_reach") -> dict[str, Any]:
    """What an export of ``env``'s policy says about it (``robot_rl.offline.trainer.export_actor``)."""
    task_config = {k: v for k, v in dataclasses.asdict(env.task.config).items() if k != "randomization"}
    return {"task": task, "observation_dim": env.obs_dims["policy"], "action_dim": env.action_dim,
            "control_dt": env.control_dt, "task_config": task_config}


@pytest.mark.parametrize("space, gripper, size, action_dim",
                         [("joint", True, 32, 8), ("ee", True, 28, 4), ("joint", False, 31, 7), ("ee", False, 27, 3)])
def test_observation_and_targets_equal_the_simulators(space: str, gripper: bool, size: int, action_dim: int) -> None:
    pytest.importorskip("mujoco")
    import torch

    from robot_rl.envs import make
    from robot_rl_sim.constants import panda

    env = make("panda_reach", num_envs=1, overrides={"action_space": space, "gripper_action": gripper})
    try:
        env.reset(seed=2)
        sim, layout = env.sim, env.sim.layout
        builder = for_policy(CONFIG, sim_metadata(env))
        assert (builder.action_space, builder.size, builder.action_dim) == (space, size, action_dim)
        assert builder.target_dim == len(CONFIG.command_joints) == 8

        arm_q = [layout.qpos(j).start for j in panda.ARM_JOINTS]
        arm_qd = [layout.qvel(j).start for j in panda.ARM_JOINTS]
        fingers = [layout.qpos(j).start for j in panda.FINGER_JOINTS]
        qpos, qvel = sim.qpos.clone(), torch.zeros_like(sim.qvel)
        qpos[0, arm_q] = torch.as_tensor(POSE, dtype=torch.float32)
        qpos[0, fingers] = torch.tensor([0.012, 0.013])
        qvel[0, arm_qd] = torch.linspace(-0.5, 0.7, 7)
        sim.set_state(torch.tensor([0]), qpos, qvel)
        previous = torch.linspace(-0.9, 0.8, action_dim).unsqueeze(0)
        env.task.actions[:] = previous  # the previous action is part of the observation
        expected = env.task.observe(sim)["policy"][0].numpy()

        reading = RobotReading(sim.qpos[0, arm_q].double().numpy(), sim.qvel[0, arm_qd].double().numpy(),
                               float(sim.qpos[0, fingers].sum()))
        goal = sim.sensor("target_pos")[0].double().numpy()
        observation = builder.observe(reading, previous[0].double().numpy(), goal)
        assert observation.shape == (size,) and observation.dtype == np.float32
        np.testing.assert_allclose(observation, expected, atol=2e-6, rtol=0)

        action = np.array(ACTIONS[space][:action_dim])  # without a gripper action: the arm's only
        ctrl = env.task.action_to_ctrl(torch.tensor(action, dtype=torch.float32).unsqueeze(0), sim)[0].double()
        targets = builder.targets(action, reading)
        assert targets.shape == (8,)
        arm_ctrl = ctrl[[layout.actuator(a) for a in panda.ARM_ACTUATORS]].numpy()
        np.testing.assert_allclose(targets[:7], arm_ctrl, atol=5e-6, rtol=0)
        assert np.abs(targets[:7] - reading.q).max() > 0.05  # a real step, not two copies of q
        grip = float(ctrl[layout.actuator(panda.GRIPPER_ACTUATOR)])
        assert targets[7] == pytest.approx(0.01 if gripper else 0.0) == grip  # held closed without one
    finally:
        env.close()


@pytest.mark.parametrize("task", ["panda_push", "panda_lift"])
@pytest.mark.parametrize("space, gripper, size", [("joint", True, 38), ("ee", False, 33)])
def test_perceived_cube_observation_equals_the_simulators(task: str, space: str, gripper: bool, size: int) -> None:
    """The ROS builder fed the estimated cube gives the simulator's ``observation: perceived``
    value for value, including the estimator's error the simulator adds (``cube_bias``), and
    judges success as the task does."""
    pytest.importorskip("mujoco")
    import torch

    from robot_rl.envs import make
    from robot_rl_sim.constants import panda

    overrides = {"action_space": space, "gripper_action": gripper, "observation": "perceived"}
    env = make(task, num_envs=1, overrides=overrides)
    try:
        env.reset(seed=3)
        sim, layout = env.sim, env.sim.layout
        builder = for_policy(CONFIG, sim_metadata(env, task))
        assert (builder.task, builder.perceives, builder.size) == (task, ("cube",), size) == (
            task, ("cube",), env.obs_dims["policy"])

        arm_q = [layout.qpos(j).start for j in panda.ARM_JOINTS]
        arm_qd = [layout.qvel(j).start for j in panda.ARM_JOINTS]
        fingers = [layout.qpos(j).start for j in panda.FINGER_JOINTS]
        cube = layout.qpos("cube_joint").start
        target = sim.sensor("target_pos")[0].clone()
        qpos, qvel = sim.qpos.clone(), torch.zeros_like(sim.qvel)
        qpos[0, arm_q] = torch.as_tensor(panda.TABLE_READY_QPOS, dtype=torch.float32) + 0.05
        qpos[0, fingers] = torch.tensor([0.011, 0.012])
        qvel[0, arm_qd] = torch.linspace(-0.4, 0.6, 7)
        previous = torch.linspace(-0.7, 0.9, builder.action_dim).unsqueeze(0)
        env.task.actions[:] = previous
        bias = torch.tensor([0.012, -0.021, 0.004])
        env.task.cube_bias[0] = bias  # the estimator's error, as the simulator draws it per episode
        for offset, reached in (([0.03, -0.02, 0.0], True), ([0.12, 0.05, 0.0], False)):
            # Near the target (on the table for push; lift's target is in the air, so the cube is lifted there).
            place = target + torch.tensor(offset)
            if task == "panda_push":
                place[2] = panda.CUBE_HALF
            qpos[0, cube:cube + 3] = place
            qpos[0, cube + 3:cube + 7] = torch.tensor([0.9, 0.0, 0.0, 0.436])
            sim.set_state(torch.tensor([0]), qpos, qvel)
            expected = env.task.observe(sim)["policy"][0].numpy()

            reading = RobotReading(sim.qpos[0, arm_q].double().numpy(), sim.qvel[0, arm_qd].double().numpy(),
                                   float(sim.qpos[0, fingers].sum()))
            goal = sim.sensor("target_pos")[0].double().numpy()
            true_cube = sim.sensor("cube_pos")[0].double().numpy()
            seen = {"cube": true_cube + bias.double().numpy()}
            observation = builder.observe(reading, previous[0].double().numpy(), goal, seen)
            assert observation.shape == (size,) and observation.dtype == np.float32
            np.testing.assert_allclose(observation, expected, atol=2e-6, rtol=0)
            # Success from the cube as seen; with the true cube it is the simulator's own verdict.
            assert builder.success(reading, goal, {"cube": true_cube}) is bool(env.task.success(sim)[0]) is reached
    finally:
        env.close()


def test_push_and_lift_trained_on_the_true_cube_state_are_refused() -> None:
    for task, dims in (("panda_push", (42, 8)), ("panda_lift", (42, 8))):
        meta = {"task": task, "observation_dim": dims[0], "action_dim": dims[1], "task_config": {}}
        with pytest.raises(ValueError, match=rf"the {task} policy was trained with observation 'state': it reads "
                                             r"the cube's true pose.*env.task_overrides.observation: perceived"):
            for_policy(CONFIG, meta)
    meta = {"task": "panda_push", "observation_dim": 38, "action_dim": 8, "task_config": {"observation": "perceived"}}
    builder = for_policy(CONFIG, meta)
    reading = RobotReading(POSE, np.zeros(7), 0.02)
    with pytest.raises(ValueError, match="needs the estimated cube centre"):
        builder.observe(reading, np.zeros(8), np.zeros(3))
    # Push succeeds on the table plane: height does not count; lift's does.
    assert builder.success(reading, np.array([0.5, 0.0, 0.0]), {"cube": np.array([0.52, 0.0, 0.3])})
    lift = for_policy(CONFIG, {**meta, "task": "panda_lift"})
    assert not lift.success(reading, np.array([0.5, 0.0, 0.0]), {"cube": np.array([0.52, 0.0, 0.3])})


def metadata(space: str = "ee", observation_dim: int = 28, action_dim: int = 4, **task_config: Any) -> dict:
    return {"task": "panda_reach", "observation_dim": observation_dim, "action_dim": action_dim,
            "task_config": {"action_space": space, "action_scale": 0.1, **task_config}}


def test_an_ee_policy_maps_its_actions_by_the_ee_step() -> None:
    builder = for_policy(CONFIG, metadata(ee_step=0.02))
    reading = RobotReading(POSE, np.zeros(7), 0.05)
    targets = builder.targets(np.array([1.0, 0.0, -0.5, 1.0]), reading)
    np.testing.assert_allclose(targets[:7], POSE + builder.arm.ee_joint_step(POSE, [0.02, 0.0, -0.01]))
    assert targets[7] == 0.04  # gripper +1: fully open
    assert builder.targets(np.array([0.0, 0.0, 0.0, -1.0]), reading)[7] == 0.0
    assert builder.observe(reading, np.zeros(4), np.zeros(3)).shape == (28,)


def test_policies_that_do_not_fit_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"acts in the 'cartesian' action space; .*action_space joint or ee"):
        for_policy(CONFIG, metadata("cartesian"))
    with pytest.raises(ValueError, match="ee_step 0.0; it must be positive"):
        for_policy(CONFIG, metadata(ee_step=0.0))
    with pytest.raises(ValueError, match="expects 32 observations but panda_reach on panda gives 28"):
        for_policy(CONFIG, metadata(observation_dim=32))
    with pytest.raises(ValueError, match="outputs 8 actions but panda_reach in the 'ee' action space on panda "
                                         "takes 4"):
        for_policy(CONFIG, metadata(action_dim=8))
    with pytest.raises(ValueError, match="outputs 4 actions but panda_reach in the 'joint' action space on panda "
                                         "takes 8"):
        for_policy(CONFIG, metadata("joint", observation_dim=32))
    no_gripper = dataclasses.replace(CONFIG, gripper_command=False)
    with pytest.raises(ValueError, match=r"commands 8 values \(arm joints and the gripper\) but panda takes 7"):
        for_policy(no_gripper, metadata())
    assert for_policy(CONFIG, metadata("joint", 32, 8)).action_dim == 8
