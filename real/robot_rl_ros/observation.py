"""From robot state to a policy's observation, and from its action to joint targets, exactly as
the simulated task does (``sim/robot_rl_sim/tasks/common.py`` and the task module).

One class per task family, registered by task name; the policy file's metadata names the task.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from robot_rl_ros.config import RobotConfig
from robot_rl_ros.kinematics import Arm

GRIPPER_OPEN = 0.04  # m per finger at action +1, as panda.GRIPPER_OPEN in the simulator


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
    """Builds ``observation float32[P]`` and maps ``action float[A]`` in [-1, 1] to targets."""

    size: ClassVar[int]
    action_dim: ClassVar[int]

    def __init__(self, config: RobotConfig, task_config: dict[str, Any]) -> None:
        self.config = config
        self.home = np.asarray(config.home, dtype=np.float64)
        self.action_scale = float(task_config.get("action_scale", 0.1))
        space = task_config.get("action_space", "joint")
        if space != "joint":
            raise ValueError(f"the policy acts in the {space!r} action space, but the robot nodes send joint-delta "
                             "targets; deploy a policy trained with action_space: joint")
        self.arm = Arm(config.kinematics)

    @abstractmethod
    def observe(self, reading: RobotReading, previous_action: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The policy's observation float32[size] from a robot reading."""

    def targets(self, action: np.ndarray, reading: RobotReading) -> np.ndarray:
        """Arm joint targets float64[J] (rad) = measured + action_scale·action[:J], then the
        gripper opening (m) = 0.04·(action[J] + 1)/2."""
        dof = len(self.home)
        arm = reading.q + self.action_scale * action[:dof]
        return np.append(arm, GRIPPER_OPEN * 0.5 * (action[dof] + 1.0))

    def robot_obs(self, reading: RobotReading, previous_action: np.ndarray) -> np.ndarray:
        """float64[2J+1+A]: joints − home, 0.1·velocities, gripper width, previous action."""
        return np.concatenate([reading.q - self.home, 0.1 * reading.qd, [reading.gripper_width], previous_action])


TASKS: dict[str, type[TaskObservation]] = {}


def register(name: str) -> Callable[[type[TaskObservation]], type[TaskObservation]]:
    def add(cls: type[TaskObservation]) -> type[TaskObservation]:
        TASKS[name] = cls
        return cls

    return add


@register("panda_reach")
class PandaReach(TaskObservation):
    """Observation (32): robot (23), tool position (3), goal (3), goal − tool (3); metres."""

    size = 32
    action_dim = 8
    goal_dim = 3

    def __init__(self, config: RobotConfig, task_config: dict[str, Any]) -> None:
        super().__init__(config, task_config)
        self.success_distance = float(task_config.get("success_distance", 0.05))

    def observe(self, reading: RobotReading, previous_action: np.ndarray, goal: np.ndarray) -> np.ndarray:
        tip = self.arm.tcp(reading.q)
        return np.concatenate([self.robot_obs(reading, previous_action), tip, goal, goal - tip]).astype(np.float32)

    def success(self, reading: RobotReading, goal: np.ndarray) -> bool:
        return bool(np.linalg.norm(goal - self.arm.tcp(reading.q)) < self.success_distance)


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
    if metadata.get("action_dim") != builder.action_dim or builder.action_dim != len(config.command_joints):
        raise ValueError(f"the policy outputs {metadata.get('action_dim')} actions; {config.name} takes "
                         f"{len(config.command_joints)} ({', '.join(config.command_joints)})")
    return builder
