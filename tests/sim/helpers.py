"""Reading per-item quantities back out of a trace."""

import numpy as np


def finishes(trace, worker):
    rows = trace.to_array()
    return rows[(rows["worker"] == worker) & (rows["action"] == "finish")]


def sojourns(trace, worker):
    """(arrival time, finish time) per item at `worker`, matched by item id."""
    rows = trace.to_array()
    mine = rows[rows["worker"] == worker]
    arrive = {int(r["item"]): r["time"] for r in mine[mine["action"] == "arrive"]}
    done = mine[mine["action"] == "finish"]
    a = np.array([arrive[int(i)] for i in done["item"]])
    return a, done["time"]


def batch_means_se(x, batches=50):
    """Standard error of the mean of a correlated series, from the spread of batch means."""
    means = np.array([b.mean() for b in np.array_split(x, batches)])
    return means.std(ddof=1) / np.sqrt(batches)
