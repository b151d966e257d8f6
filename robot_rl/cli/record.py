"""``robot-rl record``: record episodes in simulation into a LeRobot v3 dataset.

    robot-rl record --task panda_push --episodes 20 --source scripted --out runs/data/push_expert
    robot-rl record --task panda_push --episodes 100 --mix expert=50,noisy=25,failed=25 --out runs/data/push_mixed
    robot-rl record --task panda_push --episodes 16 --source policy:runs/panda_push/<timestamp> --out runs/data/push_ppo
    robot-rl record --task panda_push --episodes 5 --source keyboard --out runs/data/push_mine   # needs a display

Each frame holds the task camera's image, the policy and privileged observations, the action,
the task's reward, success and ground-truth progress (separate columns).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="a registered task (robot-rl tasks)")
    parser.add_argument("--episodes", type=int, required=True, help="episodes to record")
    parser.add_argument("--source", default="scripted",
                        help="scripted (the task's scripted controller), policy:RUN_DIR (a run or policy file) "
                             "or keyboard (you drive one Panda in a viewer window)")
    parser.add_argument("--mix", help="scripted qualities, e.g. expert=50,noisy=25,failed=25 (default: all expert)")
    parser.add_argument("--out", required=True, help="new dataset directory")
    parser.add_argument("--camera", help="camera to record (default: the task's first)")
    parser.add_argument("--image-size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"))
    parser.add_argument("--num-envs", type=int, default=8, help="worlds recorded together")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--task-set", action="append", default=[], metavar="KEY=VALUE",
                        help="replace a field of the task's config, e.g. --task-set action_space=ee (repeatable); "
                             "the dataset keeps it and offline training uses it")


def parse_task_set(items: list[str]) -> dict[str, object]:
    """``["action_space=ee", "ee_step=0.02"]`` -> ``{"action_space": "ee", "ee_step": 0.02}`` (YAML values)."""
    import yaml

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--task-set {item!r}: write KEY=VALUE, e.g. --task-set action_space=ee")
        out[key.strip()] = yaml.safe_load(value)
    return out


def parse_mix(text: str | None, episodes: int) -> list[str] | None:
    """``expert=50,noisy=25,failed=25`` -> one quality per episode (counts must sum to ``episodes``)."""
    if not text:
        return None
    qualities: list[str] = []
    for item in text.split(","):
        name, _, count = item.partition("=")
        if not count.strip().isdigit():
            raise ValueError(f"--mix {text!r}: write quality=count pairs, e.g. expert=10,noisy=5,failed=5")
        qualities += [name.strip()] * int(count)
    if len(qualities) != episodes:
        raise ValueError(f"--mix counts sum to {len(qualities)}, but --episodes is {episodes}")
    return qualities


def run(args: argparse.Namespace) -> int:
    import os

    import torch

    from robot_rl.data.dataset import Dataset
    from robot_rl.offline.record import record

    os.environ.setdefault("MUJOCO_GL", "egl")
    torch.set_num_threads(1)
    if min(args.image_size) < 1:
        raise ValueError(f"--image-size {args.image_size[0]} {args.image_size[1]}: height and width must be at "
                         "least 1 pixel, e.g. --image-size 64 64")
    if os.path.lexists(args.out):
        raise ValueError(f"--out {args.out} already exists; record into a new directory (a dataset is never "
                         "written over)")
    qualities = parse_mix(args.mix, args.episodes)
    out = record(args.task, args.out, args.source, args.episodes, qualities, args.num_envs, args.camera,
                 tuple(args.image_size), args.seed, task_overrides=parse_task_set(args.task_set))
    ds = Dataset(out)
    success = ds.column("next.success").astype(bool)
    last = ds.column("frame_index")[1:] == 0
    final = success[list(last.nonzero()[0]) + [len(success) - 1]] if len(success) else success
    print(f"wrote {out}: {len(ds.episodes)} episodes, {len(ds)} frames, "
          f"{final.mean():.0%} ending in success")
    return 0
