"""Batched environments: the ``VecEnv`` protocol, tasks, backends and the gymnasium adapter."""

from robot_rl.envs.backend import BACKENDS, Backend, Layout
from robot_rl.envs.make import make, task_class, task_names
from robot_rl.envs.sim_env import SimVecEnv
from robot_rl.envs.task import TASKS, Randomization, ResetState, Task, TaskConfig, register_task
from robot_rl.envs.vec_env import Obs, VecEnv, check_actions

__all__ = [
    "BACKENDS", "TASKS", "Backend", "Layout", "Obs", "Randomization", "ResetState", "SimVecEnv",
    "Task", "TaskConfig", "VecEnv", "check_actions", "make", "register_task", "task_class", "task_names",
]
