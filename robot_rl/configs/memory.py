"""How much memory a training launch file needs per world, checked before any world is built.

    per_world = OVERHEAD x (physics + rollout + update) + images        (bytes, native backend)

Each part comes from the sizes of the task's MuJoCo model (read from its MJCF, no simulation)
and the launch file (T = ``algo.num_steps``, M = ``algo.num_minibatches``):

- physics: the native backend keeps float64 state, controls and sensors per world, plus the
  ``mujoco.rollout`` output of every substep: ``substeps x (controls + nstate + nsensordata)``
  (a second set of these once wrenches are applied: pushes, H-infinity).
- rollout: ``RolloutBuffer`` float32[T, N, obs + 3 x nu + 7]; the two observation groups
  together are taken as ``nq + nv + nsensordata`` (panda_reach: 73 vs 32 + 39 measured,
  panda_push: 98 vs 42 + 50), since their true sizes are only known once a world exists.
- update: one PPO mini-batch of T·N/M samples through actor and critic, each layer's input and
  activation kept for the backward pass.
- images: every rendered camera's uint8[H, W, 3] times ``IMAGE_COPIES``.

Measured peak RSS growth (``ru_maxrss``, training 2 iterations, 64 vs 4096 worlds, 2-core CPU):
panda_reach 65 KB/world, panda_push 116 KB/world, where the three parts sum to 55 and 92 KB:
the rest (observation and task tensors, allocator slack) is ``OVERHEAD``, giving estimates of
68 and 115 KB. panda_reach_learned_pixels (64x64 front camera, 3-CNN preference ensemble, 64 vs
1024 worlds, pool fixed at 2048 images) grew 282 KB/world, about 18 images' worth beyond the
state-only 65 KB: the camera buffers and the CNN activations of scoring every world's image.
Image modules other than that ensemble (CLIP at 224x224) are estimated with the same factor,
not measured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from robot_rl.configs.loading import ConfigError
from robot_rl.configs.train import TrainConfig

OVERHEAD = 1.25
"""Measured peak over the sum of physics, rollout and update parts (1.18 panda_reach, 1.26 panda_push)."""
IMAGE_COPIES = 18
"""Bytes of one uint8[H, W, 3] image held per world per camera, as a multiple (measured above)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per world by part, and bytes that do not grow with the worlds."""

    physics: int
    """Each of physics, rollout and update includes its share of ``OVERHEAD``."""
    rollout: int
    update: int
    images: int
    fixed: int = 0
    """Not per world: the online preference pool of images."""

    @property
    def per_world(self) -> int:
        return self.physics + self.rollout + self.update + self.images

    def total(self, worlds: int) -> int:
        return worlds * self.per_world + self.fixed


def estimate(cfg: TrainConfig) -> MemoryEstimate | None:
    """Memory of training ``cfg`` per world, or None where no estimate is made (Gymnasium tasks,
    the warp backend, whose worlds live on the accelerator)."""
    if cfg.env.task.startswith("gym:") or cfg.env.backend != "native":
        return None
    import mujoco  # heavy: only when a native task is checked

    from robot_rl.envs import task_class
    from robot_rl_sim.mjcf import load_model

    cls = task_class(cfg.env.task)
    model = load_model(cls.scene)
    control_dt = cfg.env.task_overrides.get("control_dt")
    if not isinstance(control_dt, (int, float)) or control_dt <= 0:  # the task itself reports a bad one
        control_dt = cls.config_class().control_dt
    substeps = max(1, round(control_dt / model.opt.timestep))
    nstate = mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    mocap = 3 * model.nmocap
    wrench = 6 * model.nbody
    robust = cfg.robust
    wrenched = robust.push.max_force > 0 or robust.hinf.enabled or robust.privileged.enabled
    per_substep = model.nu + mocap + nstate + model.nsensordata
    physics = 8 * (2 * nstate + model.nu + wrench + mocap + 2 * model.nsensordata + substeps * per_substep)
    if wrenched:
        physics += 8 * substeps * (per_substep + wrench)

    a = cfg.algo
    obs = model.nq + model.nv + model.nsensordata
    rollout = 4 * a.num_steps * (obs + 3 * model.nu + 7)
    hidden = 2 * (sum(a.actor_hidden) + sum(a.critic_hidden))
    update = 4 * a.num_steps * (obs + hidden + 4 * model.nu + 5) // a.num_minibatches

    # The env renders the union of the modules' cameras at their one image size (rewards.compose).
    readers = [m for m in cfg.rewards.modules if _renders(m)]
    cameras = {c for m in readers for c in m.cameras} or {"default"}
    image = 3 * readers[0].image_size[0] * readers[0].image_size[1] if readers else 0
    images = IMAGE_COPIES * len(cameras) * image
    fixed = sum(m.online.pool_size * max(1, len(m.cameras)) * image for m in readers if m.online is not None)
    return MemoryEstimate(round(OVERHEAD * physics), round(OVERHEAD * rollout), round(OVERHEAD * update),
                          images, fixed)


def _renders(module) -> bool:
    """Whether a reward module makes the env render cameras (from its config alone)."""
    if module.cameras:
        return True
    if module.options.get("inputs") == "state":
        return False
    from robot_rl.rewards.base import load_modules

    try:
        return getattr(load_modules().get(module.name), "uses_images", False) is True
    except KeyError:
        return False


def available_bytes() -> int | None:
    """Memory this process may still use: /proc/meminfo's MemAvailable, or what the cgroup's
    limit leaves if that is lower; None where neither can be read."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            found.append(int(Path(limit).read_text()) - int(Path(usage).read_text()))
        except (OSError, ValueError):  # absent, or "max": no limit
            continue
        break
    return min(found) if found else None


def check_memory(cfg: TrainConfig, source: str, available: int | None = None) -> None:
    """ConfigError, one line naming the estimate, what is available and the fix, when training
    ``cfg`` would need more memory than is available. Processes started together by torchrun
    on one machine (``LOCAL_WORLD_SIZE``) are counted together."""
    need = estimate(cfg)
    available = available_bytes() if available is None else available
    if need is None or available is None:
        return
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    worlds = cfg.env.num_envs * processes
    total = need.total(worlds)
    if total <= available:
        return
    fit = max(0, (available - need.fixed) // (need.per_world * processes))
    parts = f"physics {_size(need.physics)}, rollout {_size(need.rollout)}, update {_size(need.update)}"
    parts += f", images {_size(need.images)}" if need.images else ""
    fixed = f" + {_size(need.fixed)} image pool" if need.fixed else ""
    per = f" x {processes} processes" if processes > 1 else ""
    fix = f"use at most --env.num-envs {fit}" if fit else "free memory or render smaller images"
    raise ConfigError(f"{source}: env.num_envs: {cfg.env.num_envs}{per} worlds need about {_size(total)} "
                      f"({_size(need.per_world)} per world: {parts}{fixed}) but {_size(available)} is "
                      f"available; {fix}")


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
