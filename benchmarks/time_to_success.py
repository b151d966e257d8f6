"""Wall-clock and environment steps until PPO reaches a success rate, on this machine.

Trains each task from its launch file and, every ``--eval-every`` iterations, evaluates the
deterministic policy on ``--episodes`` fresh episodes; stops at the first evaluation at or
above ``--target``. Training time excludes the evaluations (reported separately).

    python benchmarks/time_to_success.py
    python benchmarks/time_to_success.py --tasks panda_push --max-minutes 60 --env.num-envs 256
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from robot_rl.configs import TrainConfig, load
from robot_rl.training.evaluate import evaluate
from robot_rl.training.runner import Trainer, build_env

LAUNCH = Path(__file__).resolve().parents[1] / "launch" / "train"


def time_to_success(task: str, target: float, episodes: int, eval_every: int, max_minutes: float,
                    overrides: list[str]) -> dict:
    root = tempfile.mkdtemp(prefix=f"tts_{task}_")
    cfg = load(TrainConfig, LAUNCH / f"{task}.yaml", [
        "--log.root", root, "--log.progress-bar", "false", "--log.video", "false", "--log.eval-episodes", "0",
        "--budget.minutes", str(max_minutes), "--budget.env-steps", str(10**12), *overrides])
    eval_env = build_env(cfg, num_envs=episodes, seed=cfg.seed + 777)
    trainer = Trainer(cfg)
    state = {"eval_seconds": 0.0, "success": 0.0, "history": []}
    start = time.perf_counter()

    def check(trainer: Trainer, row: dict) -> bool:
        if trainer.iteration % eval_every:
            return False
        t0 = time.perf_counter()
        result = evaluate(trainer.policy(), eval_env, episodes, eval_env.max_episode_steps + 1)
        state["eval_seconds"] += time.perf_counter() - t0
        state["success"] = result.success_rate
        state["history"].append((trainer.env_steps, result.success_rate))
        print(f"  {task}: {trainer.env_steps:>10,} steps  success {result.success_rate:.2f}", flush=True)
        return result.success_rate >= target

    trainer.train(callback=check)
    total = time.perf_counter() - start
    return {"task": task, "reached": state["success"] >= target, "success": state["success"],
            "env_steps": trainer.env_steps, "train_seconds": total - state["eval_seconds"],
            "eval_seconds": state["eval_seconds"], "num_envs": cfg.env.num_envs}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["panda_reach", "panda_push"])
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--eval-every", type=int, default=10, help="iterations between evaluations")
    parser.add_argument("--max-minutes", type=float, default=30.0, help="give up on a task after this")
    parser.epilog = "Other --section.key VALUE pairs override every task's launch file."
    args, overrides = parser.parse_known_args(argv)
    torch.set_num_threads(1)
    print(f"cores: {os.cpu_count()}  torch {torch.__version__}  target success {args.target:.0%}"
          f" over {args.episodes} episodes")
    results = [time_to_success(t, args.target, args.episodes, args.eval_every, args.max_minutes, overrides)
               for t in args.tasks]
    print(f"\n{'task':14} {'envs':>5} {'reached':>8} {'success':>8} {'env steps':>12} "
          f"{'train min':>10} {'eval min':>9}")
    for r in results:
        print(f"{r['task']:14} {r['num_envs']:>5} {str(r['reached']):>8} {r['success']:>8.2f} {r['env_steps']:>12,}"
              f" {r['train_seconds'] / 60:>10.1f} {r['eval_seconds'] / 60:>9.1f}")


if __name__ == "__main__":
    main()
