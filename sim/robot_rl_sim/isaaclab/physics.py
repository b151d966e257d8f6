"""Newton's MuJoCo Warp physics manager, with the step loop replayed as a recorded Warp graph
on the CPU too.

Isaac Lab captures the control step (``decimation`` x actuators + solver substeps) as a CUDA
graph on a GPU and replays it; on the CPU it launches every kernel from Python on every
substep, which costs several milliseconds per substep for the Panda. Warp records CPU graphs
the same way (``wp.ScopedCapture`` on the CPU device), so this manager records the step loop
once per decimation after an eager first step (which also makes the lazy allocations) and
replays it afterwards. The recorded loop is the one Isaac Lab captures on a GPU, so what it
computes is unchanged (``tests/sim/isaaclab`` compares both paths).

With implicit actuators only (all of ours), the whole control step then is one
``SimulationContext.step`` call: the manager runs the decimation loop itself.
"""

from __future__ import annotations

import warp as wp
from isaaclab.physics import PhysicsManager
from isaaclab_newton.physics import NewtonMJWarpManager


class NewtonRecordedCpuMJWarpManager(NewtonMJWarpManager):
    """:class:`NewtonMJWarpManager` replaying a recorded CPU graph of the step loop. (Isaac Lab
    picks its asset implementations by the manager's class name, hence the ``Newton`` prefix.)"""

    _cpu_graphs: dict[int, wp.Graph] = {}
    """Decimation -> recorded step loop."""

    @classmethod
    def step(cls) -> None:
        sim, device = PhysicsManager._sim, PhysicsManager._device
        cfg = PhysicsManager._cfg
        eager = (device is None or "cuda" in str(device) or sim is None or not sim.is_playing()
                 or cfg is None or not cfg.use_cuda_graph or cls._model_changes or not cls._is_all_graphable())
        if eager:
            super().step()
            return
        graph = cls._cpu_graphs.get(cls._decimation)
        if graph is None:
            super().step()  # the eager step allocates what the loop needs
            with wp.ScopedDevice(device), wp.ScopedCapture(device=device) as capture:
                cls._simulate_full()
            cls._cpu_graphs[cls._decimation] = capture.graph
            return
        cls.forward()
        wp.capture_launch(graph)
        PhysicsManager._sim_time += cls._solver_dt * cls._num_substeps * cls._decimation
        cls._mark_transforms_changed()

    @classmethod
    def _is_all_graphable(cls) -> bool:
        # Isaac Lab only counts articulations on its Newton-actuator path; with implicit
        # actuators alone (no actuator adapter) the solver applies every actuator itself, so
        # nothing has to run outside the loop either, and the manager can own the decimation.
        return cls._adapter is None or super()._is_all_graphable()

    @classmethod
    def _invalidate_graph(cls) -> None:
        cls._cpu_graphs.clear()
        super()._invalidate_graph()

    @classmethod
    def clear(cls) -> None:
        cls._cpu_graphs.clear()
        super().clear()
