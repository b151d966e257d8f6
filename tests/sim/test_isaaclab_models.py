"""What the MJCF -> USD conversion for Isaac Lab can carry, checked without Isaac Lab: our models
pass, and a model using a feature it drops is refused naming the feature."""

from __future__ import annotations

import pytest

from robot_rl_sim.isaaclab.usd import UnsupportedFeatureError, check_supported
from robot_rl_sim.mjcf import load_model


@pytest.mark.parametrize(("element", "feature"), [
    ('<contact><pair geom1="a" geom2="b"/></contact>', "explicit contact pairs"),
    ('<sensor><accelerometer name="acc" site="s"/></sensor>', "accelerometer sensor"),
    ('<actuator><motor joint="hinge" name="m"/><cylinder joint="hinge" name="c"/></actuator>',
     "activation dynamics"),
])
def test_dropped_features_are_named(tmp_path, element: str, feature: str) -> None:
    xml = tmp_path / "model.xml"
    xml.write_text(f"""<mujoco>
      <worldbody>
        <geom name="a" type="plane" size="1 1 0.1"/>
        <body name="b1" pos="0 0 1"><joint name="hinge"/><geom name="b" size="0.1"/><site name="s"/></body>
      </worldbody>
      {element}
    </mujoco>""")
    with pytest.raises(UnsupportedFeatureError, match=feature):
        check_supported(load_model(xml), str(xml))


def test_our_models_are_supported() -> None:
    for scene in ("panda/scene_reach.xml", "panda/scene_push.xml", "panda/scene_lift.xml",
                  "quadruped/scene_walk.xml"):
        check_supported(load_model(scene), scene)
