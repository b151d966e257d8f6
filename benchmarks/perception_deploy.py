"""Push from the camera on the fake arm against the same policy in simulation with the true cube.

    python benchmarks/perception_deploy.py --policy push.pt --perception runs/perception/panda_push/perception.pt \
        --episodes 50 --out perception_deploy.json

The policy must be a ``panda_push`` policy trained with ``observation: perceived``
(``launch/train/panda_push_perceived.yaml``, then ``robot-rl export``).

- **Simulation, true state**: the exported policy in ``panda_push`` with the perceived cube equal
  to the true one (no simulated error), ``--episodes`` episodes over fresh resets.
- **Fake arm, from the camera**: cube starts and targets drawn from the task's ranges with
  ``--seed`` (numpy, apart from the simulation's own resets), one ``robot-rl deploy --fake-arm
  --perception MODEL --episodes 1`` per episode
  (the fake arm cannot reset its scene), run for the whole episode as in simulation
  (``end_on_success:=false``); success is read twice: as the policy node judged it from the
  estimated cube (``summary.json``) and from the true cube in the fake arm's ground-truth file,
  which no robot node reads (final cube within the task's success distance of the target). A run
  that does not end in time (the node held because it lost the cube) is a failed episode.

Prints both success rates, their ratio (goal ≥ 0.9) and the control loop's latency; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def sim_success(policy_path: str, episodes: int, seed: int) -> float:
    import torch

    from robot_rl.envs.make import make
    from robot_rl.training.export import load_policy

    policy, meta = load_policy(policy_path)
    overrides = dict(meta.get("task_config", {}))
    overrides.update(observation="perceived", perception_bias=0.0, perception_noise=0.0)
    keep = {"observation", "perception_bias", "perception_noise", "action_space", "gripper_action", "ee_step",
            "action_scale"}
    env = make("panda_push", num_envs=min(episodes, 64), seed=seed,
               overrides={k: v for k, v in overrides.items() if k in keep})
    obs, _ = env.reset(seed=seed)
    done_count, successes = 0, 0
    finished = torch.zeros(env.num_envs, dtype=torch.bool)
    while done_count < episodes:
        with torch.no_grad():
            actions = policy(obs["policy"])
        obs, _, terminated, truncated, info = env.step(actions)
        ended = (terminated | truncated) & ~finished
        for i in torch.nonzero(ended).flatten().tolist():
            if done_count < episodes:
                successes += bool(info["success"][i])
                done_count += 1
        finished |= ended  # one episode per world, so starts are independent draws
        if bool(finished.all()) and done_count < episodes:
            finished[:] = False
    env.close()
    return successes / episodes


def draw_episodes(count: int, seed: int) -> list[tuple[list[float], list[float]]]:
    """Cube start (x, y, yaw) and target (x, y, 0) pairs from panda_push's default ranges."""
    from robot_rl_sim.tasks.panda_push import PandaPushConfig

    cfg = PandaPushConfig()
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(count):
        cube = rng.uniform(cfg.cube_low, cfg.cube_high)
        angle, radius = rng.uniform(-math.pi, math.pi), rng.uniform(*cfg.target_distance)
        target = [cube[0] + radius * math.cos(angle), cube[1] + radius * math.sin(angle), 0.0]
        yaw = rng.uniform(-math.pi, math.pi)
        pairs.append(([float(cube[0]), float(cube[1]), float(yaw)], [float(t) for t in target]))
    return pairs


def deploy_once(args, cube: list[float], target: list[float], work: Path, index: int) -> dict:
    truth = work / f"truth_{index}.csv"
    record = work / f"run_{index}"
    command = [sys.executable, "-m", "robot_rl.cli.main", "deploy", "--robot", args.robot, "--policy", args.policy,
               "--perception", args.perception, "--fake-arm", "--episodes", "1", "--record", str(record),
               "--target", *map(str, target), "--param", f"fake_arm.cube:={cube}",
               "--param", f"fake_arm.ground_truth:={truth}", "--param", "policy_node.end_on_success:=false"]
    started = time.perf_counter()
    # Its own DDS domain per run: nothing left over from another run can reach its nodes.
    env = dict(os.environ, ROS_DOMAIN_ID=str(100 + index % 100))
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=args.timeout)
        rc = process.returncode
    except subprocess.TimeoutExpired:  # e.g. the node never saw the cube: a failed episode
        process.send_signal(signal.SIGTERM)  # deploy stops its nodes and prints its summary
        _, stderr = process.communicate(timeout=30)
        rc = "timeout"
    wall = time.perf_counter() - started
    summaries = sorted(record.glob("**/summary.json"))
    summary = json.loads(summaries[-1].read_text()) if summaries else {}
    true_success = None
    if truth.is_file() and truth.stat().st_size > 0:
        final = np.loadtxt(truth, delimiter=",", ndmin=2)[-1, 1:]
        true_success = bool(np.linalg.norm(final[:2] - np.array(target[:2])) < args.success_distance)
    holds = stderr.count("holding:")
    return {"cube": cube, "target": target, "rc": rc, "wall_s": wall, "summary": summary,
            "true_success": true_success, "hold_messages": holds, "stderr_tail": stderr[-400:] if rc else ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", required=True)
    parser.add_argument("--perception", required=True)
    parser.add_argument("--robot", default=str(ROOT / "real" / "config" / "panda.yaml"))
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--success-distance", type=float, default=0.05)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per deploy run (an episode is 5 s)")
    parser.add_argument("--out", default="perception_deploy.json")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")

    sim = sim_success(args.policy, args.episodes, args.seed + 10_000)
    print(f"simulation, true cube: {sim:.1%} over {args.episodes} episodes", flush=True)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (cube, target) in enumerate(draw_episodes(args.episodes, args.seed)):
            run = deploy_once(args, cube, target, Path(tmp), i)
            runs.append(run)
            print(f"fake arm episode {i + 1}/{args.episodes}: rc {run['rc']}, node says "
                  f"{run['summary'].get('successes')}, true cube {run['true_success']}, {run['wall_s']:.0f} s",
                  flush=True)
    true = [r["true_success"] for r in runs if r["true_success"] is not None]
    judged = [r["summary"].get("successes", 0) for r in runs if r["summary"]]
    latency = [r["summary"].get("median_latency_ms") for r in runs if r["summary"].get("median_latency_ms")]
    real = float(np.mean(true)) if true else float("nan")
    report = {
        "episodes": args.episodes, "sim_true_state_success": sim, "fake_arm_true_success": real,
        "fake_arm_node_judged_success": float(np.mean(judged)) if judged else None,
        "ratio": real / sim if sim > 0 else None, "median_latency_ms": float(np.median(latency)) if latency else None,
        "failed_runs": sum(r["rc"] != 0 for r in runs), "load": os.getloadavg(), "runs": runs,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"fake arm from the camera: {real:.1%} (true cube) vs simulation {sim:.1%}: ratio "
          f"{report['ratio'] if report['ratio'] is None else round(report['ratio'], 2)} (goal >= 0.9); "
          f"median control-loop latency {report['median_latency_ms']} ms; load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
