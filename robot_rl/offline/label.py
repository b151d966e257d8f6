"""Label a dataset's transitions with a reward module (Real-World Offline RL from VLM Feedback;
Offline RL with Imputed Rewards): fit the module on a labelled subset of episodes (or of
frames), score every frame, write the rewards as a new column.

    cfg = LabelConfig(module="preference", labelled_fraction=0.1, labels=2000)
    report = label_dataset("runs/data/push_mixed", cfg)     # adds next.reward.preference

Transition t's reward is the module's score of the frame after it (frame t+1 of the episode;
the episode's last frame scores itself), so a reward that tracks progress rewards the step that
made it. Modules with a fitter in :data:`robot_rl.rewards.evaluation.FITTERS` learn from the
labelled frames first: the preference model from pairs judged by the oracle labeller on
ground-truth progress (``observation.progress``), flipped with probability ``label_flip``; the
imputed reward (``module: imputed``) regresses the labelled frames' values of the same column
(e.g. ``progress_column: next.reward``: the task's reward on 1% of the frames).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from robot_rl.configs.loading import bounded
from robot_rl.data.dataset import Dataset, DatasetError


@dataclass(frozen=True)
class LabelConfig:
    module: str = "preference"
    """A registered reward module (``robot_rl.rewards``)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the module, e.g. ``{ensemble_size: 3}`` or ``{model: PATH}``."""
    camera: str | None = None
    """Camera column to score (default: the dataset's only or first camera)."""
    state_column: str = "observation.policy"
    """The state column scored by modules that read states (``options: {inputs: state, state_dim: D}``)."""
    with_action: bool = False
    """Modules that read states get each row's state with its action appended (``state_dim`` D + A)
    and score transitions (s_t, a_t): a score is its own row's reward (not the next frame's) and a
    ``next.*`` column is judged as it stands. A reward that depends on the action itself (e.g.
    an action-rate penalty) can only be learned this way."""
    labelled_fraction: float = bounded(0.1, 0.0, 1.0)
    """Share of episodes (or of frames, see ``label_unit``) the module learns from (their
    progress is known to the labeller)."""
    label_unit: Literal["episodes", "frames"] = "episodes"
    """Label whole episodes, or frames drawn at random from the whole dataset (Offline RL with
    Imputed Rewards labels 1% of the transitions this way)."""
    labels: int = bounded(2000, 1)
    """Preference pairs the oracle judges (drawn from the labelled episodes' frames)."""
    label_flip: float = bounded(0.1, 0.0, 1.0)
    """Probability that an oracle label is wrong."""
    label_pairs: Literal["same_episode", "any"] = "same_episode"
    """Draw the judged pairs within one episode, or from any two labelled frames."""
    progress_column: str = "observation.progress"
    """What the oracle labeller judges each frame by, and what the written rewards are compared
    against: ground-truth progress, or a per-transition column such as ``next.reward`` (B-Pref's
    scripted teacher judges by the true reward). A ``next.*`` column's value of transition t
    describes frame t+1 and is moved there (an episode's first frame keeps its own row's)."""
    save: str | None = None
    """Also save the fitted module here (modules with a ``save`` method)."""
    seed: int = 0


def shift_to_next(values: np.ndarray, episode: np.ndarray) -> np.ndarray:
    """Per-frame scores float[N] -> per-transition rewards: frame t+1's score within the episode
    (the last frame keeps its own)."""
    out = values.copy()
    same = episode[1:] == episode[:-1]
    out[:-1] = np.where(same, values[1:], values[:-1])
    return out


def shift_to_previous(values: np.ndarray, episode: np.ndarray) -> np.ndarray:
    """Per-transition values float[N] -> per frame: frame t gets transition t−1's value within
    the episode (the first frame keeps its own); the inverse of :func:`shift_to_next` inside
    episodes."""
    out = values.copy()
    same = episode[1:] == episode[:-1]
    out[1:] = np.where(same, values[:-1], values[1:])
    return out


def label_dataset(root: str | Path, cfg: LabelConfig, column: str | None = None,
                  overwrite: bool = False, progress_bar: bool = True) -> dict[str, Any]:
    """Fit, score and write ``column`` (default ``next.reward.<module>``); returns a report with
    the Spearman correlation of the scores with ground-truth progress on unlabelled episodes."""
    from robot_rl.configs.reward_eval import RewardEvalConfig
    from robot_rl.rewards.base import load_modules
    from robot_rl.rewards.evaluation import FITTERS, score_episodes
    from robot_rl.rewards.metrics import spearman

    rewards = load_modules()
    ds = Dataset(root)
    column = column or f"next.reward.{cfg.module}"
    if column in ds.features and not overwrite:
        raise DatasetError(f"{root} already has column {column!r}; pass --overwrite or another --column")
    module = rewards.get(cfg.module)(**cfg.options)
    if getattr(module, "uses_state", False):
        if cfg.state_column not in ds.features:
            raise DatasetError(f"{root}: missing column {cfg.state_column!r}, the states this module reads; "
                               f"set state_column to one of: {', '.join(ds.features)}")
        inputs = torch.as_tensor(ds.column(cfg.state_column), dtype=torch.float32)  # float[N, D]
        if cfg.with_action:
            inputs = torch.cat([inputs, torch.as_tensor(ds.column("action"), dtype=torch.float32)], dim=1)
    elif cfg.with_action:
        raise DatasetError(f"with_action appends actions to states, but {cfg.module} reads camera images; "
                           "use a module that reads states (options: {inputs: state, state_dim: D + A})")
    else:
        cameras = [c for c in ds.features if c.startswith("observation.images.")]
        camera = cfg.camera or (cameras[0] if cameras else None)
        if camera is None:
            raise DatasetError(f"{root}: missing an image column (observation.images.<camera>) to score")
        inputs = ds.images(camera)[:, None]  # uint8[N, 1, H, W, 3]
    episode = ds.episode_index()
    ids = np.unique(episode)
    rng = np.random.default_rng(cfg.seed)
    if cfg.label_unit == "frames":
        chosen = np.zeros(len(episode), dtype=bool)
        chosen[rng.permutation(len(episode))[:int(round(cfg.labelled_fraction * len(episode)))]] = True
    else:
        chosen = np.isin(episode, rng.permutation(ids)[:int(round(cfg.labelled_fraction * len(ids)))])
    n_labelled = int(chosen.sum()) if cfg.label_unit == "frames" else len(np.unique(episode[chosen]))
    frames = [inputs[torch.as_tensor(episode == e)] for e in ids]
    fit: dict[str, Any] = {"fit": "none"}
    truth = ds.column(cfg.progress_column).astype(np.float32) if cfg.progress_column in ds.features else None
    if truth is not None and cfg.progress_column.startswith("next.") and not cfg.with_action:
        truth = shift_to_previous(truth, episode)
    if cfg.module in FITTERS and not n_labelled and not cfg.options.get("checkpoint"):
        raise DatasetError(f"labelled_fraction {cfg.labelled_fraction} labels no {cfg.label_unit} of {root}, so "
                           f"{cfg.module} would score with untrained weights; raise labelled_fraction or give a "
                           "fitted model (options: {checkpoint: PATH})")
    if cfg.module in FITTERS and n_labelled:
        if truth is None:
            raise DatasetError(f"{root}: missing column {cfg.progress_column!r}, which the labeller judges by")
        mine = [chosen[episode == e] for e in ids]  # per episode: which of its frames are labelled
        train = [k for k in range(len(ids)) if mine[k].any()]
        fit = FITTERS.get(cfg.module)(
            module, [frames[k][torch.as_tensor(mine[k])] for k in train],
            [truth[episode == ids[k]][mine[k]] for k in train],
            RewardEvalConfig(task=ds.task or "", module=cfg.module, labels=cfg.labels, label_flip=cfg.label_flip,
                             label_pairs=cfg.label_pairs, seed=cfg.seed))
    goal = _goal(ds)
    from tqdm import tqdm

    scores = []
    with torch.no_grad():
        for episode_frames in tqdm(frames, desc=f"score {cfg.module}", unit="episode", dynamic_ncols=True,
                                   disable=not progress_bar):
            scores += score_episodes(module, [episode_frames], goal)[0]
    per_frame = np.concatenate(scores).astype(np.float32)
    values = per_frame if cfg.with_action else shift_to_next(per_frame, episode)
    ds.add_column(column, values, overwrite=overwrite)
    report: dict[str, Any] = {"column": column, "frames": len(values), f"labelled_{cfg.label_unit}": n_labelled,
                              "episodes": len(ids), "fit": fit}
    if truth is not None:
        held = ~chosen
        if held.any():
            report["spearman_unlabelled"] = float(spearman(per_frame[held], truth[held]))
    if cfg.save and hasattr(module, "save"):
        module.save(cfg.save)
        report["saved"] = cfg.save
    return report


def _goal(ds: Dataset) -> str:
    return next(iter(ds.tasks.values()), "")
