"""panda_reach on native MuJoCo, MuJoCo Warp and Isaac Lab (kit-less) side by side.

    python benchmarks/backend_compare.py                       # CPU: N = 64 and 1024, medians of 3
    python benchmarks/backend_compare.py --device cuda         # the same on a GPU (warp, isaaclab)
    python benchmarks/backend_compare.py --isaaclab-python .isaac-venv/bin/python --num-envs 64

Isaac Lab needs Python 3.12 and its own MuJoCo, so every backend runs in its own subprocess:
native and warp with this interpreter (the main environment), Isaac Lab with
``--isaaclab-python`` (default ``$ROBOT_RL_ISAACLAB_PYTHON``, else the environment
``.ci/isaaclab`` builds). Each measures the full ``SimVecEnv`` step (task observations, rewards
and resets included) with random actions after a warm-up (Warp kernel compilation, graph
capture), and prints env-steps/s per repeat; the table gives medians and the ratio to native
MuJoCo at the same N.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TASK = "panda_reach"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_ISAACLAB_VENV = Path.home() / ".cache" / "robot_rl" / "isaaclab-venv"


def measure(backend: str, num_envs: int, device: str, repeats: int, seconds: float) -> list[float]:
    """env-steps/s of ``repeats`` timed runs of about ``seconds`` each (at least 3 steps)."""
    import torch

    from robot_rl.envs import make

    torch.set_num_threads(os.cpu_count() or 1)
    env = make(TASK, num_envs=num_envs, backend=backend, device=None if backend == "native" else device)
    generator = torch.Generator().manual_seed(0)

    def actions() -> torch.Tensor:
        return (2 * torch.rand(num_envs, env.action_dim, generator=generator) - 1).to(env.device)

    env.reset(seed=0)
    for _ in range(3):  # compile kernels, capture graphs
        env.step(actions())
    start = time.perf_counter()
    env.step(actions())
    per_step = time.perf_counter() - start
    steps = max(3, round(seconds / max(per_step, 1e-6)))
    rates = []
    for _ in range(repeats):
        batch = [actions() for _ in range(steps)]
        start = time.perf_counter()
        for a in batch:
            env.step(a)
        if env.device.type == "cuda":
            torch.cuda.synchronize(env.device)
        rates.append(steps * num_envs / (time.perf_counter() - start))
    env.close()
    return rates


def run_worker(python: str, backend: str, num_envs: int, args: argparse.Namespace) -> list[float] | str:
    """Measure in a subprocess; the rates, or the reason it failed."""
    command = [python, str(Path(__file__).resolve()), "--worker", backend, "--num-envs", str(num_envs),
               "--device", args.device, "--repeats", str(args.repeats), "--seconds", str(args.seconds)]
    env = dict(os.environ)
    env.setdefault("WARP_CACHE_PATH", str(Path.home() / ".cache" / "warp"))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, env=env, cwd=REPO)
    except FileNotFoundError:
        return f"no interpreter {python}"
    except subprocess.TimeoutExpired:
        return f"timed out after {args.timeout} s"
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return f"failed: {last}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--device", default="cpu", help="device of the warp and isaaclab backends")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one timed run")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per backend and N, seconds")
    parser.add_argument("--isaaclab-python", default=os.environ.get("ROBOT_RL_ISAACLAB_PYTHON",
                                                                    str(DEFAULT_ISAACLAB_VENV / "bin" / "python")))
    parser.add_argument("--worker", choices=["native", "warp", "isaaclab"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        rates = measure(args.worker, args.num_envs[0], args.device, args.repeats, args.seconds)
        print("RESULT " + json.dumps(rates), flush=True)
        return

    pythons = {"native": sys.executable, "warp": sys.executable, "isaaclab": args.isaaclab_python}
    medians: dict[tuple[str, int], float] = {}
    for n in args.num_envs:
        for backend, python in pythons.items():
            result = run_worker(python, backend, n, args)
            if isinstance(result, str):
                print(f"{backend:9s} N={n:5d}: {result}", flush=True)
                continue
            medians[backend, n] = statistics.median(result)
            runs = ", ".join(f"{r:,.0f}" for r in result)
            print(f"{backend:9s} N={n:5d}: {medians[backend, n]:,.0f} env-steps/s (runs: {runs})", flush=True)

    device = "CPU" if args.device == "cpu" else args.device
    print(f"\n{TASK}, env-steps/s (median of {args.repeats}); ratio = backend / native MuJoCo at the same N")
    print(f"| backend ({device}) | " + " | ".join(f"N={n}" for n in args.num_envs) + " | "
          + " | ".join(f"ratio N={n}" for n in args.num_envs) + " |")
    print("|---" * (1 + 2 * len(args.num_envs)) + "|")
    for backend in pythons:
        cells = [f"{medians[backend, n]:,.0f}" if (backend, n) in medians else "-" for n in args.num_envs]
        ratios = [f"{medians[backend, n] / medians['native', n]:.3f}"
                  if (backend, n) in medians and ("native", n) in medians else "-" for n in args.num_envs]
        print(f"| {backend} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")


if __name__ == "__main__":
    main()
