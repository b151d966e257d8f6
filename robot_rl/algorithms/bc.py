"""Behaviour cloning: a deterministic policy regressed onto the dataset's actions.

    bc = BC(obs_dim, action_dim, NetConfig(), norm)
    stats = bc.update(batch)          # {"loss/bc": ...}
    bc.actor(obs)                     # float[B, A] in (-1, 1)
"""

from __future__ import annotations

import torch

from robot_rl.algorithms.replay import Batch, DeterministicActor, FixedNorm
from robot_rl.configs.offline import NetConfig


class BC:
    def __init__(self, obs_dim: int, action_dim: int, net: NetConfig, norm: FixedNorm | None = None) -> None:
        self.actor = DeterministicActor(norm or FixedNorm.identity(obs_dim), obs_dim, action_dim, net.hidden)
        self.optimizer = torch.optim.Adam(self.actor.parameters(), lr=net.lr)

    def update(self, batch: Batch) -> dict[str, float]:
        loss = torch.nn.functional.mse_loss(self.actor(batch.obs), batch.action.clamp(-1.0, 1.0))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss/bc": float(loss.detach())}

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "optimizer": self.optimizer.state_dict()}
