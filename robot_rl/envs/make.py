"""Build a batched environment by task name."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from robot_rl.envs.backend import BACKENDS
from robot_rl.envs.sim_env import SimVecEnv
from robot_rl.envs.task import TASKS, Task, TaskConfig

_SIM_PACKAGE = "robot_rl_sim"


def _missing_simulator(error: ModuleNotFoundError) -> ModuleNotFoundError:
    return ModuleNotFoundError(f"simulation needs {error.name!r}; install it with: pip install 'robot-rl[sim]'",
                               name=error.name)


def load_simulation() -> None:
    """Import the simulation package, which registers its tasks and backends."""
    try:
        importlib.import_module(_SIM_PACKAGE)
    except ModuleNotFoundError as error:
        raise _missing_simulator(error) from error


def task_class(name: str) -> type[Task]:
    """The registered task class called ``name``; the error lists the registered tasks."""
    load_simulation()
    return TASKS.get(name)


def make(
    task: str,
    num_envs: int = 1,
    backend: str = "native",
    device: str | None = None,
    seed: int = 0,
    config: TaskConfig | None = None,
    overrides: dict[str, Any] | None = None,
    image_cameras: tuple[str, ...] = (),
    image_size: tuple[int, int] = (84, 84),
    image_antialias: bool = True,
) -> SimVecEnv:
    """N worlds of ``task`` as a :class:`SimVecEnv`.

    Args:
        task: a registered task name (``robot-rl tasks`` lists them).
        backend: ``"native"`` (MuJoCo on the CPU) or ``"warp"`` (MuJoCo Warp, GPU when present).
        device: torch device for the warp backend (``"cuda"`` when available, else ``"cpu"``);
            the native backend always runs on the CPU.
        config: the task's config; ``overrides`` replace fields of it (or of the default).
        image_cameras: cameras rendered into ``obs["rgb"]`` at ``image_size`` (H, W) each step,
            multisampled unless ``image_antialias`` is False (faster, jagged edges).
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be at least 1, got {num_envs}")
    cls = task_class(task)
    config = with_overrides(config or cls.config_class(), overrides, task)
    try:
        sim = BACKENDS.get(backend)(cls.scene, num_envs, device)
    except ModuleNotFoundError as error:
        raise _missing_simulator(error) from error
    return SimVecEnv(cls(config, num_envs, sim.device, sim.layout), sim, seed, image_cameras, image_size,
                     image_antialias)


def with_overrides(config: TaskConfig, overrides: dict[str, Any] | None, task: str) -> TaskConfig:
    """``config`` with the fields ``overrides`` names replaced; unknown names raise an error
    listing the valid ones."""
    if not overrides:
        return config
    names = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"{task}: unknown config fields {unknown}; valid fields: {', '.join(sorted(names))}")
    return dataclasses.replace(config, **overrides)


def task_names() -> list[str]:
    load_simulation()
    return TASKS.names()
