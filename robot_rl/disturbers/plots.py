"""``robust.png``: the disturbers' and the curriculum's columns of ``metrics.csv``."""

from __future__ import annotations

from pathlib import Path

from robot_rl.training.plots import read_metrics

PANELS = (
    ("multiplier λ", ("hinf/lambda",)),
    ("cost per step", ("hinf/cost",)),
    ("force, N", ("hinf/force", "hinf/force_bound", "push/force")),
    ("constraint violation Ĵ(c) − η·Ĵ(‖d‖)", ("hinf/violation",)),
    ("privilege scale s and level", ("privileged/scale", "privileged/level")),
    ("success rate", ("episode/success", "privileged/success")),
)


def plot_robustness(metrics_csv: Path, out: Path, title: str = "") -> Path:
    """Six panels against environment steps (empty where a mechanism is off); returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = read_metrics(metrics_csv)
    x = data.get("env_steps", [])
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, (name, keys) in zip(axes.flat, PANELS):
        shown = [k for k in keys if k in data]
        for key in shown:
            ax.plot(x, data[key], label=key)
        if name.startswith("constraint") and shown:
            ax.axhline(0.0, color="k", lw=0.8)
        ax.set_title(name if shown else f"{name} (off)")
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        if len(shown) > 1:
            ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
