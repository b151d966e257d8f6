"""Offline RL and RLPD on panda_push, measured side by side in one run.

Offline (``--part offline``): on a mixed-quality dataset (scripted expert + noisy + failed
episodes, ``robot-rl record``), train BC, IQL on the task's reward, and IQL on each learned
reward (``robot-rl label``: ``preference`` from oracle pairs within a quarter of the episodes,
``imputed`` regressed on the task's reward of 1% of the frames; both score every frame);
evaluate each policy on the same fresh simulation episodes. Reported: success rates per seed,
their means and medians, IQL − BC and IQL(learned)/IQL(task reward) on the means.

Online (``--part online``): RLPD from the first 20 successful episodes of the dataset against
SAC without demos, the same network, batch and budget; deterministic evaluations every
``--eval-every`` env steps. Reported: env steps to ``--target`` success (the mean of ``--window``
evaluations in a row; or the success rate at equal steps when neither reaches it within the
budget). ``--part compare`` reads the same from the metrics.csv of two ``robot-rl finetune``
runs, which ``--resume`` can carry past one sitting.

    python benchmarks/offline_rl.py --part offline --dataset runs/data/push_mixed --seeds 0 1 --episodes 100
    python benchmarks/offline_rl.py --part evaluate runs/panda_push/<run> ...     # policy.pt on eval.json's episodes
    python benchmarks/offline_rl.py --part compare RLPD_RUN SAC_RUN               # robot-rl finetune runs
    python benchmarks/offline_rl.py --part rollout RUN ... --episodes 100          # how their pushes fail
    python benchmarks/offline_rl.py --part online --dataset runs/data/push_mixed --env-steps 15000 --minutes 15 \
        --hidden 128 128 --utd 2
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
from pathlib import Path

import torch

from robot_rl.configs import from_dict, to_dict
from robot_rl.configs.loading import merge
from robot_rl.configs.offline import OfflineConfig
from robot_rl.data.dataset import Dataset

LAUNCH = Path(__file__).resolve().parents[1] / "launch" / "offline"


def config(name: str, **changes) -> OfflineConfig:
    import yaml

    base = yaml.safe_load((LAUNCH / name).read_text())
    return from_dict(OfflineConfig, merge(base, changes))


LABELS = {"preference": "label_preference.yaml", "imputed": "label_imputed.yaml"}
"""Learned reward column next.reward.<name> -> the labelling launch file that writes it."""


def offline(args: argparse.Namespace, root: str) -> None:
    from robot_rl.offline.trainer import OfflineTrainer

    features = Dataset(args.dataset).features
    for name in args.learned:
        if f"next.reward.{name}" not in features:
            raise SystemExit(f"{args.dataset} has no next.reward.{name} column; run: robot-rl label {args.dataset} "
                             f"--reward launch/offline/{LABELS.get(name, 'label_<module>.yaml')}")
    runs = {"BC": ("panda_push_bc.yaml", {}), "IQL (task reward)": ("panda_push_iql.yaml", {})}
    runs.update({f"IQL ({name} reward)": ("panda_push_iql.yaml", {"reward": f"next.reward.{name}"})
                 for name in args.learned})
    results: dict[str, list[float]] = {name: [] for name in runs}
    for seed in args.seeds:
        for name, (launch, changes) in runs.items():
            cfg = config(launch, dataset=args.dataset, seed=seed, root=root, progress_bar=False,
                         budget={"updates": args.updates}, eval={"episodes": args.episodes, "interim_episodes": 0,
                                                                  "video": False}, **changes)
            summary = OfflineTrainer(cfg).train()
            results[name].append(summary["eval"]["success_rate"])
            print(f"seed {seed} {name:26s} success {summary['eval']['success_rate']:.2f}  ({summary['run_dir']})",
                  flush=True)
    print(f"\n{args.episodes} evaluation episodes per run, {args.updates} updates, seeds {args.seeds}")
    print("| method | success per seed | mean | median |\n|---|---|---|---|")
    for name, values in results.items():
        print(f"| {name} | {', '.join(f'{v:.2f}' for v in values)} | {statistics.mean(values):.3f} | "
              f"{statistics.median(values):.2f} |")
    bc, iql = statistics.mean(results["BC"]), statistics.mean(results["IQL (task reward)"])
    print(f"IQL - BC (means): {iql - bc:+.3f}")
    for name in args.learned:
        learned = statistics.mean(results[f"IQL ({name} reward)"])
        print(f"IQL({name}) / IQL(task reward), means: {learned / iql:.2f}" if iql > 0
              else "IQL(task reward) success is 0: ratio undefined")


def steps_to(path: Path, target: float, window: int = 1) -> tuple[int | None, list[tuple[int, float]]]:
    """(env steps at which the mean of the last ``window`` evaluations first reaches ``target``,
    or None; the evaluations' (env steps, success) curve) of a run's metrics.csv."""
    curve = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["eval/success"]:
                curve.append((int(row["env_steps"]), float(row["eval/success"])))
    return first_reaching(curve, target, window), curve


def first_reaching(curve: list[tuple[int, float]], target: float, window: int = 1) -> int | None:
    """The env steps of the first evaluation of ``curve`` where the mean over it and the
    ``window`` - 1 before it reaches ``target`` (one 20-episode evaluation is noisy: ±0.09 at 0.8)."""
    for i in range(window - 1, len(curve)):
        if statistics.fmean(v for _, v in curve[i - window + 1:i + 1]) >= target - 1e-9:  # float sums of k/20
            return curve[i][0]
    return None


def online(args: argparse.Namespace, root: str) -> None:
    from robot_rl.offline.finetune import FinetuneTrainer

    common = {"root": root, "progress_bar": False, "seed": args.seeds[0], "num_envs": args.num_envs,
              "net": {"hidden": args.hidden},
              "budget": {"env_steps": args.env_steps, "minutes": args.minutes},
              "eval": {"episodes": args.episodes, "every": args.eval_every, "interim_episodes": args.interim,
                       "video": False}}
    all_runs = {"RLPD (20 demos)": config("panda_push_rlpd.yaml", dataset=args.dataset, sac={"utd": args.utd},
                                      **common),
            "SAC (no demos)": config("panda_push_rlpd.yaml", dataset=None,
                                     sac={"ensemble": 2, "layer_norm": False, "utd": args.utd, "random_steps": 2000,
                                          "demo_episodes": None}, **common)}
    runs = {name: cfg for name, cfg in all_runs.items() if name.split()[0].lower() in args.runs}
    curves = {}
    for name, cfg in runs.items():
        print(f"{name}: {to_dict(cfg)['sac']}", flush=True)
        summary = FinetuneTrainer(cfg).train()
        hit, curve = steps_to(Path(summary["run_dir"]) / "metrics.csv", args.target, args.window)
        curves[name] = (hit, curve, summary)
        print(f"{name}: {summary['env_steps']} env steps, final success {summary['eval']['success_rate']:.2f}, "
              f"steps to {args.target:.0%}: {hit}  ({summary['run_dir']})", flush=True)
    print_curves({name: curve for name, (_, curve, _) in curves.items()}, args.target, args.window)
    for name, (hit, _, summary) in curves.items():
        print(f"{name}: steps to {args.target:.0%} = {hit}; final {args.episodes}-episode success "
              f"{summary['eval']['success_rate']:.2f} after {summary['env_steps']} env steps")


def print_curves(curves: dict[str, list[tuple[int, float]]], target: float, window: int = 1) -> None:
    """The evaluations side by side, then each run's env steps to ``target`` (the mean of
    ``window`` evaluations in a row) and, for two runs, whether the first got there in at most
    half the steps of the second."""
    print(f"\n| env steps | {' | '.join(curves)} |\n|---|{'---|' * len(curves)}")
    for s in sorted({s for c in curves.values() for s, _ in c}):
        cells = [next((f"{v:.2f}" for t, v in c if t == s), "") for c in curves.values()]
        print(f"| {s} | {' | '.join(cells)} |")
    hits = {name: first_reaching(c, target, window) for name, c in curves.items()}
    over = f" (mean of {window} evaluations in a row)" if window > 1 else ""
    for name, c in curves.items():
        print(f"{name}: {c[-1][0] if c else 0} env steps, best {max((v for _, v in c), default=0):.2f}, "
              f"steps to {target:.0%}{over}: {hits[name]}")
    if len(curves) == 2:
        (a, hit_a), (b, hit_b) = hits.items()
        last_b = curves[b][-1][0] if curves[b] else 0
        if hit_a is None:
            print(f"{a} has not reached {target:.0%}")
        elif hit_b is not None:
            print(f"{a} / {b} steps to {target:.0%}: {hit_a / hit_b:.2f} (goal <= 0.5)")
        else:
            verdict = "at most half: met" if last_b >= 2 * hit_a else "run it to twice the steps to decide"
            print(f"{b} has not reached {target:.0%} in {last_b} env steps ({last_b / hit_a:.1f}x {a}'s {hit_a}): "
                  f"{verdict}")


def compare(args: argparse.Namespace, root: str) -> None:
    """Fine-tuning runs of ``robot-rl finetune`` (resumable, so they can be long) side by side."""
    import yaml

    curves = {}
    for run in args.run_dirs:
        cfg = yaml.safe_load((Path(run) / "config.yaml").read_text())
        sac = cfg.get("sac", {})
        kind = f"RLPD ({sac.get('demo_episodes')} demos)" if cfg.get("dataset") else "SAC (no demos)"
        noise = f", noise β {sac['noise_beta']:g}" if sac.get("noise_beta") else ""
        curves[f"{kind}, UTD {sac.get('utd')}, E {sac.get('ensemble')}{noise}: {Path(run).name}"] = \
            steps_to(Path(run) / "metrics.csv", args.target)[1]
    print_curves(curves, args.target, args.window)


def evaluate_runs(args: argparse.Namespace, root: str) -> None:
    """Evaluate each run's policy.pt on the same ``--episodes`` fresh episodes (the seed of eval.json)."""
    import yaml

    from robot_rl.envs import make
    from robot_rl.training.evaluate import evaluate
    from robot_rl.training.export import load_policy

    for run in args.run_dirs:
        policy, meta = load_policy(Path(run) / "policy.pt")
        cfg = yaml.safe_load((Path(run) / "config.yaml").read_text())
        env = make(meta["task"], num_envs=args.episodes, overrides=cfg.get("task_overrides"))
        result = evaluate(lambda obs, p=policy, g=meta["observation_group"]: p(obs[g]), env, args.episodes,
                          env.max_episode_steps + 1, seed=cfg.get("seed", 0) + 12345)
        env.close()
        print(f"{run}: success {result.success_rate:.2f} over {args.episodes} episodes, "
              f"mean return {result.mean_return:.1f}", flush=True)


def push_outcomes(policy, env, steps: int, seed: int) -> tuple[dict[str, float], dict, torch.Tensor]:
    """Run ``env``'s worlds (panda_push, episodes longer than ``steps``) for ``steps`` control
    steps from a reset with ``seed``: success at the last step as evaluation counts it, cubes that
    were on the target and left it, failures that stalled (cube still for the last quarter).
    Returns those shares, the last observation and the stalled worlds' mask bool[N]."""
    task, sim = env.task, env.sim
    obs, _ = env.reset(seed=seed)
    on_target_once = torch.zeros(env.num_envs, dtype=torch.bool)
    ended = torch.zeros_like(on_target_once)  # the cube fell off the table: a failure
    history = []
    for _ in range(steps):
        obs, _, terminated, _, _ = env.step(policy(obs))
        ended |= terminated.cpu()
        d = task.cube_to_target(sim).cpu()
        history.append(d)
        on_target_once |= d < task.config.success_distance
    d = torch.stack(history)
    success = (d[-1] < task.config.success_distance) & ~ended
    missed = ~success & ~ended  # failures with the cube still on the table
    still = (d[-steps // 4:] - d[-1]).abs().amax(0) < 0.005
    tip_to_cube = task.tip_to_cube(sim).cpu()
    tip_above_cube = (sim.sensor("ee_pos")[:, 2] - task.cube.position(sim)[:, 2]).cpu()
    share = lambda m: float(m.float().mean())  # noqa: E731
    median = lambda x: float(x.median()) if len(x) else float("nan")  # noqa: E731
    stalled = missed & still
    return {"success": share(success), "on target, then off": share(missed & on_target_once),
            "stalled failures": share(stalled), "off the table": share(ended),
            "failures' cube-target (m)": median(d[-1][missed]),
            "failures' tip-cube (m)": median(tip_to_cube[missed]),
            "failures' tip above cube (m)": median(tip_above_cube[missed])}, obs, stalled


def stalled_q(sac, obs: torch.Tensor, stalled: torch.Tensor, success: torch.Tensor,
              expert_action: torch.Tensor) -> dict[str, float]:
    """Mean critic Q of the policy's mean action in the stalled and the successful worlds, and
    in the stalled ones of the best of 256 random actions and of the scripted expert's action."""
    q = lambda a: sac.critic(obs, a).mean(0).squeeze(-1)  # noqa: E731
    action = sac.act(obs, deterministic=True)
    policy_q = q(action)
    gen = torch.Generator().manual_seed(0)
    best = torch.stack([q(torch.rand(action.shape, generator=gen) * 2 - 1) for _ in range(256)]).amax(0)
    mean = lambda x, m: float(x[m].mean()) if m.any() else float("nan")  # noqa: E731
    return {"Q stalled": mean(policy_q, stalled), "best random Q stalled": mean(best, stalled),
            "expert's Q stalled": mean(q(expert_action), stalled), "Q succeeded": mean(policy_q, success)}


def expert_takeover(env, expert, stalled: torch.Tensor, steps: int) -> dict[str, float]:
    """The scripted ``expert`` drives every world on for ``steps`` control steps from where the
    policy left them: the share of the stalled worlds it brings onto the target (can the stalls
    be got out of at all?)."""
    for _ in range(steps):
        env.step(expert.act())
    on_target = env.task.cube_to_target(env.sim).cpu() < env.task.config.success_distance
    return {"expert from stalled": float(on_target[stalled].float().mean()) if stalled.any() else float("nan")}


def rollout(args: argparse.Namespace, root: str) -> None:
    """Each fine-tuning run's newest checkpoint on the same ``--episodes`` fresh panda_push
    episodes, with the policy's mean action (what evaluation runs) and with sampled actions (what
    training runs): how often it succeeds and how the rest fail. Where the mean action stalls,
    the critic ensemble's mean Q of that action beside the best of 256 uniformly random actions
    (does the critic know a better move?), of the scripted expert's action there, and of the
    successful worlds' last actions; then the scripted expert takes over from the mean action's
    last state for another episode length: how many of the stalled worlds it brings onto the target."""
    from robot_rl.configs import load
    from robot_rl.envs import make
    from robot_rl.offline.finetune import FinetuneTrainer
    from robot_rl_sim.scripted import ScriptedPusher

    torch.set_num_threads(1)
    rows = []
    for run in args.run_dirs:
        trainer = FinetuneTrainer(load(OfflineConfig, Path(run) / "config.yaml"), resume=Path(run))
        overrides = trainer.cfg.task_overrides or {}
        probe = make(trainer.task, num_envs=1, overrides=overrides)
        steps, dt = probe.max_episode_steps, probe.task.config.control_dt
        probe.close()
        # Three time limits, so no world resets during the rollout and the expert's takeover;
        # success is read at the first.
        longer = {**overrides, "episode_length_s": 3 * steps * dt}
        env = make(trainer.task, num_envs=args.episodes, seed=args.seeds[0], overrides=longer)
        trainer.algo.actor.eval()
        for mean in (True, False):
            with torch.no_grad():
                act = lambda obs, t=trainer, m=mean: t.algo.act(obs[t.group], deterministic=m)  # noqa: E731
                out, obs, stalled = push_outcomes(act, env, steps, seed=args.seeds[0] + 4242)
                if mean:
                    expert = ScriptedPusher(env, ["expert"] * env.num_envs, seed=args.seeds[0])
                    out.update(stalled_q(trainer.algo, obs[trainer.group], stalled, env.task.success(env.sim).cpu(),
                                         expert.act()))
                    out.update(expert_takeover(env, expert, stalled, steps))
            rows.append((f"{Path(run).name} ({trainer.env_steps} steps)", "mean" if mean else "sampled", out))
        env.close()
        if trainer.env is not None:
            trainer.env.close()
    keys = list(dict.fromkeys(k for _, _, out in rows for k in out))
    print(f"\n| run | actions | {' | '.join(keys)} |\n|---|---|{'---|' * len(keys)}")
    for name, kind, out in rows:
        cells = ("" if k not in out else f"{out[k]:.3f}" if k.endswith("(m)") else f"{out[k]:.2f}" for k in keys)
        print(f"| {name} | {kind} | {' | '.join(cells)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("offline", "online", "compare", "evaluate", "rollout"), required=True)
    parser.add_argument("--runs", nargs="+", default=["rlpd", "sac"], help="online: which of rlpd, sac to run")
    parser.add_argument("run_dirs", nargs="*", help="evaluate: run directories whose policy.pt to evaluate; "
                        "compare: fine-tuning run directories (RLPD first, then SAC); rollout: fine-tuning runs")
    parser.add_argument("--dataset", default="runs/data/push_mixed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--learned", nargs="*", default=["preference", "imputed"],
                        help="offline: learned reward columns next.reward.<name> to train IQL on")
    parser.add_argument("--updates", type=int, default=20000)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--env-steps", type=int, default=20000)
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock cap per online run")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--eval-every", type=int, default=2000)
    parser.add_argument("--interim", type=int, default=16, help="episodes per intermediate evaluation")
    parser.add_argument("--target", type=float, default=0.8)
    parser.add_argument("--window", type=int, default=5,
                        help="online/compare: a run reaches --target when the mean of this many evaluations in a "
                             "row does (5 x 20 episodes = 100)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256], help="online runs: MLP widths")
    parser.add_argument("--utd", type=int, default=10, help="online runs: critic updates per env step")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    root = tempfile.mkdtemp(prefix="offline_rl_")
    {"offline": offline, "online": online, "compare": compare, "evaluate": evaluate_runs,
     "rollout": rollout}[args.part](args, root)


if __name__ == "__main__":
    main()
