"""``robot-rl export``: write a run's policy as one self-contained file (``torch.export``).

    robot-rl export runs/panda_reach/2026-01-01_12-00-00 --out policy.pt

The file holds the actor, its observation normalisation and action bounds, plus metadata
(task, observation and action sizes, control period, the task's action scale); load it with
``torch.export.load`` or ``robot_rl.training.export.load_policy`` — no training code needed.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory written by `robot-rl train`")
    parser.add_argument("--out", required=True, help="output file, e.g. policy.pt")
    parser.add_argument("--checkpoint", help="checkpoint file (default: the run's latest)")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from robot_rl.training.checkpoints import restore_model
    from robot_rl.training.export import export_policy
    from robot_rl.training.runner import build_env

    cfg, model, checkpoint = restore_model(Path(args.run_dir), args.checkpoint)
    env = build_env(cfg, num_envs=1)
    task = getattr(env, "task", None)
    task_config = {k: v for k, v in dataclasses.asdict(task.config).items() if k != "randomization"} if task else {}
    metadata = {
        "task": cfg.env.task,
        "goal": getattr(env, "goal", ""),
        "observation_group": cfg.algo.actor_obs,
        "observation_dim": env.obs_dims[cfg.algo.actor_obs],
        "action_dim": env.action_dim,
        "action_low": env.action_low.tolist(),
        "action_high": env.action_high.tolist(),
        "control_dt": getattr(env, "control_dt", None),
        "task_config": task_config,
        "checkpoint": str(checkpoint),
    }
    env.close()
    out = export_policy(model, args.out, metadata, torch.as_tensor(metadata["action_low"]),
                        torch.as_tensor(metadata["action_high"]))
    print(f"wrote {out}: {metadata['observation_dim']} observations -> {metadata['action_dim']} actions "
          f"at {1 / metadata['control_dt']:g} Hz" if metadata["control_dt"] else f"wrote {out}")
    return 0
