"""robot_rl: reward learning, batched simulation and sim-to-real training for robot arms and legs.

The core package holds the environment API, rewards, algorithms and tools. It never imports a
simulator or ROS at import time: backends live in ``robot_rl_sim`` and ROS 2 nodes in
``robot_rl_ros``, and both are loaded lazily when asked for.
"""

__version__ = "0.1.0"
