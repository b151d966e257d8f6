"""Learn a preference reward while the policy trains on it (PEBBLE, RL-VLM-F).

A reward model fitted once on scripted episodes has never seen the states a policy discovers
while it optimises that reward, and it can score some of them far too high. Online learning
keeps asking about the policy's own observations:

    learner = OnlinePreferenceLearner(reward, OnlineLearningConfig(), goal, num_envs=64)
    # every env step, from the reward wrapper:
    learner.observe(images, true_progress, done)     # uint8[N, V, H, W, 3], float32[N], bool[N]

The learner keeps a ring pool of recent observations. At the env steps its
:class:`~robot_rl.rewards.preference.QuerySchedule` names, it draws candidate pairs from the
pool, picks the ones the ensemble disagrees on most, has the labeller judge them, and trains the
model a few epochs on every label so far. The policy's next rollout is scored by the new model
(on-policy PPO needs no buffer relabelling). ``true_progress`` is what the simulator knows
(``info["progress"]``): only the oracle labeller reads it; a VLM labeller judges the pixels.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from robot_rl.configs.train import OnlineLearningConfig
from robot_rl.rewards.labellers.base import Labeller
from robot_rl.rewards.preference import PreferenceReward, QuerySchedule, sample_pairs

LABELLERS = ("oracle", "vlm", "http")


def build_labeller(cfg: OnlineLearningConfig, progress_of) -> Labeller:
    """The labeller ``cfg`` names; ``progress_of(images) -> float32[B]`` serves the oracle."""
    options = dict(cfg.labeller_options)
    if cfg.labeller == "oracle":
        from robot_rl.rewards.labellers.oracle import OracleLabeller

        return OracleLabeller(progress_of, **options)
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
        self.labeller = build_labeller(cfg, self._true_progress)
        self.generator = torch.Generator().manual_seed(seed)
        self.env_steps = 0
        self.asked = self.kept = self.updates = 0
        self.last_update: dict[str, float] = {}
        self._images: torch.Tensor | None = None  # uint8[P, V, H, W, 3], allocated on first observe
        self._progress = torch.zeros(cfg.pool_size)
        self._episode = torch.zeros(cfg.pool_size, dtype=torch.long)
        self._filled = self._next = 0
        self._world_episode = torch.arange(num_envs, dtype=torch.long)  # unique episode id per world
        self._episodes_started = num_envs
        self._lookup: dict[int, float] = {}

    # -- the pool --------------------------------------------------------------------------------

    def observe(self, images: torch.Tensor, progress: torch.Tensor | None, done: torch.Tensor) -> dict[str, float]:
        """Add one step's post-step observations uint8[N, V, H, W, 3] with their true progress
        float32[N] (None when the simulator has none: oracle labelling then fails) and the
        episode ends bool[N]; query and update when the schedule says so. Returns the update's
        statistics, or an empty dict."""
        n = len(images)
        if n != self.num_envs:
            raise ValueError(f"online learning: {n} observations for {self.num_envs} worlds")
        if progress is None and self.cfg.labeller == "oracle":
            raise ValueError("online.labeller oracle needs the task's true progress (info['progress']); "
                             "this env reports none: use a vlm or http labeller")
        if self._images is None:
            self._images = torch.zeros((self.cfg.pool_size, *images.shape[1:]), dtype=torch.uint8)
        slots = (self._next + torch.arange(n)) % self.cfg.pool_size
        self._images[slots] = images.detach().cpu()
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
        if self._images is None or self._filled < 2:
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
        a, b = self._images[pairs[:, 0]], self._images[pairs[:, 1]]
        pick = self.reward.select_queries(a, b, num, self.cfg.selection)
        chosen = pairs[pick].flatten()
        self._lookup = dict(zip(_keys(self._images[chosen]), self._progress[chosen].tolist()))
        labels = self.labeller.label(a[pick], b[pick], self.goal)
        self.asked += len(pick)
        self.kept += self.reward.add_labels(a[pick], b[pick], labels)
        stats = self.reward.update(max_epochs=self.cfg.epochs_per_update)
        self.updates += 1
        self.last_update = {"labels": float(self.kept), "asked": float(self.asked),
                            "train_accuracy": stats["accuracy"], "loss": stats["loss"]}
        return self.last_update

    def _true_progress(self, images: torch.Tensor) -> torch.Tensor:
        """The oracle's view: the stored true progress of the observations being judged."""
        return torch.tensor([self._lookup[k] for k in _keys(images)], dtype=torch.float32)

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


def _keys(images: torch.Tensor) -> list[int]:
    """A content key per observation uint8[B, ...] (for looking up what was stored with it)."""
    from robot_rl.rewards.labellers.images import image_hashes

    return image_hashes(images)
