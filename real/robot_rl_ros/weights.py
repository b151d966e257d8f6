"""Actor weights on ``/policy/weights`` (std_msgs/Float32MultiArray), from the learner node to the
policy node.

One message holds every tensor of the deployed policy that learning changes, under the names the
exported policy file gives them (``norm.mean``, ``norm.std``, ``actor.0.0.weight``, ...), flattened
and concatenated as float32, which is what the networks hold, so the round trip is exact. The
array's only dimension's label carries the schema, a version counter, the publish time and the
layout:

    robot_rl.policy_weights.v1;version=12;stamp_ns=1763790000000000000;norm.mean:32,norm.std:32,actor.0.0.weight:256x32,...

A 256×256 actor for the 32-number reach observation is 76,360 numbers, 0.3 MB on the wire;
``messages.encode`` and ``decode`` take well under a millisecond for it.

Only policies exported from an offline or fine-tuning run (``robot_rl.offline.trainer.ExportView``:
a fixed normaliser ``norm.mean``/``norm.std`` and a tanh MLP ``actor.0.*``) take learned weights;
a PPO export (running normaliser ``norm.var``/``norm.count``, MLP ``actor.N.*``) is refused by
:func:`check_learnable`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_rl_ros import messages as M

SCHEMA = "robot_rl.policy_weights.v1"
FIXED = ("low", "high")
"""Buffers of an exported policy that belong to the robot (action bounds), not to learning."""
_LEARNABLE = re.compile(r"^(norm\.(mean|std)|actor\.0\.\d+\.(weight|bias))$")


@dataclass(frozen=True)
class PolicyWeights:
    version: int
    """Counts the learner's publications from 1; the policy node logs which one it runs."""
    stamp_ns: int
    """Wall-clock time the learner published them (ns since the epoch)."""
    tensors: dict[str, np.ndarray]
    """float32 arrays by exported-policy name, in their shapes."""


def exported_names(actor: Any) -> dict[str, np.ndarray]:
    """The tensors of a training actor with ``actor_norm`` and ``actor`` (SAC, IQL, TD3+BC, BC)
    under the names :class:`robot_rl.training.export.DeployedPolicy` gives them, as float32 arrays."""
    out = {f"norm.{k}": v for k, v in actor.actor_norm.state_dict().items()}
    out.update({f"actor.{k}": v for k, v in actor.actor.state_dict().items()})
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in out.items()}


def learnable_state(policy: Any) -> dict[str, Any]:
    """The tensors of a loaded policy module (``load_policy``) that learned weights replace."""
    return {k: v for k, v in policy.state_dict().items() if k not in FIXED}


def check_learnable(policy: Any, path: str, alternative: str) -> None:
    """Raise ValueError naming the parameters when ``policy`` (loaded from ``path``) is not an
    exported offline/fine-tuned actor, whose weights a learner can replace; the message ends
    with ``alternative``, what else the user can do."""
    names = sorted(learnable_state(policy))
    odd = sorted((n for n in names if not _LEARNABLE.match(n)), key=lambda n: (not n.startswith("norm."), n))
    odd += sorted({"norm.mean", "norm.std"} - set(names))
    if odd or not names:
        shown = ", ".join(odd[:6]) + (", ..." if len(odd) > 6 else "")
        raise ValueError(f"{path} cannot take learned weights: its parameters ({shown}) are not those of an "
                         "offline or fine-tuned actor (norm.mean, norm.std, actor.0.N.weight/bias), e.g. it was "
                         "trained with PPO; deploy a policy exported from `robot-rl offline-train` or "
                         f"`robot-rl finetune`, or {alternative}")


def to_message(weights: PolicyWeights) -> Any:
    parts = [(name, np.asarray(v, dtype=np.float32)) for name, v in weights.tensors.items()]
    layout = ",".join(f"{name}:{'x'.join(str(n) for n in v.shape)}" for name, v in parts)
    label = f"{SCHEMA};version={weights.version};stamp_ns={weights.stamp_ns};{layout}"
    data = np.concatenate([v.reshape(-1) for _, v in parts]) if parts else np.zeros(0, np.float32)
    return M.float32_array(data, [(label, len(data))])


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in text.split("x")) if text else ()


def from_message(msg: Any) -> PolicyWeights:
    """The weights in a message; ValueError when it is not a complete ``robot_rl.policy_weights.v1``."""
    labels = [d.label for d in msg.layout.dim]
    if len(labels) != 1 or not labels[0].startswith(SCHEMA + ";"):
        raise ValueError(f"not a {SCHEMA} message (layout {[label[:60] for label in labels]})")
    try:
        _, version, stamp, layout = labels[0].split(";", 3)
        header = {k: int(v) for k, v in (item.split("=") for item in (version, stamp))}
        shapes = [(name, _shape(size)) for name, size in (item.rsplit(":", 1) for item in layout.split(",") if item)]
        version_number, stamp_ns = header["version"], header["stamp_ns"]
    except (ValueError, KeyError) as error:
        raise ValueError(f"malformed {SCHEMA} label {labels[0][:120]!r}: {error}") from None
    data = np.asarray(msg.data, dtype=np.float32)
    total = sum(int(np.prod(shape)) for _, shape in shapes)
    if total != len(data):
        raise ValueError(f"{SCHEMA} version {version_number}: the layout names {total} numbers but "
                         f"{len(data)} arrived")
    tensors, offset = {}, 0
    for name, shape in shapes:
        size = int(np.prod(shape))
        tensors[name] = data[offset:offset + size].reshape(shape)
        offset += size
    return PolicyWeights(version_number, stamp_ns, tensors)


def mismatch(tensors: Mapping[str, Any], target: Mapping[str, Any]) -> str | None:
    """Why ``tensors`` cannot replace ``target`` (tensors or arrays by name, e.g. a loaded
    policy's :func:`learnable_state`), or None when they fit: same names, same shapes, finite."""
    from robot_rl.algorithms.networks import state_differences

    differences = state_differences(target, tensors)
    if differences:
        return "; ".join(differences[:3]) + ("; ..." if len(differences) > 3 else "")
    bad = [k for k, v in tensors.items() if not np.all(np.isfinite(np.asarray(v)))]
    if bad:
        return f"non-finite values in {bad}"
    return None


def load_into(policy: Any, weights: PolicyWeights) -> None:
    """Copy ``weights`` (checked with :func:`mismatch` against ``learnable_state(policy)``) into
    ``policy``'s tensors in place."""
    import torch

    with torch.no_grad():
        for name, tensor in learnable_state(policy).items():
            tensor.copy_(torch.tensor(weights.tensors[name]))  # a copy: decoded arrays are read-only
