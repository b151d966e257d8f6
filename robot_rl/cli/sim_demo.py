"""``robot-rl sim-demo``: roll out a policy on a task and write a video.

    robot-rl sim-demo --task panda_reach --video runs/demo/panda_reach.mp4
    robot-rl sim-demo --task quadruped_walk --policy zero --seconds 4 --camera track
"""

from __future__ import annotations

import argparse

POLICIES = ("random", "zero")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="panda_reach", help="task name (see `robot-rl tasks`)")
    parser.add_argument("--video", default="runs/demo/sim_demo.mp4", help="output MP4 path")
    parser.add_argument("--policy", default="random", choices=POLICIES,
                        help="random: smoothed uniform actions; zero: hold the initial pose")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the rollout in simulated seconds")
    parser.add_argument("--camera", default=None, help="camera to film (default: the task's first camera)")
    parser.add_argument("--size", type=int, nargs=2, default=(240, 320), metavar=("H", "W"), help="frame size")
    parser.add_argument("--backend", default="native", help="native or warp")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from robot_rl.envs import make
    from robot_rl.utils.video import write_video

    torch.set_num_threads(1)
    env = make(args.task, num_envs=1, backend=args.backend, seed=args.seed)
    env.reset(seed=args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    steps = max(1, round(args.seconds / env.task.config.control_dt))
    height, width = args.size
    frames, action = [], torch.zeros(1, env.action_dim)
    successes = 0
    for _ in tqdm(range(steps), desc=f"{args.task} ({args.policy})", unit="step"):
        if args.policy == "random":
            # Low-pass filtered noise moves the robot visibly instead of making it shiver.
            action = 0.8 * action + 0.2 * (2 * torch.rand(1, env.action_dim, generator=generator) - 1) * 3
            action = action.clamp(-1, 1)
        _, _, _, _, info = env.step(action)
        successes += int(info["success"][0])
        frames.append(env.render(args.camera, height, width)[0].cpu().numpy())
    path = write_video(args.video, frames, fps=1 / env.task.config.control_dt)
    env.close()
    print(f"wrote {path} ({steps} frames, {1 / env.task.config.control_dt:g} fps); "
          f"success in {successes}/{steps} steps")
    return 0

