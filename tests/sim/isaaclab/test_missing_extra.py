"""Without Isaac Lab installed, asking for the backend says which Python and extra to install."""

from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("isaaclab") is not None:
    pytest.skip("Isaac Lab is installed here", allow_module_level=True)

from robot_rl.envs import make  # noqa: E402


def test_isaaclab_backend_without_the_extra_names_python_and_extra() -> None:
    with pytest.raises(ImportError) as caught:
        make("panda_reach", num_envs=2, backend="isaaclab")
    message = str(caught.value)
    assert "Python 3.12" in message and "robot-rl[isaaclab]" in message
    assert not isinstance(caught.value, ModuleNotFoundError)  # not re-worded as a missing [sim] extra
