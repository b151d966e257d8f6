"""The reward-evaluation launch file: ``launch/reward/<name>.yaml`` -> :class:`RewardEvalConfig`.

    task: panda_reach
    module: perceptual
    train: {expert: 5}
    eval: {expert: 3, noisy: 3, regressing: 3, random: 2}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from robot_rl.configs.loading import bounded


@dataclass(frozen=True)
class EpisodeMix:
    """How many scripted episodes of each quality."""

    expert: int = bounded(0, 0)
    noisy: int = bounded(0, 0)
    regressing: int = bounded(0, 0)
    random: int = bounded(0, 0)

    def qualities(self) -> list[str]:
        return ["expert"] * self.expert + ["noisy"] * self.noisy + ["regressing"] * self.regressing \
            + ["random"] * self.random


@dataclass(frozen=True)
class ViewConfig:
    camera: str = "front"
    image_size: tuple[int, int] = (64, 64)
    """(H, W) of rendered frames."""
    camera_pos: tuple[float, float, float] | None = None
    """Move the camera to this world position (metres) ..."""
    camera_lookat: tuple[float, float, float] | None = None
    """... and point it at this one; tests viewpoint sensitivity."""
    colors: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    """Geom name -> RGBA, e.g. ``{cube: [0.1, 0.3, 0.9, 1.0]}``; tests colour sensitivity."""
    antialias: bool = True
    """Multisample the frames; match the ``env.image_antialias`` of the training the reward is for."""


@dataclass(frozen=True)
class RewardEvalConfig:
    task: str = "panda_reach"
    """A task with scripted episodes (panda_reach, panda_push)."""
    module: str = "perceptual"
    """A registered reward module."""
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the module."""
    view: ViewConfig = field(default_factory=ViewConfig)
    num_steps: int = bounded(30, 2)
    """Frames per episode."""
    train: EpisodeMix = field(default_factory=lambda: EpisodeMix(expert=5))
    """Episodes the module learns from (demos for perceptual; pairs for preference)."""
    eval: EpisodeMix = field(default_factory=lambda: EpisodeMix(expert=3, noisy=3, regressing=3, random=2))
    """Held-out episodes the metrics are computed on."""
    labels: int = bounded(1000, 1)
    """Preference module: oracle-labelled pairs drawn from the training episodes."""
    label_flip: float = bounded(0.1, 0.0, 1.0)
    """Preference module: probability that an oracle label is flipped."""
    label_pairs: Literal["any", "same_episode"] = "same_episode"
    """Preference module: draw both frames of a labelled pair from one training episode, or
    from any two. The task's progress (1 - d/d0 for panda_reach) is relative to the episode's
    start, which the frames do not show, so only within an episode does it order what they show."""
    min_gap: float = bounded(0.2, 0.0, 1.0)
    """Pairwise accuracy counts pairs whose true progress differs by more than this."""
    seed: int = 0
    out: str = "runs/reward_eval"
    """Results go to ``<out>/<task>_<module>/``."""
