"""A point mass in the plane behind the VecEnv protocol, with a backend-like ``sim`` that
takes wrenches: small enough for learning tests of the disturbers in seconds."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch


class PointSim:
    """What the disturbers use of a backend: ``layout.bodies`` and ``apply_wrench``."""

    def __init__(self, num_envs: int) -> None:
        self.layout = SimpleNamespace(bodies={"world": 0, "point": 1})
        self.force = torch.zeros(num_envs, 2)

    def apply_wrench(self, body: str, wrench: torch.Tensor) -> None:
        assert body == "point"
        self.force = wrench[:, :2].clone()


class PointMass:
    """Drive a 1 kg point to a target: action float[N, 2] in [-1, 1] is a force of up to
    ``gain`` newtons; external wrenches add theirs. Reward terms: ``distance`` (−‖p − g‖) and
    ``success`` (within 0.1 m). Terminated beyond 3 m (a "fall"); 40-step episodes."""

    def __init__(self, num_envs: int = 64, gain: float = 2.0, target_radius: float = 1.0, seed: int = 0) -> None:
        self.num_envs, self.device, self.action_dim = num_envs, torch.device("cpu"), 2
        self.obs_dims = {"policy": 4, "privileged": 6}
        self.action_low, self.action_high = -torch.ones(2), torch.ones(2)
        self.goal, self.max_episode_steps, self.control_dt = "reach the target", 40, 0.1
        self.gain, self.target_radius = gain, target_radius
        self.sim = PointSim(num_envs)
        self.generator = torch.Generator().manual_seed(seed)
        self.pos, self.vel = torch.zeros(num_envs, 2), torch.zeros(num_envs, 2)
        self.target, self.steps = torch.zeros(num_envs, 2), torch.zeros(num_envs, dtype=torch.long)

    @staticmethod
    def reward_term_names() -> tuple[str, ...]:
        return ("distance", "success")

    def _reset(self, ids: torch.Tensor) -> None:
        n = len(ids)
        angle = 2 * torch.pi * torch.rand(n, generator=self.generator)
        self.target[ids] = self.target_radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
        self.pos[ids] = 0.1 * (2 * torch.rand(n, 2, generator=self.generator) - 1)
        self.vel[ids], self.steps[ids] = 0.0, 0

    def _obs(self) -> dict[str, torch.Tensor]:
        policy = torch.cat([self.target - self.pos, self.vel], dim=1)
        return {"policy": policy, "privileged": torch.cat([policy, self.sim.force], dim=1)}

    def reset(self, seed: int | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        if seed is not None:
            self.generator.manual_seed(seed)
        self._reset(torch.arange(self.num_envs))
        return self._obs(), {}

    def step(self, actions: torch.Tensor):
        force = self.gain * actions.clamp(-1, 1) + self.sim.force
        self.vel = 0.8 * self.vel + self.control_dt * force
        self.pos = self.pos + self.control_dt * self.vel
        self.steps += 1
        distance = torch.linalg.norm(self.pos - self.target, dim=1)
        success = distance < 0.1
        terms = {"distance": -distance, "success": success.float()}
        reward = terms["distance"] + terms["success"]
        terminated = torch.linalg.norm(self.pos, dim=1) > 3.0
        truncated = (self.steps >= self.max_episode_steps) & ~terminated
        obs = self._obs()
        info = {"reward_terms": terms, "success": success, "final_obs": obs}
        done = terminated | truncated
        if done.any():
            self._reset(done.nonzero().squeeze(1))
            obs = self._obs()
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        pass
