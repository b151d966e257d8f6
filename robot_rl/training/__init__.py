"""Training runs: the PPO loop, run directories, checkpoints, evaluation, export."""
