"""Simulation for robot_rl: MuJoCo backends (native CPU, MuJoCo Warp) and the task modules.

Importing this package registers the backends and tasks with :mod:`robot_rl.envs`.
"""

from __future__ import annotations

import os

# MuJoCo picks its OpenGL platform when it is first imported; headless EGL is the default here.
os.environ.setdefault("MUJOCO_GL", "egl")

from robot_rl.envs.backend import BACKENDS, Backend  # noqa: E402


@BACKENDS.register("native")
def _native(scene: str, num_envs: int, device: str | None) -> Backend:
    from robot_rl_sim.mujoco_native import NativeBackend

    return NativeBackend(scene, num_envs, device)


@BACKENDS.register("warp")
def _warp(scene: str, num_envs: int, device: str | None) -> Backend:
    from robot_rl_sim.mujoco_warp import WarpBackend

    return WarpBackend(scene, num_envs, device)


from robot_rl_sim import tasks  # noqa: E402,F401  (registers the tasks)
