"""``robot-rl finetune``: SAC / RLPD online in simulation, from demonstrations when given a dataset.

    robot-rl finetune --launch launch/offline/panda_push_rlpd.yaml                   # RLPD, 20 demos
    robot-rl finetune --launch launch/offline/panda_push_rlpd.yaml --dataset= --sac.ensemble 2 --sac.utd 1
    robot-rl finetune --launch launch/offline/panda_push_rlpd.yaml --sac.processes actor_learner
    robot-rl finetune --resume runs/panda_push/2026-01-01_12-00-00 --budget.env-steps 200000

Writes the same run directory as ``robot-rl offline-train`` (metrics.csv against env steps,
with the online success rate and periodic deterministic evaluations), and every
``checkpoint_every`` env steps a checkpoint with both replay buffers: ``--resume RUN_DIR``
continues the run in place from the newest one, with the run's config.yaml plus any overrides
(typically a larger budget).
"""

from __future__ import annotations

import argparse

TAKES_OVERRIDES = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", nargs="?", help="demonstrations (LeRobot dataset); omit for SAC from scratch")
    parser.add_argument("--launch", help="launch file (launch/offline/*.yaml)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a fine-tuning run from its newest checkpoint")
    parser.epilog = "Any other --section.key VALUE pair overrides the launch file, e.g. --sac.utd 10."


def run(args: argparse.Namespace) -> int:
    import os
    import sys
    from pathlib import Path

    from robot_rl.cli.offline_train import load_config, report_interrupt
    from robot_rl.cli.train import print_evaluation
    from robot_rl.configs import ConfigError
    from robot_rl.offline.finetune import FinetuneTrainer
    from robot_rl.utils.signals import sigterm_interrupts

    os.environ.setdefault("MUJOCO_GL", "egl")
    args.algo, args.reward = None, None
    if args.resume:
        if args.launch or args.dataset:
            raise ConfigError("--resume continues a run with its own config.yaml: drop the launch file and dataset "
                              "(override single settings with --section.key VALUE)")
        config = Path(args.resume) / "config.yaml"
        if not config.is_file():
            raise ConfigError(f"--resume {args.resume}: no config.yaml there; give a fine-tuning run directory "
                              "(<root>/<task>/<date>_<time>)")
        args.launch = str(config)
    cfg = load_config(args, require_dataset=False)
    restore_signals = sigterm_interrupts()  # kill stops with a message, as Ctrl-C does
    try:
        trainer = FinetuneTrainer(cfg, resume=Path(args.resume) if args.resume else None)
        if trainer.env_steps >= cfg.budget.env_steps:
            trainer.close()
            raise ConfigError(f"--resume {args.resume}: the run already has {trainer.env_steps} env steps, its "
                              f"budget.env_steps is {cfg.budget.env_steps}; raise it with --budget.env-steps N")
        summary = trainer.train()
    except KeyboardInterrupt:
        print("interrupted before training started: nothing new was saved", file=sys.stderr)
        return 130
    finally:
        restore_signals()
    print(f"run directory: {summary['run_dir']}  ({summary['env_steps']} env steps, {summary['demos']} demo "
          "transitions)")
    print_evaluation(summary)
    return report_interrupt(summary, f"continue with: robot-rl finetune --resume {summary['run_dir']}")
