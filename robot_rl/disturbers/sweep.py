"""Robustness of a trained policy: episodes under pushes of growing magnitude from several
directions, and against a trained H∞ disturber (what ``robot-rl robustness-eval`` runs).

A world *falls* when its episode terminates before the time limit (the quadruped falls over,
the cube leaves the table); *success* is the task's success predicate when the episode ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from robot_rl.disturbers.common import as_wrench, find_sim
from robot_rl.envs.vec_env import Obs
from robot_rl.training.evaluate import first_episodes

Wrench = Callable[[int, Obs], torch.Tensor]
"""(control step, observation) -> float[N, 6] wrench for that step."""


@dataclass
class Outcome:
    """Episodes of one setting (a magnitude, over all directions)."""

    magnitude: float
    episodes: int
    fall_rate: float
    success_rate: float | None
    mean_return: float
    by_direction: list[float] = field(default_factory=list)
    """Fall rate per push direction (empty for the adversary)."""


@torch.no_grad()
def run_episodes(policy: Callable[[Obs], torch.Tensor], env: Any, body: str, wrench: Wrench, max_steps: int,
                 seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
    """Each world's first episode under ``wrench`` on ``body``: fell bool[N], success bool[N],
    return float[N], and whether the env reports success at all."""
    sim = find_sim(env)
    try:
        run = first_episodes(policy, env, max_steps, seed, lambda t, obs: sim.apply_wrench(body, wrench(t, obs)))
    finally:
        sim.apply_wrench(body, torch.zeros(env.num_envs, 6, device=env.device))
    return run.terminated, run.success, run.returns, run.has_success


def push_schedule(directions: torch.Tensor, magnitude: float, start: int, duration: int, every: int) -> Wrench:
    """Pushes of ``magnitude`` newtons along world directions float[N, 3] (one per world), held
    for ``duration`` steps starting at step ``start`` and again every ``every`` steps."""

    def wrench(t: int, obs: Obs) -> torch.Tensor:
        on = t >= start and (t - start) % every < duration
        return as_wrench(directions * (magnitude if on else 0.0))

    return wrench


def horizontal_directions(count: int, per_direction: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit vectors float[count·per_direction, 3] at azimuths 2πk/count (world k of each block of
    ``per_direction`` worlds shares one) and the direction index of each world int64[N]."""
    index = torch.arange(count, device=device).repeat_interleave(per_direction)
    azimuth = 2 * math.pi * index.float() / count
    return torch.stack([torch.cos(azimuth), torch.sin(azimuth), torch.zeros_like(azimuth)], dim=1), index


def summarise(magnitude: float, fell: torch.Tensor, success: torch.Tensor, returns: torch.Tensor,
              has_success: bool, direction: torch.Tensor | None = None, count: int = 0) -> Outcome:
    by_direction = [float(fell[direction == k].float().mean()) for k in range(count)] if direction is not None else []
    return Outcome(magnitude=magnitude, episodes=int(fell.numel()), fall_rate=float(fell.float().mean()),
                   success_rate=float(success.float().mean()) if has_success else None,
                   mean_return=float(returns.mean()), by_direction=by_direction)


def to_json(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    return [asdict(o) for o in outcomes]


def plot_sweep(result: dict[str, Any], out: Path) -> Path:
    """Fall and success rate against push magnitude (sweep, and the adversary when present)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key, label, style in (("sweep", "pushes (all directions)", "o-"), ("adversary", "H∞ disturber", "s--")):
        rows = result.get(key) or []
        if not rows:
            continue
        x = [r["magnitude"] for r in rows]
        axes[0].plot(x, [r["fall_rate"] for r in rows], style, label=label)
        if rows[0]["success_rate"] is not None:
            axes[1].plot(x, [r["success_rate"] for r in rows], style, label=label)
    for ax, name in zip(axes, ("fall rate", "success rate")):
        ax.set_xlabel("force, N")
        ax.set_ylabel(name)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{result['task']}: {result['run_dir']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
