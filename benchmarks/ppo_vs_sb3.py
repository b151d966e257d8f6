"""Our PPO against Stable-Baselines3's PPO on Gymnasium's HalfCheetah-v5: same settings, budget and seeds.

Both use the hyper-parameters of ``launch/train/halfcheetah_gym.yaml`` (SB3 is given the same
ones: 8 worlds x 256 steps per update, 10 epochs of 64-sample mini-batches, lr 3e-4 fixed,
[64, 64] tanh MLPs, observations normalised by running statistics clipped at 10 (SB3:
``VecNormalize``), rewards not normalised, time-outs bootstrapped). They run one after the
other in this process with ``torch.set_num_threads(1)``, and each trained policy is scored
by the same protocol: the mean action on 10 fresh episodes with the same seeds, through the
same adapter, plus the mean return of the last 10 training episodes (stochastic policy, what
CleanRL reports). Wall-clock covers training only.

    pip install 'robot-rl[bench]'
    python benchmarks/ppo_vs_sb3.py                                   # about 10 minutes on 2 shared cores
    python benchmarks/ppo_vs_sb3.py --env-steps 1000000 --seeds 0 1 2

Reference: CleanRL's PPO reaches 1443 ± 46 on HalfCheetah at 1M steps (with reward
normalisation and lr annealing, which neither side here uses).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from robot_rl.configs import TrainConfig, load
from robot_rl.envs.gym_vector import PREFIX, GymVecEnv
from robot_rl.training.evaluate import Policy, evaluate
from robot_rl.training.runner import Trainer, deterministic_policy

LAUNCH = Path(__file__).resolve().parents[1] / "launch" / "train" / "halfcheetah_gym.yaml"


class ReturnLog:
    """A VecEnv that passes everything through and keeps the return of every finished episode."""

    def __init__(self, env: GymVecEnv) -> None:
        self.env = env
        self.returns: list[float] = []
        self._running = torch.zeros(env.num_envs)

    def __getattr__(self, name: str):
        return getattr(self.env, name)

    def reset(self, seed: int | None = None):
        self._running.zero_()
        return self.env.reset(seed)

    def step(self, actions: torch.Tensor):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        self._running += reward
        done = terminated | truncated
        self.returns += self._running[done].tolist()
        self._running[done] = 0.0
        return obs, reward, terminated, truncated, info


def train_ours(cfg: TrainConfig, env_id: str) -> tuple[Policy, float, list[float]]:
    """The deterministic policy, training seconds and the training episodes' returns."""
    env = ReturnLog(GymVecEnv.make(env_id, num_envs=cfg.env.num_envs, seed=cfg.seed))
    trainer = Trainer(cfg, env=env)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    env.close()
    return deterministic_policy(trainer.ppo.model, cfg.algo.actor_obs), seconds, env.returns


def train_sb3(cfg: TrainConfig, env_id: str) -> tuple[Policy, float, list[float]]:
    """SB3's PPO configured like ``cfg``; returns what :func:`train_ours` does."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import VecNormalize

    from robot_rl.algorithms.networks import ACTIVATIONS

    a = cfg.algo
    if a.schedule != "fixed":
        raise ValueError("SB3 has no adaptive-KL learning rate; benchmark with algo.schedule: fixed")
    venv = make_vec_env(env_id, n_envs=cfg.env.num_envs, seed=cfg.seed)  # world i seeded seed + i, as ours
    venv = VecNormalize(venv, norm_obs=a.normalize_obs, norm_reward=False, clip_obs=10.0, gamma=a.gamma)
    model = PPO("MlpPolicy", venv, learning_rate=a.lr, n_steps=a.num_steps,
                batch_size=a.num_steps * cfg.env.num_envs // a.num_minibatches, n_epochs=a.num_epochs,
                gamma=a.gamma, gae_lambda=a.lam, clip_range=a.clip, clip_range_vf=a.clip if a.clip_value else None,
                ent_coef=a.entropy_coef, vf_coef=a.value_coef, max_grad_norm=a.max_grad_norm, seed=cfg.seed,
                device="cpu", policy_kwargs={"net_arch": {"pi": list(a.actor_hidden), "vf": list(a.critic_hidden)},
                                             "activation_fn": ACTIVATIONS[a.activation],
                                             "log_std_init": math.log(a.init_noise_std)})
    model.set_logger(Logger(folder=None, output_formats=[]))  # its default makes a /tmp/SB3-<date> directory
    start = time.perf_counter()
    model.learn(total_timesteps=cfg.budget.env_steps)
    seconds = time.perf_counter() - start
    returns = [float(episode["r"]) for episode in model.ep_info_buffer]
    low, high = venv.action_space.low, venv.action_space.high

    def act(obs) -> torch.Tensor:
        x = obs[a.actor_obs].numpy()
        actions, _ = model.predict(venv.normalize_obs(x) if a.normalize_obs else x, deterministic=True)
        return torch.as_tensor(2.0 * (actions - low) / (high - low) - 1.0, dtype=torch.float32)  # back to [-1, 1]

    venv.close()
    return act, seconds, returns


def score(policy: Policy, env_id: str, episodes: int, seed: int) -> float:
    """Mean return of ``policy`` over ``episodes`` fresh episodes seeded ``seed``, ``seed + 1``, ..."""
    env = GymVecEnv.make(env_id, num_envs=episodes)
    result = evaluate(policy, env, episodes, getattr(env, "max_episode_steps", 1000) + 1, seed=seed)
    env.close()
    return result.mean_return


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):8.1f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:6.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-steps", type=int, default=400_000, help="training budget of each run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--env", default="HalfCheetah-v5", help="Gymnasium env id (Box actions, flat observations)")
    parser.add_argument("--launch", type=Path, default=LAUNCH, help="our settings, also given to SB3")
    parser.add_argument("--eval-episodes", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = load(TrainConfig, args.launch)
    root = tempfile.mkdtemp(prefix="ppo_vs_sb3_")
    print(f"{args.env}: {args.env_steps} env steps per run, seeds {args.seeds}, settings of {args.launch.name}; "
          f"our runs in {root}")
    results: dict[str, dict[str, list[float]]] = {"ours": {}, "sb3": {}}
    for seed in args.seeds:
        cfg = dataclasses.replace(
            base, seed=seed, env=dataclasses.replace(base.env, task=PREFIX + args.env),
            budget=dataclasses.replace(base.budget, env_steps=args.env_steps, minutes=None),
            log=dataclasses.replace(base.log, root=root, eval_episodes=0, video=False, tensorboard=False,
                                    progress_bar=False))
        for name, train in (("ours", train_ours), ("sb3", train_sb3)):
            torch.manual_seed(seed)
            np.random.seed(seed)
            policy, seconds, returns = train(cfg, args.env)
            row = {"eval": score(policy, args.env, args.eval_episodes, seed=10_000 + seed),
                   "train": statistics.mean(returns[-10:]) if returns else math.nan, "seconds": seconds}
            for key, value in row.items():
                results[name].setdefault(key, []).append(value)
            print(f"  seed {seed} {name:4s}: eval return {row['eval']:8.1f}, last-10 training return "
                  f"{row['train']:8.1f}, {seconds:6.1f} s ({args.env_steps / seconds:5.0f} steps/s)", flush=True)
    print(f"\nover {len(args.seeds)} seed(s), {args.env_steps} env steps each:")
    print(f"{'':5s} {'eval return (mean action)':>26s} {'last-10 training return':>24s} {'wall-clock s':>18s}")
    for name in ("ours", "sb3"):
        r = results[name]
        print(f"{name:5s} {mean_std(r['eval']):>26s} {mean_std(r['train']):>24s} {mean_std(r['seconds']):>18s}")
    ratios = []
    for key, label in (("eval", "eval return"), ("train", "training return"), ("seconds", "wall-clock")):
        ours, sb3 = statistics.mean(results["ours"][key]), statistics.mean(results["sb3"][key])
        ratios.append(f"{label} {ours / sb3:.2f}" if ours > 0 and sb3 > 0 else f"{label} n/a (a mean <= 0)")
    print("ours/SB3: " + ", ".join(ratios))


if __name__ == "__main__":
    main()
