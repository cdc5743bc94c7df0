"""Run a study: expand and validate every run, skip those already stored, run the rest with
progress, store each as it finishes, then write the report."""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from dglsim.cluster import link_times
from dglsim.errors import InvalidArgument
from dglsim.lifetime import die_with_parent
from dglsim.recipe.cluster import cluster_times
from dglsim.recipe.config import RunConfig
from dglsim.recipe.rows import stopped_short
from dglsim.study import labels
from dglsim.study.config import StudySpec, merge_axes
from dglsim.study.execute import execute_run
from dglsim.study.preflight import check_runs
from dglsim.study.profiles import resolve_compute_times
from dglsim.study.reports import write_report
from dglsim.study.store import ResultsStore, driver_lock

__all__ = ["StudyOutcome", "run_study", "caption_for"]


@dataclass(frozen=True)
class StudyOutcome:
    runs: list[RunConfig]
    executed: list[str]  # keys run by this call (the others were already stored)
    outputs: list[Path]
    store: ResultsStore


def cluster_clause(runs: list[RunConfig], profiles: list[dict] | None = None) -> str | None:
    """The simulated cluster of the simulated runs, for captions: what each module's time per
    update stands for, and the links; None when no run is simulated."""
    clauses = []
    for cfg in runs:
        if cfg.method != "simulated":
            continue
        machine = next((p for p in profiles or [] if tuple(p["seconds"]) == cfg.compute_time), None)
        clause = f"simulated cluster: {cluster_times(cfg, machine=machine).description}, {link_times(cfg.link, cfg.latency, cfg.bandwidth)[2]}"
        if clause not in clauses:
            clauses.append(clause)
    return "; ".join(clauses) if clauses else None


def caption_for(spec: StudySpec, profile: str, runs: list[RunConfig], overrides: dict[str, Any] | None = None, profiles: list[dict] | None = None) -> str:
    """What the figures show: the network, the data, the epochs, the seeds, the simulated
    cluster, and the values of each swept key that ran (a profile or --set may run only part
    of the study's grid)."""
    first = runs[0]
    per_class = "all" if first.train_per_class is None else first.train_per_class
    seeds = len({r.seed for r in runs})
    caption = (f"{spec.name}, profile {profile}: {first.arch} (K={first.k}, width {first.width or 'default'}, head {first.head}), "
               f"{first.dataset} {per_class} train images per class, {first.epochs} epochs, {seeds} seed(s)")
    grid = merge_axes(spec.settings(profile, overrides or {})[1])
    swept = [f"{key} {values}" for key, values in grid.items()]
    if swept:
        partial = any(len(grid[key]) < len(spec.grid[key]) for key in grid)
        caption += "; " + ", ".join(swept) + (" (part of the study's grid)" if partial else "")
    cluster = cluster_clause(runs, profiles)
    return caption + (f"; {cluster}" if cluster else "")


def _threads(jobs: int) -> int:
    """torch threads of each run: all of them with one job, the cores shared out among jobs."""
    return torch.get_num_threads() if jobs == 1 else max(1, (os.cpu_count() or 1) // jobs)


def execution_settings(runs: list[RunConfig], jobs: int) -> dict:
    """What changes a run's numbers beyond its config: torch's thread count (the order of
    floating-point sums), the devices, the dtype, and whether deterministic algorithms are on."""
    from dglsim.recipe.device import resolve_device

    return {"torch_threads": _threads(jobs), "devices": sorted({str(resolve_device(r.device)) for r in runs}), "dtype": "float32",
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled()}


def _worker_init(threads: int, driver_pid: int) -> None:
    die_with_parent(driver_pid)  # a killed driver leaves no worker behind
    torch.set_num_threads(threads)


def _execute(cfg: RunConfig) -> dict:
    return execute_run(cfg)


def _store(store: ResultsStore, spec: StudySpec, profile: str, cfg: RunConfig, result: dict, profiles: list[dict]) -> None:
    prov = result["provenance"] | {"modules": result["modules"]}
    if cfg.cluster == "profile":  # where and under what load the simulated cluster was measured
        prov["compute_profile"] = next((p for p in profiles if tuple(p["seconds"]) == cfg.compute_time), None)
    store.put(cfg.key(), study=spec.name, profile=profile, config=cfg.as_dict(), provenance=prov, rows=result["rows"], wall_s=result["wall_s"])
    short = stopped_short(result["rows"])
    if short:  # a result, not an error, but never a silent one
        tqdm.write(f"note: {cfg.method} run seed {cfg.seed} stopped short of its {cfg.train_config().epochs} epochs on module(s) "
              + ", ".join(f"{j} ({n} updates)" for j, n in short.items()) + ": max_reuse left nothing to train on after the producer finished", file=sys.stderr)


def run_study(
    spec: StudySpec,
    *,
    profile: str = "default",
    overrides: dict[str, Any] | None = None,
    seeds: int | None = None,
    jobs: int = 1,
    out: Path | None = None,
    on_run_stored: Callable[[RunConfig], None] | None = None,
    show_progress: bool = True,
) -> StudyOutcome:
    """Run every run of `spec` under `profile` not yet in the store at `out`/results.sqlite.

    Every run is validated before the first starts. on_run_stored(cfg) is called after each
    run is committed (tests use it to interrupt a study).
    """
    runs = spec.runs(profile, overrides or {}, seeds)
    check_runs(runs)  # every run, before the first starts
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise InvalidArgument(f"'--jobs' must be an int >= 1, got {jobs!r}")
    out = Path(out) if out is not None else Path("results") / spec.name / profile
    with driver_lock(out):
        return _run_locked(spec, runs, profile, overrides, jobs, out, on_run_stored, show_progress)


def _run_locked(spec: StudySpec, runs: list[RunConfig], profile: str, overrides: dict[str, Any] | None, jobs: int, out: Path,
                on_run_stored: Callable[[RunConfig], None] | None, show_progress: bool) -> StudyOutcome:
    store = ResultsStore(out / "results.sqlite")
    settings = execution_settings(runs, jobs)
    stored = store.execution(settings)
    if stored is not None:
        differs = ", ".join(f"{k} {stored.get(k)!r} -> {settings.get(k)!r}" for k in sorted(set(stored) | set(settings)) if stored.get(k) != settings.get(k))
        raise InvalidArgument(f"the runs in {store.path} were computed under other settings that change results ({differs}); "
                              "resume with the same --jobs and device, or choose another --out")
    runs, profiles = resolve_compute_times(runs, store, log=lambda m: print(m, file=sys.stderr))
    done = store.done_keys()
    pending = [r for r in runs if r.key() not in done]
    print(f"{spec.name} [{profile}]: {len(runs)} runs, {len(runs) - len(pending)} already stored in {store.path}, {len(pending)} to run", file=sys.stderr)
    executed: list[str] = []
    # Redraw often on a terminal, rarely into a log file.
    interval = 0.5 if sys.stderr.isatty() else 15.0
    bar = tqdm(total=len(runs), initial=len(runs) - len(pending), desc="runs", unit="run", disable=not show_progress, file=sys.stderr, mininterval=interval)
    try:
        if jobs == 1:  # a pool, even for one pending run, so that its thread count is the one recorded
            for cfg in pending:
                with tqdm(desc=labels.progress(cfg), unit="step", leave=False, disable=not show_progress, file=sys.stderr, mininterval=interval) as steps:
                    def on_steps(n: int, total: int, steps=steps) -> None:
                        steps.total = total
                        steps.update(n - steps.n)
                    result = execute_run(cfg, on_steps=on_steps)
                _store(store, spec, profile, cfg, result, profiles)
                executed.append(cfg.key())
                bar.update(1)
                if on_run_stored is not None:
                    on_run_stored(cfg)
        else:
            threads = _threads(jobs)
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init, initargs=(threads, os.getpid())) as pool:
                futures = {pool.submit(_execute, cfg): cfg for cfg in pending}
                remaining = set(futures)
                while remaining:
                    finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        cfg = futures[fut]
                        _store(store, spec, profile, cfg, fut.result(), profiles)
                        executed.append(cfg.key())
                        bar.update(1)
                        if on_run_stored is not None:
                            on_run_stored(cfg)
    except KeyboardInterrupt:
        bar.close()
        stored = len(runs) - len(pending) + len(executed)
        print(f"\ninterrupted: {stored} of {len(runs)} runs are stored in {store.path}; rerun the same command to resume", file=sys.stderr)
        raise
    bar.close()
    results = store.results([r.key() for r in runs])
    outputs = write_report(spec.name, results, out, caption_for(spec, profile, runs, overrides, profiles))
    return StudyOutcome(runs, executed, outputs, store)
