"""One record per control step on ``/policy/transition`` (std_msgs/Float64MultiArray).

A single message per step keeps the policy's action, the executed action and the intervention
flag together, so nothing downstream has to re-join topics by time (LeRobot's HIL port lost the
flag between actor and learner that way). The array is one-dimensional; its only dimension's
label carries the schema and names every field with its size, e.g.
``robot_rl.transition.v1;episode:1,step:1,...,hold:1,weights_version:1``, so a reader takes the
fields it knows by name: records written before ``weights_version`` existed still parse (as
version 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_rl_ros import messages as M

SCHEMA = "robot_rl.transition.v1"


@dataclass(frozen=True)
class Transition:
    episode: int
    step: int
    time: float
    """Wall-clock time of the step (s since the epoch)."""
    observation: np.ndarray
    """float[P]: what the policy saw."""
    state: np.ndarray
    """float[J+1]: arm joint positions (rad) and gripper width (m)."""
    policy_action: np.ndarray
    """float[A]: what the policy asked for."""
    action: np.ndarray
    """float[A]: what was executed (the person's action while they intervene)."""
    intervention: bool
    reward: float
    done: bool
    success: bool
    hold: bool
    """The safety filter held the robot this step."""
    weights_version: int = 0
    """The learner's weights version the policy ran this step (``policy_node``'s
    ``weights_version``): 0 for the policy file's own weights, and in records from before this
    field existed."""

    def fields(self) -> list[tuple[str, np.ndarray]]:
        return [(name, np.atleast_1d(np.asarray(getattr(self, name), dtype=np.float64)))
                for name in Transition.__dataclass_fields__]


def to_message(t: Transition) -> Any:
    parts = t.fields()
    label = SCHEMA + ";" + ",".join(f"{name}:{len(values)}" for name, values in parts)
    data = np.concatenate([values for _, values in parts])
    return M.float64_array(data, [(label, len(data))])


def from_message(msg: Any) -> Transition:
    """The record in ``msg``; ValueError when it is not a ``robot_rl.transition.v1`` record.
    Fields the label does not name keep their defaults (``weights_version``: 0)."""
    if len(msg.layout.dim) != 1 or not msg.layout.dim[0].label.startswith(SCHEMA + ";"):
        raise ValueError(f"not a {SCHEMA} record (layout {[d.label for d in msg.layout.dim]})")
    values, offset = {}, 0
    for item in msg.layout.dim[0].label.split(";", 1)[1].split(","):
        name, size = item.split(":")
        values[name] = np.asarray(msg.data[offset:offset + int(size)], dtype=np.float64)
        offset += int(size)
    scalar = {"episode": int, "step": int, "time": float, "intervention": bool, "reward": float, "done": bool,
              "success": bool, "hold": bool, "weights_version": int}
    try:
        return Transition(**{k: (scalar[k](v[0]) if k in scalar else v) for k, v in values.items()})
    except TypeError as error:  # a field missing, or one this version does not know
        raise ValueError(f"malformed {SCHEMA} record: {error}") from None
