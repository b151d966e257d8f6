"""A self-contained policy file: TorchScript network plus JSON metadata, no training code needed.

    policy, meta = load_policy("policy.pt")
    action = policy(torch.as_tensor(obs).unsqueeze(0))   # float[1, A] in [-1, 1]
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robot_rl.algorithms.networks import ActorCritic

METADATA = "robot_rl.json"


class DeployedPolicy(nn.Module):
    """Observation float[B, P] -> deterministic action float[B, A] in [low, high]."""

    def __init__(self, model: ActorCritic, low: torch.Tensor, high: torch.Tensor) -> None:
        super().__init__()
        self.norm = copy.deepcopy(model.actor_norm)
        self.actor = copy.deepcopy(model.actor)
        self.register_buffer("low", low.detach().clone().float().cpu())
        self.register_buffer("high", high.detach().clone().float().cpu())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(self.actor(self.norm(obs)), self.high), self.low)


def export_policy(model: ActorCritic, out: str | Path, metadata: dict[str, Any], low: torch.Tensor,
                  high: torch.Tensor) -> Path:
    """Write ``out`` (TorchScript) with ``metadata`` stored inside the archive."""
    module = DeployedPolicy(model.cpu(), low, high).eval()
    scripted = torch.jit.script(module)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(scripted, str(out), _extra_files={METADATA: json.dumps(metadata, indent=2)})
    return out


def load_policy(path: str | Path) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """The policy module and its metadata (task, observation and action sizes, control rate...)."""
    files = {METADATA: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"{path} is not an exported robot_rl policy: {str(error).splitlines()[0]}") from None
    if not files[METADATA]:
        raise ValueError(f"{path} is a TorchScript file without robot_rl metadata; export it with `robot-rl export`")
    return module, json.loads(files[METADATA])
