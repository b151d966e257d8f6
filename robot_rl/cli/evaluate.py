"""``robot-rl eval``: evaluate a run's latest checkpoint.

    robot-rl eval runs/panda_reach/2026-01-01_12-00-00 --episodes 64 --video
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory written by `robot-rl train`")
    parser.add_argument("--episodes", type=int, default=32, help="episodes to evaluate (default 32)")
    parser.add_argument("--video", action="store_true", help="also write rollout.mp4")
    parser.add_argument("--checkpoint", help="checkpoint file (default: the run's latest)")
    parser.add_argument("--seed", type=int, default=12345)


def run(args: argparse.Namespace) -> int:
    import torch

    from robot_rl.training.checkpoints import restore_model
    from robot_rl.training.runner import deterministic_policy, write_evaluation

    if args.episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {args.episodes}")
    torch.set_num_threads(1)
    run_dir = Path(args.run_dir)
    cfg, model, checkpoint = restore_model(run_dir, args.checkpoint)
    out = write_evaluation(cfg, deterministic_policy(model, cfg.algo.actor_obs), run_dir, args.episodes,
                           args.video, seed=args.seed)
    e = out["eval"]
    rate = "" if e["success_rate"] is None else f"success rate {e['success_rate']:.2f}, "
    print(f"{checkpoint}: {rate}mean return {e['mean_return']:.2f} ± {e['std_return']:.2f} "
          f"over {e['episodes']} episodes")
    print(f"wrote {run_dir / 'eval.json'}" + (f" and {out['video']}" if "video" in out else ""))
    return 0
