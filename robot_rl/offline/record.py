"""Record episodes in simulation into a LeRobot v3 dataset.

    path = record("panda_push", out="runs/data/push", source="scripted",
                  qualities=["expert"] * 10 + ["noisy"] * 5 + ["failed"] * 5)

Every frame keeps the task camera's image, the policy and privileged observations, the executed
action (also as ``policy_action``; ``intervention`` false), the task's reward and its
ground-truth progress before and after the step (separate columns, so learned rewards can be
judged against them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_rl.data.lerobot import LeRobotWriter, transition_features
from robot_rl.envs.vec_env import Obs


def policy_source(spec: str) -> Callable[[Obs], torch.Tensor]:
    """An ``obs -> actions float[N, A]`` function from an exported policy file, a run directory
    holding ``policy.pt``, or a PPO run directory (its latest checkpoint)."""
    from robot_rl.training.export import load_policy

    path = Path(spec)
    if path.is_dir() and (path / "policy.pt").is_file():
        path = path / "policy.pt"
    if path.is_file():
        module, meta = load_policy(path)
        group = meta.get("observation_group", "policy")
        return lambda obs: module(obs[group].float().cpu())
    if path.is_dir():
        from robot_rl.training.checkpoints import restore_model
        from robot_rl.training.runner import deterministic_policy

        cfg, model, _ = restore_model(path)
        return deterministic_policy(model.eval(), cfg.algo.actor_obs)
    raise FileNotFoundError(f"policy:{spec}: no such policy file or run directory")


def keyboard_source(env) -> tuple[Callable[[Obs], torch.Tensor], Callable[[], None]]:
    """Actions from a person at the keyboard (:class:`robot_rl_sim.scripted.KeyboardArm`), who
    watches world 0 in a MuJoCo viewer paced to the control rate, and what closes the window."""
    from robot_rl.teleop import MOTION_HELP, HeldKeys
    from robot_rl_sim.scripted import KeyboardArm, open_keyboard_viewer

    keys = HeldKeys()
    arm = KeyboardArm(env, keys)
    show, close = open_keyboard_viewer(env, keys)
    print(f"keyboard teleop in the viewer window: {MOTION_HELP}; each episode lasts "
          f"{env.max_episode_steps * env.control_dt:.0f} s", flush=True)

    def act(obs: Obs) -> torch.Tensor:
        show()
        return arm.act()

    return act, close


def _scripted(controller) -> Callable[[Obs], torch.Tensor]:
    return lambda obs: controller.act()


def record(task: str, out: str | Path, source: str = "scripted", episodes: int | None = None,
           qualities: Sequence[str] | None = None, num_envs: int = 8, camera: str | None = None,
           image_size: tuple[int, int] = (64, 64), seed: int = 0, progress_bar: bool = True,
           task_overrides: dict[str, Any] | None = None) -> Path:
    """Record ``episodes`` episodes of ``task`` into a new dataset at ``out``.

    ``source``: ``scripted`` (the task's scripted controller, one quality per episode from
    ``qualities``, default all ``expert``), ``policy:PATH`` (see :func:`policy_source`) or
    ``keyboard`` (:func:`keyboard_source`; one world).
    Episodes run in rounds of ``num_envs`` worlds; each world records its first episode of a round,
    written as soon as it ends. ``meta/info.json`` lists each episode's quality under
    ``robot_rl.qualities``. ``task_overrides`` replace fields of the task's config (e.g.
    ``{"action_space": "ee"}``); they are kept under ``robot_rl.task_overrides``, and offline
    training and fine-tuning on the dataset use them.
    """
    from robot_rl.envs import make, task_class

    cls = task_class(task)
    if qualities is not None:
        episodes = len(qualities) if episodes is None else episodes
        if len(qualities) != episodes:
            raise ValueError(f"{len(qualities)} qualities for {episodes} episodes")
    if not episodes or episodes < 1:
        raise ValueError("record at least one episode")
    camera = camera or cls.cameras[0]
    num_envs = 1 if source == "keyboard" else num_envs
    task_overrides = dict(task_overrides or {})
    env = make(task, num_envs=min(num_envs, episodes), image_cameras=(camera,), image_size=image_size, seed=seed,
               overrides=task_overrides)
    policy = None
    close_viewer: Callable[[], None] | None = None
    if source.startswith("policy:"):
        policy = policy_source(source.split(":", 1)[1])
    elif source == "keyboard":
        policy, close_viewer = keyboard_source(env)
    elif source != "scripted":
        raise ValueError(f"source {source!r}: use scripted, policy:RUN_DIR or keyboard")
    qualities = list(qualities) if qualities is not None else ["expert"] * episodes
    features = transition_features(env.obs_dims["policy"], env.action_dim, env.obs_dims.get("privileged", 0),
                                   {camera: image_size})
    writer = LeRobotWriter(out, fps=1.0 / env.control_dt, features=features, robot_type=task.split("_")[0],
                           extra_info={"task": task, "source": source, "camera": camera, "seed": seed,
                                       **({"task_overrides": task_overrides} if task_overrides else {})})
    bar = None
    if progress_bar:
        from tqdm import tqdm

        bar = tqdm(total=episodes, unit="episode", desc=f"record {task}", dynamic_ncols=True)
    n = env.num_envs
    writer.extra_info["qualities"] = []  # per episode index: the scripted quality (or the policy source)

    def write(frames: list[dict], kind: str) -> None:
        for frame in frames:
            writer.add_frame(frame)
        writer.extra_info["qualities"].append(kind if policy is None else source)
        writer.end_episode(env.goal)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(quality=kind, success=bool(frames[-1]["next.success"]), refresh=False)

    try:
        for round_index, first in enumerate(range(0, episodes, n)):
            kinds = qualities[first:first + n]
            kinds += ["expert"] * (n - len(kinds))
            obs, _ = env.reset(seed=seed + round_index)
            act = policy
            if act is None:
                from robot_rl_sim.scripted import make_controller

                act = _scripted(make_controller(env, kinds, seed=seed + round_index))
            progress = env.task.progress(env.sim).cpu().numpy()
            frames: list[list[dict]] = [[] for _ in range(n)]
            running = np.zeros(n, dtype=bool)
            running[:min(n, episodes - first)] = True
            for _ in range(env.max_episode_steps):
                action = act(obs).float().clamp(-1.0, 1.0)
                next_obs, reward, terminated, truncated, info = env.step(action)
                done = (terminated | truncated).cpu().numpy()
                for i in np.nonzero(running)[0]:
                    frames[i].append({
                        "observation.policy": obs["policy"][i].numpy(),
                        "observation.privileged": obs["privileged"][i].numpy(),
                        f"observation.images.{camera}": obs["rgb"][camera][i].numpy(),
                        "action": action[i].numpy(), "policy_action": action[i].numpy(), "intervention": False,
                        "next.reward": float(reward[i]), "next.terminated": bool(terminated[i]),
                        "next.done": bool(done[i]), "next.success": bool(info["success"][i]),
                        "observation.progress": float(progress[i]), "next.progress": float(info["progress"][i]),
                    })
                    if done[i]:  # written at once: an interrupted recording keeps every finished episode
                        running[i] = False
                        write(frames[i], kinds[i])
                progress = info["progress"].cpu().numpy()
                obs = next_obs
                if not running.any():
                    break
    finally:
        if bar is not None:
            bar.close()
        if close_viewer is not None:
            close_viewer()
        env.close()
    return Path(out)
