"""``robot-rl finetune``: SAC / RLPD online in simulation, from demonstrations when given a dataset.

    robot-rl finetune --launch launch/offline/panda_push_rlpd.yaml                   # RLPD, 20 demos
    robot-rl finetune --launch launch/offline/panda_push_rlpd.yaml --dataset= --sac.ensemble 2 --sac.utd 1
    robot-rl finetune --launch launch/offline/panda_push_rlpd.yaml --sac.processes actor_learner

Writes the same run directory as ``robot-rl offline-train`` (metrics.csv against env steps,
with the online success rate and periodic deterministic evaluations).
"""

from __future__ import annotations

import argparse

TAKES_OVERRIDES = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", nargs="?", help="demonstrations (LeRobot dataset); omit for SAC from scratch")
    parser.add_argument("--launch", help="launch file (launch/offline/*.yaml)")
    parser.epilog = "Any other --section.key VALUE pair overrides the launch file, e.g. --sac.utd 10."


def run(args: argparse.Namespace) -> int:
    import os

    from robot_rl.cli.offline_train import load_config
    from robot_rl.cli.train import print_evaluation
    from robot_rl.offline.finetune import FinetuneTrainer

    os.environ.setdefault("MUJOCO_GL", "egl")
    args.algo, args.reward = None, None
    cfg = load_config(args, require_dataset=False)
    summary = FinetuneTrainer(cfg).train()
    print(f"run directory: {summary['run_dir']}  ({summary['env_steps']} env steps, {summary['demos']} demo "
          "transitions)")
    print_evaluation(summary)
    return 130 if summary["interrupted"] else 0
