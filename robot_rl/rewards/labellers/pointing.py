"""A VLM behind an OpenAI-compatible chat server marks named points on camera images (KAGI's
keypoint proposals).

    pointer = HTTPPointer(PointingConfig(http=HTTPLabellerConfig(base_url="http://gpu-node:8000/v1", model="...")))
    pixels = pointer.point(images, ["cube", "target"], goal)   # uint8[n, H, W, 3] -> float32[n, 2, 2] (u, v)

Each image is enlarged ``upscale`` times (nearest neighbour, so small renders stay legible) and
annotated with grid lines every ``grid`` pixels, which the prompt explains, so the model can read
coordinates off the picture. The model answers with one JSON object ``{"name": [x, y], ...}`` in
the pixels of the picture it was sent; they are mapped back to the original image (u = column,
v = row). A point the answer leaves out, sets to null or gives in another form is NaN, and so is
every point of an image whose request failed (after the HTTP client's retries): never a guess.
One request per image, ``http.max_workers`` in flight; same client as the pairwise labeller
(:func:`~robot_rl.rewards.labellers.http.post_json`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from robot_rl.rewards.labellers.http import HTTPLabellerConfig, data_url, post_json

DESCRIPTIONS: dict[str, str] = {
    "cube": "the centre of the top face of the red cube",
    "target": "the centre of the green target disc on the table",
    "tip": "the point between the two fingertips of the robot gripper",
}
"""What each keypoint name of the Panda cube tasks means, in words (the perception model's names)."""


@dataclass(frozen=True)
class PointingConfig:
    """Where the server is and how to ask it for points."""

    http: HTTPLabellerConfig = field(default_factory=HTTPLabellerConfig)
    """Server, model, token, timeout, retries and concurrency (its ``prompt`` is not used)."""
    describe: dict[str, str] = field(default_factory=dict)
    """Keypoint name -> what to mark, in words; adds to and replaces :data:`DESCRIPTIONS`."""
    upscale: int = 4
    """Each image pixel becomes upscale x upscale pixels of the picture sent."""
    grid: int = 64
    """Pixels of the picture sent between grid lines."""
    max_tokens: int = 200


class HTTPPointer:
    """Asks an OpenAI-compatible chat server to mark named points on images."""

    def __init__(self, config: PointingConfig) -> None:
        if config.upscale < 1 or config.grid < 2:
            raise ValueError(f"pointing: upscale must be >= 1 and grid >= 2 pixels, got {config.upscale}, "
                             f"{config.grid}")
        self.config = config
        self.url = config.http.base_url.rstrip("/") + "/chat/completions"
        self.describe = {**DESCRIPTIONS, **config.describe}
        self.counts = {"images": 0, "failed_requests": 0, "missing_points": 0}
        """Images asked about, requests that failed after retries, points the answers left out."""

    def point(self, images: torch.Tensor, names: Sequence[str], goal: str) -> torch.Tensor:
        """images uint8[n, H, W, 3] -> pixels float32[n, K, 2] (u, v) of ``names``, NaN where not marked."""
        unknown = [name for name in names if name not in self.describe]
        if unknown:
            raise ValueError(f"pointing: no description of {unknown}; give one in describe (known: "
                             f"{', '.join(self.describe)})")
        array = torch.as_tensor(images).cpu().numpy()
        if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
            raise ValueError(f"pointing: images must be uint8[n, H, W, 3], got {array.dtype}{list(array.shape)}")
        with ThreadPoolExecutor(max_workers=max(1, self.config.http.max_workers)) as pool:
            replies = list(pool.map(lambda image: self._ask(image, names, goal), array))
        answers = [points for points, _ in replies]
        self.counts["images"] += len(answers)
        self.counts["failed_requests"] += sum(failed for _, failed in replies)
        pixels = torch.tensor(np.array(answers, dtype=np.float32).reshape(len(answers), len(names), 2))
        self.counts["missing_points"] += int(torch.isnan(pixels[..., 0]).sum())
        return pixels

    def prompt(self, names: Sequence[str], goal: str, height: int, width: int) -> str:
        """The question about a picture of height x width pixels (the enlarged image)."""
        lines = "\n".join(f"- {name}: {self.describe[name]}" for name in names)
        example = ", ".join(f'"{name}": [x, y]' for name in names)
        return (f"This picture of a robot's workspace is {width} pixels wide and {height} pixels tall. The "
                f"white lines over it are {self.config.grid} pixels apart, starting at the top-left corner, "
                f"which is pixel (0, 0); x grows to the right and y downwards. The robot's task: {goal}.\n"
                f"Mark these points:\n{lines}\n"
                f"Answer with one JSON object and nothing else: {{{example}}}, with whole pixel numbers, "
                "and null for a point you cannot see.")

    def _ask(self, image: np.ndarray, names: Sequence[str], goal: str) -> tuple[list[list[float]], bool]:
        """Pixels [K][2] of one image and whether its request failed."""
        picture = annotate(image, self.config.upscale, self.config.grid)
        content = [{"type": "image_url", "image_url": {"url": data_url(picture)}},
                   {"type": "text", "text": self.prompt(names, goal, *picture.shape[:2])}]
        body = {"model": self.config.http.model, "messages": [{"role": "user", "content": content}],
                "max_tokens": self.config.max_tokens, "temperature": self.config.http.temperature}
        try:
            text = post_json(self.url, body, self.config.http)["choices"][0]["message"]["content"] or ""
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return [[math.nan, math.nan] for _ in names], True
        marked = parse_points(text, names)
        s = self.config.upscale
        # A picture pixel x lies in image pixel floor(x / s), whose centre is at (x + 0.5) / s - 0.5.
        return [[(x + 0.5) / s - 0.5, (y + 0.5) / s - 0.5] for x, y in marked], False


def annotate(image: np.ndarray, upscale: int, grid: int) -> np.ndarray:
    """uint8[H, W, 3] -> uint8[H*upscale, W*upscale, 3]: enlarged (nearest neighbour), with
    half-transparent white lines on every ``grid``-th row and column."""
    picture = image.repeat(upscale, axis=0).repeat(upscale, axis=1).astype(np.uint16)
    picture[::grid] = (picture[::grid] + 255) // 2
    picture[:, ::grid] = (picture[:, ::grid] + 255) // 2
    return picture.astype(np.uint8)


def parse_points(text: str, names: Sequence[str]) -> list[tuple[float, float]]:
    """(x, y) of each name from the first JSON object in ``text``; (NaN, NaN) where it is
    missing, null or not two finite numbers."""
    found: dict = {}
    match = re.search(r"\{.*\}", text, flags=re.DOTALL)
    if match:
        try:
            found = json.loads(match.group(0))
        except json.JSONDecodeError:
            found = {}
    out = []
    for name in names:
        value = found.get(name) if isinstance(found, dict) else None
        if (isinstance(value, (list, tuple)) and len(value) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
            out.append((float(value[0]), float(value[1])))
        else:
            out.append((math.nan, math.nan))
    return out
