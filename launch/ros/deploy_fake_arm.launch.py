"""Deploy an exported policy on the simulated Panda (MuJoCo fake arm), recording everything.

    ros2 launch robot_rl_ros deploy_fake_arm.launch.py policy:=/abs/path/policy.pt target:="[0.5, 0.1, 0.3]"
    ros2 launch robot_rl_ros deploy_fake_arm.launch.py policy:=/abs/path/push.pt perception:=/abs/path/perception.pt \
        scene:=panda/scene_push.xml initial_arm:="[0.0, 0.1125, 0.0, -2.5686, 0.0, 2.6811, 0.7854]" \
        target:="[0.5, 0.15, 0.0]"

Without ROS: ``robot-rl deploy --robot real/config/panda.yaml --policy policy.pt --fake-arm --record runs/deploy``
starts the same nodes. Take over with ``ros2 run robot_rl_ros intervention --ros-args -p robot:=...``
in a terminal.
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
        DeclareLaunchArgument("target", default_value="[0.5, 0.1, 0.3]", description="goals [x, y, z, ...] (m)"),
        DeclareLaunchArgument("episodes", default_value="0", description="stop after this many episodes (0: run on)"),
        DeclareLaunchArgument("perception", default_value="", description="perception model finding the cube in "
                              "the colour and depth images (robot-rl perception-train); push and lift need one"),
        DeclareLaunchArgument("record_dir", default_value="runs/deploy", description="recordings go here"),
        DeclareLaunchArgument("storage", default_value="mcap", description="rosbag2 storage: mcap or sqlite3"),
        DeclareLaunchArgument("camera_hz", default_value="30.0", description="fake camera rate (Hz), 0: off"),
        DeclareLaunchArgument("scene", default_value="", description="MJCF scene, e.g. panda/scene_push.xml for push "
                              "(empty: the robot config's model)"),
        DeclareLaunchArgument("initial_arm", default_value="[]", description="arm joints to start from (rad); "
                              "push/lift trained from [0.0, 0.1125, 0.0, -2.5686, 0.0, 2.6811, 0.7854]"),
        Node(package="robot_rl_ros", executable="fake_arm", name="fake_arm", output="screen", parameters=[{
            "robot": robot, "camera_hz": LaunchConfiguration("camera_hz"), "scene": LaunchConfiguration("scene"),
            "initial_arm": LaunchConfiguration("initial_arm"),
        }]),
        Node(package="robot_rl_ros", executable="recorder", name="recorder", output="screen", parameters=[{
            "robot": robot, "output": LaunchConfiguration("record_dir"), "storage": LaunchConfiguration("storage"),
        }]),
        Node(package="robot_rl_ros", executable="policy_node", name="policy_node", output="screen", parameters=[{
            "robot": robot, "policy": LaunchConfiguration("policy"), "target": LaunchConfiguration("target"),
            "episodes": LaunchConfiguration("episodes"), "wait_for_recorder_s": 60.0,
            "perception": LaunchConfiguration("perception"),
        }]),
    ])
