"""From robot state to a policy's observation, and from its action to joint targets, exactly as
the simulated task does (``sim/robot_rl_sim/tasks/common.py`` and the task module).

One class per task family, registered by task name; the policy file's metadata names the task.
Tasks around an object (push, lift) observe it through perception: the policy node hands
:meth:`TaskObservation.observe` the keypoints the camera estimator found (``seen``), and only
policies trained on that observation (``observation: perceived``) are accepted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from robot_rl_ros.config import RobotConfig
from robot_rl_ros.kinematics import Arm

GRIPPER_OPEN = 0.04  # m per finger at action +1, as panda.GRIPPER_OPEN in the simulator
ACTION_SPACES = ("joint", "ee")  # as the simulator's Panda tasks


@dataclass(frozen=True)
class RobotReading:
    """What one joint state says about the arm."""

    q: np.ndarray
    """float64[J] arm joint positions (rad)."""
    qd: np.ndarray
    """float64[J] arm joint velocities (rad/s)."""
    gripper_width: float
    """Distance between the fingers (m): the sum of the finger joints."""


class TaskObservation(ABC):
    """Builds ``observation float32[size]`` and maps ``action float[action_dim]`` in [-1, 1] to
    joint targets, in the action space the policy was trained in (``task_config["action_space"]``):

    - ``"joint"`` (J + 1 actions): arm joint targets = measured + ``action_scale``·action[:J].
    - ``"ee"`` (4 actions): the tool moves by ``ee_step``·action[:3] (m, base frame x, y, z) while
      turning to point down, by one damped least-squares step (:meth:`Arm.ee_joint_step`).

    The last action is the gripper in both, unless the policy was trained with ``gripper_action:
    false`` (one action fewer, the gripper held closed); the targets are always J + 1 (arm and
    gripper)."""

    task_size: ClassVar[int]
    """Observation entries after the robot's (``robot_obs``)."""
    task: ClassVar[str] = ""
    """The task name it is registered for."""
    perceives: ClassVar[tuple[str, ...]] = ()
    """Keypoints the observation needs from the camera estimator (e.g. ``("cube",)``)."""
    goal_dim: ClassVar[int] = 3

    def __init__(self, config: RobotConfig, task_config: dict[str, Any]) -> None:
        self.config = config
        self.home = np.asarray(config.home, dtype=np.float64)
        self.action_scale = float(task_config.get("action_scale", 0.1))
        self.action_space = task_config.get("action_space", "joint")
        if self.action_space not in ACTION_SPACES:
            raise ValueError(f"the policy acts in the {self.action_space!r} action space; the robot nodes run "
                             f"policies trained with action_space {' or '.join(ACTION_SPACES)}")
        self.ee_step = float(task_config.get("ee_step", 0.03))
        if self.ee_step <= 0:
            raise ValueError(f"the policy's task_config has ee_step {self.ee_step}; it must be positive "
                             "(metres per control step)")
        self.gripper_action = bool(task_config.get("gripper_action", True))
        """Whether the policy's last action commands the gripper (else it is held closed)."""
        self.arm = Arm(config.kinematics)
        dof = len(self.home)
        self.action_dim = (dof + 1 if self.action_space == "joint" else 4) - (not self.gripper_action)
        """Actions the policy outputs: J + 1 in joint space, 4 in ee space (one fewer without
        the gripper action)."""
        self.target_dim = dof + 1
        """Values of :meth:`targets`: arm joint targets and the gripper opening."""
        self.size = 2 * dof + 1 + self.action_dim + self.task_size
        """Length of the observation (the previous action is part of it)."""

    @abstractmethod
    def observe(self, reading: RobotReading, previous_action: np.ndarray, goal: np.ndarray,
                seen: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The policy's observation float32[size] from a robot reading, the goal float[goal_dim]
        and the keypoints ``seen`` by perception (name -> world point float[3], metres) for
        tasks that perceive some."""

    @abstractmethod
    def success(self, reading: RobotReading, goal: np.ndarray, seen: Mapping[str, np.ndarray] | None = None) -> bool:
        """Whether the goal is reached, judged from what the robot measures and perceives."""

    def targets(self, action: np.ndarray, reading: RobotReading) -> np.ndarray:
        """float64[J+1]: arm joint targets (rad) = measured + the action's joint step, then the
        gripper opening (m) = 0.04·(action[-1] + 1)/2 (0, closed, without a gripper action), for
        action float[action_dim]."""
        if self.action_space == "ee":
            step = self.arm.ee_joint_step(reading.q, self.ee_step * np.asarray(action[:3], dtype=np.float64))
        else:
            step = self.action_scale * np.asarray(action[:len(self.home)], dtype=np.float64)
        grip = GRIPPER_OPEN * 0.5 * (action[-1] + 1.0) if self.gripper_action else 0.0
        return np.append(reading.q + step, grip)

    def robot_obs(self, reading: RobotReading, previous_action: np.ndarray) -> np.ndarray:
        """float64[2J+1+A]: joints − home, 0.1·velocities, gripper width, previous action."""
        return np.concatenate([reading.q - self.home, 0.1 * reading.qd, [reading.gripper_width], previous_action])


TASKS: dict[str, type[TaskObservation]] = {}


def register(name: str) -> Callable[[type[TaskObservation]], type[TaskObservation]]:
    def add(cls: type[TaskObservation]) -> type[TaskObservation]:
        cls.task = name
        TASKS[name] = cls
        return cls

    return add


@register("panda_reach")
class PandaReach(TaskObservation):
    """Observation (32 with joint actions, 28 with ee actions): robot (15 + A), tool position (3),
    goal (3), goal − tool (3); metres."""

    task_size = 9

    def __init__(self, config: RobotConfig, task_config: dict[str, Any]) -> None:
        super().__init__(config, task_config)
        self.success_distance = float(task_config.get("success_distance", 0.05))

    def observe(self, reading: RobotReading, previous_action: np.ndarray, goal: np.ndarray,
                seen: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        tip = self.arm.tcp(reading.q)
        return np.concatenate([self.robot_obs(reading, previous_action), tip, goal, goal - tip]).astype(np.float32)

    def success(self, reading: RobotReading, goal: np.ndarray, seen: Mapping[str, np.ndarray] | None = None) -> bool:
        return bool(np.linalg.norm(goal - self.arm.tcp(reading.q)) < self.success_distance)


class CubeTask(TaskObservation):
    """panda_push and panda_lift as trained with ``observation: perceived``
    (``sim/robot_rl_sim/tasks/cube.py``), 38 values with joint actions (34 with ee actions, one
    fewer without the gripper action): robot (15 + A), tool position (3), the cube centre the
    camera estimator found (3), goal (3), cube − tool (3), goal − cube (3); metres."""

    task_size = 15
    perceives = ("cube",)
    success_dims: ClassVar[int]
    """Leading coordinates the cube-to-goal distance of success is measured over (2: on the table)."""

    def __init__(self, config: RobotConfig, task_config: dict[str, Any]) -> None:
        super().__init__(config, task_config)
        observation = task_config.get("observation", "state")
        if observation != "perceived":
            raise ValueError(f"the {self.task} policy was trained with observation {observation!r}: it reads the "
                             "cube's true pose, which a robot does not have; train it with "
                             "env.task_overrides.observation: perceived (the cube as a camera estimator gives "
                             "it) and deploy that policy with --perception MODEL")
        self.success_distance = float(task_config.get("success_distance", 0.05))

    @staticmethod
    def cube(seen: Mapping[str, np.ndarray] | None) -> np.ndarray:
        if seen is None or "cube" not in seen:
            raise ValueError("the cube observation needs the estimated cube centre (seen['cube'])")
        return np.asarray(seen["cube"], dtype=np.float64)

    def observe(self, reading: RobotReading, previous_action: np.ndarray, goal: np.ndarray,
                seen: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        tip, cube = self.arm.tcp(reading.q), self.cube(seen)
        return np.concatenate([self.robot_obs(reading, previous_action), tip, cube, goal, cube - tip,
                               goal - cube]).astype(np.float32)

    def success(self, reading: RobotReading, goal: np.ndarray, seen: Mapping[str, np.ndarray] | None = None) -> bool:
        """The estimated cube is within ``success_distance`` of the goal (a robot has no other
        view of the cube)."""
        n = self.success_dims
        return bool(np.linalg.norm(np.asarray(goal[:n]) - self.cube(seen)[:n]) < self.success_distance)


@register("panda_push")
class PandaPush(CubeTask):
    """Push the cube onto a target on the table: success by the distance on the table plane."""

    success_dims = 2


@register("panda_lift")
class PandaLift(CubeTask):
    """Lift the cube to a target in the air: success by the distance in space."""

    success_dims = 3


def for_policy(config: RobotConfig, metadata: dict[str, Any]) -> TaskObservation:
    """The observation builder of an exported policy; raises ValueError naming the mismatch."""
    task = metadata.get("task")
    if task not in TASKS:
        raise ValueError(f"the policy was trained on task {task!r}, which the policy node cannot observe on a real "
                         f"robot; supported tasks: {', '.join(TASKS)}")
    builder = TASKS[task](config, metadata.get("task_config", {}))
    if metadata.get("observation_dim") != builder.size:
        raise ValueError(f"the policy expects {metadata.get('observation_dim')} observations but {task} on "
                         f"{config.name} gives {builder.size}; export a policy trained on {task}")
    if metadata.get("action_dim") != builder.action_dim:
        raise ValueError(f"the policy outputs {metadata.get('action_dim')} actions but {task} in the "
                         f"{builder.action_space!r} action space on {config.name} takes {builder.action_dim}; "
                         f"export a policy trained on {task} for this arm")
    if builder.target_dim != len(config.command_joints):
        raise ValueError(f"{task} commands {builder.target_dim} values (arm joints and the gripper) but "
                         f"{config.name} takes {len(config.command_joints)} ({', '.join(config.command_joints)}); "
                         "set gripper_command: true in the robot config")
    return builder
