"""Coloured exploration noise: standard normal marginals, the correlation its exponent sets,
per-world sequences that restart with episodes."""

from __future__ import annotations

import pytest
import torch

from robot_rl.algorithms.noise import ColoredNoise, colored_noise


def lag_one_correlation(x: torch.Tensor) -> float:
    return float((x[..., 1:] * x[..., :-1]).mean())


@pytest.mark.parametrize("length", [100, 101])
def test_every_step_is_standard_normal_and_beta_sets_the_correlation(length: int) -> None:
    g = torch.Generator().manual_seed(0)
    lag_one = {}
    for beta in (0.0, 1.0, 2.0):
        x = colored_noise(beta, (8000,), length, g)
        assert x.shape == (8000, length) and x.dtype == torch.float32
        var = x.var(0)  # across sequences, at each step
        assert 0.92 < float(var.min()) and float(var.max()) < 1.08, beta
        assert abs(float(x.mean())) < 0.02
        lag_one[beta] = lag_one_correlation(x)
    assert abs(lag_one[0.0]) < 0.02  # white: independent steps
    assert 0.55 < lag_one[1.0] < 0.8  # pink
    assert lag_one[2.0] > 0.9  # red: close to a random walk


def test_bad_exponent_or_length_is_named() -> None:
    with pytest.raises(ValueError, match="beta must be >= 0"):
        colored_noise(-1.0, (2,), 10)
    with pytest.raises(ValueError, match="length must be at least 1"):
        colored_noise(1.0, (2,), 0)


def test_worlds_follow_their_sequence_and_restart_where_episodes_end() -> None:
    noise = ColoredNoise(1.0, worlds=3, action_dim=2, horizon=5, generator=torch.Generator().manual_seed(1))
    sequences = noise.sequences.clone()
    for t in range(3):
        torch.testing.assert_close(noise.sample(), sequences[:, :, t])
    noise.restart(torch.tensor([False, True, False]))
    eps = noise.sample()
    torch.testing.assert_close(eps[[0, 2]], sequences[[0, 2], :, 3])  # the others carry on
    assert not torch.equal(noise.sequences[1], sequences[1])
    torch.testing.assert_close(eps[1], noise.sequences[1, :, 0])  # a fresh sequence from its start
    noise.sample()  # world 0 and 2: step 4, the last of the sequence
    torch.testing.assert_close(noise.sample()[0], noise.sequences[0, :, 0])  # past it: a new one
