"""MJCF -> USD for Isaac Lab: what the conversion keeps, and a cache keyed by the model's XML.

Isaac Lab spawns assets from USD only (its MJCF importer needs Isaac Sim), so each scene in
``models/`` is converted with ``mujoco-usd-converter`` when an environment is built. The
converted file is stored under ``<cache>/<sha256 of the XML>/`` and reused while the XML (with
every included file, as MuJoCo resolves it) and the converter version stay the same.

:func:`check_supported` turns features that the conversion or this backend drops into one
error naming the feature, instead of a simulation that silently behaves differently.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mujoco

from robot_rl_sim.paths import scene_path

CACHE_ENV = "ROBOT_RL_USD_CACHE"
"""Environment variable overriding the USD cache folder."""
_POSTPROCESS_VERSION = "2"
"""Bumped whenever :func:`_postprocess` changes, so cached files are converted again."""

SUPPORTED_SENSORS = {
    mujoco.mjtSensor.mjSENS_FRAMEPOS: "framepos",
    mujoco.mjtSensor.mjSENS_FRAMEQUAT: "framequat",
    mujoco.mjtSensor.mjSENS_FRAMEZAXIS: "framezaxis",
    mujoco.mjtSensor.mjSENS_FRAMELINVEL: "framelinvel",
    mujoco.mjtSensor.mjSENS_GYRO: "gyro",
    mujoco.mjtSensor.mjSENS_VELOCIMETER: "velocimeter",
    mujoco.mjtSensor.mjSENS_TOUCH: "touch",
}
"""Sensors the Isaac Lab backend recomputes from body states (the converter drops all sensors)."""

_FRAME_OBJECTS = (mujoco.mjtObj.mjOBJ_BODY, mujoco.mjtObj.mjOBJ_XBODY, mujoco.mjtObj.mjOBJ_SITE)
_JOINTS = {mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE, mujoco.mjtJoint.mjJNT_FREE}
_EQUALITIES = {mujoco.mjtEq.mjEQ_JOINT}


class UnsupportedFeatureError(ValueError):
    """The MJCF uses something the MJCF -> USD conversion or the Isaac Lab backend drops."""


def default_cache_dir() -> Path:
    """``$ROBOT_RL_USD_CACHE`` if set, else ``~/.cache/robot_rl/usd``."""
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else Path.home() / ".cache" / "robot_rl" / "usd"


def check_supported(model: mujoco.MjModel, scene: str) -> None:
    """Raise :class:`UnsupportedFeatureError` naming the first feature of ``model`` (compiled
    from ``scene``) that would be lost on the way to Isaac Lab."""

    def fail(feature: str, detail: str) -> None:
        raise UnsupportedFeatureError(
            f"{scene} uses {feature} ({detail}), which the MJCF -> USD conversion for Isaac Lab drops; "
            "remove it from the model or use backend 'native' or 'warp'"
        )

    counts = {"flexes": model.nflex, "skins": model.nskin, "explicit contact pairs (<contact><pair>)": model.npair,
              "tendons": model.ntendon, "height fields": model.nhfield, "plugins": model.nplugin}
    for feature, count in counts.items():
        if count:
            fail(feature, f"{count} in the model")
    for j in range(model.njnt):
        if mujoco.mjtJoint(model.jnt_type[j]) not in _JOINTS:
            fail("a ball joint", f"joint {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j)!r}")
    for e in range(model.neq):
        kind = mujoco.mjtEq(model.eq_type[e])
        if kind not in _EQUALITIES:
            fail(f"a {kind.name[5:].lower()} equality", f"equality {e}")
    for s in range(model.nsensor):
        kind = mujoco.mjtSensor(model.sensor_type[s])
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_SENSOR, s)
        if kind not in SUPPORTED_SENSORS:
            supported = ", ".join(SUPPORTED_SENSORS.values())
            fail(f"a {kind.name[7:].lower()} sensor", f"sensor {name!r}; supported: {supported}")
        if kind in (mujoco.mjtSensor.mjSENS_FRAMEPOS, mujoco.mjtSensor.mjSENS_FRAMEQUAT,
                    mujoco.mjtSensor.mjSENS_FRAMEZAXIS, mujoco.mjtSensor.mjSENS_FRAMELINVEL):
            if mujoco.mjtObj(model.sensor_objtype[s]) not in _FRAME_OBJECTS or model.sensor_reftype[s] != 0:
                fail("a frame sensor of a geom or relative to another frame", f"sensor {name!r}")
    for a in range(model.nu):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, a)
        if mujoco.mjtTrn(model.actuator_trntype[a]) != mujoco.mjtTrn.mjTRN_JOINT:
            fail("an actuator that does not drive a joint", f"actuator {name!r}")
        if model.actuator_dyntype[a] != mujoco.mjtDyn.mjDYN_NONE:
            fail("an actuator with activation dynamics", f"actuator {name!r}")
        if not _is_servo_or_motor(model, a):
            fail("an actuator that is neither a position servo nor a motor", f"actuator {name!r}")


def _is_servo_or_motor(model: mujoco.MjModel, a: int) -> bool:
    if model.actuator_gaintype[a] != mujoco.mjtGain.mjGAIN_FIXED:
        return False
    gain, bias = model.actuator_gainprm[a], model.actuator_biasprm[a]
    if model.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_NONE:
        return True  # motor: force = gain * ctrl
    servo = model.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_AFFINE and bias[0] == 0
    return bool(servo and abs(bias[1] + gain[0]) <= 1e-9 * max(1.0, abs(gain[0])) and bias[2] <= 0)


@dataclass(frozen=True)
class UsdAsset:
    path: Path
    """The converted ``.usdc`` file."""
    converted: bool
    """True when this call ran the converter, False when the cached file was reused."""


def xml_digest(scene: str) -> str:
    """sha256 of the scene's XML with every include resolved, and of the converter version."""
    import mujoco_usd_converter

    spec = mujoco.MjSpec.from_file(str(scene_path(scene)))
    text = spec.to_xml() + f"\nmujoco-usd-converter {mujoco_usd_converter.__version__} / {_POSTPROCESS_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()


def usd_for_scene(scene: str, cache_dir: str | Path | None = None) -> UsdAsset:
    """The USD file of the MJCF ``scene`` (relative to ``models/`` or absolute), converted on
    first use and cached by :func:`xml_digest` in ``cache_dir`` (:func:`default_cache_dir`)."""
    from mujoco_usd_converter import Converter

    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = folder / xml_digest(scene)
    existing = sorted(target.glob("*.usdc")) if target.is_dir() else []
    if existing:
        return UsdAsset(existing[0], converted=False)
    folder.mkdir(parents=True, exist_ok=True)
    # Convert into a private folder and rename it into place, so a reader never sees half a file.
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=folder))
    try:
        Converter(layer_structure=False, scene=False).convert(str(scene_path(scene)), str(staging))
        model = mujoco.MjModel.from_xml_path(str(scene_path(scene)))
        for path in staging.glob("*.usdc"):
            _postprocess(path, model)
        try:
            staging.rename(target)
        except OSError:  # another process finished the same conversion first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return UsdAsset(sorted(target.glob("*.usdc"))[0], converted=True)


def _postprocess(path: Path, model: mujoco.MjModel) -> None:
    """Adapt the converter's output to what Isaac Lab's Newton import reads.

    - Actuator parameters are written as compiled: MJCF's ``dampratio`` is stored by the
      converter as a positive placeholder in ``biasPrm``, which Newton leaves as a general
      actuator fed by a control array Isaac Lab never writes (the gripper would then hold at
      zero against our servo). Compiled, every servo reads ``[0, -kp, -kv]`` and Newton turns
      it into a joint target with the MJCF force range.
    - Gravity compensation is written as ``mjc:body:gravcomp`` by mujoco-usd-converter 0.6 but
      read as ``mjc:gravcomp`` by Newton 1.6; without it Newton's model of the Panda has no
      gravity compensation on its links.
    """
    from pxr import Sdf, Usd

    stage = Usd.Stage.Open(str(path))
    for prim in stage.Traverse():
        if prim.GetTypeName() == "MjcActuator":
            a = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, prim.GetName())
            if a >= 0:
                prim.GetAttribute("mjc:gainPrm").Set([float(x) for x in model.actuator_gainprm[a]])
                prim.GetAttribute("mjc:biasPrm").Set([float(x) for x in model.actuator_biasprm[a]])
        old = prim.GetAttribute("mjc:body:gravcomp")
        if old and old.HasAuthoredValue():
            prim.CreateAttribute("mjc:gravcomp", Sdf.ValueTypeNames.Float, custom=True).Set(old.Get())
    stage.GetRootLayer().Save()
