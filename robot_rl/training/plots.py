"""``curves.png`` from ``metrics.csv``."""

from __future__ import annotations

import csv
from pathlib import Path

PANELS = (
    ("episode return", ("episode/return",)),
    ("success rate", ("episode/success",)),
    ("reward terms (per episode)", None),  # every episode/reward/* column
    ("losses", ("loss/surrogate", "loss/value")),
    ("KL and learning rate", ("train/kl", "train/lr")),
    ("env steps / s", ("perf/fps",)),
)


def read_metrics(path: Path) -> dict[str, list[float]]:
    columns: dict[str, list[float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                columns.setdefault(key, []).append(float(value) if value not in ("", None) else float("nan"))
    return columns


def plot_panels(metrics_csv: Path, out: Path, panels, title: str = "", label=lambda key: key,
                decorate=None) -> Path:
    """A 2x3 figure of ``metrics.csv`` columns against environment steps: one panel per
    ``(name, keys)`` of ``panels`` (keys None: every ``episode/reward/*`` column), each present
    column labelled ``label(key)``; ``decorate(ax, name, shown_keys)`` adds to a panel. Returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = read_metrics(metrics_csv)
    x = data.get("env_steps", [])
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, (name, keys) in zip(axes.flat, panels):
        keys = keys or tuple(k for k in data if k.startswith("episode/reward/"))
        shown = [k for k in keys if k in data]
        for key in shown:
            ax.plot(x, data[key], label=label(key))
        ax.set_title(name)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        if len(shown) > 1:
            ax.legend(fontsize=7)
        if decorate is not None:
            decorate(ax, name, shown)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def plot_curves(metrics_csv: Path, out: Path, title: str = "") -> Path:
    """``curves.png``: six panels against environment steps; returns ``out``."""

    def log_kl(ax, name: str, shown: list[str]) -> None:
        if name.startswith("KL"):
            ax.set_yscale("log")

    return plot_panels(metrics_csv, out, PANELS, title, label=lambda key: key.split("/")[-1], decorate=log_kl)
