"""Simulation throughput: the VecEnv against a raw ``mujoco.rollout`` loop, plus rendering.

For each task and batch size N, measures env-steps/s (control steps × worlds per second) of
``robot_rl.envs.make(task, N)`` stepping random actions, and of a bare ``mujoco.rollout`` loop
over the same model that replays the controls the VecEnv sent, from the same starting state,
with the same physics substeps per control step and nothing else; prints both and their ratio
(the VecEnv's overhead for observations, rewards, resets and tensor conversion). Then render
frames/s at 84×84 and 224×224.

    python benchmarks/sim_throughput.py
    python benchmarks/sim_throughput.py --tasks panda_reach --num-envs 256 1024 --repeats 5

Numbers are medians over ``--repeats`` alternating runs, so both sides see the same noise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import mujoco
import mujoco.rollout
import numpy as np
import torch

from robot_rl.envs import make, task_names


def measure_pair(env, pool, datas, min_seconds: float, gen: torch.Generator) -> tuple[float, float]:
    """env-steps/s of the VecEnv for at least ``min_seconds``, then of a bare ``mujoco.rollout``
    loop replaying the same controls from the same starting state (so both simulate the same
    motions and contacts; the bare loop skips observations, rewards and resets)."""
    sim, n = env.sim, env.num_envs
    start_state = sim._state.copy()
    recorded: list[np.ndarray] = []
    real_step = sim.step

    def recording_step(ctrl: torch.Tensor, substeps: int) -> None:
        recorded.append(ctrl.numpy().copy())
        real_step(ctrl, substeps)

    sim.step = recording_step
    steps, t0 = 0, time.perf_counter()
    while steps < 3 or time.perf_counter() - t0 < min_seconds:
        env.step(2 * torch.rand(n, env.action_dim, generator=gen) - 1)
        steps += 1
    ours = n * steps / (time.perf_counter() - t0)
    sim.step = real_step

    model, substeps = sim.model, env.substeps
    spec, columns = sim._specs[False]
    base = sim._control[:, :, columns].copy()
    ctrl_cols = slice(0, model.nu)  # ctrl comes first in the control vector
    state = start_state.copy()
    control = np.empty((n, substeps, len(columns)))
    out_state = np.empty((n, substeps, state.shape[1]))
    out_sensor = np.empty((n, substeps, model.nsensordata))
    models = [model] * n
    t0 = time.perf_counter()
    for ctrl in recorded:
        control[:] = base
        control[:, :, ctrl_cols] = ctrl[:, None, :]
        pool.rollout(models, datas, state, control, control_spec=spec, skip_checks=True, nstep=substeps,
                     state=out_state, sensordata=out_sensor)
        state[:] = out_state[:, -1]
    raw = n * len(recorded) / (time.perf_counter() - t0)
    return ours, raw


def render_fps(task: str, size: int, frames: int) -> float:
    env = make(task, num_envs=frames)
    env.reset(seed=0)
    camera = env.task.cameras[0]
    env.render(camera, size, size, torch.arange(1))  # creates the GL context
    start = time.perf_counter()
    env.render(camera, size, size)
    fps = frames / (time.perf_counter() - start)
    env.close()
    return fps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=None, help="default: every registered task")
    parser.add_argument("--num-envs", nargs="+", type=int, default=[1, 64, 256, 1024])
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum time per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--render-frames", type=int, default=64)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tasks = args.tasks or task_names()

    print(f"cores: {os.cpu_count()}  mujoco {mujoco.__version__}  torch {torch.__version__}")
    print(f"{'task':16} {'N':>5} {'VecEnv steps/s':>15} {'raw steps/s':>12} {'ratio':>6}")
    for task in tasks:
        for n in args.num_envs:
            env = make(task, num_envs=n)
            env.reset(seed=0)
            env.step(torch.zeros(n, env.action_dim))  # warm-up: first-call allocations
            nthread = os.cpu_count() if n > 1 else 0
            pool = mujoco.rollout.Rollout(nthread=nthread)
            datas = [mujoco.MjData(env.sim.model) for _ in range(max(1, nthread))]
            gen = torch.Generator().manual_seed(0)
            ours, raw = [], []
            for _ in range(args.repeats):  # alternate so both see the same machine load
                a, b = measure_pair(env, pool, datas, args.seconds, gen)
                ours.append(a)
                raw.append(b)
            pool.close()
            env.close()
            a, b = statistics.median(ours), statistics.median(raw)
            print(f"{task:16} {n:>5} {a:>15,.0f} {b:>12,.0f} {a / b:>6.2f}", flush=True)

    print(f"\n{'task':16} {'render fps 84x84':>17} {'224x224':>8}")
    for task in tasks:
        small = statistics.median(render_fps(task, 84, args.render_frames) for _ in range(args.repeats))
        large = statistics.median(render_fps(task, 224, args.render_frames) for _ in range(args.repeats))
        print(f"{task:16} {small:>17,.0f} {large:>8,.0f}", flush=True)


if __name__ == "__main__":
    main()
