"""Fine-tune an exported policy on the simulated Panda (MuJoCo fake arm) while it runs: the policy
node streams every step to the learner node and runs the weights it publishes; everything is
recorded.

    ros2 launch robot_rl_ros finetune_fake_arm.launch.py policy:=/abs/path/policy.pt \
        config:=/abs/path/launch/offline/panda_reach_robot_rlpd.yaml

The policy must come from offline training or fine-tuning (``robot-rl offline-train`` or
``robot-rl finetune`` on panda_reach, then ``robot-rl export``). Take over with
``ros2 run robot_rl_ros intervention --ros-args -p robot:=...``: the corrections land in both of
the learner's buffers. The learner writes its run directory (checkpoints, policy.pt) on stop.
"""

# ROS 2's launch package; ruff takes it for this repository's launch/ folder, hence the noqa.
from launch import LaunchDescription  # noqa: I001
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    robot = LaunchConfiguration("robot")
    policy = LaunchConfiguration("policy")
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value=PathJoinSubstitution(
            [FindPackageShare("robot_rl_ros"), "config", "panda.yaml"]), description="robot config YAML"),
        DeclareLaunchArgument("policy", description="exported offline or fine-tuned policy (robot-rl export)"),
        DeclareLaunchArgument("config", description="learner settings: an offline launch YAML such as "
                                                    "launch/offline/panda_reach_robot_rlpd.yaml"),
        DeclareLaunchArgument("target", default_value="[0.5, 0.1, 0.3]", description="goals [x, y, z, ...] (m)"),
        DeclareLaunchArgument("publish_every", default_value="50", description="robot steps between weights"),
        DeclareLaunchArgument("run_root", default_value="runs/robot", description="learner run directories go here"),
        DeclareLaunchArgument("record_dir", default_value="runs/deploy", description="recordings go here"),
        DeclareLaunchArgument("resume", default_value="", description="continue a learner run: its directory or "
                                                                      "a checkpoint; empty starts a new run"),
        DeclareLaunchArgument("camera_hz", default_value="0.0", description="fake camera rate (Hz), 0: off"),
        Node(package="robot_rl_ros", executable="fake_arm", name="fake_arm", output="screen", parameters=[{
            "robot": robot, "camera_hz": LaunchConfiguration("camera_hz"),
        }]),
        Node(package="robot_rl_ros", executable="recorder", name="recorder", output="screen", parameters=[{
            "robot": robot, "output": LaunchConfiguration("record_dir"),
        }]),
        Node(package="robot_rl_ros", executable="learner_node", name="learner_node", output="screen", parameters=[{
            "robot": robot, "policy": policy, "config": LaunchConfiguration("config"),
            "publish_every": LaunchConfiguration("publish_every"), "output": LaunchConfiguration("run_root"),
            "resume": LaunchConfiguration("resume"),
        }]),
        Node(package="robot_rl_ros", executable="policy_node", name="policy_node", output="screen", parameters=[{
            "robot": robot, "policy": policy, "target": LaunchConfiguration("target"), "learn": True,
            "wait_for_recorder_s": 60.0,
        }]),
    ])
