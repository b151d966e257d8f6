"""One generic Isaac Lab ``DirectRLEnv`` for every task of :mod:`robot_rl_sim.tasks`.

The environment builds the task's MJCF scene as USD (converted once, cached), steps it with
Isaac Lab, and calls the task's own torch functions for actions, observations, reward terms,
success, progress and termination through :class:`~robot_rl_sim.isaaclab.backend.IsaacLabBackend`,
the same code the MuJoCo backends run::

    import gymnasium as gym
    import robot_rl_sim.isaaclab  # registers RobotRL-<Task>-v0

    env = gym.make("RobotRL-PandaReach-v0", num_envs=64, device="cpu")
    obs, _ = env.reset()          # {"policy": [64, 32], "critic": [64, 39]}

Observation groups: ``"policy"`` is the task's policy group, ``"critic"`` its privileged group
(Isaac Lab's name for what the critic reads). ``extras["log"]`` carries each weighted reward
term, the success rate and the mean progress; ``extras["success"]`` and ``extras["progress"]``
the per-world values.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import torch
from isaaclab.envs import DirectRLEnv, DirectRLEnvCfg
from isaaclab.scene import InteractiveSceneCfg
from isaaclab.sim import SimulationCfg
from isaaclab.utils import configclass

from robot_rl.envs.make import task_class, with_overrides
from robot_rl.envs.task import Randomization, Task, TaskConfig
from robot_rl_sim.isaaclab import require_isaaclab
from robot_rl_sim.isaaclab.backend import IsaacLabBackend, default_device, prepare
from robot_rl_sim.isaaclab.config import scene_cfg, simulation_cfg, use_servo_target_mode
from robot_rl_sim.mjcf import build_layout, load_model


@configclass
class RobotRLEnvCfg(DirectRLEnvCfg):
    """A task of ours as an Isaac Lab environment. Per-task subclasses below set ``task`` and
    fill the simulation, spaces, decimation and episode length from the task and its MJCF."""

    task: str = ""
    """Registered task name (``robot-rl tasks`` lists them)."""
    task_overrides: dict = {}
    """Fields of the task's config to replace (as ``robot_rl.envs.make(overrides=...)``)."""
    usd_cache_dir: str | None = None
    """Where converted USD files are kept (default ``~/.cache/robot_rl/usd``)."""
    decimation: int = 1
    episode_length_s: float = 5.0
    action_space: int = 1
    observation_space: int = 1
    state_space: int = 0
    sim: SimulationCfg = SimulationCfg()
    scene: InteractiveSceneCfg = InteractiveSceneCfg(num_envs=64, env_spacing=3.0, replicate_physics=True)
    seed: int | None = 0

    def __post_init__(self) -> None:
        if not self.task:
            return
        cls = task_class(self.task)
        config = task_config(cls, self.task_overrides)
        model = load_model(cls.scene)
        self.sim = simulation_cfg(model, default_device(None))
        self.decimation = max(1, round(config.control_dt / model.opt.timestep))
        self.sim.render_interval = self.decimation
        self.episode_length_s = config.episode_length_s
        self.action_space = cls.action_dim
        dims = observation_dims(cls, config, model)
        self.observation_space, self.state_space = dims["policy"], dims["privileged"]


def task_config(cls: type[Task], overrides: dict[str, Any]) -> TaskConfig:
    config = with_overrides(cls.config_class(), overrides, cls.name)
    if config.randomization != Randomization():
        raise ValueError(f"{cls.name}: the Isaac Lab environment does not apply our Randomization; use "
                         "robot_rl.envs.make(task, backend='isaaclab') or Isaac Lab event terms")
    return config


def observation_dims(cls: type[Task], config: TaskConfig, model) -> dict[str, int]:
    """Width of each observation group, from the task's observe() on an all-zero state (the
    functions depend on sizes only through the model's layout)."""
    layout = build_layout(model)
    device = torch.device("cpu")
    task = cls(config, 1, device, layout)
    state = SimpleNamespace(qpos=torch.zeros(1, model.nq), qvel=torch.zeros(1, model.nv),
                            sensordata=torch.zeros(1, model.nsensordata), mocap_pos=torch.zeros(1, model.nmocap, 3),
                            layout=layout, num_envs=1, device=device)
    state.sensor = lambda name: state.sensordata[:, layout.sensor(name)]
    with torch.no_grad():
        return {group: int(value.shape[1]) for group, value in task.observe(state).items()}


class RobotRLEnv(DirectRLEnv):
    """Isaac Lab environment running one of our tasks (see the module docstring)."""

    cfg: RobotRLEnvCfg

    def __init__(self, cfg: RobotRLEnvCfg | None = None, render_mode: str | None = None, *,
                 num_envs: int | None = None, device: str | None = None, **kwargs: Any) -> None:
        """``cfg`` defaults to the registered task's config (``env_cfg_entry_point``);
        ``num_envs`` and ``device`` override its scene size and simulation device."""
        require_isaaclab()
        if cfg is None:
            module, name = kwargs["env_cfg_entry_point"].split(":")
            cfg = getattr(importlib.import_module(module), name)()
        if num_envs is not None:
            cfg.scene.num_envs = num_envs
        if device is not None:
            cfg.sim.device = default_device(device)
        cls = task_class(cfg.task)
        self._model, self._plan, self.usd = prepare(cls.scene, cfg.usd_cache_dir)
        entities = scene_cfg(self._model, self._plan, str(self.usd.path), cfg.scene.num_envs, cfg.scene.env_spacing)
        for key in ("num_envs", "env_spacing", "replicate_physics"):
            setattr(entities, key, getattr(cfg.scene, key))
        cfg.scene = entities
        super().__init__(cfg, render_mode, **kwargs)
        self.backend = IsaacLabBackend.attach(self._model, self._plan, self.sim, self.scene)
        self.task = cls(task_config(cls, cfg.task_overrides), self.num_envs, self.device, self.backend.layout)
        self._weights = dict(self.task.config.reward_weights)
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(cfg.seed or 0)
        self._ctrl = torch.zeros(self.num_envs, self._model.nu, device=self.device)

    @property
    def max_episode_length(self) -> int:
        """The task's episode length in control steps (robust to dt * decimation round-off)."""
        return self.task.max_episode_steps if hasattr(self, "task") else super().max_episode_length

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset every world; ``seed`` also reseeds the task's reset randomness."""
        if seed is not None:
            self._generator.manual_seed(seed)
        return super().reset(seed=seed, options=options)

    def _setup_scene(self) -> None:
        use_servo_target_mode(self.sim, self._plan)

    def _pre_physics_step(self, actions: torch.Tensor) -> None:
        actions = torch.clamp(actions.to(self.device, torch.float32), -1.0, 1.0)
        self.task.prev_actions.copy_(self.task.actions)
        self.task.actions.copy_(actions)
        self._ctrl = self.task.action_to_ctrl(actions, self.backend)

    def _apply_action(self) -> None:
        self.backend.apply_ctrl(self._ctrl)

    def _get_dones(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.backend.refresh()
        terminated = self.task.terminated(self.backend)
        truncated = (self.episode_length_buf >= self.max_episode_length) & ~terminated
        return terminated, truncated

    def _get_rewards(self) -> torch.Tensor:
        terms = {name: self._weights[name] * value for name, value in self.task.reward_terms(self.backend).items()
                 if self._weights.get(name, 0.0) != 0.0}
        reward = torch.zeros(self.num_envs, device=self.device)
        for value in terms.values():
            reward += value
        success, progress = self.task.success(self.backend), self.task.progress(self.backend)
        log = self.extras.setdefault("log", {})
        log.update({f"reward/{name}": value.mean() for name, value in terms.items()})
        log["success_rate"] = success.float().mean()
        log["progress"] = progress.mean()
        self.extras["success"], self.extras["progress"] = success, progress
        return reward

    def _reset_idx(self, env_ids: Sequence[int] | torch.Tensor | None) -> None:
        ids = torch.arange(self.num_envs, device=self.device) if env_ids is None else \
            torch.as_tensor(env_ids, device=self.device).long()
        super()._reset_idx(ids)
        state = self.task.reset(self.backend, ids, self._generator)
        self.backend.set_state(ids, state.qpos, state.qvel, state.mocap_pos)
        self.task.actions[ids] = 0.0
        self.task.prev_actions[ids] = 0.0
        self.task.after_reset(self.backend, ids)

    def _get_observations(self) -> dict[str, torch.Tensor]:
        obs = self.task.observe(self.backend)
        return {"policy": obs["policy"], "critic": obs["privileged"]}


def _task_cfg_class(task: str) -> type[RobotRLEnvCfg]:
    name = _camel(task) + "EnvCfg"
    namespace = {"__annotations__": {"task": str}, "task": task, "__module__": __name__, "__qualname__": name,
                 "__doc__": f"Isaac Lab configuration of our task {task!r}."}
    return configclass(type(name, (RobotRLEnvCfg,), namespace))


def _camel(task: str) -> str:
    return "".join(part.capitalize() for part in task.split("_"))


def _define_task_cfgs() -> None:
    """``PandaReachEnvCfg`` etc., the ``env_cfg_entry_point`` of each registered id."""
    from robot_rl.envs.task import TASKS

    for task in TASKS.names():
        cls = _task_cfg_class(task)
        globals()[cls.__name__] = cls


_define_task_cfgs()
