from __future__ import annotations

import os
import subprocess
import sys

import pytest

from robot_rl_sim import rendering


def test_no_working_renderer_names_what_was_tried_and_how_to_install(monkeypatch) -> None:
    def broken(name: str):
        raise OSError(f"cannot load lib for {name}")

    monkeypatch.setattr(rendering.importlib, "import_module", broken)
    monkeypatch.setenv("MUJOCO_GL", "egl")
    with pytest.raises(rendering.RendererUnavailableError) as error:
        rendering._gl_context(64, 64)
    message = str(error.value)
    assert "tried egl: OSError: cannot load lib for mujoco.egl; osmesa: OSError" in message
    assert "apt-get install libegl1" in message and "MUJOCO_GL=osmesa" in message


def test_unknown_mujoco_gl_value_is_reported(monkeypatch) -> None:
    monkeypatch.setattr(rendering.importlib, "import_module", lambda name: (_ for _ in ()).throw(OSError("no")))
    monkeypatch.setenv("MUJOCO_GL", "glfw")
    with pytest.raises(rendering.RendererUnavailableError, match="glfw: not an offscreen renderer"):
        rendering._gl_context(64, 64)


def test_invalid_mujoco_gl_fails_with_a_fix() -> None:
    env = {**os.environ, "MUJOCO_GL": "vulkan"}
    result = subprocess.run([sys.executable, "-c", "import robot_rl.envs as e; e.make('panda_reach')"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode != 0
    assert "MUJOCO_GL='vulkan' is not a renderer MuJoCo knows" in result.stderr
    assert "MUJOCO_GL=egl" in result.stderr and "apt-get install libosmesa6" in result.stderr


def test_observation_images_without_antialiasing_differ_only_at_edges() -> None:
    import numpy as np

    from robot_rl.envs import make

    smooth = make("panda_reach", num_envs=2, image_cameras=("front",), image_size=(64, 64), seed=3)
    jagged = make("panda_reach", num_envs=2, image_cameras=("front",), image_size=(64, 64), seed=3,
                  image_antialias=False)
    a = smooth.reset(seed=3)[0]["rgb"]["front"].numpy().astype(int)
    b = jagged.reset(seed=3)[0]["rgb"]["front"].numpy().astype(int)
    smooth.close(), jagged.close()
    differs = np.abs(a - b).max(axis=-1) > 0
    # Same scene: most pixels agree; multisampling only blends pixels along edges.
    assert 0.0 < differs.mean() < 0.3
