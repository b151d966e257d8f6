"""SAC / RLPD update cost on the CPU: milliseconds per critic update, side by side.

RLPD's critic update runs E LayerNorm critics on the batch and, for the target, only the random
subset of members whose minimum it takes (``Critic(..., members)``). This script times, in one
run and on the same replay buffer:

- the target forward pass over the whole ensemble vs over the drawn subset (what the subset saves);
- whole ``SAC.update`` calls (``utd`` critic updates + one actor update) per critic update, for
  plain SAC (2 critics, no LayerNorm) and RLPD (10 LayerNorm critics), with 1 and with 2 torch
  threads, printed as ratios.

    python benchmarks/sac_update.py
    python benchmarks/sac_update.py --hidden 256 256 --batch-size 256 --obs-dim 42 --repeats 9
    python benchmarks/sac_update.py --repeats 1 --hidden 32 32    # seconds: checks the script runs

Numbers are medians over ``--repeats`` timed calls after a warm-up; the load average is printed
before and after, since other processes on a shared machine skew wall-clock times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from robot_rl.algorithms.replay import ReplayBuffer
from robot_rl.algorithms.sac import SAC, subset_members
from robot_rl.configs.offline import NetConfig, SACConfig

VARIANTS = {"SAC": SACConfig(ensemble=2, subset=2, layer_norm=False, utd=10),
            "RLPD": SACConfig(ensemble=10, subset=2, layer_norm=True, utd=10)}


def median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def filled_buffer(obs_dim: int, action_dim: int, n: int = 5000) -> ReplayBuffer:
    g = torch.Generator().manual_seed(0)
    buffer = ReplayBuffer(obs_dim, action_dim, n)
    buffer.add(torch.randn(n, obs_dim, generator=g), torch.rand(n, action_dim, generator=g) * 2 - 1,
               torch.randn(n, generator=g), torch.randn(n, obs_dim, generator=g), torch.zeros(n))
    return buffer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--obs-dim", type=int, default=42, help="panda_push's policy observation has 42 values")
    parser.add_argument("--action-dim", type=int, default=8)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    net = NetConfig(hidden=tuple(args.hidden), lr=3e-4, batch_size=args.batch_size)
    buffer = filled_buffer(args.obs_dim, args.action_dim)
    print(f"load average before: {os.getloadavg()[0]:.2f}; obs {args.obs_dim}, actions {args.action_dim}, "
          f"hidden {args.hidden}, batch {args.batch_size}, {args.repeats} repeats")

    torch.set_num_threads(1)
    rlpd = SAC(args.obs_dim, args.action_dim, net, VARIANTS["RLPD"], generator=torch.Generator().manual_seed(0))
    batch = buffer.sample(args.batch_size, rlpd.generator)
    with torch.no_grad():
        action = rlpd.actor.sample(batch.next_obs, rlpd.generator)[0]
        members = subset_members(10, 2, rlpd.generator)
        whole = median_seconds(lambda: rlpd.critic_target(batch.next_obs, action), args.repeats * 10)
        subset = median_seconds(lambda: rlpd.critic_target(batch.next_obs, action, members), args.repeats * 10)
    print(f"\nRLPD target forward, 1 thread: all 10 members {whole * 1e3:.2f} ms, the drawn 2 {subset * 1e3:.2f} ms "
          f"-> {whole / subset:.1f}x less")

    print("\n| update | threads | ms per critic update | vs 1 thread |\n|---|---|---|---|")
    for name, cfg in VARIANTS.items():
        one = None
        for threads in (1, 2):
            torch.set_num_threads(threads)
            sac = SAC(args.obs_dim, args.action_dim, net, cfg, generator=torch.Generator().manual_seed(0))
            per_critic_update = median_seconds(lambda: sac.update(buffer), args.repeats) / cfg.utd  # noqa: B023
            one = one or per_critic_update
            print(f"| {name} (E={cfg.ensemble}) | {threads} | {per_critic_update * 1e3:.2f} | "
                  f"{one / per_critic_update:.2f}x |")
    torch.set_num_threads(1)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
