"""``robot-rl offline-train``: train a policy from a recorded dataset and evaluate it in simulation.

    robot-rl offline-train runs/data/push_mixed --algo iql
    robot-rl offline-train runs/data/push_mixed --algo bc --budget.updates 5000
    robot-rl offline-train --launch launch/offline/panda_push_iql.yaml --reward next.reward.preference
    robot-rl offline-train runs/data/push_mixed --algo td3bc --td3bc.alpha 2.5 --eval.video true

Writes ``runs/<task>/<timestamp>/`` as ``robot-rl train`` does: config.yaml, checkpoints/,
metrics.csv, curves.png, policy.pt (load with ``robot_rl.training.export.load_policy``),
eval.json and, with ``--eval.video true``, rollout.mp4.
"""

from __future__ import annotations

import argparse
import sys

TAKES_OVERRIDES = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", nargs="?", help="LeRobot dataset directory (robot-rl record)")
    parser.add_argument("--algo", choices=("bc", "iql", "td3bc"), help="algorithm (default: the launch file's, iql)")
    parser.add_argument("--launch", help="launch file (launch/offline/*.yaml)")
    parser.add_argument("--reward", help="reward column, e.g. next.reward.preference (default next.reward)")
    parser.epilog = "Any other --section.key VALUE pair overrides the launch file, e.g. --budget.updates 5000."


def load_config(args: argparse.Namespace, require_dataset: bool = True):
    from robot_rl.configs import ConfigError, from_dict, parse_overrides
    from robot_rl.configs.loading import merge, read_mapping
    from robot_rl.configs.offline import OfflineConfig

    base = read_mapping(args.launch) if args.launch else {}  # an empty launch file is an error
    extra = {k: v for k, v in (("dataset", args.dataset), ("algo", args.algo), ("reward", args.reward)) if v}
    try:
        cfg = from_dict(OfflineConfig, merge(merge(base, extra), parse_overrides(args.overrides)))
    except ConfigError as error:
        raise ConfigError(f"{args.launch or 'offline-train'}: {error}") from None
    if require_dataset and not cfg.dataset:
        raise ConfigError("give a dataset directory (robot-rl offline-train DATASET) or dataset: in --launch")
    return cfg


def run(args: argparse.Namespace) -> int:
    import os

    from robot_rl.cli.train import print_evaluation
    from robot_rl.offline.trainer import OfflineTrainer
    from robot_rl.utils.signals import sigterm_interrupts

    os.environ.setdefault("MUJOCO_GL", "egl")
    cfg = load_config(args)
    restore_signals = sigterm_interrupts()  # kill stops with a message, as Ctrl-C does
    try:
        summary = OfflineTrainer(cfg).train()
    except KeyboardInterrupt:
        print("interrupted before training started: nothing was saved", file=sys.stderr)
        return 130
    finally:
        restore_signals()
    print(f"run directory: {summary['run_dir']}  ({summary['transitions']} transitions, "
          f"{summary['updates']} updates)")
    if "policy" in summary:
        print(f"  policy:      {summary['policy']}")
    print_evaluation(summary)
    return report_interrupt(summary, "offline runs do not resume: train again with the updates you want "
                                     "(--budget.updates N)")


def report_interrupt(summary: dict, go_on: str) -> int:
    """One line on what an interrupted offline run or fine-tuning saved; the exit code (130: interrupted)."""
    if not summary["interrupted"]:
        return 0
    saved = " and ".join(str(summary[k]) for k in ("checkpoint", "policy") if k in summary)
    if summary["interrupted"] == "evaluation":
        print(f"interrupted during the final evaluation: saved {saved}; evaluate later by loading the policy",
              file=sys.stderr)
    else:
        print(f"interrupted: saved {saved}; {go_on}", file=sys.stderr)
    return 130
