"""How well a learned reward or progress estimate tracks ground-truth progress, per episode.

    preds = [module.score(images_e, None, goal).progress for images_e in episodes]   # float[T_e] each
    report = progress_metrics(preds, [e.progress for e in episodes])
    report["spearman"], report["time_spearman"]     # the method and the time-index baseline

- **VOC** (value-order correlation, VLAC): Spearman of an episode's values against the time index.
  It rewards any monotone rise, so a method that ignores the images and outputs t/(T−1) scores a
  perfect 1: always read it next to the time-index baseline on mixed-quality episodes.
- **Spearman vs true progress**, per episode (episodes whose true progress is constant are skipped:
  the correlation is undefined there).
- **Pairwise accuracy**: over pairs of frames whose true progress differs by at least ``min_gap``,
  the fraction the prediction orders the same way (a predicted tie counts ½).
- The **time-index baseline** is the prediction t/(T−1) for frame t of an episode of T frames.

Inputs are per-episode sequences of numpy arrays or torch tensors; pure numpy inside.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _array(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1)


def rankdata(x) -> np.ndarray:
    """float64[n] ranks 1..n of float[n], ties given their average rank."""
    x = _array(x)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.zeros(len(values))
    np.add.at(sums, inverse, ranks)
    return (sums / counts)[inverse]


def spearman(x, y) -> float:
    """Spearman rank correlation of float[n] and float[n] (Pearson of average ranks); NaN when
    either is constant or n < 2."""
    x, y = _array(x), _array(y)
    if len(x) != len(y):
        raise ValueError(f"spearman: lengths differ ({len(x)} vs {len(y)})")
    if len(x) < 2:
        return float("nan")
    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


def voc(values) -> float:
    """Value-order correlation of one episode's values float[T]: Spearman against 0..T−1."""
    values = _array(values)
    return spearman(values, np.arange(len(values)))


def time_index(lengths: Sequence[int]) -> list[np.ndarray]:
    """The time-index baseline: t/(T−1) for each episode length T (0 for one-frame episodes)."""
    return [np.arange(n) / max(n - 1, 1) for n in lengths]


def episode_spearman(predictions: Sequence, progress: Sequence) -> np.ndarray:
    """float64[E]: per-episode Spearman of predictions float[T_e] vs true progress float[T_e];
    NaN for episodes whose true progress is constant."""
    if len(predictions) != len(progress):
        raise ValueError(f"episode_spearman: {len(predictions)} predictions for {len(progress)} episodes")
    return np.array([spearman(p, q) for p, q in zip(predictions, progress)])


def pairwise_accuracy(predictions: Sequence, progress: Sequence, min_gap: float = 0.2,
                      within_episode: bool = False, max_pairs: int = 2_000_000, seed: int = 0) -> float:
    """Fraction of frame pairs with |true progress difference| >= ``min_gap`` that the
    predictions order the same way (ties ½). Pairs are drawn from all frames of all episodes, or
    only within an episode with ``within_episode``. With more than ``max_pairs`` candidate pairs
    a seeded random sample of that many is used. NaN when no pair qualifies."""
    pred = np.concatenate([_array(p) for p in predictions])
    true = np.concatenate([_array(q) for q in progress])
    if len(pred) != len(true):
        raise ValueError("pairwise_accuracy: predictions and progress differ in length")
    episode = np.concatenate([np.full(len(_array(q)), e) for e, q in enumerate(progress)])
    n = len(true)
    if n * (n - 1) // 2 <= max_pairs:
        i, j = np.triu_indices(n, k=1)
    else:
        rng = np.random.default_rng(seed)
        i, j = rng.integers(0, n, max_pairs), rng.integers(0, n, max_pairs)
    keep = np.abs(true[i] - true[j]) >= min_gap
    if within_episode:
        keep &= episode[i] == episode[j]
    i, j = i[keep], j[keep]
    if len(i) == 0:
        return float("nan")
    agree = np.sign(pred[i] - pred[j]) * np.sign(true[i] - true[j])
    return float(np.mean(np.where(agree == 0, 0.5, agree > 0)))


def progress_metrics(predictions: Sequence, progress: Sequence, min_gap: float = 0.2) -> dict[str, float]:
    """The metrics of the module docstring for predictions and the time-index baseline:
    ``voc``, ``spearman`` (mean over episodes with varying progress), ``pairwise_accuracy``
    (all pairs), ``pairwise_accuracy_within`` (pairs inside an episode), each also prefixed
    ``time_`` for the baseline."""
    baseline = time_index([len(_array(q)) for q in progress])
    report: dict[str, float] = {}
    for prefix, preds in (("", predictions), ("time_", baseline)):
        report[prefix + "voc"] = float(np.nanmean([voc(p) for p in preds]))
        rho = episode_spearman(preds, progress)
        report[prefix + "spearman"] = float(np.nanmean(rho)) if np.isfinite(rho).any() else float("nan")
        report[prefix + "pairwise_accuracy"] = pairwise_accuracy(preds, progress, min_gap)
        report[prefix + "pairwise_accuracy_within"] = pairwise_accuracy(preds, progress, min_gap, within_episode=True)
    return report
