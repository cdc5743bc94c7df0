"""Rows that every kind of run reports alike (simulated and real ranks): per-epoch training
losses, each module's updates against its budget, and each device's memory and idle time."""

from __future__ import annotations

import numpy as np

__all__ = ["loss_rows", "updates_rows", "stopped_short", "device_rows"]


def loss_rows(losses: dict[int, np.ndarray], per_epoch: int) -> list[dict]:
    """The mean training loss of each module's complete epochs, from its per-update losses."""
    rows = []
    for j, values in losses.items():
        values = np.asarray(values)  # its own dtype: the mean of float32 losses stays a float32 mean
        for epoch in range(len(values) // per_epoch):
            rows.append({"epoch": epoch + 1, "module": j, "metric": "train_loss", "value": float(values[epoch * per_epoch : (epoch + 1) * per_epoch].mean())})
    return rows


def updates_rows(done: list[int], planned: int) -> list[dict]:
    """Each module's updates and its budget. An async module with max_reuse stops short when its
    producer is done and no item is left to reuse (simulated and real alike): these rows say so."""
    return [{"module": j, "metric": "updates", "value": n} for j, n in enumerate(done)] + [{"metric": "planned_updates", "value": planned}]


def stopped_short(rows: list[dict]) -> dict[int, int]:
    """The modules of a run's rows that made fewer updates than planned: {module: updates}."""
    planned = next((r["value"] for r in rows if r["metric"] == "planned_updates"), None)
    return {r["module"]: r["value"] for r in rows if r["metric"] == "updates" and planned is not None and r["value"] < planned}


def device_rows(peaks: list[int], idle: list[float], static: tuple[int, ...]) -> list[dict]:
    """Per device: peak memory, the part that is parameters and optimizer state, and the idle
    fraction of the run (the bubble): rows every method reports alike."""
    return ([{"module": j, "metric": "peak_memory_bytes", "value": int(b)} for j, b in enumerate(peaks)]
            + [{"module": j, "metric": "static_memory_bytes", "value": int(b)} for j, b in enumerate(static)]
            + [{"module": j, "metric": "idle_fraction", "value": float(f)} for j, f in enumerate(idle)])
