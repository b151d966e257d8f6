"""Temporally correlated exploration noise for off-policy actors.

SAC explores with independent Gaussian draws at every step; noise whose power falls off with
frequency as 1/f^β keeps pushing the same way for several steps, which reaches states a
random walk of independent draws rarely does. β = 1 (pink noise) is what Eberhard et al.
("Pink Noise Is All You Need", ICLR 2023) found to work best across continuous-control tasks;
β = 0 is white noise (independent draws), β = 2 red noise, close to a random walk.

    noise = ColoredNoise(beta=1.0, worlds=8, action_dim=4, horizon=100, generator=gen)
    eps = noise.sample()                 # float32[8, 4], standard normal at every step
    obs, ... = env.step(actor_action(obs, eps))
    noise.restart(terminated | truncated)  # those worlds draw a fresh sequence

Sequences are drawn in the frequency domain: Gaussian Fourier coefficients scaled by f^(-β/2)
(the lowest frequency's scale also stands in for the constant term), transformed back and
divided by the exact standard deviation that scaling gives, so every step's marginal is N(0, 1)
whatever β is.
"""

from __future__ import annotations

import math

import torch


def colored_noise(beta: float, batch: tuple[int, ...], length: int,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """float32[*batch, length]: independent sequences with power ∝ 1/f^β along the last axis and
    a standard normal marginal at every position."""
    if beta < 0:
        raise ValueError(f"noise exponent beta must be >= 0 (0 white, 1 pink, 2 red), got {beta}")
    if length < 1:
        raise ValueError(f"sequence length must be at least 1, got {length}")
    if length == 1:
        return torch.randn(*batch, 1, generator=generator)
    freqs = torch.fft.rfftfreq(length, dtype=torch.float64)
    freqs[0] = freqs[1]
    scale = freqs ** (-beta / 2)
    # Real-only coefficients (the constant term and, for even lengths, the Nyquist term) carry
    # twice the variance of each part of a complex one, as for a white sequence's transform.
    real_only = torch.zeros_like(scale, dtype=torch.bool)
    real_only[0] = True
    if length % 2 == 0:
        real_only[-1] = True
    real_scale = torch.where(real_only, scale * math.sqrt(2), scale)
    imag_scale = torch.where(real_only, torch.zeros_like(scale), scale)
    shape = (*batch, len(freqs))
    real = torch.randn(shape, generator=generator, dtype=torch.float64) * real_scale
    imag = torch.randn(shape, generator=generator, dtype=torch.float64) * imag_scale
    x = torch.fft.irfft(torch.complex(real, imag), n=length)
    # Each complex coefficient adds 4 s² / n² to a sample's variance, each real-only one 2 s² / n².
    variance = (torch.where(real_only, 2 * scale**2, 4 * scale**2)).sum() / length**2
    return (x / variance.sqrt()).float()


class ColoredNoise:
    """Per-world action noise along episodes: a sequence of ``horizon`` steps per world and
    episode (see :func:`colored_noise`); a world that runs past its sequence draws another."""

    def __init__(self, beta: float, worlds: int, action_dim: int, horizon: int,
                 generator: torch.Generator | None = None) -> None:
        self.beta, self.horizon, self.generator = beta, horizon, generator
        self.sequences = colored_noise(beta, (worlds, action_dim), horizon, generator)
        self.step = torch.zeros(worlds, dtype=torch.long)

    def sample(self) -> torch.Tensor:
        """float32[worlds, action_dim]: this step's noise of every world; advances one step."""
        spent = self.step >= self.horizon
        if spent.any():
            self.restart(spent)
        eps = self.sequences[torch.arange(len(self.step)), :, self.step]
        self.step += 1
        return eps

    def restart(self, worlds: torch.Tensor) -> None:
        """New sequences for the worlds where bool[worlds] is set (their episodes ended)."""
        idx = torch.nonzero(worlds.cpu(), as_tuple=True)[0]
        if len(idx):
            self.sequences[idx] = colored_noise(self.beta, (len(idx), self.sequences.shape[1]), self.horizon,
                                                self.generator)
            self.step[idx] = 0
