"""Domain-randomisation pushes: random forces redrawn at a fixed interval."""

from __future__ import annotations

import math

import torch

from robot_rl.disturbers.common import as_wrench


class RandomPushes:
    """Every ``interval`` steps each world draws a force uniform in ±``max_force`` newtons per
    axis, held until the next draw (legged_gym/HIMLoco's ±30 N every 8 steps)."""

    def __init__(self, num_envs: int, max_force: float, interval: int, generator: torch.Generator,
                 device: torch.device) -> None:
        if max_force < 0 or interval < 1:
            raise ValueError(f"pushes need max_force >= 0 and interval >= 1, got {max_force} and {interval}")
        self.max_force, self.interval = float(max_force), int(interval)
        self.generator, self.device = generator, device
        self.force = torch.zeros(num_envs, 3, device=device)
        """float[N, 3]: the force applied this step, newtons."""
        self.steps = 0

    def wrench(self) -> torch.Tensor:
        """float[N, 6] for this control step (forces only)."""
        if self.steps % self.interval == 0:
            u = torch.rand(self.force.shape, generator=self.generator, device=self.device)
            self.force = (2.0 * u - 1.0) * self.max_force
        self.steps += 1
        return as_wrench(self.force)


def fixed_push(num_envs: int, magnitude: float, azimuth: float, device: torch.device,
               elevation: float = 0.0) -> torch.Tensor:
    """float[N, 6]: the same horizontal-ish force of ``magnitude`` newtons in every world, in the
    direction at ``azimuth`` radians (from +x towards +y) and ``elevation`` radians above the plane."""
    direction = torch.tensor([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
                              math.sin(elevation)], device=device)
    return as_wrench((magnitude * direction).expand(num_envs, 3).clone())
