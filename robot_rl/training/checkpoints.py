"""PPO checkpoints (plain tensors and numbers: loadable with weights_only=True, with a checksum)
and the PPO run's typed config. The run directory itself is :mod:`robot_rl.training.rundir`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from robot_rl.algorithms.networks import ActorCritic
from robot_rl.configs import ConfigError, TrainConfig, from_dict, to_dict
from robot_rl.training.rundir import RunDir, newest_checkpoint, read_config_dict
from robot_rl.utils.files import CorruptFileError, read_checked, write_checked

FORMAT = "robot_rl.ppo/1"
REQUIRED = ("task", "dims", "model", "optimizer", "iteration", "env_steps", "lr")


class CheckpointError(CorruptFileError):
    """A checkpoint that is unreadable or belongs to a different task or network."""


def new_run_dir(cfg: TrainConfig) -> RunDir:
    """``<root>/<task>/<YYYY-mm-dd_HH-MM-SS>/`` (suffixed if it exists), created and locked."""
    return RunDir.create(cfg.log.root, cfg.env.task)


def write_config(run_dir: RunDir, cfg: TrainConfig) -> None:
    run_dir.write_config(to_dict(cfg))


def read_config(run_dir: Path) -> TrainConfig:
    try:
        return from_dict(TrainConfig, read_config_dict(Path(run_dir)))
    except ConfigError as error:
        raise ConfigError(f"{Path(run_dir) / 'config.yaml'}: {error}") from None


def latest_checkpoint(run_dir: Path) -> Path:
    newest = newest_checkpoint(Path(run_dir) / "checkpoints")
    if newest is None:
        raise FileNotFoundError(f"no checkpoints in {Path(run_dir) / 'checkpoints'}")
    return newest


def save_checkpoint(path: Path, *, task: str, dims: dict[str, int], model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, iteration: int, env_steps: int, lr: float,
                    cfg: TrainConfig) -> Path:
    """Write the checkpoint whole or not at all (a temporary file moved into place), with a checksum."""
    return write_checked(path, {
        "format": FORMAT, "task": task, "dims": dict(dims), "model": model.state_dict(),
        "optimizer": optimizer.state_dict(), "iteration": iteration, "env_steps": env_steps, "lr": lr,
        "config": to_dict(cfg),
    })


def load_checkpoint(path: Path, task: str | None = None, dims: dict[str, int] | None = None) -> dict[str, Any]:
    """Read a checkpoint with weights-only loading, verify its CRCs and checksum, and check it
    fits ``task`` and ``dims``; CheckpointError with one line otherwise."""
    try:
        payload = read_checked(path, FORMAT, "robot_rl PPO checkpoint")
    except CorruptFileError as error:
        raise CheckpointError(str(error)) from None
    missing = [key for key in REQUIRED if key not in payload]
    if missing:
        raise CheckpointError(f"{path} is not a complete robot_rl PPO checkpoint: it lacks {', '.join(missing)}")
    if task is not None and payload["task"] != task:
        raise CheckpointError(f"{path} was trained on task {payload['task']!r}, not {task!r}")
    if dims is not None and payload["dims"] != dims:
        raise CheckpointError(f"{path} has observation/action sizes {payload['dims']}, "
                              f"but this environment has {dims}")
    return payload


def restore_model(run_dir: Path, checkpoint: Path | None = None) -> tuple[TrainConfig, ActorCritic, Path]:
    """The run's config and its actor-critic with the weights of ``checkpoint`` (default: latest)."""
    cfg = read_config(Path(run_dir))
    path = Path(checkpoint) if checkpoint else latest_checkpoint(Path(run_dir))
    payload = load_checkpoint(path, cfg.env.task)
    a, dims = cfg.algo, payload["dims"]
    model = ActorCritic(dims["actor_obs"], dims["critic_obs"], dims["actions"], a.actor_hidden, a.critic_hidden,
                        a.activation, a.init_noise_std, a.normalize_obs)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not match the network in {run_dir}/config.yaml: "
                              f"{str(error).splitlines()[0]}") from None
    return cfg, model, path
