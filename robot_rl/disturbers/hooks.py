"""What the training loop calls when ``robust`` asks for pushes, the H∞ disturber or the
privileged-action curriculum. With none of them the loop never builds this object."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from robot_rl.configs.train import TrainConfig
from robot_rl.disturbers.common import as_wrench, body_of, find_sim
from robot_rl.disturbers.hinf import HInfDisturber
from robot_rl.disturbers.privileged import Curriculum, PrivilegedActionEnv
from robot_rl.disturbers.push import RandomPushes


def privileged_env(env: Any) -> PrivilegedActionEnv | None:
    """The :class:`PrivilegedActionEnv` in a stack of wrappers, if any."""
    while env is not None:
        if isinstance(env, PrivilegedActionEnv):
            return env
        env = getattr(env, "__dict__", {}).get("env")
    return None


class Robustness:
    """Pushes, H∞ disturber and curriculum for one training run (``Robustness.build``)."""

    def __init__(self, cfg: TrainConfig, env: Any, seed: int) -> None:
        r, self.critic_group = cfg.robust, cfg.algo.critic_obs
        self.sim = find_sim(env)
        device = env.device
        generator = torch.Generator(device=device).manual_seed(seed + 7919)
        self.pushes: RandomPushes | None = None
        self.hinf: HInfDisturber | None = None
        self.curriculum: Curriculum | None = None
        self.env = privileged_env(env)
        if r.push.max_force > 0:
            self.push_body = body_of(env, r.push.body, "robust.push")
            self.pushes = RandomPushes(env.num_envs, r.push.max_force, r.push.interval_steps, generator, device)
        if r.hinf.enabled:
            self.hinf_body = body_of(env, r.hinf.body, "robust.hinf")
            if r.hinf.oracle_mode == "absolute" and not r.hinf.oracle:
                raise ValueError("robust.hinf.oracle: give the oracle (best weighted) value of each reward term "
                                 "the cost counts, e.g. {track_lin_vel: 1.0, track_ang_vel: 0.5}, or set "
                                 "oracle_mode: relative with cost_terms")
            self.hinf = HInfDisturber(r.hinf, cfg.algo, env.obs_dims[self.critic_group], env.num_envs, device,
                                      r.hinf.oracle, generator)
        if r.privileged.enabled:
            if self.env is None:
                raise ValueError("robust.privileged: the env has no privileged actions; build it with build_env")
            p = r.privileged
            for name, on, body in (("push", self.pushes, getattr(self, "push_body", "")),
                                   ("hinf", self.hinf, getattr(self, "hinf_body", ""))):
                if on is not None and body == self.env.body:
                    raise ValueError(f"robust.{name}.body and robust.privileged.body are both {body!r}: the "
                                     "privileged wrench would replace the disturbance; push another body")
            self.curriculum = Curriculum(p.levels, p.success_threshold, p.min_episodes, p.schedule)
            self._started = torch.zeros(env.num_envs, dtype=torch.long, device=device)
            """int[N]: the curriculum level each world's current episode began at."""
            self.env.set_scale(self.curriculum.scale)
        self._push_force = 0.0

    @classmethod
    def build(cls, cfg: TrainConfig, env: Any, seed: int) -> Robustness | None:
        """None when ``cfg.robust`` asks for nothing the training loop has to do."""
        return cls(cfg, env, seed) if cfg.robust.active else None

    # -- the training loop ---------------------------------------------------------------------

    def start_iteration(self, iteration: int) -> None:
        if self.hinf is not None:
            self.hinf.set_iteration(iteration)

    def before_step(self, obs: dict[str, Any]) -> None:
        """Apply this step's disturbances (a sum where two push the same body)."""
        wrenches: dict[str, torch.Tensor] = {}
        if self.pushes is not None:
            wrenches[self.push_body] = self.pushes.wrench()
            self._push_force += float(torch.linalg.norm(self.pushes.force, dim=1).mean())
        if self.hinf is not None:
            force = as_wrench(self.hinf.act(obs[self.critic_group]))
            wrenches[self.hinf_body] = wrenches.get(self.hinf_body, 0.0) + force
        for body, wrench in wrenches.items():
            self.sim.apply_wrench(body, wrench)

    def after_step(self, terminated: torch.Tensor, truncated: torch.Tensor, info: dict[str, Any]) -> None:
        if self.hinf is not None:
            self.hinf.record(info["reward_terms"], terminated, truncated, info["final_obs"][self.critic_group])
        if self.curriculum is not None:
            done = terminated | truncated
            self.curriculum.observe(done, info["success"], self._started)
            self._started[done] = self.curriculum.level

    def shaper(self, obs: dict[str, Any]) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """How the actor's advantages change (the H∞ constraint), or None."""
        return self.hinf.shaper(obs[self.critic_group]) if self.hinf is not None else None

    def update(self, obs: dict[str, Any], steps: int) -> dict[str, float]:
        """After the actor's update: train the disturber, move λ and the curriculum; the metrics."""
        row: dict[str, float] = {}
        if self.pushes is not None:
            row["push/force"] = self._push_force / steps
            self._push_force = 0.0
        if self.hinf is not None:
            row.update(self.hinf.update(obs[self.critic_group]))
        if self.curriculum is not None:
            c = self.curriculum
            counts = None
            if dist.is_available() and dist.is_initialized():  # every process moves to the same level
                total = torch.tensor([float(c.episodes), float(len(c.recent)), float(c.successes)],
                                     device=self.env.device)
                dist.all_reduce(total)
                counts = (int(total[0]), int(total[1]), int(total[2]))
            row["privileged/success"] = c.success_rate if counts is None else counts[2] / max(counts[1], 1)
            if c.advance(counts):
                self.env.set_scale(c.scale)
            row["privileged/level"] = float(c.level)
            row["privileged/scale"] = c.scale
        return row

    # -- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        if self.hinf is not None:
            state["hinf"] = self.hinf.state_dict()
        if self.curriculum is not None:
            state["curriculum"] = self.curriculum.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.hinf is not None and "hinf" in state:
            self.hinf.load_state_dict(state["hinf"])
        if self.curriculum is not None and "curriculum" in state:
            self.curriculum.load_state_dict(state["curriculum"])
            self.env.set_scale(self.curriculum.scale)

    def save(self, path: Path) -> Path:
        """The disturber/curriculum state, written whole with a checksum (read it with :func:`read_robust`)."""
        from robot_rl.utils.files import write_checked

        return write_checked(path, self.state_dict())


def read_robust(path: Path) -> dict[str, Any]:
    """What :meth:`Robustness.save` wrote, verified; CorruptFileError with one line otherwise."""
    from robot_rl.utils.files import read_checked

    return read_checked(path, None, "disturber/curriculum state")


def robust_checkpoint(model_checkpoint: Path) -> Path:
    """``checkpoints/robust_<i>.pt`` next to ``checkpoints/model_<i>.pt``."""
    return model_checkpoint.with_name(model_checkpoint.name.replace("model_", "robust_", 1))
