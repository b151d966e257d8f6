"""Robust training side by side at the same training budget.

``hinf-vs-dr`` evaluates two quadruped_walk runs (one trained with `quadruped_walk_hinf.yaml`, one with
`quadruped_walk_dr.yaml`) at checkpoints with the same number of env steps: the push sweep of
`robot-rl robustness-eval` (all directions) and the H∞ run's trained disturber attacking both
policies. Prints fall rates per magnitude, nominal returns and their ratio, and writes each
run's robustness_<steps>.json/png.

    python benchmarks/robustness.py hinf-vs-dr --hinf runs/quadruped_walk/<H∞ run> --dr runs/quadruped_walk/<DR run>

``privileged-vs-plain`` evaluates a run trained with the privileged-action curriculum
(`panda_push_privileged.yaml`) and one without (`panda_push.yaml`) at checkpoints with the same
env steps: success rate of the deterministic policy on fresh episodes, at zero privilege.

    python benchmarks/robustness.py privileged-vs-plain --privileged runs/panda_push/<a> --plain runs/panda_push/<b>
    python benchmarks/robustness.py privileged-vs-plain ... --curve 7 --out priv.json   # success vs env steps + plot
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from robot_rl.cli.main import main as robot_rl
from robot_rl.training.checkpoints import load_checkpoint


def checkpoints_by_steps(run: Path) -> dict[int, Path]:
    """env steps -> checkpoint file of a run."""
    out = {}
    for path in (run / "checkpoints").glob("model_*.pt"):
        if re.fullmatch(r"model_\d+\.pt", path.name):
            out[int(load_checkpoint(path)["env_steps"])] = path
    return out


def common_steps(a: dict[int, Path], b: dict[int, Path], steps: int | None) -> int:
    """``steps`` if both runs have a checkpoint there, else (None) the largest such env steps."""
    common = sorted(set(a) & set(b))
    if not common:
        raise SystemExit(f"no checkpoints with equal env steps: {sorted(a)} and {sorted(b)}")
    if steps is not None and steps not in common:
        raise SystemExit(f"--steps {steps}: both runs have checkpoints at {common}")
    return steps or common[-1]


def hinf_vs_dr(args: argparse.Namespace) -> None:
    hinf, dr = checkpoints_by_steps(args.hinf), checkpoints_by_steps(args.dr)
    steps = common_steps(hinf, dr, args.steps)
    results = {}
    for name, run, table in (("H∞", args.hinf, hinf), ("DR", args.dr, dr)):
        out = run / f"robustness_{steps}.json"
        code = robot_rl(["robustness-eval", str(run), "--checkpoint", str(table[steps]), "--adversary-from",
                         str(args.hinf), "--magnitudes", *args.magnitudes, "--directions", args.directions,
                         "--episodes", args.episodes, "--out", str(out)])
        if code:
            raise SystemExit(code)
        results[name] = json.loads(out.read_text())
    print(f"\nquadruped_walk at {steps:,} env steps each; fall rate (sweep: {args.directions} directions × "
          f"{args.episodes} episodes; adversary: the H∞ run's disturber)")
    print(f"{'force N':>8} | {'H∞ sweep':>9} {'DR sweep':>9} | {'H∞ adv.':>8} {'DR adv.':>8}")
    adv = {name: {r["magnitude"]: r for r in res["adversary"]} for name, res in results.items()}
    for i, row in enumerate(results["H∞"]["sweep"]):
        m = row["magnitude"]
        cells = [f"{results[n]['sweep'][i]['fall_rate']:9.2f}" for n in ("H∞", "DR")]
        cells += [f"{adv[n][m]['fall_rate']:8.2f}" if m in adv[n] else f"{'-':>8}" for n in ("H∞", "DR")]
        print(f"{m:8.0f} | {cells[0]} {cells[1]} | {cells[2]} {cells[3]}")
    nominal = {n: results[n]["sweep"][0]["mean_return"] for n in results}
    print(f"nominal return (no push): H∞ {nominal['H∞']:.1f}, DR {nominal['DR']:.1f}, "
          f"ratio {nominal['H∞'] / nominal['DR']:.3f}")
    for n in results:
        sweep = results[n]["sweep"]
        mean_fall = sum(r["fall_rate"] for r in sweep) / len(sweep)
        adv_rows = results[n]["adversary"]
        mean_adv = sum(r["fall_rate"] for r in adv_rows) / len(adv_rows) if adv_rows else float("nan")
        print(f"{n}: mean fall rate over the sweep {mean_fall:.3f}, against the adversary {mean_adv:.3f}")


def privileged_vs_plain(args: argparse.Namespace) -> None:
    import torch

    from robot_rl.training.checkpoints import restore_model
    from robot_rl.training.evaluate import evaluate
    from robot_rl.training.runner import build_env, deterministic_policy

    torch.set_num_threads(1)
    runs = {"privileged": args.privileged, "plain": args.plain}
    tables = {name: checkpoints_by_steps(run) for name, run in runs.items()}
    last = common_steps(tables["privileged"], tables["plain"], args.steps)
    points = [last]
    if args.curve > 1:  # K common checkpoints evenly spread up to the compared one (which ends the list)
        common = [s for s in sorted(tables["privileged"]) if s in tables["plain"] and s <= last]
        points = [common[i] for i in sorted({round(k * (len(common) - 1) / (args.curve - 1))
                                             for k in range(args.curve)})]
    curve: dict[str, list[dict]] = {name: [] for name in runs}
    for steps in points:
        for name, run in runs.items():
            cfg, model, path = restore_model(run, tables[name][steps])
            env = build_env(cfg, num_envs=args.episodes, seed=args.seed)  # privileged envs start at s = 0
            result = evaluate(deterministic_policy(model, cfg.algo.actor_obs), env, args.episodes,
                              env.max_episode_steps + 1, seed=args.seed)
            env.close()
            curve[name].append({"env_steps": steps, "checkpoint": str(path), "success_rate": result.success_rate,
                                "mean_return": result.mean_return})
            print(f"{name:10s} {path}: success {result.success_rate:.3f} over {args.episodes} episodes, "
                  f"mean return {result.mean_return:.1f}")
    print(f"\n{cfg.env.task}, success at zero privilege ({args.episodes} episodes per point)")
    print("| env steps | privileged | plain |\n|---|---|---|")
    for a, b in zip(curve["privileged"], curve["plain"]):
        print(f"| {a['env_steps']:,} | {a['success_rate']:.2f} | {b['success_rate']:.2f} |")
    out = {"env_steps": last, "episodes": args.episodes,
           **{name: {"run": str(runs[name]), **rows[-1]} for name, rows in curve.items()}}
    if len(points) > 1:
        out["curve"] = curve
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))
        if len(points) > 1:
            print(f"plot: {plot_curve(curve, Path(args.out).with_suffix('.png'), cfg.env.task)}")


def plot_curve(curve: dict[str, list[dict]], path: Path, task: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, rows in curve.items():
        ax.plot([r["env_steps"] / 1e6 for r in rows], [r["success_rate"] for r in rows], marker="o",
                label=f"{name} (at zero privilege)" if name == "privileged" else name)
    ax.set(xlabel="env steps (millions)", ylabel="success", ylim=(-0.02, 1.02),
           title=f"{task}: PPO with / without privileged actions")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    hinf = commands.add_parser("hinf-vs-dr", help="quadruped runs: push sweep and adversary")
    hinf.add_argument("--hinf", type=Path, required=True, help="run trained with the H∞ disturber")
    hinf.add_argument("--dr", type=Path, required=True, help="run trained with domain randomisation")
    hinf.add_argument("--magnitudes", nargs="+", default=["0", "25", "50", "75", "100", "150"])
    hinf.add_argument("--directions", default="8")
    hinf.add_argument("--episodes", default="8", help="episodes per direction and magnitude")
    priv = commands.add_parser("privileged-vs-plain", help="manipulation runs: success at zero privilege")
    priv.add_argument("--privileged", type=Path, required=True, help="run trained with the curriculum")
    priv.add_argument("--plain", type=Path, required=True, help="run trained without privileges")
    priv.add_argument("--episodes", type=int, default=64)
    priv.add_argument("--seed", type=int, default=2024)
    priv.add_argument("--out", help="also write the result as JSON (and, with --curve, the curve as a PNG beside it)")
    priv.add_argument("--curve", type=int, default=1,
                      help="evaluate this many checkpoints with equal env steps, evenly spread up to --steps")
    for sub in (hinf, priv):
        sub.add_argument("--steps", type=int, help="env steps to compare at (default: the largest both have)")
    args = parser.parse_args()
    (hinf_vs_dr if args.command == "hinf-vs-dr" else privileged_vs_plain)(args)


if __name__ == "__main__":
    main()
