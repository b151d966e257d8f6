"""Simulation throughput: the VecEnv against a raw ``mujoco.rollout`` loop, plus rendering.

For each task and batch size N, measures env-steps/s (control steps × worlds per second) of
``robot_rl.envs.make(task, N)`` stepping random actions, and of a bare loop that advances the
same model the same number of physics substeps per control step with ``mujoco.rollout`` and
nothing else; prints both and their ratio (the VecEnv's overhead for observations, rewards,
resets and tensor conversion). Then render frames/s at 84×84 and 224×224.

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


def time_loop(step, min_seconds: float, min_steps: int = 3) -> float:
    """Calls per second of ``step`` over at least ``min_seconds`` and ``min_steps`` calls."""
    step()  # warm-up: first-call allocations
    count, start = 0, time.perf_counter()
    while count < min_steps or time.perf_counter() - start < min_seconds:
        step()
        count += 1
    return count / (time.perf_counter() - start)


def vecenv_stepper(task: str, num_envs: int):
    env = make(task, num_envs=num_envs)
    env.reset(seed=0)
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        env.step(2 * torch.rand(num_envs, env.action_dim, generator=gen) - 1)

    return env, step


def raw_stepper(env, num_envs: int):
    """The same model, batch and substeps, advanced by ``mujoco.rollout`` alone."""
    model = env.sim.model
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    row = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, row, spec)
    state = np.tile(row, (num_envs, 1))
    substeps = env.substeps
    nthread = os.cpu_count() if num_envs > 1 else 0
    pool = mujoco.rollout.Rollout(nthread=nthread)
    datas = [mujoco.MjData(model) for _ in range(max(1, nthread))]
    models = [model] * num_envs
    low, high = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
    out_state = np.empty((num_envs, substeps, state.shape[1]))
    out_sensor = np.empty((num_envs, substeps, model.nsensordata))
    rng = np.random.default_rng(0)

    def step() -> None:
        ctrl = rng.uniform(low, high, (num_envs, 1, model.nu))
        control = np.broadcast_to(ctrl, (num_envs, substeps, model.nu)).copy()
        pool.rollout(models, datas, state, control, skip_checks=True, nstep=substeps,
                     state=out_state, sensordata=out_sensor)
        state[:] = out_state[:, -1]

    return pool, step


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
            env, env_step = vecenv_stepper(task, n)
            pool, raw_step = raw_stepper(env, n)
            ours, raw = [], []
            for _ in range(args.repeats):  # alternate so both see the same machine load
                ours.append(n * time_loop(env_step, args.seconds))
                raw.append(n * time_loop(raw_step, args.seconds))
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
