"""Our tasks on Isaac Lab, kit-less (no Isaac Sim): Newton physics with MuJoCo Warp as solver.

Two ways in, both running the task modules of :mod:`robot_rl_sim.tasks` unchanged:

- ``robot_rl.envs.make(task, backend="isaaclab")`` (or ``env.backend: isaaclab`` in a launch
  file for ``robot-rl train``): :class:`~robot_rl_sim.isaaclab.backend.IsaacLabBackend` behind
  our :class:`~robot_rl.envs.sim_env.SimVecEnv`.
- Isaac Lab's own scripts: importing this package registers every task in Gymnasium as
  ``RobotRL-<Task>-v0`` (``RobotRL-PandaReach-v0``, ...), a
  :class:`~robot_rl_sim.isaaclab.env.RobotRLEnv` (a ``DirectRLEnv``) with
  ``env_cfg_entry_point`` and ``rsl_rl_cfg_entry_point``.

Isaac Lab 3.0 installs only on Python 3.12: ``pip install 'robot-rl[isaaclab]'`` in a Python
3.12 environment (``.ci/isaaclab`` builds one). This module imports without it, so the
registration and :func:`require_isaaclab`'s message work everywhere.
"""

from __future__ import annotations

import importlib.util
import sys

import gymnasium

from robot_rl.envs.task import TASKS

REQUIRED = ("isaaclab", "isaaclab_newton", "mujoco_usd_converter")


def require_isaaclab() -> None:
    """Raise one ImportError saying which Python and extra to install when Isaac Lab is missing."""
    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if not missing:
        return
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    raise ImportError(
        f"backend 'isaaclab' needs Isaac Lab 3.0, which installs only on Python 3.12; this is Python {python} "
        f"without {', '.join(missing)}. Install robot-rl[isaaclab] in a Python 3.12 environment: "
        "python3.12 -m venv .isaac-venv && .isaac-venv/bin/pip install -e '.[isaaclab]' (.ci/isaaclab does this)"
    )


def gym_id(task: str) -> str:
    """``panda_reach`` -> ``RobotRL-PandaReach-v0``."""
    return "RobotRL-" + "".join(part.capitalize() for part in task.split("_")) + "-v0"


def _register() -> None:
    for task in TASKS.names():
        if gym_id(task) in gymnasium.registry:
            continue
        cls_name = gym_id(task)[len("RobotRL-"):-len("-v0")]
        gymnasium.register(
            id=gym_id(task),
            entry_point=f"{__name__}.env:RobotRLEnv",
            disable_env_checker=True,
            kwargs={
                "env_cfg_entry_point": f"{__name__}.env:{cls_name}EnvCfg",
                "rsl_rl_cfg_entry_point": f"{__name__}.agents:{cls_name}PPORunnerCfg",
                "default_agent": "rsl_rl",
            },
        )


_register()
