"""The batched environment: a task joined to a physics backend."""

from __future__ import annotations

from typing import Any

import torch

from robot_rl.envs.backend import RGBD, Backend, renders_depth
from robot_rl.envs.task import Task, uniform
from robot_rl.envs.vec_env import Obs, check_actions


class SimVecEnv:
    """N worlds of one task on one backend, with automatic reset of finished worlds.

    Implements :class:`~robot_rl.envs.vec_env.VecEnv`. Randomness (reset states, dynamics,
    observation noise, action delays) comes from one generator seeded by ``reset(seed)``, and
    the physics is deterministic, so a seed fixes the whole rollout for given actions.
    """

    def __init__(
        self,
        task: Task,
        backend: Backend,
        seed: int = 0,
        image_cameras: tuple[str, ...] = (),
        image_size: tuple[int, int] = (84, 84),
        image_antialias: bool = True,
    ) -> None:
        for camera in image_cameras:
            if camera not in backend.layout.cameras:
                raise ValueError(
                    f"camera {camera!r} is not in the {task.name} scene; cameras: {', '.join(backend.layout.cameras)}"
                )
        self.task = task
        self.sim = backend
        self.num_envs = backend.num_envs
        self.device = backend.device
        self.action_dim = task.action_dim
        self.action_low = -torch.ones(self.action_dim, device=self.device)
        self.action_high = torch.ones(self.action_dim, device=self.device)
        self.goal = task.config.goal
        self.image_cameras = tuple(image_cameras)
        self.image_size = image_size
        self.image_antialias = image_antialias
        self.control_dt = task.config.control_dt
        """Seconds between actions."""
        self.substeps = max(1, round(self.control_dt / backend.layout.timestep))
        self.max_episode_steps = task.max_episode_steps
        self.randomization = task.config.randomization
        self._weights = dict(task.config.reward_weights)
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(seed)
        n = self.num_envs
        self.episode_steps = torch.zeros(n, dtype=torch.long, device=self.device)
        self._delays = torch.zeros(n, dtype=torch.long, device=self.device)
        self._action_history = torch.zeros(
            self.randomization.max_action_delay + 1, n, self.action_dim, device=self.device
        )
        self._all_ids = torch.arange(n, device=self.device)
        with torch.no_grad():
            sample = task.observe(backend)
        self.obs_dims = {group: int(value.shape[1]) for group, value in sample.items()}

    # -- VecEnv ------------------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> tuple[Obs, dict[str, Any]]:
        if seed is not None:
            self._generator.manual_seed(seed)
        self._reset_worlds(self._all_ids)
        return self._observe(), {}

    @torch.no_grad()
    def step(self, actions: torch.Tensor) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        actions = check_actions(actions, self.num_envs, self.action_dim).to(self.device)
        actions = torch.clamp(actions, self.action_low, self.action_high)
        applied = self._delay(actions)
        task, sim = self.task, self.sim
        task.prev_actions.copy_(task.actions)
        task.actions.copy_(applied)
        sim.step(task.action_to_ctrl(applied, sim), self.substeps)
        self.episode_steps += 1

        terms = {name: self._weights[name] * value for name, value in task.reward_terms(sim).items()
                 if self._weights.get(name, 0.0) != 0.0}
        reward = torch.zeros(self.num_envs, device=self.device)
        for value in terms.values():
            reward += value
        terminated = task.terminated(sim)
        truncated = (self.episode_steps >= self.max_episode_steps) & ~terminated
        info: dict[str, Any] = {
            "reward_terms": terms,
            "success": task.success(sim),
            "progress": task.progress(sim),
            "episode_steps": self.episode_steps.clone(),
        }
        obs = self._observe()
        info["final_obs"] = obs
        done = terminated | truncated
        if bool(done.any()):
            done_ids = done.nonzero().squeeze(1)
            self._reset_worlds(done_ids)
            obs = self._observe(render=False)
            if self.image_cameras:
                obs["rgb"] = {}
                for camera, images in info["final_obs"]["rgb"].items():
                    images = images.clone()
                    images[done_ids] = self._render_images(camera, done_ids)
                    obs["rgb"][camera] = images
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self.sim.close()

    # -- extras --------------------------------------------------------------------------------

    def render(self, camera: str | None = None, height: int = 240, width: int = 320,
               env_ids: torch.Tensor | None = None) -> torch.Tensor:
        """uint8[n, H, W, 3] from ``camera`` (the task's first camera by default)."""
        return self.sim.render(camera or self.task.cameras[0], height, width, env_ids)

    def render_rgbd(self, camera: str, height: int, width: int, env_ids: torch.Tensor | None = None) -> RGBD:
        """RGB-D images of ``camera`` in worlds ``env_ids`` (all when None), as the physics is now:
        see :class:`~robot_rl.envs.backend.DepthBackend`."""
        if not renders_depth(self.sim):
            raise ValueError(f"the {type(self.sim).__name__} backend renders no depth images; "
                             "use the native backend (env.backend: native)")
        if camera not in self.sim.layout.cameras:
            raise ValueError(f"camera {camera!r} is not in the {self.task.name} scene; "
                             f"cameras: {', '.join(self.sim.layout.cameras)}")
        return self.sim.render_rgbd(camera, height, width, env_ids)

    def _render_images(self, camera: str, env_ids: torch.Tensor | None = None) -> torch.Tensor:
        """uint8[n, H, W, 3] observation images of ``camera`` (``obs["rgb"]``)."""
        h, w = self.image_size
        return self.sim.render(camera, h, w, env_ids, antialias=self.image_antialias)

    def _delay(self, actions: torch.Tensor) -> torch.Tensor:
        if self._action_history.shape[0] == 1:
            return actions
        self._action_history = torch.roll(self._action_history, 1, dims=0)
        self._action_history[0] = actions
        return self._action_history[self._delays, self._all_ids]

    def _reset_worlds(self, env_ids: torch.Tensor) -> None:
        n, gen, dev = len(env_ids), self._generator, self.device
        state = self.task.reset(self.sim, env_ids, gen)
        self.sim.set_state(env_ids, state.qpos, state.qvel, state.mocap_pos)
        rand = self.randomization
        if rand.changes_dynamics:
            scales = torch.stack([uniform(*rand.mass_scale, (n,), gen, dev),
                                  uniform(*rand.friction_scale, (n,), gen, dev),
                                  uniform(*rand.gain_scale, (n,), gen, dev)], dim=1)
            self.sim.set_dynamics(env_ids, scales[:, 0], scales[:, 1], scales[:, 2], self.task.randomized_bodies)
            self.task.dynamics[env_ids] = scales
        if rand.max_action_delay > 0:
            self._delays[env_ids] = torch.randint(0, rand.max_action_delay + 1, (n,), generator=gen, device=dev)
            self._action_history[:, env_ids] = 0.0
        self.task.actions[env_ids] = 0.0
        self.task.prev_actions[env_ids] = 0.0
        self.episode_steps[env_ids] = 0
        self.task.after_reset(self.sim, env_ids)

    def _observe(self, render: bool = True) -> Obs:
        obs: Obs = dict(self.task.observe(self.sim))
        std = self.randomization.obs_noise_std
        if std > 0:
            policy = obs["policy"]
            noise = torch.randn(policy.shape, generator=self._generator, device=self.device)
            obs["policy"] = policy + std * noise
        if render and self.image_cameras:
            obs["rgb"] = {camera: self._render_images(camera) for camera in self.image_cameras}
        return obs
