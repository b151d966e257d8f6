"""Perception trained in simulation: keypoints (cube, target, gripper tip) found in an RGB-D
image and lifted to world points, so rewards and policies can work from what a camera sees.

- :mod:`~robot_rl.perception.geometry`: pinhole projection and lifting over batches.
- :mod:`~robot_rl.perception.model`: the heat-map network and its decoding.
- :mod:`~robot_rl.perception.estimator`: a trained estimator, its file and its checks.
- :mod:`~robot_rl.perception.training`: fitting and held-out evaluation.

Training frames come from the simulator under domain randomisation
(``robot_rl_sim.perception_data``; ``robot-rl perception-train``). Core code: torch only.
"""

from robot_rl.perception.estimator import Detections, EstimatorInfo, Keypoint, KeypointEstimator

__all__ = ["Detections", "EstimatorInfo", "Keypoint", "KeypointEstimator"]
