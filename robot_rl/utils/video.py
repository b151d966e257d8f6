"""Writing videos of rollouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_video(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """Write frames uint8[T, H, W, 3] (RGB) to an MP4 file; returns the path.

    Raises:
        ValueError: frames have the wrong shape or dtype, or no encoder accepts them.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be uint8[T, H, W, 3] with T >= 1, got {frames.dtype}{list(frames.shape)}")
    import cv2  # opencv is only needed here

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise ValueError(f"OpenCV could not open an MP4 writer for {path} ({width}x{height} at {fps} fps)")
    try:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[:, :, ::-1]))  # OpenCV wants BGR
    finally:
        writer.release()
    return path
