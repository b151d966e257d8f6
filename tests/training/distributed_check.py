"""Run by test_distributed.py under torchrun: in each scenario every rank trains a few PPO
iterations with a fresh :class:`Trainer`, then the ranks compare what they hold.

    torchrun --standalone --nproc-per-node 2 tests/training/distributed_check.py /tmp/runs
    torchrun --standalone --nproc-per-node 2 tests/training/distributed_check.py /tmp/runs clock

Scenarios (all by default, in one process group since starting processes is the slow part):

- ``sync``: train the whole budget;
- ``clock``: after 2 iterations rank 0's clock says the time budget is spent, the others' not;
- ``callback``: after 2 iterations rank 0's ``train`` callback asks to stop, the others' not;
- ``hinf``: quadruped_walk with the relative H∞ disturber pushing from the first iteration: the
  ranks' own reference worlds measure different oracles, yet every rank ends with the same
  (their mean), the same termination rate and the same λ.

In each, the ranks must start from identical weights and end, after the same number of
iterations, with identical parameters, normaliser statistics and optimiser state, bit for bit;
the normalisers must have counted every rank's observations; and the ranks must reset their
worlds differently and draw different action noise (both are seeded by rank). A rank training on alone would
wait in a collective until the process group's timeout. A failed check raises AssertionError
(a non-zero exit); rank 0 prints ``passed: <scenario> ...`` after each scenario.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.distributed as dist

from robot_rl.configs import TrainConfig, load
from robot_rl.training import runner

LAUNCH = Path(__file__).resolve().parents[2] / "launch" / "train" / "panda_reach.yaml"
NUM_ENVS, NUM_STEPS, ITERATIONS, EARLY_STOP = 8, 8, 3, 2
SCENARIOS = ("sync", "clock", "callback", "hinf")
HINF_LAUNCH = LAUNCH.parent / "quadruped_walk_hinf.yaml"


class FirstObservation:
    """Wraps a VecEnv and keeps the sum of the first observation it returns after a reset,
    which depends on the reset seed only."""

    def __init__(self, env) -> None:
        self.env, self.first_sum = env, None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def reset(self, seed: int | None = None):
        obs, info = self.env.reset(seed=seed)
        if self.first_sum is None:
            self.first_sum = float(obs["policy"].double().sum())
        return obs, info


def state_vector(trainer: runner.Trainer) -> torch.Tensor:
    """float64[K]: every parameter and buffer of the actor-critic (normalisers included), the
    optimiser's moments and the learning rate, concatenated."""
    parts = [t.detach().double().reshape(-1) for t in trainer.ppo.model.state_dict().values()]
    for state in trainer.ppo.optimizer.state.values():
        parts += [t.detach().double().reshape(-1) for t in state.values() if isinstance(t, torch.Tensor)]
    parts.append(torch.tensor([trainer.ppo.lr], dtype=torch.float64))
    return torch.cat(parts)


def gather(x: torch.Tensor) -> list[torch.Tensor]:
    out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(out, x)
    return out


def check(scenario: str, root: Path) -> None:
    rank, world = dist.get_rank(), dist.get_world_size()
    cfg = load(TrainConfig, LAUNCH, [
        "--env.num-envs", str(NUM_ENVS), "--algo.num-steps", str(NUM_STEPS),
        "--budget.env-steps", str(ITERATIONS * NUM_STEPS * NUM_ENVS * world), "--budget.minutes", "10",
        "--log.root", str(root / scenario), "--log.eval-episodes", "0", "--log.video", "false",
        "--log.progress-bar", "false", "--log.tensorboard", "false"])
    envs: list[FirstObservation] = []

    def env_factory(cfg: TrainConfig, num_envs: int | None = None, seed: int | None = None):
        envs.append(FirstObservation(runner.build_env(cfg, num_envs, seed)))
        return envs[-1]

    trainer = runner.Trainer(cfg, env_factory=env_factory)
    initial = state_vector(trainer)
    assert all(torch.equal(initial, other) for other in gather(initial)), "ranks start from different weights"

    iterations, callback = (ITERATIONS if scenario == "sync" else EARLY_STOP), None
    if rank == 0 and scenario == "clock":
        runner.time = SimpleNamespace(  # rank 0's clock jumps an hour once it has done EARLY_STOP iterations
            perf_counter=time.perf_counter,
            monotonic=lambda: time.monotonic() + (3600.0 if trainer.iteration >= EARLY_STOP else 0.0))
    if rank == 0 and scenario == "callback":
        def callback(trainer: runner.Trainer, row: dict[str, float]) -> bool:
            return trainer.iteration >= EARLY_STOP
    try:
        summary = trainer.train(callback)
    finally:
        runner.time = time

    assert summary["iterations"] == iterations, (rank, summary)
    assert summary["env_steps"] == iterations * NUM_STEPS * NUM_ENVS * world, (rank, summary)
    assert (summary["run_dir"] is None) == (rank != 0), (rank, summary)
    final = state_vector(trainer)
    assert not torch.equal(final, initial), "training did not change the weights"
    assert all(torch.equal(final, other) for other in gather(final)), f"rank {rank}: ranks diverged"
    counted = NUM_ENVS * world * NUM_STEPS * iterations
    for norm in (trainer.ppo.model.actor_norm, trainer.ppo.model.critic_norm):
        assert int(norm.count) == counted, f"rank {rank}: normaliser counted {int(norm.count)}, not {counted}"
    seeds = gather(torch.tensor([envs[0].first_sum, float(trainer.ppo.generator.initial_seed())], dtype=torch.float64))
    first_sums, noise_seeds = {float(s[0]) for s in seeds}, {float(s[1]) for s in seeds}
    assert len(first_sums) == world, f"ranks reset their worlds alike: first observation sums {first_sums}"
    assert len(noise_seeds) == world, f"ranks draw the same action noise: generator seeds {noise_seeds}"
    dist.barrier()
    if rank == 0:
        print(f"passed: {scenario}: {world} ranks, {iterations} iterations, {final.numel()} identical values, "
              f"first observation sums {[round(float(s[0]), 3) for s in seeds]}", flush=True)


def check_hinf(root: Path) -> None:
    from robot_rl.disturbers.hinf import reference_oracle

    rank, world = dist.get_rank(), dist.get_world_size()
    cfg = load(TrainConfig, HINF_LAUNCH, [
        "--env.num-envs", str(NUM_ENVS), "--env.backend", "native", "--env.device", "null",
        "--algo.num-steps", str(NUM_STEPS), "--robust.hinf.start-iteration", "0",
        "--budget.env-steps", str(EARLY_STOP * NUM_STEPS * NUM_ENVS * world), "--budget.minutes", "10",
        "--log.root", str(root / "hinf"), "--log.eval-episodes", "0", "--log.video", "false",
        "--log.progress-bar", "false", "--log.tensorboard", "false"])
    trainer = runner.Trainer(cfg)
    trainer.train()
    hinf = trainer.robust.hinf
    own, own_rate = reference_oracle(hinf._terms, hinf._terminated, hinf.reference)  # this rank's last rollout
    names = sorted(hinf.oracle)
    mine = torch.tensor([own[n] for n in names], dtype=torch.float64)
    assert any(not torch.equal(mine, other) for other in gather(mine)), "the ranks' reference worlds agreed"
    shared = torch.tensor([hinf.oracle[n] for n in names] + [hinf.termination_rate, hinf.multiplier],
                          dtype=torch.float64)
    assert all(torch.equal(shared, other) for other in gather(shared)), f"rank {rank}: H∞ oracles or λ differ"
    dist.barrier()
    if rank == 0:
        print(f"passed: hinf: {world} ranks, oracle {dict(zip(names, [round(v, 4) for v in shared.tolist()]))}, "
              f"λ {hinf.multiplier:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path, help="log.root of the runs")
    parser.add_argument("scenarios", nargs="*", help=f"some of {', '.join(SCENARIOS)} (default: all)")
    args = parser.parse_args()
    if unknown := set(args.scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    # A short timeout turns a collective mismatch into an error instead of a 30-minute hang.
    dist.init_process_group("gloo", timeout=timedelta(seconds=30))
    for scenario in args.scenarios or SCENARIOS:
        check_hinf(args.root) if scenario == "hinf" else check(scenario, args.root)
    dist.destroy_process_group()
    # Every check has passed by now. Leave without interpreter teardown: on a loaded machine
    # gloo's worker threads have aborted the process there after all checks printed "passed"
    # ("terminate called without an active exception", SIGABRT; cf. pytorch/pytorch#179291).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
