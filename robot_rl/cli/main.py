"""The ``robot-rl`` command.

    robot-rl train launch/train/panda_reach.yaml
    robot-rl eval runs/panda_reach/<timestamp> --video
    robot-rl export runs/panda_reach/<timestamp> --out policy.pt
    robot-rl reward-eval launch/reward/panda_reach_perceptual.yaml
    robot-rl robustness-eval runs/quadruped_walk/<timestamp>
    robot-rl tasks
    robot-rl sim-demo --task panda_reach --video runs/demo/panda_reach.mp4
"""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> (module in robot_rl.cli, one-line help)
COMMANDS = {
    "train": ("train", "train a policy from a launch file (PPO)"),
    "eval": ("evaluate", "evaluate a trained run and optionally film it"),
    "export": ("export", "export a run's policy as one self-contained file"),
    "deploy": ("deploy", "run an exported policy on a robot or the fake arm over ROS 2 topics"),
    "reward-eval": ("reward_eval", "measure how well a reward module tracks true progress"),
    "tasks": ("tasks", "list the registered tasks with their observation and action sizes"),
    "sim-demo": ("sim_demo", "roll out a random or idle policy on a task and write a video"),
    "robustness-eval": ("robustness_eval", "push a trained policy (sweep and trained H∞ disturber): fall rates"),
    "record": ("record", "record simulated episodes (scripted or a policy) into a LeRobot dataset"),
    "offline-train": ("offline_train", "train BC / IQL / TD3+BC from a dataset; evaluate in simulation"),
    "label": ("label", "write a reward module's rewards into a dataset as a new column"),
    "finetune": ("finetune", "SAC / RLPD online in simulation, from demonstrations when given a dataset"),
    "perception-train": ("perception_train", "train a keypoint estimator (cube, target, tip) on randomised renders"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robot-rl", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    options: dict[str, frozenset[str]] = {}
    """Each command's option strings (``--launch``, ``-h``, ...), to tell its overrides apart."""
    for name, (module, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(f"robot_rl.cli.{module}").add_arguments(sub)
        options[name] = frozenset(o for action in sub._actions for o in action.option_strings)
    parser.set_defaults(command_options=options)
    return parser


def split_overrides(argv: list[str], options: frozenset[str] | None = None) -> tuple[list[str], list[str]]:
    """Separate launch-file overrides (``--section.key VALUE`` or ``--section.key=VALUE``: a
    dotted name; with ``options``, the command's own option strings, also any other ``--key``,
    so a top-level key's value is not taken for a positional argument) from ordinary arguments."""
    plain, overrides = [], []
    i = 0
    while i < len(argv):
        token = argv[i]
        name = token.split("=", 1)[0]
        if token.startswith("--") and ("." in name or (options is not None and name not in options)):
            takes_value = "=" not in token and i + 1 < len(argv)
            overrides += argv[i:i + 2] if takes_value else [token]
            i += 2 if takes_value else 1
        else:
            plain.append(token)
            i += 1
    return plain, overrides


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    takes = command is not None and getattr(importlib.import_module(f"robot_rl.cli.{COMMANDS[command][0]}"),
                                            "TAKES_OVERRIDES", False)
    plain, overrides = split_overrides(argv, parser.get_default("command_options")[command] if takes else None)
    args, unknown = parser.parse_known_args(plain)
    module = importlib.import_module(f"robot_rl.cli.{COMMANDS[args.command][0]}")
    takes_overrides = getattr(module, "TAKES_OVERRIDES", False)
    if unknown and not (takes_overrides and unknown[0].startswith("--")):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if overrides and not takes_overrides:
        parser.error(f"{args.command} takes no --section.key overrides: {' '.join(overrides)}")
    args.overrides = overrides + unknown  # top-level keys (--seed 3) arrive as unknown arguments
    try:
        return int(module.run(args) or 0)
    except (ValueError, KeyError, FileNotFoundError, ModuleNotFoundError, RuntimeError) as error:
        print(f"robot-rl {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"robot-rl {args.command}: error: {os_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # commands that save work say what they saved themselves
        print(f"robot-rl {args.command}: interrupted", file=sys.stderr)
        return 130


def os_message(error: OSError) -> str:
    """One line for an operating-system error: the path, what went wrong, and a fix where one is clear."""
    if error.filename is None or not error.strerror:
        return str(error)
    fix = {13: "choose a path you can write to", 20: "a file stands where a folder is needed; choose another path",
           17: "choose a new path", 28: "free disk space or write elsewhere", 30: "choose a writable path",
           1: "choose a path you can write to"}.get(error.errno, "")
    return f"{error.filename}: {error.strerror.lower()}" + (f"; {fix}" if fix else "")


if __name__ == "__main__":
    sys.exit(main())
