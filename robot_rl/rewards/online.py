"""Learn a preference reward while the policy trains on it (PEBBLE, RL-VLM-F).

A reward model fitted once on scripted episodes has never seen the states a policy discovers
while it optimises that reward, and it can score some of them far too high. Online learning
keeps asking about the policy's own observations:

    learner = OnlinePreferenceLearner(reward, OnlineLearningConfig(), goal, num_envs=64)
    # every env step, from the reward wrapper: what the model reads (images uint8[N, V, H, W, 3]
    # or states float32[N, D]), the true progress float32[N], episode ends bool[N], and the
    # camera views a vlm/http labeller judges (None for the oracle)
    learner.observe(inputs, true_progress, done, views)

The learner keeps a ring pool of recent observations. At the env steps its
:class:`~robot_rl.rewards.preference.QuerySchedule` names, it draws candidate pairs from the
pool, picks the ones the ensemble disagrees on most, has the labeller judge them, and trains the
model a few epochs on every label so far. The policy's next rollout is scored by the new model
(on-policy PPO needs no buffer relabelling). ``true_progress`` is what the simulator knows
(``info["progress"]``): only the oracle labeller reads it; a VLM labeller judges the pixels.
As in RL-VLM-F, the labeller may judge images while the reward model reads states.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from robot_rl.configs.train import OnlineLearningConfig
from robot_rl.rewards.labellers.base import Labeller, labels_of
from robot_rl.rewards.preference import PreferenceReward, QuerySchedule, sample_pairs

LABELLERS = ("oracle", "vlm", "http")


def judges_images(cfg: OnlineLearningConfig) -> bool:
    """Whether the labeller looks at camera images (every one but the oracle)."""
    return cfg.labeller != "oracle"


def build_labeller(cfg: OnlineLearningConfig) -> Labeller:
    """The labeller ``cfg`` names. The oracle judges true progress values, not pixels
    (:meth:`~robot_rl.rewards.labellers.oracle.OracleLabeller.label_progress`)."""
    options = dict(cfg.labeller_options)
    if cfg.labeller == "oracle":
        from robot_rl.rewards.labellers.oracle import OracleLabeller, progress_values_only

        return OracleLabeller(progress_values_only, **options)
    if cfg.labeller == "vlm":
        from robot_rl.rewards.labellers.vlm import VLMLabeller, VLMLabellerConfig

        return VLMLabeller(VLMLabellerConfig(**options))
    if cfg.labeller == "http":
        from robot_rl.rewards.labellers.http import HTTPLabeller, HTTPLabellerConfig

        return HTTPLabeller(HTTPLabellerConfig(**options))
    raise ValueError(f"online.labeller: unknown labeller {cfg.labeller!r}; use one of {', '.join(LABELLERS)}")


class OnlinePreferenceLearner:
    """Collects a world's observations, queries a labeller on schedule and updates ``reward``."""

    def __init__(self, reward: PreferenceReward, cfg: OnlineLearningConfig, goal: str, num_envs: int,
                 seed: int = 0) -> None:
        if not isinstance(reward, PreferenceReward):
            raise ValueError(f"online learning needs the preference module, got {type(reward).__name__}")
        for name in ("per_update", "candidates", "pool_size", "epochs_per_update", "every"):
            if getattr(cfg, name) < 1:
                raise ValueError(f"online.{name} must be at least 1, got {getattr(cfg, name)}")
        self.reward, self.cfg, self.goal, self.num_envs = reward, cfg, goal, num_envs
        self.schedule = QuerySchedule(cfg.first_step, cfg.every, cfg.per_update, cfg.budget)
        self.labeller = build_labeller(cfg)
        self.needs_views = judges_images(cfg)
        """Whether ``observe`` must be given the camera views the labeller judges."""
        self.generator = torch.Generator().manual_seed(seed)
        self.env_steps = 0
        self.asked = self.kept = self.updates = 0
        self.last_update: dict[str, float] = {}
        self._inputs: torch.Tensor | None = None  # what the model reads, [P, ...], allocated on first observe
        self._views: torch.Tensor | None = None  # uint8[P, V, H, W, 3] for a labeller that judges images
        self._progress = torch.zeros(cfg.pool_size)
        self._episode = torch.zeros(cfg.pool_size, dtype=torch.long)
        self._filled = self._next = 0
        self._world_episode = torch.arange(num_envs, dtype=torch.long)  # unique episode id per world
        self._episodes_started = num_envs

    # -- the pool --------------------------------------------------------------------------------

    def observe(self, inputs: torch.Tensor, progress: torch.Tensor | None, done: torch.Tensor,
                views: torch.Tensor | None = None) -> dict[str, float]:
        """Add one step's post-step observations: the model's inputs (images uint8[N, V, H, W, 3]
        or states float32[N, D]), their true progress float32[N] (None when the simulator has
        none: the oracle then cannot label), the episode ends bool[N] and, for a labeller that
        judges pixels, the camera views uint8[N, V, H, W, 3]. Queries and updates when the
        schedule says so; returns the update's statistics, or an empty dict."""
        n = len(inputs)
        if n != self.num_envs:
            raise ValueError(f"online learning: {n} observations for {self.num_envs} worlds")
        if progress is None and self.cfg.labeller == "oracle":
            raise ValueError("online.labeller oracle needs the task's true progress (info['progress']); "
                             "this env reports none: use a vlm or http labeller")
        if self.needs_views and views is None:
            raise ValueError(f"online.labeller {self.cfg.labeller} judges images: give the term cameras")
        if self._inputs is None:
            self._inputs = torch.zeros((self.cfg.pool_size, *inputs.shape[1:]), dtype=inputs.dtype)
            if self.needs_views:
                self._views = torch.zeros((self.cfg.pool_size, *views.shape[1:]), dtype=torch.uint8)
        slots = (self._next + torch.arange(n)) % self.cfg.pool_size
        self._inputs[slots] = inputs.detach().cpu()
        if self._views is not None:
            self._views[slots] = views.detach().cpu()
        self._progress[slots] = (progress.detach().float().cpu() if progress is not None
                                 else torch.full((n,), math.nan))
        self._episode[slots] = self._world_episode
        self._next = int((self._next + n) % self.cfg.pool_size)
        self._filled = min(self._filled + n, self.cfg.pool_size)
        ended = done.detach().cpu().nonzero().squeeze(1)
        if len(ended):
            self._world_episode[ended] = self._episodes_started + torch.arange(len(ended))
            self._episodes_started += len(ended)
        before, self.env_steps = self.env_steps, self.env_steps + n
        # The schedule counts env steps; a step of N worlds may cross a query point.
        due = sum(self.schedule.queries_at(s) for s in self._crossed(before, self.env_steps))
        return self.query_and_update(due) if due else {}

    def _crossed(self, before: int, after: int) -> list[int]:
        """Query points of the schedule in (before, after]."""
        s = self.schedule
        if after < s.first_step:
            return []
        k = max(0, math.ceil((before + 1 - s.first_step) / s.every))
        points = []
        while s.first_step + k * s.every <= after:
            points.append(s.first_step + k * s.every)
            k += 1
        return points

    # -- queries and updates -----------------------------------------------------------------------

    def query_and_update(self, num: int) -> dict[str, float]:
        """Ask the labeller about ``num`` pairs from the pool, then train on every label so far."""
        if self._inputs is None or self._filled < 2:
            return {}
        pool = torch.arange(self._filled)
        groups = self._episode[pool] if self.cfg.pairs == "same_episode" else None
        if groups is not None:  # episodes with one stored frame cannot form a pair
            _, inverse, counts = torch.unique(groups, return_inverse=True, return_counts=True)
            pool = pool[counts[inverse] > 1]
            groups = groups[pool]
            if len(pool) < 2:
                return {}
        pairs = pool[sample_pairs(len(pool), num * self.cfg.candidates, self.generator, groups)]
        a, b = self._inputs[pairs[:, 0]], self._inputs[pairs[:, 1]]
        pick = self.reward.select_queries(a, b, num, self.cfg.selection)
        first, second = pairs[pick, 0], pairs[pick, 1]
        if self.needs_views:
            labels = self.labeller.label(self._views[first], self._views[second], self.goal)
        else:
            answers = self.labeller.label_progress(self._progress[first], self._progress[second])
            self.labeller.counts.add(answers)
            labels = labels_of(answers)
        self.asked += len(pick)
        self.kept += self.reward.add_labels(a[pick], b[pick], labels)
        stats = self.reward.update(self.cfg.epochs_per_update, self.cfg.pairs_per_epoch)
        self.updates += 1
        self.last_update = {"labels": float(self.kept), "asked": float(self.asked),
                            "train_accuracy": stats["accuracy"], "loss": stats["loss"]}
        return self.last_update

    def metrics(self) -> dict[str, float]:
        """Counters for training logs."""
        return {"labels": float(self.kept), "asked": float(self.asked), "updates": float(self.updates),
                "train_accuracy": self.last_update.get("train_accuracy", math.nan),
                "loss": self.last_update.get("loss", math.nan)}

    def save(self, directory: str | Path, name: str) -> Path:
        """Write the current reward model as ``<directory>/<name>.pt`` (loadable with ``checkpoint:``)."""
        path = Path(directory) / f"{name}.pt"
        self.reward.save(path)
        return path

