"""``robot-rl robustness-eval``: how a trained policy copes with pushes and an adversary.

    robot-rl robustness-eval runs/quadruped_walk/2026-01-01_12-00-00
    robot-rl robustness-eval RUN_DIR --magnitudes 0 20 40 60 80 --directions 8 --episodes 16
    robot-rl robustness-eval RUN_DIR --adversary-from runs/quadruped_walk/<H∞ run>   # another run's disturber

For each magnitude, every direction in the horizontal plane gets ``--episodes`` worlds; each
world's body is pushed for ``--push-steps`` control steps every ``--push-every`` steps. When
the run (or ``--adversary-from``) trained an H∞ disturber, it then acts on every step with its
force bound set to each magnitude. Writes ``robustness.json`` and ``robustness.png`` (fall and
success rate per magnitude) into the run directory.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory written by `robot-rl train`")
    parser.add_argument("--magnitudes", type=float, nargs="+", default=[0.0, 20.0, 40.0, 60.0, 80.0, 100.0],
                        help="push forces to sweep, newtons (default 0 20 40 60 80 100)")
    parser.add_argument("--directions", type=int, default=8, help="horizontal push directions (default 8)")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per direction and magnitude (default 8)")
    parser.add_argument("--push-steps", type=int, default=10, help="control steps each push lasts (default 10)")
    parser.add_argument("--push-every", type=int, default=100, help="control steps between pushes (default 100)")
    parser.add_argument("--push-start", type=int, default=50, help="control step of the first push (default 50)")
    parser.add_argument("--body", default="", help="body to push (default: the run's disturbed body)")
    parser.add_argument("--adversary-from", metavar="RUN_DIR",
                        help="run whose trained H∞ disturber to use (default: this run's, when it has one)")
    parser.add_argument("--no-adversary", action="store_true", help="skip the trained-disturber evaluation")
    parser.add_argument("--checkpoint", help="checkpoint file (default: the run's latest)")
    parser.add_argument("--seed", type=int, default=4321)
    parser.add_argument("--out", help="JSON file to write (default RUN_DIR/robustness.json; the plot goes beside it)")


def run(args: argparse.Namespace) -> int:
    import json

    import torch
    from tqdm import tqdm

    from robot_rl.disturbers.common import as_wrench, body_of
    from robot_rl.disturbers.sweep import horizontal_directions, plot_sweep, push_schedule, run_episodes, summarise
    from robot_rl.training.checkpoints import restore_model
    from robot_rl.training.runner import build_env, deterministic_policy

    for name in ("directions", "episodes", "push_steps", "push_every"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if any(m < 0 for m in args.magnitudes):
        raise ValueError(f"--magnitudes must be >= 0, got {args.magnitudes}")
    torch.set_num_threads(1)
    run_dir = Path(args.run_dir)
    cfg, model, checkpoint = restore_model(run_dir, args.checkpoint)
    policy = deterministic_policy(model, cfg.algo.actor_obs)
    n = args.directions * args.episodes
    env = build_env(cfg, num_envs=n, seed=args.seed)
    body = body_of(env, args.body or cfg.robust.hinf.body or cfg.robust.push.body, "--body")
    max_steps = getattr(env, "max_episode_steps", 1000) + 1
    directions, index = horizontal_directions(args.directions, args.episodes, env.device)
    adversary = None if args.no_adversary else load_adversary(Path(args.adversary_from or run_dir), env,
                                                               None if args.adversary_from else checkpoint)
    settings = [("sweep", m) for m in args.magnitudes] + ([("adversary", m) for m in args.magnitudes if m > 0]
                                                           if adversary is not None else [])
    result = {"task": cfg.env.task, "run_dir": str(run_dir), "checkpoint": str(checkpoint), "body": body,
              "directions": args.directions, "episodes_per_direction": args.episodes,
              "push": {"steps": args.push_steps, "every": args.push_every, "start": args.push_start},
              "adversary_from": str(args.adversary_from or run_dir) if adversary is not None else None,
              "sweep": [], "adversary": []}
    for kind, magnitude in tqdm(settings, desc="robustness", unit="setting"):
        if kind == "sweep":
            wrench = push_schedule(directions, magnitude, args.push_start, args.push_steps, args.push_every)
            fell, success, returns, has = run_episodes(policy, env, body, wrench, max_steps, args.seed)
            outcome = summarise(magnitude, fell, success, returns, has, index, args.directions)
        else:
            group, disturber = adversary

            def wrench(t, obs, bound=magnitude, group=group, disturber=disturber):
                return as_wrench(disturber.deterministic_force(obs[group], bound))

            outcome = summarise(magnitude, *run_episodes(policy, env, body, wrench, max_steps, args.seed))
        result[kind].append(outcome.__dict__)
    env.close()
    out = Path(args.out) if args.out else run_dir / "robustness.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    plot = plot_sweep(result, out.with_suffix(".png"))
    for kind in ("sweep", "adversary"):
        for row in result[kind]:
            rate = "" if row["success_rate"] is None else f"  success {row['success_rate']:.2f}"
            print(f"{kind:9s} {row['magnitude']:6.1f} N  fall {row['fall_rate']:.2f}{rate}  "
                  f"return {row['mean_return']:.1f}")
    print(f"wrote {out} and {plot}")
    return 0


def load_adversary(run_dir: Path, env, checkpoint: Path | None):
    """(observation group, :class:`~robot_rl.disturbers.hinf.HInfDisturber`) trained in
    ``run_dir`` (at ``checkpoint``, default its latest), or None when that run has none."""
    import torch

    from robot_rl.disturbers.hinf import HInfDisturber
    from robot_rl.disturbers.hooks import read_robust, robust_checkpoint
    from robot_rl.training.checkpoints import latest_checkpoint, read_config

    cfg = read_config(run_dir)
    if not cfg.robust.hinf.enabled:
        return None
    path = robust_checkpoint(Path(checkpoint) if checkpoint else latest_checkpoint(run_dir))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the H∞ disturber of {run_dir}; "
                                "pass --no-adversary to sweep pushes only")
    group = cfg.algo.critic_obs
    if env.obs_dims.get(group) is None:
        raise ValueError(f"the disturber of {run_dir} reads observation group {group!r}, which this env lacks")
    # Attacking needs the trained policy only: no reference worlds, whatever the oracle mode.
    hinf = dataclasses.replace(cfg.robust.hinf, oracle_mode="absolute")
    disturber = HInfDisturber(hinf, cfg.algo, env.obs_dims[group], env.num_envs, env.device, hinf.oracle,
                              torch.Generator(device=env.device))
    try:
        disturber.load_state_dict(read_robust(path)["hinf"])
    except (RuntimeError, KeyError) as error:
        raise ValueError(f"{path} does not fit this task's observations: {str(error).splitlines()[0]}") from None
    return group, disturber
