"""The ``robot-rl`` command.

    robot-rl tasks
    robot-rl sim-demo --task panda_reach --video runs/demo/panda_reach.mp4
"""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> (module in robot_rl.cli, one-line help)
COMMANDS = {
    "tasks": ("tasks", "list the registered tasks with their observation and action sizes"),
    "sim-demo": ("sim_demo", "roll out a random or idle policy on a task and write a video"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robot-rl", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(f"robot_rl.cli.{module}").add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(f"robot_rl.cli.{COMMANDS[args.command][0]}")
    try:
        return int(module.run(args) or 0)
    except (ValueError, KeyError, FileNotFoundError, ModuleNotFoundError, RuntimeError) as error:
        print(f"robot-rl {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
