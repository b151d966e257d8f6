"""Add reward modules to (or put them in place of) a VecEnv's task reward.

    env = make("panda_reach", num_envs=16, image_cameras=("front",), image_size=(224, 224))
    vlm = REWARDS.get("vlm_zero_shot")(model="weights/clip-vit-base-patch32", baseline="a robot arm")
    env = RewardWrapper(env, [RewardTerm(vlm, "vlm_zero_shot", weight=0.5, cameras=("front",),
                                         normalize=True, gate="until_success")])

Each step the reward is ``task_weight · task_reward + Σ weight · f(module reward)``, where f
optionally normalises the module's reward by running mean/std and, with ``gate="until_success"``,
zeroes it in worlds whose post-step state succeeds (dense shaping only while the sparse task
success is 0, as KAGI). Every world is scored on its post-step state: worlds that just finished
are scored on ``info["final_obs"]``, not on the first observation of their next episode.

``info["reward_terms"]`` then holds the task's terms scaled by ``task_weight`` (left out when it is
0) and each module's weighted contribution under its name: these add up to the reward. Keys with a
``/`` are diagnostics outside that sum: ``"<name>/raw"`` is the module's reward before
normalisation, gating and weight, ``"task/raw"`` the task reward before ``task_weight``.
Mean-centring a reward changes its sign; with terminating tasks, where a negative reward makes
ending the episode early attractive, prefer ``normalize=False`` and a weight.

Stateful modules (``keypoint``; the optional hooks of :mod:`robot_rl.rewards.base`): a module whose
``score`` takes ``success`` is given ``info["success"]``; a module with ``reset`` is reset for every
world at :meth:`RewardWrapper.reset` and, after scoring, for the worlds that finished, and sees
them as they start (``reset_frames``: RGB-D images rendered then, the observation after the
reset); with ``step_frames`` it also sees every step the worlds that did not finish.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from robot_rl.envs.backend import renders_depth
from robot_rl.envs.vec_env import Obs
from robot_rl.rewards.base import FrameRequest, Frames, RewardModule, load_modules

if TYPE_CHECKING:
    from robot_rl.configs.train import OnlineLearningConfig, RewardModuleConfig

Gate = Literal["none", "until_success"]
GATES: tuple[str, ...] = ("none", "until_success")


@dataclass(frozen=True)
class RewardTerm:
    module: RewardModule
    name: str
    """Key in ``info["reward_terms"]`` (and in episode logs)."""
    weight: float = 1.0
    cameras: tuple[str, ...] = ()
    """Cameras of ``obs["rgb"]`` stacked as the module's views uint8[N, V, H, W, 3]."""
    normalize: bool = False
    """Divide the module reward by its running std after subtracting its running mean."""
    gate: Gate = "none"
    """``"until_success"``: the term is 0 in worlds where ``info["success"]`` is true."""
    state_group: str = "policy"
    """Observation group passed as ``state`` to modules with ``uses_state``."""
    image_size: tuple[int, int] | None = None
    """(H, W) the env must render at for this module (None: any)."""
    online: OnlineLearningConfig | None = None
    """Keep training the module on labelled pairs of the policy's observations (preference only)."""


class RunningMeanStd:
    """Running mean and variance of a stream of float[N] batches (Chan et al.'s parallel update)."""

    def __init__(self, device: torch.device | str = "cpu", eps: float = 1e-8) -> None:
        self.mean = torch.zeros((), dtype=torch.float64, device=device)
        self.var = torch.ones((), dtype=torch.float64, device=device)
        self.count = 0
        self.eps = eps

    def update(self, x: torch.Tensor) -> None:
        x = x.detach().to(self.mean.device, torch.float64).flatten()
        n = x.numel()
        if n == 0:
            return
        mean, var = x.mean(), x.var(unbiased=False)
        if self.count == 0:
            self.mean, self.var, self.count = mean, var, n
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + var * n + delta.pow(2) * self.count * n / total) / total
        self.count = total

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(x − mean) / sqrt(var + eps), in x's dtype."""
        return ((x - self.mean) / torch.sqrt(self.var + self.eps)).to(x.dtype)


class RewardWrapper:
    """A :class:`~robot_rl.envs.vec_env.VecEnv` whose reward adds weighted reward-module terms.

    Other attributes (``task``, ``render``, ``control_dt``, ``max_episode_steps``,
    ``image_cameras``, ...) are the wrapped env's.
    """

    def __init__(self, env: Any, terms: Sequence[RewardTerm], task_weight: float = 1.0, seed: int = 0) -> None:
        self.env = env
        self.terms = tuple(terms)
        self.task_weight = float(task_weight)
        self.num_envs, self.device, self.action_dim = env.num_envs, env.device, env.action_dim
        self.obs_dims, self.goal = env.obs_dims, env.goal
        self.action_low, self.action_high = env.action_low, env.action_high
        names = [t.name for t in self.terms]
        if len(set(names)) != len(names):
            raise ValueError(f"reward terms need distinct names, got {names}")
        rendered = tuple(getattr(env, "image_cameras", ()))
        for term in self.terms:
            if term.gate not in GATES:
                raise ValueError(f"reward term {term.name}: gate must be one of {', '.join(GATES)}, got {term.gate!r}")
            if _reads_images(term.module, term.online):
                if not term.cameras:
                    raise ValueError(f"reward term {term.name} scores images: give it cameras")
                missing = [c for c in term.cameras if c not in rendered]
                if missing:
                    raise ValueError(f"reward term {term.name} reads cameras {missing} but the env renders "
                                     f"{list(rendered) or 'no images'}; build it with image_cameras={term.cameras}")
                size = tuple(getattr(env, "image_size", ()))
                if term.image_size is not None and size and size != tuple(term.image_size):
                    raise ValueError(f"reward term {term.name} wants images of {tuple(term.image_size)}, "
                                     f"the env renders {size}")
            if term.module.uses_state and term.state_group not in env.obs_dims:
                raise ValueError(f"reward term {term.name}: observation group {term.state_group!r} not produced; "
                                 f"the env has {', '.join(env.obs_dims)}")
            _check_frames(term, env)
        self._takes_success = {t.name: _accepts(t.module.score, "success") for t in self.terms}
        self.stats = {t.name: RunningMeanStd(env.device) for t in self.terms if t.normalize}
        """Running reward statistics of the normalised terms, by name."""
        self.learners = {}
        """Online learners of the terms with ``online`` set, by name (:mod:`robot_rl.rewards.online`)."""
        for i, term in enumerate(self.terms):
            if term.online is not None:
                from robot_rl.rewards.online import OnlinePreferenceLearner

                self.learners[term.name] = OnlinePreferenceLearner(term.module, term.online, self.goal,
                                                                   self.num_envs, seed=seed + i)

    def __getattr__(self, name: str) -> Any:
        if name == "env":  # not yet set (e.g. while unpickling): avoid recursing
            raise AttributeError(name)
        return getattr(self.env, name)

    def reset(self, seed: int | None = None) -> tuple[Obs, dict[str, Any]]:
        """As :meth:`VecEnv.reset`; modules with per-world state start every world over."""
        obs, info = self.env.reset(seed=seed)
        everyone = torch.arange(self.num_envs, device=self.device)
        for term in self.terms:
            if hasattr(term.module, "reset"):
                self._reset_module(term, everyone, obs)
        return obs, info

    def close(self) -> None:
        self.env.close()

    def learning_metrics(self) -> dict[str, float]:
        """``reward_learning/<term>/<counter>`` of every online learner and
        ``reward_diagnostics/<term>/<counter>`` of every module with ``diagnostics()``, for training logs."""
        out = {f"reward_learning/{name}/{key}": value for name, learner in self.learners.items()
               for key, value in learner.metrics().items()}
        for term in self.terms:
            if callable(getattr(term.module, "diagnostics", None)):
                out.update({f"reward_diagnostics/{term.name}/{key}": value
                            for key, value in term.module.diagnostics().items()})
        return out

    def adopt_learned(self, source: RewardWrapper) -> RewardWrapper:
        """Score with ``source``'s modules (same launch file) as they are now, learning no further:
        evaluation after online reward learning. Returns self."""
        if [t.name for t in source.terms] != [t.name for t in self.terms]:
            raise ValueError("adopt_learned: the two wrappers have different reward terms")
        self.terms = tuple(dataclasses.replace(mine, module=theirs.module, online=None)
                           if theirs.name in source.learners else mine  # others keep their per-world state
                           for mine, theirs in zip(self.terms, source.terms))
        self.learners = {}
        return self

    def save_learned(self, directory: str | Path) -> list[Path]:
        """Write every online-learned reward model to ``<directory>/<term>.pt``."""
        return [learner.save(directory, name) for name, learner in self.learners.items()]

    def reward_term_names(self) -> tuple[str, ...]:
        """Keys of ``info["reward_terms"]``, in order."""
        task = getattr(self.env, "task", None)
        own = task.reward_term_names() if task is not None and self.task_weight != 0.0 else ()
        return (*own, "task/raw", *(n for t in self.terms for n in (t.name, f"{t.name}/raw")))

    @torch.no_grad()
    def step(self, actions: torch.Tensor) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """As :meth:`VecEnv.step`; reward float32[N] = task_weight · task + Σ module terms."""
        obs, task_reward, terminated, truncated, info = self.env.step(actions)
        done = terminated | truncated
        final = info.get("final_obs", obs) if bool(done.any()) else obs
        w = self.task_weight
        terms = {k: w * v for k, v in info.get("reward_terms", {}).items()} if w != 0.0 else {}
        terms["task/raw"] = task_reward
        reward = w * task_reward
        for term in self.terms:
            images = _views(obs, final, done, term.cameras) if _reads_images(term.module, term.online) else None
            state = _post_step(obs[term.state_group], final[term.state_group], done) if term.module.uses_state else None
            extra = {"success": info["success"]} if self._takes_success[term.name] and "success" in info else {}
            request = getattr(term.module, "step_frames", None)
            if request is not None:  # the worlds that did not finish are still in their post-step state
                extra["frames"] = self._frames(request, (~done).nonzero().squeeze(1), obs, term.state_group)
            raw = term.module.score(images, state, self.goal, **extra).reward.to(self.device, torch.float32)
            value = raw
            if term.normalize:
                self.stats[term.name].update(raw)
                value = self.stats[term.name].normalize(raw)
            if term.gate == "until_success":
                if "success" not in info:
                    raise ValueError(f"reward term {term.name}: gate until_success needs info['success'] from the env")
                value = torch.where(info["success"].to(self.device), torch.zeros_like(value), value)
            terms[term.name] = term.weight * value
            terms[f"{term.name}/raw"] = raw
            reward = reward + terms[term.name]
            if term.name in self.learners:  # learn after scoring: this step's reward used the model it saw
                learner = self.learners[term.name]
                learner.observe(images if term.module.uses_images else state, info.get("progress"), done,
                                images if learner.needs_views else None)
            if bool(done.any()) and hasattr(term.module, "reset"):  # modules with per-world state start over
                self._reset_module(term, done.nonzero().squeeze(1), obs)
        info["reward_terms"] = terms
        return obs, reward, terminated, truncated, info

    def _reset_module(self, term: RewardTerm, env_ids: torch.Tensor, obs: Obs) -> None:
        """Reset ``term``'s module for worlds ``env_ids`` int64[n], which the env has just reset
        (``obs`` is after that reset), showing it their frames if it asks for them."""
        request = getattr(term.module, "reset_frames", None)
        if request is None:
            term.module.reset(env_ids)
        else:
            term.module.reset(env_ids, self._frames(request, env_ids, obs, term.state_group))

    def _frames(self, request: FrameRequest, env_ids: torch.Tensor, obs: Obs, group: str) -> Frames:
        """Worlds ``env_ids`` int64[n] as the env holds them now: RGB-D of the requested camera,
        requested sensors and the rows of observation group ``group`` of ``obs``."""
        rgbd = None
        if request.camera is not None and len(env_ids):
            rgbd = self.env.render_rgbd(request.camera, *request.image_size, env_ids)
        sensors = {name: self.env.sim.sensor(name)[env_ids] for name in request.sensors}
        state = obs[group][env_ids] if group in obs else None
        return Frames(env_ids, self.num_envs, self.goal, state, rgbd, sensors)


def _accepts(function: Any, name: str) -> bool:
    """Whether ``function`` takes a keyword argument ``name``."""
    params = inspect.signature(function).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _check_frames(term: RewardTerm, env: Any) -> None:
    """ValueError when ``env`` cannot give ``term``'s module the frames it asks for, or the module
    refuses the env's task or scene."""
    for request in (getattr(term.module, "reset_frames", None), getattr(term.module, "step_frames", None)):
        if request is None:
            continue
        sim = getattr(env, "sim", None)
        if request.camera is not None and (not callable(getattr(env, "render_rgbd", None))
                                           or (sim is not None and not renders_depth(sim))):
            engine = type(sim if sim is not None else env).__name__
            raise ValueError(f"reward term {term.name} reads RGB-D frames of camera {request.camera!r}; "
                             f"{engine} renders no depth (use a robot_rl task on the native backend)")
        if request.sensors and not hasattr(env, "sim"):
            raise ValueError(f"reward term {term.name} reads simulator sensors {list(request.sensors)} "
                             f"(privileged); {type(env).__name__} has no simulator")
    if callable(getattr(term.module, "check_scene", None)):
        task = getattr(getattr(env, "task", None), "name", None)
        layout = getattr(getattr(env, "sim", None), "layout", None)
        try:
            term.module.check_scene(task, tuple(getattr(layout, "cameras", ())))
        except ValueError as error:
            raise ValueError(f"reward term {term.name}: {error}") from error


def _reads_images(module: RewardModule, online: OnlineLearningConfig | None) -> bool:
    """Whether a term needs camera images: its module scores them or its online labeller judges them."""
    if module.uses_images:
        return True
    if online is None:
        return False
    from robot_rl.rewards.online import judges_images

    return judges_images(online)


def _post_step(current: torch.Tensor, final: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
    """The post-step value of every world: ``final`` where ``done`` bool[N], else ``current``."""
    if final is current:
        return current
    mask = done.to(current.device).view(-1, *([1] * (current.ndim - 1)))
    return torch.where(mask, final.to(current.device), current)


def _views(obs: Obs, final: Obs, done: torch.Tensor, cameras: Sequence[str]) -> torch.Tensor:
    """uint8[N, V, H, W, 3]: the post-step images of ``cameras``."""
    return torch.stack([_post_step(obs["rgb"][c], final["rgb"][c], done) for c in cameras], dim=1)


# -- from launch files -----------------------------------------------------------------------------

def build_module(name: str, options: dict[str, Any]) -> RewardModule:
    """The registered reward module ``name`` built with ``options``; unknown names and options
    raise errors listing the valid ones."""
    factory = load_modules().get(name)
    params = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise ValueError(f"reward module {name}: unknown options {unknown}; valid options: {', '.join(params)}")
    return factory(**options)


def build_terms(configs: Sequence[RewardModuleConfig], default_camera: str | None) -> list[RewardTerm]:
    """Reward terms of a launch file's ``rewards.modules``: loads every module (and its model)
    now, so a missing model fails before any simulation starts. Names repeated in the list get
    suffixes ``_2``, ``_3`` in the logs."""
    terms: list[RewardTerm] = []
    seen: dict[str, int] = {}
    for i, cfg in enumerate(configs):
        where = f"rewards.modules[{i}]"
        if cfg.gate not in GATES:
            raise ValueError(f"{where}.gate: must be one of {', '.join(GATES)}, got {cfg.gate!r}")
        try:
            module = build_module(cfg.name, dict(cfg.options))
        except (KeyError, ValueError, TypeError) as error:  # unknown name or options, bad option values
            raise ValueError(f"{where}: {error}") from error
        except FileNotFoundError as error:  # e.g. models.ModelWeightsNotFound: keep the type callers catch
            raise type(error)(f"{where} ({cfg.name}): {error}") from error
        seen[cfg.name] = seen.get(cfg.name, 0) + 1
        name = cfg.name if seen[cfg.name] == 1 else f"{cfg.name}_{seen[cfg.name]}"
        wants_images = _reads_images(module, cfg.online)
        cameras = tuple(cfg.cameras) or ((default_camera,) if default_camera and wants_images else ())
        if cfg.online is not None and cfg.name != "preference":
            raise ValueError(f"{where}.online: only the preference module learns online, not {cfg.name}")
        terms.append(RewardTerm(module, name, cfg.weight, cameras, cfg.normalize, cfg.gate, cfg.state_group,
                                tuple(cfg.image_size) if wants_images else None, cfg.online))
    return terms


def rendering(terms: Sequence[RewardTerm]) -> tuple[tuple[str, ...], tuple[int, int] | None]:
    """The cameras and the one (H, W) size the env must render for ``terms``."""
    readers = [t for t in terms if _reads_images(t.module, t.online)]
    cameras = tuple(dict.fromkeys(c for t in readers for c in t.cameras))
    sizes = {t.image_size for t in readers if t.image_size is not None}
    if len(sizes) > 1:
        raise ValueError(f"rewards.modules: every module reading images must use one image_size (the env renders "
                         f"all cameras at one size), got {sorted(sizes)}")
    return cameras, next(iter(sizes), None)
