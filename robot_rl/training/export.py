"""A self-contained policy file: a ``torch.export`` program plus JSON metadata.

Loading needs torch only, not the training code:

    program = torch.export.load("policy.pt", extra_files={"robot_rl.json": ""})
    action = program.module()(obs)                       # float[B, P] -> float[B, A]

or ``policy, meta = load_policy("policy.pt")``.
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
    """Observation float[B, P] -> deterministic action float[B, A] in [low, high], A = len(low).

    An actor trained with simulation-only privileged actions (``robot_rl.disturbers.privileged``)
    outputs them after the robot's A actions; they are cut off here, so the policy file holds
    the robot's actions only.
    """

    def __init__(self, model: ActorCritic, low: torch.Tensor, high: torch.Tensor) -> None:
        super().__init__()
        self.norm = copy.deepcopy(model.actor_norm)
        self.actor = copy.deepcopy(model.actor)
        outputs, self.action_dim = int(model.log_std.numel()), int(low.numel())
        if outputs < self.action_dim:
            raise ValueError(f"the actor outputs {outputs} actions but the robot has {self.action_dim}: "
                             "the checkpoint belongs to another task or robot")
        self.register_buffer("low", low.detach().clone().float().cpu())
        self.register_buffer("high", high.detach().clone().float().cpu())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        actions = self.actor(self.norm(obs))[:, :self.action_dim]
        return torch.maximum(torch.minimum(actions, self.high), self.low)


def export_policy(model: ActorCritic, out: str | Path, metadata: dict[str, Any], low: torch.Tensor,
                  high: torch.Tensor) -> Path:
    """Write ``out``: the deterministic policy as a ``torch.export`` program (any batch size)
    with ``metadata`` stored inside the archive."""
    module = DeployedPolicy(model.cpu(), low, high).eval().requires_grad_(False)
    example = torch.zeros(2, metadata["observation_dim"])
    program = torch.export.export(module, (example,), dynamic_shapes={"obs": {0: torch.export.Dim("batch")}})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:  # a file object: torch.export would warn about any suffix but .pt2
        torch.export.save(program, f, extra_files={METADATA: json.dumps(metadata, indent=2)})
    return out


def load_policy(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The policy (observation float[B, P] -> action float[B, A]) and its metadata (task,
    observation and action sizes, control period, task config)."""
    files = {METADATA: ""}
    try:
        with open(path, "rb") as f:
            program = torch.export.load(f, extra_files=files)
    except (RuntimeError, ValueError, OSError) as error:
        raise ValueError(f"{path} is not an exported robot_rl policy: {str(error).splitlines()[0]}") from None
    if not files[METADATA]:
        raise ValueError(f"{path} has no robot_rl metadata; export it with `robot-rl export`")
    return program.module(), json.loads(files[METADATA])
