"""A Gymnasium vector environment as a :class:`~robot_rl.envs.vec_env.VecEnv`, so our PPO can be
checked on the standard benchmarks (HalfCheetah-v5, Hopper-v5, ...) against published results.

    env = GymVecEnv.make("HalfCheetah-v5", num_envs=8, seed=0)
    obs, _ = env.reset()                              # obs["policy"]: float32[8, 17]
    obs, reward, terminated, truncated, info = env.step(torch.zeros(8, env.action_dim))

In a launch file the task ``gym:<EnvId>`` builds one of these (see ``training/runner.py``).
Gymnasium's MuJoCo environments import ``mujoco`` only when made and need
``pip install 'gymnasium[mujoco]'`` (``mujoco`` and ``imageio``).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from robot_rl.envs.vec_env import Obs, check_actions

PREFIX = "gym:"
"""Launch files name a Gymnasium environment as ``task: gym:<EnvId>``."""


def gym_id(task: str) -> str | None:
    """``"HalfCheetah-v5"`` for ``task="gym:HalfCheetah-v5"``; None for a task of our own."""
    return task.removeprefix(PREFIX) if task.startswith(PREFIX) else None


class GymVecEnv:
    """N Gymnasium worlds behind the ``VecEnv`` protocol, on the CPU.

    Both observation groups, ``"policy"`` and ``"privileged"``, are the flat observation
    float32[N, D] (one tensor, shared). Actions float32[N, A] in [-1, 1] are mapped linearly
    onto the action space's bounds. The wrapped env must reset finished worlds in the same
    step (``AutoresetMode.SAME_STEP``), which is what keeps the last observation of each
    episode (``info["final_obs"]``) for bootstrapping time-outs.
    """

    def __init__(self, env: gymnasium.vector.VectorEnv, seed: int | None = None) -> None:
        name = env.spec.id if env.spec else type(env).__name__
        mode = env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(f"{name}: GymVecEnv needs autoreset_mode=AutoresetMode.SAME_STEP (got {mode}); "
                             "make it with vector_kwargs={'autoreset_mode': AutoresetMode.SAME_STEP}")
        act, obs = env.single_action_space, env.single_observation_space
        if not isinstance(act, spaces.Box) or len(act.shape) != 1:
            raise ValueError(f"{name}: GymVecEnv needs a flat continuous (Box) action space, got {act}")
        if not (np.isfinite(act.low).all() and np.isfinite(act.high).all()):
            raise ValueError(f"{name}: GymVecEnv rescales actions onto finite bounds, "
                             f"got low={act.low}, high={act.high}")
        if not isinstance(obs, spaces.Box) or len(obs.shape) != 1:
            raise ValueError(f"{name}: GymVecEnv needs a flat Box observation space, got {obs} "
                             "(flatten it, e.g. with gymnasium.wrappers.FlattenObservation)")
        self.env = env
        self.num_envs = env.num_envs
        self.device = torch.device("cpu")
        self.action_dim = int(act.shape[0])
        self.obs_dims = {"policy": int(obs.shape[0]), "privileged": int(obs.shape[0])}
        self.action_low = -torch.ones(self.action_dim)
        self.action_high = torch.ones(self.action_dim)
        self.goal = ""
        self._low, self._high, self._dtype = act.low.astype(np.float64), act.high.astype(np.float64), act.dtype
        self._seed = seed
        if env.spec is not None and env.spec.max_episode_steps is not None:
            self.max_episode_steps = env.spec.max_episode_steps
        try:  # seconds between actions; not every env says, and consumers fall back to a default
            self.control_dt = float(env.get_attr("dt")[0])
        except AttributeError:
            pass

    @classmethod
    def make(cls, env_id: str, num_envs: int = 1, seed: int | None = None, vectorization_mode: str = "sync",
             **kwargs: Any) -> GymVecEnv:
        """``num_envs`` copies of the registered Gymnasium env ``env_id``; ``kwargs`` go to its
        constructor (e.g. ``ctrl_cost_weight`` of the MuJoCo envs)."""
        try:
            env = gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode=vectorization_mode,
                                     vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **kwargs)
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError(f"{env_id} needs {error.name!r}; for the MuJoCo envs install it with: "
                                      "pip install 'gymnasium[mujoco]'", name=error.name) from error
        return cls(env, seed)

    def reset(self, seed: int | None = None) -> tuple[Obs, dict[str, Any]]:
        """Reset every world; world i is seeded with ``seed + i`` (the construction seed when None)."""
        seed = self._seed if seed is None else seed
        self._seed = None  # later unseeded resets continue the worlds' random streams
        obs, _ = self.env.reset(seed=seed)
        return self._obs(obs), {}

    @torch.no_grad()
    def step(self, actions: torch.Tensor) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        unit = check_actions(actions, self.num_envs, self.action_dim).clamp(-1.0, 1.0).cpu().double().numpy()
        scaled = self._low + (unit + 1.0) * 0.5 * (self._high - self._low)
        obs, reward, terminated, truncated, info = self.env.step(scaled.astype(self._dtype))
        done = terminated | truncated
        final = obs
        if done.any():
            final = obs.copy()
            final[done] = np.stack(info["final_obs"][done])
        return (self._obs(obs), torch.tensor(reward, dtype=torch.float32), torch.tensor(terminated),
                torch.tensor(truncated), {"final_obs": self._obs(final)})

    def close(self) -> None:
        self.env.close()

    @staticmethod
    def _obs(obs: np.ndarray) -> Obs:
        flat = torch.tensor(obs, dtype=torch.float32)  # a copy: gymnasium may reuse its buffers
        return {"policy": flat, "privileged": flat}
