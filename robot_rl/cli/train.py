"""``robot-rl train``: train a policy from a launch file.

    robot-rl train launch/train/panda_reach.yaml
    robot-rl train launch/train/panda_reach.yaml --algo.lr 3e-4 --env.num-envs 64 --budget.minutes 5
    robot-rl train launch/train/panda_reach_vlm.yaml --rewards.modules.0.options.model /data/clip-vit-base-patch32
    robot-rl train --resume runs/panda_reach/2026-01-01_12-00-00 --budget.env-steps 2000000
    torchrun --nproc-per-node 2 -m robot_rl.cli.main train launch/train/panda_reach.yaml

Overrides are ``--section.key value`` pairs naming fields of the launch file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

TAKES_OVERRIDES = True
"""Arguments argparse does not know are launch-file overrides (``--section.key value``)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("launch", nargs="?", help="launch file (launch/train/*.yaml)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    parser.epilog = "Any other --section.key VALUE pair overrides the launch file, e.g. --algo.lr 3e-4."


def load_config(args: argparse.Namespace):
    import gymnasium

    from robot_rl.configs import ConfigError, TrainConfig, from_dict, load, parse_overrides, to_dict
    from robot_rl.configs.loading import merge
    from robot_rl.configs.memory import check_memory
    from robot_rl.envs import task_class
    from robot_rl.envs.gym_vector import gym_id
    from robot_rl.rewards.base import load_modules
    from robot_rl.training.checkpoints import read_config
    from robot_rl.training.rundir import config_changes

    if args.resume:
        base = to_dict(read_config(Path(args.resume)))
        try:
            cfg = from_dict(TrainConfig, merge(base, parse_overrides(args.overrides)))
        except ConfigError as error:
            raise ConfigError(f"{args.resume}/config.yaml: {error}") from None
        source = f"{args.resume}/config.yaml"
        if changes := config_changes(base, to_dict(cfg)):
            print(f"resuming {args.resume} with changed settings: {'; '.join(changes)}")
    elif args.launch:
        cfg, source = load(TrainConfig, args.launch, args.overrides), args.launch
    else:
        raise ConfigError("give a launch file (e.g. launch/train/panda_reach.yaml) or --resume RUN_DIR")
    try:
        if env_id := gym_id(cfg.env.task):
            gymnasium.spec(env_id)
        else:
            task_class(cfg.env.task)
    except (KeyError, gymnasium.error.Error) as error:
        raise ConfigError(f"{source}: env.task: {error}") from None
    rewards = load_modules()
    for i, module in enumerate(cfg.rewards.modules):
        try:
            rewards.get(module.name)
        except KeyError as error:
            raise ConfigError(f"{source}: rewards.modules[{i}].name: {error}") from None
    check_memory(cfg, source)  # before any world is allocated
    return cfg


def run(args: argparse.Namespace) -> int:
    from robot_rl.utils.signals import sigterm_interrupts

    cfg = load_config(args)
    restore_signals = sigterm_interrupts()  # kill and a closed terminal stop the run as Ctrl-C does
    try:
        return _train(cfg, args)
    except KeyboardInterrupt:
        print("interrupted before training started: nothing was saved", file=sys.stderr)
        return 130
    finally:
        restore_signals()


def _train(cfg, args: argparse.Namespace) -> int:
    import torch
    import torch.distributed as dist

    from robot_rl.training.runner import Trainer

    joined = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized()
    if joined:
        if torch.cuda.is_available():  # one GPU per process: "cuda" then means this process's GPU
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "nccl" if cfg.env.device and cfg.env.device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
    try:
        trainer = Trainer(cfg, resume=Path(args.resume) if args.resume else None)
        summary = trainer.train()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    code = report(summary) if trainer.rank == 0 else 0
    if joined:
        # Everything is written, closed and printed. Leave without interpreter teardown: there,
        # on a loaded machine, gloo's worker threads have aborted a finished process
        # ("terminate called without an active exception", SIGABRT; cf. pytorch/pytorch#179291),
        # which torchrun then reports as a failed run.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def report(summary: dict) -> int:
    """Print where the run is and how it did; the exit code (130: interrupted)."""
    run_dir = summary["run_dir"]
    print(f"run directory: {run_dir}")
    print(f"  checkpoint:  {summary['checkpoint']}")
    if "curves" in summary:
        print(f"  curves:      {summary['curves']}")
    print_evaluation(summary)
    if summary["interrupted"] == "evaluation":
        print(f"interrupted during the final evaluation: training is done and {summary['checkpoint']} is saved; "
              f"evaluate it with: robot-rl eval {run_dir} --video", file=sys.stderr)
        return 130
    if summary["interrupted"]:
        print(f"interrupted: saved {summary['checkpoint']}; continue with: robot-rl train --resume {run_dir}",
              file=sys.stderr)
        return 130
    return 0


def print_evaluation(summary: dict) -> None:
    """The evaluation and video lines of a training summary (when the run wrote them)."""
    if "eval" in summary:
        e = summary["eval"]
        rate = "" if e["success_rate"] is None else f"success rate {e['success_rate']:.2f}, "
        print(f"  evaluation:  {summary['run_dir']}/eval.json ({rate}mean return {e['mean_return']:.1f})")
    if "video" in summary:
        print(f"  video:       {summary['video']}")
