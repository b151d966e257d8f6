"""Offline training from a dataset (BC, IQL, TD3+BC) into a run directory like online training's.

    trainer = OfflineTrainer(load(OfflineConfig, "launch/offline/panda_push_iql.yaml"))
    summary = trainer.train()     # runs/<task>/<timestamp>/: config.yaml, checkpoints/, metrics.csv,
                                  # curves.png, policy.pt, eval.json (+ rollout.mp4)
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_rl.algorithms.replay import FixedNorm, ReplayBuffer
from robot_rl.configs import to_dict
from robot_rl.configs.offline import OfflineConfig
from robot_rl.data.dataset import Dataset, DatasetError, Transitions
from robot_rl.training.rundir import RunDir
from robot_rl.training.runner import write_evaluation  # at import: a long run ends with the code it started with
from robot_rl.utils.files import write_checked
from robot_rl.utils.signals import sigterm_interrupts

CHECKPOINT_FORMAT = "robot_rl.offline/1"


def obs_group(column: str) -> str:
    """The env observation group of a dataset column: ``observation.policy`` -> ``policy``."""
    if not column.startswith("observation.") or column.startswith("observation.images."):
        raise DatasetError(f"obs column {column!r} must be an observation vector, e.g. observation.policy")
    return column.removeprefix("observation.")


def progress_filter(t: Transitions, progress_before: np.ndarray, progress_after: np.ndarray,
                    min_increase: float = 0.0) -> Transitions:
    """GR-RL's filter: keep the transitions whose progress increases by more than ``min_increase``
    (progress float[N] of the observation before and after each step)."""
    keep = torch.as_tensor(np.asarray(progress_after) - np.asarray(progress_before) > min_increase)
    return t.select(keep)


def learned_progress_mask(ds: Dataset, done: torch.Tensor, column: str) -> torch.Tensor:
    """bool[N]: the transitions whose progress increases (GR-RL), by a progress column such as
    learned rewards from ``robot-rl label`` read as progress.
    An ``observation.*`` column holds the progress of each frame: transition t's progress goes
    from frame t to frame t+1 (an episode's last transition is kept when it ends terminally). A
    ``next.*`` column holds the progress after each step: from transition t-1's value to t's
    (an episode's first transition is kept)."""
    p = ds.column(column).astype(np.float64)
    if p.ndim != 1:
        raise DatasetError(f"progress column {column!r} must hold one value per frame")
    episode = ds.episode_index()
    same = episode[1:] == episode[:-1]
    if column.startswith("next."):
        before = np.concatenate([[-np.inf], np.where(same, p[:-1], -np.inf)])
        after = p
    else:
        before = p
        after = np.concatenate([np.where(same, p[1:], np.where(done.numpy()[:-1], np.inf, p[:-1])),
                                [np.inf if bool(done[-1]) else p[-1]]])
    return torch.as_tensor(after > before)


def resolve_task(cfg: OfflineConfig, dataset: Dataset | None) -> OfflineConfig:
    """``cfg`` with ``task`` and ``task_overrides`` filled in from the dataset where unset."""
    task = cfg.task or (dataset.task if dataset is not None else None)
    if not task:
        raise DatasetError(f"{cfg.dataset} does not name the simulation task it was recorded in; set task:"
                           if cfg.dataset else "name the simulation task: task: (or give a dataset recorded in one)")
    overrides = cfg.task_overrides
    if overrides is None:
        overrides = dataset.task_overrides if dataset is not None else {}
    return dataclasses.replace(cfg, task=task, task_overrides=dict(overrides))


def check_fits(task: str, group: str, column: str, obs_dim: int, action_dim: int, dataset: str,
               overrides: dict[str, Any] | None = None) -> None:
    """Raise naming the column when the dataset's observations or actions do not fit ``task``
    (with ``overrides`` of its config)."""
    from robot_rl.envs import make

    env = make(task, num_envs=1, overrides=overrides)
    sizes = dict(env.obs_dims), env.action_dim
    env.close()
    if group not in sizes[0]:
        raise DatasetError(f"{task} has no observation group {group!r} for column {column!r}; "
                           f"it has {', '.join(sizes[0])}")
    if sizes[0][group] != obs_dim:
        raise DatasetError(f"{dataset}: column {column!r} has {obs_dim} values per frame but {task} observes "
                           f"{sizes[0][group]}; the dataset was recorded with another robot or task")
    if sizes[1] != action_dim:
        raise DatasetError(f"{dataset}: column 'action' has {action_dim} values per frame but {task} takes "
                           f"{sizes[1]}; the dataset was recorded with another robot or task")


def successful_episodes(ds: Dataset) -> np.ndarray:
    """int64[E]: the episodes whose last frame is a success (as evaluation counts success: an
    episode that reached the target and then pushed the cube off it is not one)."""
    success = ds.column("next.success").astype(bool)
    episode = ds.episode_index()
    if len(episode) == 0:
        return episode
    last = np.ones(len(episode), dtype=bool)
    last[:-1] = episode[1:] != episode[:-1]
    return episode[last & success]


def frames_until_success(ds: Dataset, after: int) -> np.ndarray:
    """bool[frames]: each episode's frames up to its first success and ``after`` more (every
    frame of an episode that never succeeds)."""
    success = ds.column("next.success").astype(bool)
    episode = ds.episode_index()
    keep = np.ones(len(episode), dtype=bool)
    for e in np.unique(episode[success]):
        frames = np.flatnonzero(episode == e)
        first = np.argmax(success[frames])
        keep[frames[first + after + 1:]] = False
    return keep


def load_dataset(cfg: OfflineConfig) -> tuple[Dataset, Transitions]:
    ds = Dataset(cfg.dataset, require=(cfg.obs, "action", cfg.reward))
    if len(ds) == 0:
        raise DatasetError(f"{cfg.dataset} holds no readable episodes")
    t = ds.transitions(obs=cfg.obs, reward=cfg.reward)
    keep = torch.ones(len(t), dtype=torch.bool)
    if cfg.algo == "bc" and cfg.bc.success_only:
        episode = ds.episode_index()
        keep &= torch.as_tensor(np.isin(episode, successful_episodes(ds)))
    if cfg.progress_filter:
        keep &= learned_progress_mask(ds, t.done, cfg.progress_filter)
    t = t.select(keep)
    if len(t) == 0:
        raise DatasetError(f"{cfg.dataset}: no transitions left after filtering")
    return ds, t


def build_algorithm(cfg: OfflineConfig, obs_dim: int, action_dim: int, norm: FixedNorm, generator: torch.Generator):
    from robot_rl.algorithms.bc import BC
    from robot_rl.algorithms.iql import IQL
    from robot_rl.algorithms.sac import SAC
    from robot_rl.algorithms.td3bc import TD3BC

    if cfg.algo == "bc":
        return BC(obs_dim, action_dim, cfg.net, norm)
    if cfg.algo == "iql":
        return IQL(obs_dim, action_dim, cfg.net, cfg.iql, norm)
    if cfg.algo == "td3bc":
        return TD3BC(obs_dim, action_dim, cfg.net, cfg.td3bc, norm, generator)
    return SAC(obs_dim, action_dim, cfg.net, cfg.sac, norm, generator)


def eval_config(cfg: OfflineConfig, task: str):
    """A :class:`TrainConfig` that builds the evaluation env of ``task`` for ``write_evaluation``."""
    from robot_rl.configs import EnvConfig, LogConfig, TrainConfig

    return TrainConfig(env=EnvConfig(task=task, num_envs=max(1, cfg.eval.episodes),
                                     task_overrides=dict(cfg.task_overrides or {})),
                       log=LogConfig(root=cfg.root, video=cfg.eval.video, video_seconds=cfg.eval.video_seconds,
                                     eval_episodes=cfg.eval.episodes), seed=cfg.seed)


class ExportView(torch.nn.Module):
    """What :func:`robot_rl.training.export.export_policy` reads from an actor-critic: the
    observation normaliser ``actor_norm``, the deterministic ``actor`` and a ``log_std`` with one
    entry per actor output."""

    def __init__(self, actor: torch.nn.Module, outputs: int) -> None:
        super().__init__()
        self.actor_norm, self.actor = actor.actor_norm, actor.actor
        self.register_buffer("log_std", torch.zeros(outputs))


def export_actor(actor: torch.nn.Module, out: Path, task: str, group: str, source: str,
                 overrides: dict[str, Any] | None = None) -> Path:
    """``policy.pt`` readable by :func:`robot_rl.training.export.load_policy` (``overrides``: of
    the task's config, kept in the metadata's ``task_config``)."""
    from robot_rl.envs import make
    from robot_rl.training.export import export_policy

    env = make(task, num_envs=1, overrides=overrides)
    task_config = {k: v for k, v in dataclasses.asdict(env.task.config).items() if k != "randomization"}
    metadata = {"task": task, "goal": env.goal, "observation_group": group, "observation_dim": env.obs_dims[group],
                "action_dim": env.action_dim, "action_low": env.action_low.tolist(),
                "action_high": env.action_high.tolist(), "control_dt": env.control_dt,
                "task_config": task_config, "checkpoint": source}
    low, high = env.action_low.clone(), env.action_high.clone()
    env.close()
    return export_policy(ExportView(actor, len(low)), out, metadata, low, high)


def plot_offline_curves(metrics: Path, out: Path, title: str) -> Path:
    """Evaluation success and return, and every loss, against env steps (fine-tuning) or gradient updates."""
    from robot_rl.training.plots import plot_panels

    def style(ax, name: str, shown: list[str]) -> None:
        if name.startswith("evaluation"):
            for line in ax.get_lines():
                line.set_marker(".")
        if len(shown) > 1:
            ax.set_yscale("symlog")

    panels = (("evaluation success rate", ("eval/success",)), ("evaluation return", ("eval/return",)),
              ("losses", "loss/"))
    return plot_panels(metrics, out, panels, title, label=lambda key: key.split("/")[-1], decorate=style, rows=1,
                       x_keys=("env_steps", "updates"))


class RunOutputs:
    """What offline training and fine-tuning share: the deterministic policy, evaluations,
    checkpoints and the final policy.pt / eval.json / rollout.mp4. Needs ``cfg``, ``algo`` (with
    ``actor`` and ``state_dict()``), ``group``, ``task``, ``run_dir`` and ``updates``."""

    cfg: OfflineConfig
    group: str
    task: str
    run: RunDir
    run_dir: Path
    updates: int

    def policy(self):
        actor, group = self.algo.actor, self.group

        @torch.no_grad()
        def act(obs) -> torch.Tensor:
            return actor(obs[group].float()).clamp(-1.0, 1.0)

        return act

    def evaluate(self, env, episodes: int) -> dict[str, float]:
        from robot_rl.training.evaluate import evaluate

        self.algo.actor.eval()
        result = evaluate(self.policy(), env, episodes, env.max_episode_steps + 1, seed=self.cfg.seed + 777)
        self.algo.actor.train()
        return {"eval/success": result.success_rate if result.success_rate is not None else float("nan"),
                "eval/return": result.mean_return}

    def save(self) -> Path:
        """``checkpoints/model_<updates>.pt``, whole or not at all, with a checksum."""
        return write_checked(self.run.checkpoint(self.updates), {
            "format": CHECKPOINT_FORMAT, "algo": self.cfg.algo, "task": self.task, "updates": self.updates,
            "state": self.algo.state_dict(), "config": to_dict(self.cfg)})

    def finish(self, checkpoint: Path) -> dict[str, Any]:
        """policy.pt, eval.json and (optionally) rollout.mp4 in the run directory."""
        self.algo.actor.eval()
        policy = export_actor(self.algo.actor, self.run_dir / "policy.pt", self.task, self.group, str(checkpoint),
                              self.cfg.task_overrides)
        out = write_evaluation(eval_config(self.cfg, self.task), self.policy(), self.run_dir, self.cfg.eval.episodes,
                               self.cfg.eval.video, seed=self.cfg.seed + 12345)
        return {"policy": str(policy), **out}

    def close(self) -> None:
        """Release the run directory without training (training's end releases it too)."""
        self.run.close()

    def wrap_up(self, summary: dict[str, Any], curves_title: str, metrics: Path | None) -> dict[str, Any]:
        """The last checkpoint, curves, policy.pt and the final evaluation into ``summary``; a
        signal meanwhile stops what is left (``summary["interrupted"]`` is then ``"evaluation"``
        unless training itself was interrupted) and keeps what is written. Releases the run."""
        try:
            checkpoint = self.run.checkpoint(self.updates)
            summary["checkpoint"] = str(checkpoint)
            self.save()
            if metrics is not None and metrics.is_file():
                summary["curves"] = str(plot_offline_curves(metrics, self.run_dir / "curves.png", curves_title))
            summary.update(self.finish(checkpoint))
        except KeyboardInterrupt:
            summary["interrupted"] = summary["interrupted"] or "evaluation"
        finally:
            self.run.close()
        return summary


class OfflineTrainer(RunOutputs):
    def __init__(self, cfg: OfflineConfig, run_dir: Path | None = None) -> None:
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.cfg = cfg
        self.dataset, self.data = load_dataset(cfg)
        self.cfg = cfg = resolve_task(cfg, self.dataset)
        self.task = cfg.task
        self.group = obs_group(cfg.obs)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        obs_dim, action_dim = self.data.obs.shape[1], self.data.action.shape[1]
        check_fits(self.task, self.group, cfg.obs, obs_dim, action_dim, cfg.dataset, cfg.task_overrides)
        norm = FixedNorm.of(self.data.obs) if cfg.net.normalize_obs else FixedNorm.identity(obs_dim)
        self.algo = build_algorithm(cfg, obs_dim, action_dim, norm, self.generator)
        self.buffer = ReplayBuffer.from_transitions(self.data)
        self.run = RunDir.create(cfg.root, self.task) if run_dir is None else RunDir.resume(run_dir)
        self.run_dir = self.run.path
        self.run.write_config(to_dict(cfg))
        self.updates = 0

    def train(self) -> dict[str, Any]:
        from robot_rl.envs import make

        cfg = self.cfg
        eval_env = make(self.task, num_envs=cfg.eval.interim_episodes, seed=cfg.seed,
                        overrides=cfg.task_overrides) \
            if cfg.eval.interim_episodes else None
        deadline = time.monotonic() + 60 * cfg.budget.minutes if cfg.budget.minutes else math.inf
        log = None
        bar = None
        if cfg.progress_bar:
            from tqdm import tqdm

            bar = tqdm(total=cfg.budget.updates, unit="update", desc=f"{self.task} {cfg.algo}", dynamic_ncols=True,
                       mininterval=1.0)
        log_every = max(1, min(1000, cfg.eval.every))
        interrupted = False
        sums: dict[str, float] = {}
        restore_signals = sigterm_interrupts()  # kill saves a checkpoint, as Ctrl-C does
        try:
            while self.updates < cfg.budget.updates and time.monotonic() < deadline:
                stats = self.algo.update(self.buffer.sample(cfg.net.batch_size, self.generator))
                self.updates += 1
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + v
                if self.updates % log_every == 0 or self.updates == cfg.budget.updates:
                    row = {"updates": self.updates, "env_steps": 0, **{k: v / log_every for k, v in sums.items()}}
                    sums = {}
                    if eval_env is not None and (self.updates % cfg.eval.every == 0
                                                 or self.updates == cfg.budget.updates):
                        row.update(self.evaluate(eval_env, cfg.eval.interim_episodes))
                    if log is None:
                        log = self.run.metrics(["updates", "env_steps", "eval/success", "eval/return", *stats])
                    log.write(row)
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k.startswith(("eval", "loss"))},
                                        refresh=False)
                if bar is not None:
                    bar.update(1)
        except KeyboardInterrupt:
            interrupted = True
        except BaseException:
            restore_signals()
            self.run.close()
            raise
        finally:
            if bar is not None:
                bar.close()
            if eval_env is not None:
                eval_env.close()
        summary: dict[str, Any] = {"run_dir": str(self.run_dir), "updates": self.updates, "interrupted": interrupted,
                                   "transitions": len(self.data)}
        try:
            return self.wrap_up(summary, f"{self.task} {cfg.algo} ({cfg.dataset})", log.path if log else None)
        finally:
            restore_signals()
