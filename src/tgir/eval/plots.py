"""Figures people would rather look at than read: validation curves over training (Sadeh et al.
Figure 4: top-K accuracy of MBMR vs triplet vs MBMR + attributes)."""

from __future__ import annotations

import csv
import json
from pathlib import Path


def read_val_log(run: Path) -> list[tuple[int, dict[str, float]]]:
    """(step, validation metrics) rows of a run's ``log.csv``."""
    out = []
    with open(Path(run) / "log.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row.get("val"):
                out.append((int(row["step"]), json.loads(row["val"])))
    return out


def plot_val_curves(runs: dict[str, Path], path: Path,
                    metrics: tuple[str, ...] = ("i2t R@5", "i2t R@20", "t2i R@5", "t2i R@20"),
                    title: str = "validation top-K accuracy during training") -> Path:
    """One panel per metric, one line per run; written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = {name: read_val_log(run) for name, run in runs.items()
            if (Path(run) / "log.csv").is_file()}
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics, strict=True):
        for name, rows in logs.items():
            pts = [(s, v[m]) for s, v in rows if m in v]
            if pts:
                ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker="o", ms=3,
                        label=name)
        ax.set_title(m)
        ax.set_xlabel("step")
        ax.set_ylabel("%")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
