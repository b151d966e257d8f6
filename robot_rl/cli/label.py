"""``robot-rl label``: score every frame of a dataset with a reward module; write a reward column.

    robot-rl label runs/data/push_mixed --reward launch/offline/label_preference.yaml
    robot-rl label runs/data/push_mixed --reward launch/offline/label_preference.yaml --column next.reward.pref

The launch file names the module, its options, the camera, and for the preference model how
many frames are labelled (pairs judged by the oracle from ground-truth progress, or a VLM
labeller) before the fitted model imputes the rest.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="LeRobot dataset directory (robot-rl record)")
    parser.add_argument("--reward", required=True, metavar="LAUNCH",
                        help="labelling launch file (launch/offline/label_*.yaml)")
    parser.add_argument("--column", help="new column (default: next.reward.<module>)")
    parser.add_argument("--overwrite", action="store_true", help="replace the column if it exists")


def run(args: argparse.Namespace) -> int:
    import torch

    from robot_rl.configs import load
    from robot_rl.offline.label import LabelConfig, label_dataset

    torch.set_num_threads(1)
    cfg = load(LabelConfig, args.reward)
    report = label_dataset(args.dataset, cfg, column=args.column, overwrite=args.overwrite)
    print(f"wrote column {report['column']} to {args.dataset}: {report['frames']} frames")
    for key, value in report.items():
        if key not in ("column", "frames"):
            print(f"  {key}: {value}")
    return 0
