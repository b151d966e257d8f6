"""What every disturber needs: the simulator behind wrappers and the body to push."""

from __future__ import annotations

from typing import Any

import torch


def find_sim(env: Any) -> Any:
    """The backend (``apply_wrench``) under any stack of wrappers exposing ``.env``."""
    seen = env
    while seen is not None:
        if "sim" in getattr(seen, "__dict__", {}):
            return seen.__dict__["sim"]
        seen = getattr(seen, "__dict__", {}).get("env")
    raise ValueError(f"{type(env).__name__} has no simulator to push: disturbers need a robot_rl task "
                     "(robot-rl tasks), not a Gymnasium env")


def body_of(env: Any, body: str, where: str) -> str:
    """``body`` checked against the scene, or when empty the task's main free body (the first
    of its ``randomized_bodies``: ``trunk`` for the quadruped, ``cube`` for the cube tasks)."""
    sim = find_sim(env)
    if not body:
        task = getattr(env, "task", None)
        bodies = getattr(task, "randomized_bodies", ())
        if not bodies:
            raise ValueError(f"{where}.body: {getattr(task, 'name', 'this task')} has no default body to push; "
                             f"name one of: {', '.join(sim.layout.bodies)}")
        body = bodies[0]
    if body not in sim.layout.bodies:
        raise ValueError(f"{where}.body: no body {body!r} in the scene; bodies: {', '.join(sim.layout.bodies)}")
    return body


def clip_norm(force: torch.Tensor, bound: float) -> torch.Tensor:
    """float[N, 3] scaled down where its norm exceeds ``bound``."""
    norm = torch.linalg.norm(force, dim=1, keepdim=True)
    return force * torch.clamp(bound / norm.clamp_min(1e-12), max=1.0)


def as_wrench(force: torch.Tensor) -> torch.Tensor:
    """float[N, 3] force -> float[N, 6] wrench without torque."""
    return torch.cat([force, torch.zeros_like(force)], dim=1)
