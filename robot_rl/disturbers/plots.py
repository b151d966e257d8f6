"""``robust.png``: the disturbers' and the curriculum's columns of ``metrics.csv``."""

from __future__ import annotations

from pathlib import Path

from robot_rl.training.plots import plot_panels

PANELS = (
    ("multiplier λ", ("hinf/lambda",)),
    ("cost per step", ("hinf/cost",)),
    ("force, N", ("hinf/force", "hinf/force_bound", "push/force")),
    ("constraint violation Ĵ(c) − η·Ĵ(‖d‖)", ("hinf/violation",)),
    ("privilege scale s and level", ("privileged/scale", "privileged/level")),
    ("success rate", ("episode/success", "privileged/success")),
)


def plot_robustness(metrics_csv: Path, out: Path, title: str = "") -> Path:
    """Six panels against environment steps (marked "off" where a mechanism is off); returns ``out``."""

    def mark(ax, name: str, shown: list[str]) -> None:
        if name.startswith("constraint") and shown:
            ax.axhline(0.0, color="k", lw=0.8)
        if not shown:
            ax.set_title(f"{name} (off)")

    return plot_panels(metrics_csv, out, PANELS, title, decorate=mark)
