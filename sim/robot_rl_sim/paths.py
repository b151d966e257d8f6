"""Where the MJCF models are."""

from __future__ import annotations

import os
from pathlib import Path

MODELS_ENV = "ROBOT_RL_MODELS"


def models_dir() -> Path:
    """The ``models/`` folder: ``$ROBOT_RL_MODELS`` if set, else the source tree's (editable
    installs), else the copy a wheel installs inside this package."""
    override = os.environ.get(MODELS_ENV)
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent
    source_tree = here.parents[1] / "models"
    return source_tree if source_tree.is_dir() else here / "models"


def scene_path(scene: str) -> Path:
    """Absolute path of an MJCF file given relative to ``models/`` (absolute paths pass through)."""
    path = Path(scene)
    return path if path.is_absolute() else models_dir() / path
