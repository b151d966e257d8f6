"""Deploy an exported policy on a real arm running ros2_control (e.g. franka_ros2 with a
forward_position_controller), recording everything.

    ros2 launch robot_rl_ros deploy_real_arm.launch.py policy:=/abs/path/policy.pt

The robot's driver must already publish /joint_states and accept the command topic named in the
robot config. Check the config's limits and workspace box for your cell before the first run,
keep a hardware e-stop at hand; ``ros2 topic pub --once /estop std_msgs/msg/Bool "{data: true}"``
latches the software e-stop. Without ROS: ``robot-rl deploy --robot ... --policy ... --record ...``.
"""

# ROS 2's launch package; ruff takes it for this repository's launch/ folder, hence the noqa.
from launch import LaunchDescription  # noqa: I001
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    robot = LaunchConfiguration("robot")
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value=PathJoinSubstitution(
            [FindPackageShare("robot_rl_ros"), "config", "panda.yaml"]), description="robot config YAML"),
        DeclareLaunchArgument("policy", description="exported policy file (robot-rl export RUN_DIR --out policy.pt)"),
        DeclareLaunchArgument("target", default_value="[]", description="goals [x, y, z, ...] (m); [] reads "
                              "them from the target topic"),
        DeclareLaunchArgument("episodes", default_value="0", description="stop after this many episodes (0: run on)"),
        DeclareLaunchArgument("perception", default_value="", description="perception model finding the cube in "
                              "the colour and depth images (robot-rl perception-train); push and lift need one"),
        DeclareLaunchArgument("record_dir", default_value="runs/deploy", description="recordings go here"),
        DeclareLaunchArgument("storage", default_value="mcap", description="rosbag2 storage: mcap or sqlite3"),
        Node(package="robot_rl_ros", executable="recorder", name="recorder", output="screen", parameters=[{
            "robot": robot, "output": LaunchConfiguration("record_dir"), "storage": LaunchConfiguration("storage"),
        }]),
        Node(package="robot_rl_ros", executable="policy_node", name="policy_node", output="screen", parameters=[{
            "robot": robot, "policy": LaunchConfiguration("policy"), "target": LaunchConfiguration("target"),
            "episodes": LaunchConfiguration("episodes"), "wait_for_recorder_s": 60.0,
            "perception": LaunchConfiguration("perception"),
        }]),
    ])
