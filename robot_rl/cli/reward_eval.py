"""``robot-rl reward-eval``: how well a reward module tracks true progress.

    robot-rl reward-eval launch/reward/panda_reach_perceptual.yaml
    robot-rl reward-eval launch/reward/panda_reach_preference.yaml --view.camera-pos "[1.2, -0.8, 0.7]"

Renders scripted episodes (expert, noisy expert, regressing, random), fits the module on the
training ones, scores held-out ones and reports per-episode Spearman against true progress,
pairwise accuracy on pairs of clearly different progress and VOC — each next to the
time-index baseline. Writes ``reward_eval.json``, ``reward_eval.png`` and, for learned modules, ``module.pt``
(which a training launch file can load, e.g. ``options: {checkpoint: .../module.pt}``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

TAKES_OVERRIDES = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("launch", help="reward-evaluation launch file (launch/reward/*.yaml)")
    parser.epilog = "Any other --section.key VALUE pair overrides the launch file, e.g. --labels 500."


def render(cfg, qualities: list[str], seed: int):
    from robot_rl.envs import make
    from robot_rl_sim.episodes import render_episodes
    from robot_rl_sim.rendering import look_at, recolor

    view = cfg.view
    env = make(cfg.task, num_envs=max(1, min(8, len(qualities))), image_cameras=(view.camera,),
               image_size=tuple(view.image_size), image_antialias=view.antialias, seed=seed)
    try:
        if view.camera_pos is not None or view.camera_lookat is not None:
            if view.camera_pos is None or view.camera_lookat is None:
                raise ValueError("view.camera_pos and view.camera_lookat go together; give both")
            look_at(env.sim.model, view.camera, view.camera_pos, view.camera_lookat)
        recolor(env.sim.model, view.colors)
        return render_episodes(env, qualities, cfg.num_steps, seed), env.goal
    finally:
        env.close()


def plot(report: dict, out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    episodes = report["episodes"]
    cols = 4
    rows = (len(episodes) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for ax, ep in zip(axes.flat, episodes):
        t = np.arange(len(ep["true_progress"]))
        ax.plot(t, ep["true_progress"], "k-", label="true progress")
        for key, style in (("reward", "C0-"), ("progress", "C1--")):
            if key in ep:
                v = np.asarray(ep[key])
                span = v.max() - v.min()
                ax.plot(t, (v - v.min()) / span if span > 0 else v * 0, style, label=f"{key} (min-max scaled)")
        ax.set_title(ep["quality"], fontsize=9)
        ax.set_ylim(-0.05, 1.05)
    for ax in list(axes.flat)[len(episodes):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    r = report["reward"]
    fig.suptitle(f"{title}: Spearman {r['spearman']:.2f} (time index {r['time_spearman']:.2f}), "
                 f"pairwise {r['pairwise_accuracy']:.2f} (time index {r['time_pairwise_accuracy']:.2f})")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    from robot_rl.configs import load
    from robot_rl.configs.reward_eval import RewardEvalConfig
    from robot_rl.rewards.base import load_modules
    from robot_rl.rewards.evaluation import evaluate_module

    torch.set_num_threads(1)
    cfg = load(RewardEvalConfig, args.launch, args.overrides)
    load_modules().get(cfg.module)  # an unknown module fails before anything renders
    train, goal = render(cfg, cfg.train.qualities(), cfg.seed)
    held_out, _ = render(cfg, cfg.eval.qualities(), cfg.seed + 1)
    report, module = evaluate_module(cfg, train, held_out, goal)
    out = Path(cfg.out) / f"{cfg.task}_{cfg.module}"
    out.mkdir(parents=True, exist_ok=True)
    if hasattr(module, "save"):  # a learned reward, usable from a training launch file
        module.save(out / "module.pt")
    (out / "reward_eval.json").write_text(json.dumps({"config": args.launch, **report}, indent=2))
    png = plot(report, out / "reward_eval.png", f"{cfg.task} / {cfg.module}")
    print(f"{cfg.task} / {cfg.module} on {len(held_out)} held-out episodes:")
    for key in ("reward", "progress"):
        if key in report:
            m = report[key]
            print(f"  {key:8}  Spearman {m['spearman']:.3f}   pairwise accuracy {m['pairwise_accuracy']:.3f}   "
                  f"VOC {m['voc']:.3f}")
    m = report["reward"]
    print(f"  time index  Spearman {m['time_spearman']:.3f}   pairwise accuracy {m['time_pairwise_accuracy']:.3f}   "
          f"VOC {m['time_voc']:.3f}")
    saved = f" and the fitted module {out / 'module.pt'}" if hasattr(module, "save") else ""
    print(f"wrote {out / 'reward_eval.json'}, {png}{saved}")
    return 0
