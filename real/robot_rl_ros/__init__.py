"""ROS 2 deployment of robot_rl policies: transport, nodes, safety filter, teleop and recording.

Nodes (console scripts and ROS 2 executables): ``fake_arm``, ``policy_node``, ``intervention``,
``recorder``, ``learner_node``. Nothing here imports rclpy unless the rclpy backend is chosen.
"""
