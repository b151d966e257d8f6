"""Reward-evaluation metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robot_rl.rewards.metrics import (
    episode_spearman,
    pairwise_accuracy,
    progress_metrics,
    rankdata,
    spearman,
    time_index,
    voc,
)


def test_rankdata_averages_ties() -> None:
    assert rankdata([10, 30, 20, 20]).tolist() == [1.0, 4.0, 2.5, 2.5]


def test_spearman_hand_computed() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # x ranks [1, 2.5, 2.5, 4] vs [1, 2, 3, 4]: centred [-1.5, 0, 0, 1.5] and [-1.5, -.5, .5, 1.5];
    # covariance sum 4.5, variance sums 4.5 and 5 -> 4.5 / sqrt(22.5) = sqrt(0.9).
    assert spearman([1, 2, 2, 3], torch.tensor([1.0, 2.0, 3.0, 4.0])) == pytest.approx(math.sqrt(0.9))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1], [2]))


def test_voc_is_spearman_against_time() -> None:
    # value ranks [1, 3, 2, 4] vs time [1, 2, 3, 4]: sum d^2 = 2 -> 1 - 6*2 / (4*15) = 0.8
    assert voc([0.0, 0.5, 0.2, 0.9]) == pytest.approx(0.8)
    assert voc(np.linspace(0, 1, 7)) == pytest.approx(1.0)


def test_time_index_baseline() -> None:
    lengths = [3, 1, 5]
    assert [t.tolist() for t in time_index(lengths)] == [[0.0, 0.5, 1.0], [0.0], [0.0, 0.25, 0.5, 0.75, 1.0]]
    # A regressing episode: progress ranks [1.5, 3.5, 5, 3.5, 1.5] centred [-1.5, .5, 2, .5, -1.5] against
    # time centred [-2, -1, 0, 1, 2]: covariance 3 - .5 + 0 + .5 - 3 = 0.
    regressing = [0.0, 0.5, 1.0, 0.5, 0.0]
    assert episode_spearman(time_index([5]), [regressing])[0] == pytest.approx(0.0)


def test_episode_spearman_skips_constant_progress() -> None:
    rho = episode_spearman([[0, 1, 2], [3, 1, 2]], [[0.0, 0.5, 1.0], [0.0, 0.0, 0.0]])
    assert rho[0] == pytest.approx(1.0) and math.isnan(rho[1])


def test_pairwise_accuracy_hand_computed() -> None:
    true = [0.0, 0.5, 1.0]
    # (0,1) and (0,2) ordered right, (1,2) wrong: 2/3.
    assert pairwise_accuracy([[0.1, 0.4, 0.3]], [true]) == pytest.approx(2 / 3)
    # A predicted tie counts a half: (0.5 + 1 + 1) / 3.
    assert pairwise_accuracy([[0.1, 0.1, 0.3]], [true]) == pytest.approx(2.5 / 3)
    # Pairs closer than min_gap are ignored: only (0,2) and (1,2) remain, both right.
    assert pairwise_accuracy([[0.2, 0.1, 0.3]], [[0.0, 0.1, 1.0]], min_gap=0.2) == pytest.approx(1.0)
    assert math.isnan(pairwise_accuracy([[0.0, 1.0]], [[0.0, 0.1]], min_gap=0.2))


def test_pairwise_accuracy_across_and_within_episodes() -> None:
    preds = [[0.0, 1.0], [2.0, 3.0]]
    true = [[0.0, 1.0], [0.0, 1.0]]
    # Within: both pairs right. Across all 6 pairs, 4 qualify (gap 1): (a0,a1) right, (a0,b1) right,
    # (a1,b0) wrong (true 1 > 0, pred 1 < 2), (b0,b1) right -> 3/4.
    assert pairwise_accuracy(preds, true, within_episode=True) == pytest.approx(1.0)
    assert pairwise_accuracy(preds, true) == pytest.approx(0.75)


def test_progress_metrics_compare_with_time_index() -> None:
    progress = [np.array([0.0, 0.5, 1.0, 0.5, 0.0]), np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])]
    report = progress_metrics(progress, progress)
    assert report["spearman"] == pytest.approx(1.0)
    assert report["pairwise_accuracy"] == pytest.approx(1.0)
    assert report["time_voc"] == pytest.approx(1.0)
    assert report["time_spearman"] == pytest.approx(0.5)  # mean of 0 (regressing) and 1
    assert report["voc"] == pytest.approx(0.5)
    assert report["time_pairwise_accuracy_within"] < 1.0
