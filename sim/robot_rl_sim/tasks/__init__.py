"""Task modules; importing this package registers every task."""

from robot_rl_sim.tasks import panda_lift, panda_push, panda_reach, quadruped_walk

__all__ = ["panda_lift", "panda_push", "panda_reach", "quadruped_walk"]
