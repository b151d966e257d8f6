"""``robot-rl tasks``: list the registered tasks.

    robot-rl tasks
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="native", help="backend used to build each task (default: native)")


def run(args: argparse.Namespace) -> int:
    from robot_rl.envs import make, task_class, task_names

    rows = [("task", "policy obs", "privileged obs", "actions", "control Hz", "cameras", "goal")]
    for name in task_names():
        env = make(name, num_envs=1, backend=args.backend)
        cfg = env.task.config
        rows.append((name, str(env.obs_dims["policy"]), str(env.obs_dims["privileged"]), str(env.action_dim),
                     f"{1 / cfg.control_dt:g}", ",".join(task_class(name).cameras), cfg.goal))
        env.close()
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    return 0
