"""One world of a :class:`~robot_rl.envs.vec_env.VecEnv` as a ``gymnasium.Env``.

    env = GymEnv(robot_rl.envs.make("panda_reach"))
    obs, info = env.reset(seed=0)
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces

from robot_rl.envs.vec_env import VecEnv


class GymEnv(gymnasium.Env):
    """Observations are a ``Dict`` of the float groups (``"policy"``, ``"privileged"``) and,
    when the environment renders cameras, ``"rgb"``. When an episode ends, ``step`` returns
    the last observation of that episode; the wrapped world has already started the next one,
    which ``reset`` replaces."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, env: VecEnv, render_mode: str | None = None) -> None:
        if env.num_envs != 1:
            raise ValueError(f"GymEnv wraps one world; got num_envs={env.num_envs} (make the env with num_envs=1)")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.env = env
        self.render_mode = render_mode
        groups: dict[str, spaces.Space] = {
            group: spaces.Box(-np.inf, np.inf, (dim,), np.float32) for group, dim in env.obs_dims.items()
        }
        cameras = getattr(env, "image_cameras", ())
        if cameras:
            h, w = env.image_size
            groups["rgb"] = spaces.Dict({c: spaces.Box(0, 255, (h, w, 3), np.uint8) for c in cameras})
        self.observation_space = spaces.Dict(groups)
        low, high = env.action_low.cpu().numpy(), env.action_high.cpu().numpy()
        self.action_space = spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        control_dt = getattr(env, "control_dt", None)
        if control_dt:
            self.metadata = {**self.metadata, "render_fps": round(1 / control_dt)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        obs, _ = self.env.reset(seed=seed)
        return _first(obs), {}

    def step(self, action):
        actions = torch.as_tensor(np.asarray(action, dtype=np.float32), device=self.env.device).reshape(1, -1)
        obs, reward, terminated, truncated, info = self.env.step(actions)
        done = bool(terminated[0] or truncated[0])
        step_info = {
            "success": bool(info["success"][0]),
            "progress": float(info["progress"][0]),
            "reward_terms": {name: float(value[0]) for name, value in info["reward_terms"].items()},
        }
        return _first(info["final_obs"] if done else obs), float(reward[0]), bool(terminated[0]), \
            bool(truncated[0]), step_info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.env.render()[0].cpu().numpy()

    def close(self) -> None:
        self.env.close()


def _first(obs: dict[str, Any]) -> dict[str, Any]:
    """World 0 of a batched observation, as numpy."""
    return {key: _first(value) if isinstance(value, dict) else value[0].cpu().numpy() for key, value in obs.items()}
