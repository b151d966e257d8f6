"""The small convolutional image encoder that learned reward modules train from scratch.

    net = SmallCNN(out_dim=32)
    z = net(images)        # uint8[B, H, W, 3] -> float32[B, 32]; any H, W >= 8

Small enough to train on a few hundred 64x64 frames on a CPU in seconds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8[B, H, W, 3] -> float32[B, 3, H, W] in [-0.5, 0.5]."""
    return images.permute(0, 3, 1, 2).float().div(255.0).sub(0.5)


def random_shift(x: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image of float[B, C, H, W] by up to ``pad`` pixels (edge padding, then a
    random crop; DrQ's augmentation), so a net cannot key on exact pixel positions."""
    if pad <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    shifts = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(shifts)])


class SmallCNN(nn.Module):
    """Images average-pooled to ``input_size`` pixels, three convolutions (two strided), a 4x4
    adaptive pool and a linear layer: about 10k parameters, cheap enough to train on a CPU."""

    def __init__(self, out_dim: int = 32, width: int = 16, input_size: int = 32) -> None:
        super().__init__()
        self.out_dim, self.input_size = out_dim, input_size
        self.convs = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=1, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
        )
        self.head = nn.Linear(16 * width, out_dim)

    def forward_float(self, x: torch.Tensor) -> torch.Tensor:
        """float32[B, 3, H, W] (see :func:`to_float`) -> float32[B, out_dim]."""
        if max(x.shape[-2:]) > self.input_size:
            x = F.adaptive_avg_pool2d(x, self.input_size)
        return self.head(self.convs(x).flatten(1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8[B, H, W, 3] -> float32[B, out_dim]."""
        return self.forward_float(to_float(images))
