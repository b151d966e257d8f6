"""Ground-truth success of a policy trained on a learned reward vs one trained on the task's reward.

Trains the two launch files side by side in one run (same task, PPO settings, worlds and seed;
only the reward differs), evaluates each deterministic policy on the same fresh episodes under
the task's own success predicate, and prints the ratio.

    python benchmarks/learned_reward.py
    python benchmarks/learned_reward.py --learned launch/train/panda_reach_learned_pixels.yaml --env-steps 300000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from robot_rl.configs import TrainConfig, load
from robot_rl.training.runner import Trainer

LAUNCH = Path(__file__).resolve().parents[1] / "launch" / "train"


def train(launch: Path, env_steps: int | None, episodes: int, root: str) -> dict:
    overrides = ["--log.root", root, "--log.video", "false", "--log.eval-episodes", str(episodes)]
    if env_steps:
        overrides += ["--budget.env-steps", str(env_steps)]
    cfg = load(TrainConfig, launch, overrides)
    start = time.perf_counter()
    summary = Trainer(cfg).train()
    seconds = time.perf_counter() - start
    evaluation = json.loads((Path(summary["run_dir"]) / "eval.json").read_text())
    return {"launch": str(launch), "env_steps": summary["env_steps"], "seconds": seconds,
            "success_rate": evaluation["success_rate"], "episodes": evaluation["episodes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ground-truth", type=Path, default=LAUNCH / "panda_reach.yaml")
    parser.add_argument("--learned", type=Path, default=LAUNCH / "panda_reach_learned.yaml")
    parser.add_argument("--env-steps", type=int, default=None, help="budget of both runs (default: each file's)")
    parser.add_argument("--episodes", type=int, default=64, help="evaluation episodes per policy")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="learned_reward_")
    rows = [("task reward", train(args.ground_truth, args.env_steps, args.episodes, root)),
            ("learned reward", train(args.learned, args.env_steps, args.episodes, root))]
    print(f"\n{'reward':<16}{'env steps':>12}{'minutes':>10}{'GT success':>12}  launch file")
    for name, r in rows:
        print(f"{name:<16}{r['env_steps']:>12,}{r['seconds'] / 60:>10.1f}{r['success_rate']:>12.3f}  {r['launch']}")
    truth, learned = rows[0][1]["success_rate"], rows[1][1]["success_rate"]
    ratio = learned / truth if truth > 0 else float("nan")
    print(f"learned / task-reward success: {ratio:.2f} (target >= 0.80)")


if __name__ == "__main__":
    main()
