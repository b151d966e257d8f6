"""Run directories and checkpoints (plain tensors and numbers: loadable with weights_only=True)."""

from __future__ import annotations

import datetime
import pickle
import re
from pathlib import Path
from typing import Any

import torch
import yaml

from robot_rl.algorithms.networks import ActorCritic
from robot_rl.configs import TrainConfig, from_dict, to_dict

FORMAT = "robot_rl.ppo/1"
_CHECKPOINT = re.compile(r"model_(\d+)\.pt$")
UNREADABLE = (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError)
"""What ``torch.load`` raises for a file that is truncated, corrupted or not a checkpoint."""


class CheckpointError(ValueError):
    """A checkpoint that is unreadable or belongs to a different task or network."""


def new_run_dir(cfg: TrainConfig) -> Path:
    """``<root>/<task>/<YYYY-mm-dd_HH-MM-SS>/`` (suffixed if it exists), created."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    base = Path(cfg.log.root) / cfg.env.task.replace(":", "_") / stamp  # gym:Env-v5 -> gym_Env-v5
    path, i = base, 1
    while path.exists():
        path, i = base.with_name(f"{stamp}_{i}"), i + 1
    (path / "checkpoints").mkdir(parents=True)
    return path


def write_config(run_dir: Path, cfg: TrainConfig) -> None:
    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def read_config(run_dir: Path) -> TrainConfig:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory: it has no config.yaml")
    return from_dict(TrainConfig, yaml.safe_load(path.read_text()))


def newest_checkpoint(folder: Path) -> Path | None:
    """The ``model_<steps>.pt`` in ``folder`` with the largest number, or None."""
    found = [(int(m.group(1)), p) for p in Path(folder).glob("model_*.pt") if (m := _CHECKPOINT.search(p.name))]
    return max(found)[1] if found else None


def latest_checkpoint(run_dir: Path) -> Path:
    newest = newest_checkpoint(Path(run_dir) / "checkpoints")
    if newest is None:
        raise FileNotFoundError(f"no checkpoints in {Path(run_dir) / 'checkpoints'}")
    return newest


def save_checkpoint(path: Path, *, task: str, dims: dict[str, int], model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, iteration: int, env_steps: int, lr: float,
                    cfg: TrainConfig) -> Path:
    payload = {
        "format": FORMAT, "task": task, "dims": dict(dims), "model": model.state_dict(),
        "optimizer": optimizer.state_dict(), "iteration": iteration, "env_steps": env_steps, "lr": lr,
        "config": to_dict(cfg),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint behind
    return path


def load_checkpoint(path: Path, task: str | None = None, dims: dict[str, int] | None = None) -> dict[str, Any]:
    """Read a checkpoint with weights-only loading and check it fits ``task`` and ``dims``."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except UNREADABLE as error:
        raise CheckpointError(f"{path} is corrupted or not a robot_rl checkpoint ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a robot_rl PPO checkpoint (expected format {FORMAT})")
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
