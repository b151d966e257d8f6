"""Offline RL from recorded datasets: recording in simulation, reward labelling, BC / IQL / TD3+BC
training, progress filtering, and SAC/RLPD fine-tuning from demonstrations."""
