"""Image helpers shared by labellers: content hashes, view strips, side-by-side pairs, PNG bytes.

PNG encoding uses only the standard library (zlib), so the HTTP and terminal labellers need
no imaging package.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

import numpy as np
import torch


def check_pair_batch(a: torch.Tensor, b: torch.Tensor, who: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate two batches of observations uint8[B, V, H, W, 3] of one shape; returns them on the CPU."""
    for name, images in (("a", a), ("b", b)):
        if images.dtype != torch.uint8 or images.ndim != 5 or images.shape[-1] != 3:
            raise ValueError(f"{who}: {name} must be uint8[B, V, H, W, 3], got {images.dtype}{list(images.shape)}")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{who}: a and b hold {a.shape[0]} and {b.shape[0]} observations; pairs need equal counts")
    return a.cpu(), b.cpu()


def image_hashes(images: torch.Tensor) -> list[str]:
    """sha256 hex digests of each observation in uint8[B, ...]: over the shape and the raw bytes,
    so equal pixels give equal keys on every machine and differently shaped arrays never collide."""
    array = np.ascontiguousarray(images.detach().cpu().numpy())
    header = "x".join(str(d) for d in array.shape[1:]).encode()
    return [hashlib.sha256(header + b"|" + item.tobytes()).hexdigest() for item in array]


def view_strip(observation: torch.Tensor) -> np.ndarray:
    """One observation uint8[V, H, W, 3] as one picture uint8[H, V*W, 3], views left to right."""
    return np.concatenate(list(observation.detach().cpu().numpy()), axis=1)


def side_by_side(a: np.ndarray, b: np.ndarray, gap: int = 4, scale: int = 1) -> np.ndarray:
    """Two pictures uint8[H, W, 3] next to each other with a white gap, each pixel repeated
    ``scale`` times: uint8[H*scale, (2W+gap)*scale, 3]."""
    height = max(a.shape[0], b.shape[0])
    pad = [np.pad(x, ((0, height - x.shape[0]), (0, 0), (0, 0))) for x in (a, b)]
    spacer = np.full((height, gap, 3), 255, dtype=np.uint8)
    joined = np.concatenate([pad[0], spacer, pad[1]], axis=1)
    return joined.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else joined


def encode_png(image: np.ndarray) -> bytes:
    """PNG file bytes of an RGB picture uint8[H, W, 3]."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"encode_png needs uint8[H, W, 3], got {image.dtype}{list(image.shape)}")
    height, width = image.shape[:2]
    # Each row starts with filter type 0 (none).
    rows = np.concatenate([np.zeros((height, 1), dtype=np.uint8), image.reshape(height, width * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + chunk(b"IEND", b""))
