"""Simulation for robot_rl: MuJoCo backends (native CPU, MuJoCo Warp) and the task modules.

Importing this package registers the backends and tasks with :mod:`robot_rl.envs`.
"""

from __future__ import annotations

import os

# MuJoCo picks its OpenGL platform when it is first imported; headless EGL is the default here.
os.environ.setdefault("MUJOCO_GL", "egl")
_KNOWN_GL = {"egl", "osmesa", "glfw", "glx", "", "disable", "disabled", "off", "false", "0",
             "enable", "enabled", "on", "true", "1"}
if os.environ["MUJOCO_GL"].lower().strip() not in _KNOWN_GL:
    # MuJoCo would refuse at import with no hint; say what works instead.
    raise RuntimeError(
        f"MUJOCO_GL={os.environ['MUJOCO_GL']!r} is not a renderer MuJoCo knows; for headless rendering set "
        "MUJOCO_GL=egl (Debian/Ubuntu: apt-get install libegl1 libgl1) or MUJOCO_GL=osmesa "
        "(apt-get install libosmesa6)"
    )

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
