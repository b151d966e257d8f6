"""Episode statistics gathered from batched steps."""

from __future__ import annotations

from collections import deque

import torch


class EpisodeTracker:
    """Accumulates per-world returns, lengths and reward terms; keeps the last ``window``
    finished episodes for logging."""

    def __init__(self, num_envs: int, device: torch.device, window: int = 100) -> None:
        self.returns = torch.zeros(num_envs, device=device)
        self.lengths = torch.zeros(num_envs, device=device)
        self.terms: dict[str, torch.Tensor] = {}
        self.finished: dict[str, deque] = {}
        self.window = window
        self.count = 0

    def step(self, reward: torch.Tensor, done: torch.Tensor, info: dict) -> None:
        """reward float[N], done bool[N], info from ``VecEnv.step``."""
        self.returns += reward
        self.lengths += 1
        for name, value in info.get("reward_terms", {}).items():
            self.terms.setdefault(name, torch.zeros_like(self.returns)).add_(value)
        if not bool(done.any()):
            return
        ids = done.nonzero().squeeze(1)
        self._push("return", self.returns[ids])
        self._push("length", self.lengths[ids])
        if "success" in info:
            self._push("success", info["success"][ids].float())
        for name, total in self.terms.items():
            self._push(f"reward/{name}", total[ids])
            total[ids] = 0.0
        self.returns[ids] = 0.0
        self.lengths[ids] = 0.0
        self.count += len(ids)

    def _push(self, key: str, values: torch.Tensor) -> None:
        self.finished.setdefault(key, deque(maxlen=self.window)).extend(values.tolist())

    def summary(self) -> dict[str, float]:
        """Means over the last ``window`` finished episodes (empty before the first ends)."""
        return {f"episode/{k}": sum(v) / len(v) for k, v in self.finished.items() if v}
