"""Ground-truth success of PPO on panda_push trained on the keypoint reward alone (task_weight 0)
vs on the task's reward, at the same env-step budget, median over seeds.

Every run uses the same PPO settings, worlds and budget; only the reward differs. Each final
policy is evaluated on fresh episodes under the task's own success predicate (``eval.json``),
whatever it was trained on. Keypoint sources: ``detector`` (a perception model from
``robot-rl perception-train``: what a robot would have) and ``oracle`` (the simulator's true
keypoints through the camera: the reward without perception error).

    robot-rl perception-train --task panda_push
    python benchmarks/keypoint_reward.py --detector PATH/perception.pt --seeds 0 1 2 --out keypoint_reward.json
    python benchmarks/keypoint_reward.py --sources task oracle --seeds 0 1 2          # no model needed
    python benchmarks/keypoint_reward.py --sources task oracle --seeds 0 --env-steps 4096 --num-envs 16 --episodes 8
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
from pathlib import Path

from robot_rl.configs import TrainConfig, load
from robot_rl.training.runner import Trainer

LAUNCH = Path(__file__).resolve().parents[1] / "launch" / "train"
LAUNCH_FILES = {"task": LAUNCH / "panda_push.yaml", "detector": LAUNCH / "panda_push_keypoint.yaml",
                "oracle": LAUNCH / "panda_push_keypoint_oracle.yaml"}
GOAL = 0.8
"""Issue 22: keypoint-reward success at least 80% of the task reward's."""


def train(source: str, seed: int, args: argparse.Namespace, root: str) -> dict:
    """Train one run and return what it reached; ``source`` names the reward."""
    overrides = ["--log.root", root, "--log.video", "false", "--log.eval-episodes", str(args.episodes),
                 "--log.progress-bar", "false", "--seed", str(seed)]
    if args.env_steps:
        overrides += ["--budget.env-steps", str(args.env_steps)]
    if args.num_envs:
        overrides += ["--env.num-envs", str(args.num_envs)]
    if source == "detector":
        overrides += ["--rewards.modules.0.options.detector", str(args.detector)]
    cfg = load(TrainConfig, LAUNCH_FILES[source], overrides)
    start = time.perf_counter()
    summary = Trainer(cfg).train()
    seconds = time.perf_counter() - start
    run_dir = Path(summary["run_dir"])
    evaluation = json.loads((run_dir / "eval.json").read_text())
    row = {"source": source, "seed": seed, "launch": str(LAUNCH_FILES[source]), "env_steps": summary["env_steps"],
           "seconds": round(seconds, 1), "success_rate": evaluation["success_rate"],
           "episodes": evaluation["episodes"], "run_dir": str(run_dir)}
    row.update(_diagnostics(run_dir / "metrics.csv"))
    return row


def _diagnostics(metrics: Path) -> dict:
    """From ``metrics.csv``: the median training env steps/s and the keypoint reward's counters
    in the last row (failed detections)."""
    if not metrics.exists():
        return {}
    with metrics.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    prefix = "reward_diagnostics/keypoint/"
    out = {"fps": round(statistics.median(float(r["perf/fps"]) for r in rows), 1)}
    out.update({key.removeprefix("reward_diagnostics/"): float(value) for key, value in rows[-1].items()
                if key.startswith(prefix) and value not in ("", None)})
    return out


def summarise(rows: list[dict], sources: list[str]) -> dict:
    medians = {s: statistics.median(r["success_rate"] for r in rows if r["source"] == s) for s in sources}
    ratios = {s: (medians[s] / medians["task"] if medians.get("task") else None) for s in sources if s != "task"}
    return {"median_success": medians, "ratio_to_task_reward": ratios, "goal_ratio": GOAL,
            "goal_reached": {s: (r is not None and r >= GOAL) for s, r in ratios.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", nargs="+", choices=list(LAUNCH_FILES), default=None,
                        help="rewards to train on (default: task and detector with --detector, else task and oracle)")
    parser.add_argument("--detector", type=Path, default=None, help="perception model for the detector source")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--env-steps", type=int, default=None, help="budget of every run (default: the launch files')")
    parser.add_argument("--num-envs", type=int, default=None, help="worlds per run (default: the launch files')")
    parser.add_argument("--episodes", type=int, default=64, help="evaluation episodes per policy")
    parser.add_argument("--out", type=Path, default=Path("keypoint_reward.json"))
    args = parser.parse_args()
    sources = args.sources or (["task", "detector"] if args.detector else ["task", "oracle"])
    if "detector" in sources and args.detector is None:
        parser.error("the detector source needs --detector PATH (robot-rl perception-train --task panda_push)")
    if "task" not in sources:
        sources = ["task", *sources]
    root = tempfile.mkdtemp(prefix="keypoint_reward_")
    rows = [train(source, seed, args, root) for seed in args.seeds for source in sources]
    result = {"task": "panda_push", "seeds": args.seeds, "env_steps": rows[0]["env_steps"],
              "detector": str(args.detector) if args.detector else None, **summarise(rows, sources), "runs": rows}
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\n{'reward':<10}{'seed':>6}{'env steps':>12}{'steps/s':>9}{'minutes':>9}{'GT success':>12}"
          f"{'failed resets':>15}")
    for r in rows:
        failed = r.get("keypoint/failed_reset_fraction")
        print(f"{r['source']:<10}{r['seed']:>6}{r['env_steps']:>12,}{r.get('fps', float('nan')):>9.0f}"
              f"{r['seconds'] / 60:>9.1f}{r['success_rate']:>12.3f}{'' if failed is None else f'{failed:.3f}':>15}")
        if failed is not None and failed > 0.2:
            print(f"  {r['source']}: keypoints were not found in {failed:.0%} of resets; those episodes scored 0")
    for source, ratio in result["ratio_to_task_reward"].items():
        shown = "n/a (task reward reached 0)" if ratio is None else f"{ratio:.2f}"
        print(f"median success, {source} keypoints / task reward: {shown} (goal >= {GOAL})")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
