"""The keypoint network: RGB-D in, one heat-map per keypoint out, decoded to sub-pixel
coordinates with a spatial soft-argmax around the peak and a confidence.

    net = KeypointNet(num_keypoints=3)
    logits = net(inputs)                 # float[n, 7, H, W] (see make_inputs) -> float[n, K, H/4, W/4]
    pixels, confidence = decode(logits)  # float[n, K, 2] image pixels (u, v), float[n, K] in [0, 1]

A small encoder-decoder (three stride-2 stages, one upsampling stage with a skip connection) with
two coordinate channels in the input, so the network can tell where in the image it looks; the
heat-maps have a quarter of the image's resolution and the soft-argmax places points between
cells. (Heat-maps at half resolution with twice the channels cost ~6x more per image: 5-7 s per
batch of 32 at 128x128 on this project's 2-core machines, too slow to train here.) Training
(:mod:`robot_rl.perception.training`) fits each heat-map's softmax to a Gaussian around the true
pixel and the soft-argmax to the pixel itself.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

STRIDE = 4
"""Image pixels per heat-map cell."""
DEPTH_SCALE = 2.0
"""Depth (metres) is divided by this before entering the network."""
WINDOW = 2
"""Cells either side of the peak that the soft-argmax and the confidence read."""


def make_inputs(rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """rgb uint8[n, H, W, 3] and depth float[n, H, W] (metres, 0 or NaN = no reading) ->
    float32[n, 7, H, W]: colour in [-0.5, 0.5], depth / DEPTH_SCALE (0 where invalid), the
    validity mask, and x, y coordinates in [-1, 1]."""
    n, h, w = depth.shape
    colour = rgb.permute(0, 3, 1, 2).float() / 255.0 - 0.5
    valid = (torch.isfinite(depth) & (depth > 0)).float()
    d = torch.nan_to_num(depth.float(), nan=0.0, posinf=0.0, neginf=0.0).clamp_min(0.0) * valid / DEPTH_SCALE
    ys = torch.linspace(-1.0, 1.0, h, device=depth.device).view(1, 1, h, 1).expand(n, 1, h, w)
    xs = torch.linspace(-1.0, 1.0, w, device=depth.device).view(1, 1, 1, w).expand(n, 1, h, w)
    return torch.cat([colour, d[:, None], valid[:, None], xs, ys], dim=1)


def _block(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation),
                         nn.GroupNorm(8, c_out), nn.SiLU())


class KeypointNet(nn.Module):
    def __init__(self, num_keypoints: int, width: int = 16) -> None:
        super().__init__()
        c1, c2, c3 = width, 2 * width, 4 * width
        self.stage1 = nn.Sequential(_block(7, c1, 2), _block(c1, c1))          # H/2
        self.stage2 = nn.Sequential(_block(c1, c2, 2), _block(c2, c2))         # H/4
        self.stage3 = nn.Sequential(_block(c2, c3, 2), _block(c3, c3, dilation=2), _block(c3, c3, dilation=4))  # H/8
        self.up = nn.Sequential(_block(c3 + c2, c2), _block(c2, c2))
        self.head = nn.Conv2d(c2, num_keypoints, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x2 = self.stage2(self.stage1(inputs))
        x3 = self.stage3(x2)
        x = self.up(torch.cat([F.interpolate(x3, size=x2.shape[-2:], mode="bilinear", align_corners=False), x2], 1))
        return self.head(x)


def cell_to_pixel(cells: torch.Tensor) -> torch.Tensor:
    """Heat-map cell coordinates -> image pixel coordinates (cell c covers pixels
    STRIDE·c .. STRIDE·c + STRIDE − 1, its centre is at STRIDE·c + (STRIDE − 1)/2)."""
    return cells * STRIDE + (STRIDE - 1) / 2.0


def pixel_to_cell(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - (STRIDE - 1) / 2.0) / STRIDE


def soft_argmax(logits: torch.Tensor) -> torch.Tensor:
    """float[n, K, h, w] -> expected cell coordinates float[n, K, 2] (x, y) under the softmax
    over the whole map (differentiable; used by the training loss)."""
    n, k, h, w = logits.shape
    prob = torch.softmax(logits.reshape(n, k, -1), dim=2).reshape(n, k, h, w)
    xs = torch.arange(w, device=logits.device, dtype=prob.dtype)
    ys = torch.arange(h, device=logits.device, dtype=prob.dtype)
    return torch.stack([(prob.sum(2) * xs).sum(2), (prob.sum(3) * ys).sum(2)], dim=-1)


@torch.no_grad()
def decode(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Heat-map logits float[n, K, h, w] -> image pixels float[n, K, 2] (u, v) and confidence
    float[n, K]: the softmax mass within WINDOW cells of the peak beyond what a flat heat-map
    puts there, rescaled to [0, 1] (1: all of it there; 0: no more than chance; training spreads
    the mass of keypoints it cannot see). The position is the
    softmax-weighted mean over that window, so a second blob elsewhere does not pull it."""
    n, k, h, w = logits.shape
    prob = torch.softmax(logits.reshape(n, k, -1).float(), dim=2).reshape(n, k, h, w)
    peak = prob.reshape(n, k, -1).argmax(dim=2)
    py, px = peak // w, peak % w
    ys = torch.arange(h, device=logits.device).view(1, 1, h, 1)
    xs = torch.arange(w, device=logits.device).view(1, 1, 1, w)
    near = ((ys - py[..., None, None]).abs() <= WINDOW) & ((xs - px[..., None, None]).abs() <= WINDOW)
    local = prob * near
    mass = local.sum(dim=(2, 3))
    cx = (local * xs).sum(dim=(2, 3)) / mass.clamp_min(1e-12)
    cy = (local * ys).sum(dim=(2, 3)) / mass.clamp_min(1e-12)
    chance = near.sum(dim=(2, 3)).float() / (h * w)  # the mass a flat heat-map puts there
    confidence = ((mass - chance) / (1.0 - chance).clamp_min(1e-6)).clamp(0.0, 1.0)
    return cell_to_pixel(torch.stack([cx, cy], dim=-1)), confidence
