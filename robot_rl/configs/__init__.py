"""Typed launch-file configs."""

from robot_rl.configs.loading import ConfigError, from_dict, load, parse_overrides, to_dict
from robot_rl.configs.train import (
    BudgetConfig,
    EnvConfig,
    LogConfig,
    PPOConfig,
    RewardConfig,
    RewardModuleConfig,
    TrainConfig,
)

__all__ = [
    "BudgetConfig", "ConfigError", "EnvConfig", "LogConfig", "PPOConfig", "RewardConfig", "RewardModuleConfig",
    "TrainConfig", "from_dict", "load", "parse_overrides", "to_dict",
]
