"""Rendering frames/s: OpenGL through EGL (one world after another) against MuJoCo Warp's
batched ray tracer (all worlds in one launch), for the Panda scenes' front camera.

    python benchmarks/render_backends.py                                   # full grid, ~10 min on 2 cores
    python benchmarks/render_backends.py --tasks panda_reach --sizes 64 --num-envs 1 64 --antialias on
    python benchmarks/render_backends.py --out runs/bench/render_backends.json

Warp runs on CUDA when Warp finds a GPU, else on its CPU device (one thread); ``--device``
overrides. Both renderers get the same world states: N worlds of the task after a reset and a
few random actions. A frame is the whole job of a backend's ``render()``: kinematics of the
given qpos, drawing, and uint8[N, H, W, 3] images in memory (host for EGL, the Warp device for
Warp). Each row alternates timed runs of the two (at least ``--seconds`` and one call each),
so both see the same machine load, and reports medians; ``os.getloadavg()`` is printed beside
every row because the machine may be shared. A row whose first call takes longer than
``--max-call-seconds`` is timed once and flagged.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

CAMERA = "front"


def world_states(task: str, num_envs: int, seed: int = 0) -> tuple[object, np.ndarray, np.ndarray | None]:
    """The task's model and qpos float64[N, nq], mocap_pos float64[N, nmocap, 3] of N worlds
    after a reset and 5 random control steps (arm poses, cube and target differ per world)."""
    from robot_rl.envs import make

    env = make(task, num_envs=num_envs, backend="native", seed=seed)
    env.reset(seed=seed)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(5):
        env.step(2 * torch.rand(num_envs, env.action_dim, generator=generator) - 1)
    model = env.sim.model
    qpos = env.sim.qpos.double().numpy().copy()
    mocap = env.sim.mocap_pos.double().numpy().copy() if model.nmocap else None
    env.close()
    return model, qpos, mocap


def timed(call, n: int, min_seconds: float, sync) -> float:
    """frames/s of repeated ``call()`` for at least ``min_seconds`` (one call at least)."""
    calls, start = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - start < min_seconds:
        call()
        sync()
        calls += 1
    return n * calls / (time.perf_counter() - start)


def measure_row(task: str, size: int, n: int, antialias: bool, device: str, args: argparse.Namespace) -> dict:
    import copy

    from robot_rl_sim.rendering import SceneRenderer
    from robot_rl_sim.warp_rendering import WarpRenderer

    model, qpos, mocap = world_states(task, n)
    egl = SceneRenderer(copy.copy(model), size, size, antialias)
    warp = WarpRenderer(model, size, size, antialias, device, max_worlds=n)
    qpos_t = torch.from_numpy(qpos).to(device)
    mocap_t = torch.from_numpy(mocap).to(device) if mocap is not None else None
    sync = (lambda: torch.cuda.synchronize(device)) if torch.device(device).type == "cuda" else (lambda: None)
    calls = {"egl": lambda: egl.render(CAMERA, qpos, mocap), "warp": lambda: warp.render(CAMERA, qpos_t, mocap_t)}

    first = {}
    for name, call in calls.items():  # GL context, kernel compilation, graph capture
        start = time.perf_counter()
        call()
        sync()
        call()
        sync()
        first[name] = time.perf_counter() - start
    repeats = args.repeats if max(first.values()) / 2 <= args.max_call_seconds else 1
    runs: dict[str, list[float]] = {"egl": [], "warp": []}
    for _ in range(repeats):
        for name, call in calls.items():
            runs[name].append(timed(call, n, args.seconds, sync))
    egl.close()
    warp.close()
    row = {"task": task, "size": size, "num_envs": n, "antialias": antialias, "runs": runs,
           "egl_fps": statistics.median(runs["egl"]), "warp_fps": statistics.median(runs["warp"]),
           "repeats": repeats, "load": os.getloadavg()}
    row["ratio"] = row["warp_fps"] / row["egl_fps"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["panda_reach", "panda_push"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="square image side, pixels")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--antialias", nargs="+", choices=["on", "off"], default=["on", "off"],
                        help="on: EGL multisampling / Warp 2x2 supersampling (the env default); off: one sample")
    parser.add_argument("--device", default=None, help="Warp's device (default: cuda if Warp finds one, else cpu)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5, help="minimum length of one timed run")
    parser.add_argument("--max-call-seconds", type=float, default=5.0,
                        help="time a row once when one call of either renderer takes longer")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()

    import warp as wp

    from robot_rl_sim import warp_rendering  # noqa: F401  (quiet Warp logging, wp.init)

    device = args.device or ("cuda" if wp.is_cuda_available() else "cpu")
    print(f"Warp on {device}; EGL (MUJOCO_GL={os.environ['MUJOCO_GL']}); {os.cpu_count()} CPUs; "
          f"load {_load()} at start", flush=True)
    rows = []
    started = time.perf_counter()
    for task in args.tasks:
        for antialias in (a == "on" for a in args.antialias):
            for size in args.sizes:
                for n in args.num_envs:
                    row = measure_row(task, size, n, antialias, device, args)
                    rows.append(row)
                    flag = "" if row["repeats"] == args.repeats else " (timed once: slow)"
                    print(f"{task:11s} {size:3d}px aa={'on ' if antialias else 'off'} N={n:4d}: "
                          f"EGL {row['egl_fps']:7.0f}  Warp {row['warp_fps']:7.0f} frames/s  "
                          f"Warp/EGL {row['ratio']:.2f}  load {_load(row['load'])}{flag}", flush=True)

    print(f"\nframes/s, medians of {args.repeats}; Warp on {device}; load = 1/5/15-min load average "
          f"on {os.cpu_count()} CPUs when the row finished; {time.perf_counter() - started:.0f} s in all")
    print("| task | image | anti-alias | N | EGL | Warp | Warp/EGL | load |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['size']}x{r['size']} | {'on' if r['antialias'] else 'off'} | {r['num_envs']} | "
              f"{r['egl_fps']:,.0f} | {r['warp_fps']:,.0f} | {r['ratio']:.2f} | {_load(r['load'])} |")
    for line in summary(rows):
        print(line)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"device": device, "cpus": os.cpu_count(), "repeats": args.repeats,
                                        "rows": rows}, indent=1))
        print(f"wrote {args.out}")


def summary(rows: list[dict]) -> list[str]:
    """Warp/EGL ratios per image size, and what they mean for the mujoco_warp backend."""
    lines = []
    for size in sorted({r["size"] for r in rows}):
        ratios = [r["ratio"] for r in rows if r["size"] == size]
        faster = sum(x > 1 for x in ratios)
        lines.append(f"{size}x{size}: Warp/EGL {min(ratios):.2f}-{max(ratios):.2f}, Warp faster in {faster} of "
                     f"{len(ratios)} rows")
    slower = [r for r in rows if r["ratio"] <= 1]
    if slower:
        worst = min(slower, key=lambda r: r["ratio"])
        lines.append(f"Warp is not faster in {len(slower)} of {len(rows)} rows (down to {worst['ratio']:.2f}x at "
                     f"{worst['size']}x{worst['size']}, N={worst['num_envs']}), so the mujoco_warp backend keeps "
                     "rendering with EGL, as native does (robot_rl_sim.mujoco_warp's docstring has the reasons).")
    else:
        lines.append("Warp is faster in every row: a case for the mujoco_warp backend to render with "
                     "robot_rl_sim.warp_rendering (it uses EGL, chosen on 2-core CPU numbers; see its docstring).")
    return lines


def _load(load: tuple[float, float, float] | None = None) -> str:
    return "/".join(f"{x:.1f}" for x in (load or os.getloadavg()))


if __name__ == "__main__":
    main()
