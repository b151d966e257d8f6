"""Judge a reward module against ground-truth progress on scripted episodes of mixed quality.

Fit the module on training episodes, score every frame of held-out episodes, and compare
per-episode rankings with the task's true progress — next to the time-index baseline, which
is perfect on monotone episodes and so only informative on noisy and regressing ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from robot_rl.configs.reward_eval import RewardEvalConfig
from robot_rl.registry import Registry
from robot_rl.rewards.base import REWARDS, RewardModule
from robot_rl.rewards.metrics import progress_metrics

Frames = list[torch.Tensor]
"""One uint8[T, V, H, W, 3] tensor per episode."""

FITTERS: Registry[Callable[[RewardModule, Frames, list[np.ndarray], RewardEvalConfig], dict]] = \
    Registry("reward fitter")
"""Module name -> how it learns from training episodes (frames and true progress)."""


@FITTERS.register("perceptual")
def _fit_perceptual(module, frames: Frames, progress, cfg: RewardEvalConfig) -> dict:
    experts = [f for f, p in zip(frames, progress) if p[-1] > 0.9] or frames
    module.fit(experts)
    return {"demos": len(experts)}


@FITTERS.register("progress_critic")
def _fit_critic(module, frames: Frames, progress, cfg: RewardEvalConfig) -> dict:
    module.fit(frames, progress)
    return {"episodes": len(frames)}


@FITTERS.register("preference")
def _fit_preference(module, frames: Frames, progress, cfg: RewardEvalConfig) -> dict:
    from robot_rl.rewards.labellers.base import labels_of
    from robot_rl.rewards.labellers.oracle import OracleLabeller, progress_values_only
    from robot_rl.rewards.preference import sample_pairs

    images = torch.cat(frames)
    truth = torch.as_tensor(np.concatenate(progress), dtype=torch.float32)
    gen = torch.Generator().manual_seed(cfg.seed)
    episode = torch.arange(len(frames)).repeat_interleave(torch.tensor([len(f) for f in frames]))
    i, j = sample_pairs(len(images), cfg.labels, gen, episode if cfg.label_pairs == "same_episode" else None).T
    # The pairs' progress is known by index, so the oracle judges it directly (no lookup by pixels).
    oracle = OracleLabeller(progress_values_only, flip_prob=cfg.label_flip, tie_threshold=0.02, seed=cfg.seed)
    labels = labels_of(oracle.label_progress(truth[i], truth[j]))
    stats = module.fit(images[i], images[j], labels)
    return {"labels": cfg.labels, "flip_prob": cfg.label_flip, "pairs": cfg.label_pairs,
            **{k: float(v) for k, v in stats.items()}}


@FITTERS.register("imputed")
def _fit_imputed(module, frames: Frames, progress, cfg: RewardEvalConfig) -> dict:
    values = torch.as_tensor(np.concatenate(progress), dtype=torch.float32)
    return {k: float(v) for k, v in module.fit(torch.cat(list(frames)), values).items()}


@torch.no_grad()
def score_episodes(module: RewardModule, frames: Frames, goal: str) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Per episode, the module's reward float[T] and (when it has one) its progress float[T].
    ``frames`` are images, or state vectors float[T, D] for modules that read states."""
    rewards, progress = [], []
    reads_state = getattr(module, "uses_state", False)
    for f in frames:
        out = module.score(None, f, goal) if reads_state else module.score(f, None, goal)
        rewards.append(out.reward.float().cpu().numpy())
        if out.progress is not None:
            progress.append(out.progress.float().cpu().numpy())
    return rewards, (progress if len(progress) == len(frames) else None)


def evaluate_module(cfg: RewardEvalConfig, train: Sequence, held_out: Sequence,
                    goal: str) -> tuple[dict[str, Any], RewardModule]:
    """Fit ``cfg.module`` on ``train`` episodes and report metrics on ``held_out`` ones;
    returns the report and the fitted module.

    Episodes need ``.images[camera]`` uint8[T, H, W, 3] and ``.progress`` float[T].
    """
    camera = cfg.view.camera

    def frames(episodes) -> Frames:
        return [torch.as_tensor(e.images[camera])[:, None] for e in episodes]

    module = REWARDS.get(cfg.module)(**cfg.options)
    fit_info = FITTERS.get(cfg.module)(module, frames(train), [e.progress for e in train], cfg) \
        if cfg.module in FITTERS else {"fit": "none"}
    truth = [np.asarray(e.progress) for e in held_out]
    rewards, progress = score_episodes(module, frames(held_out), goal)
    report: dict[str, Any] = {"module": cfg.module, "fit": fit_info,
                              "reward": progress_metrics(rewards, truth, cfg.min_gap)}
    if progress is not None:
        report["progress"] = progress_metrics(progress, truth, cfg.min_gap)
    report["episodes"] = [
        {"quality": e.quality, "true_progress": np.asarray(e.progress).tolist(), "reward": r.tolist(),
         **({"progress": progress[k].tolist()} if progress is not None else {})}
        for k, (e, r) in enumerate(zip(held_out, rewards))
    ]
    return report, module
