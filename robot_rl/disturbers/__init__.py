"""Robust sim-to-real training: domain-randomisation pushes, the H∞ disturber and the
privileged-action curriculum. Every mechanism acts on the simulation through
``Backend.apply_wrench`` (and, for relaxed contacts, ``relax_contacts``), never by editing tasks.

    hooks = Robustness.build(cfg, env, seed)        # None when cfg.robust asks for nothing
"""

from robot_rl.disturbers.common import body_of, find_sim
from robot_rl.disturbers.hinf import (
    HInfDisturber,
    constraint_violation,
    discounted_sums,
    oracle_cost,
    reference_oracle,
    update_multiplier,
)
from robot_rl.disturbers.hooks import Robustness
from robot_rl.disturbers.privileged import Curriculum, PrivilegedActionEnv
from robot_rl.disturbers.push import RandomPushes, fixed_push

__all__ = [
    "Curriculum", "HInfDisturber", "PrivilegedActionEnv", "RandomPushes", "Robustness", "body_of",
    "constraint_violation", "discounted_sums", "find_sim", "fixed_push", "oracle_cost", "reference_oracle",
    "update_multiplier",
]
