"""PNG of the training loss and val recalls per epoch (matplotlib Agg: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_training_curves(history: list[dict], path: Path) -> Path:
    epochs = [row["epoch"] for row in history]
    figure, (loss_axis, recall_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, [row["train_loss"] for row in history], marker="o")
    loss_axis.set(title="training loss (sum of terms)", xlabel="epoch")
    for direction in ("t2i", "i2t"):
        for k in ("R@1", "R@10"):
            recall_axis.plot(
                epochs,
                [row["val"][direction][k] for row in history],
                marker="o",
                label=f"val {direction} {k}",
            )
    recall_axis.set(title="validation recall (%)", xlabel="epoch")
    recall_axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
