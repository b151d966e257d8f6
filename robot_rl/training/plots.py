"""``curves.png`` from ``metrics.csv``."""

from __future__ import annotations

import csv
import math
from pathlib import Path

PANELS = (
    ("episode return", ("episode/return",)),
    ("success rate", ("episode/success",)),
    ("reward terms (per episode)", "episode/reward/"),  # every episode/reward/* column
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
                decorate=None, rows: int = 2, x_keys: tuple[str, ...] = ("env_steps",)) -> Path:
    """A ``rows``x3 figure of ``metrics.csv`` columns: one panel per ``(name, keys)`` of
    ``panels`` (keys: column names, or a prefix string for every column starting with it), each
    present column labelled ``label(key)`` and drawn through its non-empty rows;
    ``decorate(ax, name, shown_keys)`` adds to a panel. The x axis is the first of ``x_keys``
    with a positive value (else the last). Returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = read_metrics(metrics_csv)
    x_key = next((k for k in x_keys if any(v > 0 for v in data.get(k, []))), x_keys[-1])
    x = data.get(x_key, [])
    fig, axes = plt.subplots(rows, 3, figsize=(15, 4 * rows))
    for ax, (name, keys) in zip(axes.flat, panels):
        if isinstance(keys, str):
            keys = tuple(k for k in data if k.startswith(keys))
        shown = [k for k in keys if k in data]
        for key in shown:
            points = [(a, b) for a, b in zip(x, data[key]) if not math.isnan(b)]
            ax.plot([a for a, _ in points], [b for _, b in points], label=label(key))
        ax.set_title(name)
        ax.set_xlabel(x_key.replace("_", " "))
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

    def label(key: str) -> str:  # reward terms keep their name (task/raw vs preference/raw)
        return key.removeprefix("episode/reward/") if key.startswith("episode/reward/") else key.split("/")[-1]

    return plot_panels(metrics_csv, out, PANELS, title, label=label, decorate=log_kl)
