"""Run a study: expand and validate every run, skip those already stored, hand the rest to a
launcher (dglsim.study.launch), commit each outcome as it comes back (this driver is the store's
only writer), then write the report and list the failures."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from dglsim.cluster import link_times
from dglsim.errors import DataError, InvalidArgument
from dglsim.recipe.cluster import cluster_times
from dglsim.recipe.config import RunConfig
from dglsim.recipe.provenance import git_revision
from dglsim.recipe.rows import stopped_short
from dglsim.study import labels
from dglsim.study.config import StudySpec, merge_axes
from dglsim.study.launch import LauncherOptions, default_threads, inbox, make_launcher
from dglsim.study.launch.work import RunJob
from dglsim.study.preflight import check_runs
from dglsim.study.profiles import resolve_compute_times
from dglsim.study.reports import check_report_settings, write_report
from dglsim.study.store import ResultsStore, driver_lock

__all__ = ["StudyOutcome", "run_study", "caption_for"]


@dataclass(frozen=True)
class StudyOutcome:
    runs: list[RunConfig]
    executed: list[str]  # keys run and stored by this call (the others were already stored)
    outputs: list[Path]
    store: ResultsStore
    failed: list[str]  # keys of the study's runs that failed and are not stored


def cluster_clause(runs: list[RunConfig], profiles: list[dict] | None = None) -> str | None:
    """The simulated cluster of the simulated runs, for captions: what each module's time per
    update stands for, and the links; None when no run is simulated."""
    clauses = []
    for cfg in runs:
        if cfg.method not in ("simulated", "timing", "scheduled"):
            continue
        links = link_times(cfg.link, cfg.latency, cfg.bandwidth)[2]
        if cfg.method == "timing":  # each run's K changes its module times: say what they stand for, once
            clause = (f"simulated cluster: {cfg.cluster} roofline at efficiency {cfg.efficiency:g}, {links}, "
                      f"{labels.jitter(cfg)}, {cfg.allreduce} all-reduce of each module's gradients over the links")
        else:
            machine = next((p for p in profiles or [] if tuple(p["seconds"]) == cfg.compute_time), None)
            clause = f"simulated cluster: {cluster_times(cfg, machine=machine).description}, {links}"
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
    if first.method == "timing":  # a schedule alone: no data, no epochs
        caption = (f"{spec.name}, profile {profile}: the schedule of {first.arch} (depth {first.depth or 'default'}, width {first.width or 'default'}, "
                   f"head {first.head}, input {'x'.join(map(str, first.input_shape))}), {first.steps} updates per module, batch {first.batch_size} per replica, {seeds} seed(s)")
    else:
        caption = (f"{spec.name}, profile {profile}: {first.arch} (K={first.k}, width {first.width or 'default'}, head {first.head}), "
                   f"{first.dataset} {per_class} train images per class, {first.epochs} epochs, {seeds} seed(s)")
    grid = merge_axes(spec.settings(profile, overrides or {})[1])
    swept = [f"{key} {values}" for key, values in grid.items()]
    if swept:
        # against the grids the profile runs: its own ([[profiles.NAME.grid]]) when it has them
        own = spec.profiles.get(profile, {}).get("grid")
        full = merge_axes(spec.settings(profile, {})[1]) if own is not None else spec.grid
        partial = any(len(grid[key]) < len(full[key]) for key in grid)
        caption += "; " + ", ".join(swept) + (" (part of the study's grid)" if partial else "")
    cluster = cluster_clause(runs, profiles)
    return caption + (f"; {cluster}" if cluster else "")


def execution_settings(runs: list[RunConfig], threads: int, *, here: bool = True) -> dict:
    """What changes a run's numbers beyond its config: torch's thread count (the order of
    floating-point sums), the devices, the dtype, and whether deterministic algorithms are on.
    Runs that execute `here` record their devices as this machine resolves them; runs on other
    machines (ray, slurm) the devices as declared, which each run's provenance then resolves."""
    from dglsim.recipe.device import resolve_device

    devices = sorted({str(resolve_device(r.device)) if here else r.device for r in runs})
    return {"torch_threads": threads, "devices": devices, "dtype": "float32",
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled()}


def _commit(store: ResultsStore, outcome: dict, cfg: RunConfig, profiles: list[dict]) -> bool:
    """Commit one worker outcome (dglsim.study.launch.work.run_job) of the run `cfg`; True when
    it is a stored run, False when a failure."""
    key, where = outcome["key"], {"study": outcome["study"], "profile": outcome["profile"], "config": outcome["config"]}
    if outcome["status"] != "done":
        store.put_failure(key, **where, error=outcome["error"], host=outcome.get("host"), launcher=outcome.get("launcher"))
        tqdm.write(f"run failed on {outcome.get('host') or 'an unknown host'} ({labels.progress(cfg)}): " + outcome["error"].strip().splitlines()[-1], file=sys.stderr)
        return False
    result = outcome["result"]
    prov = result["provenance"] | {"modules": result["modules"]}
    if cfg.cluster == "profile":  # where and under what load the simulated cluster was measured
        prov["compute_profile"] = next((p for p in profiles if tuple(p["seconds"]) == cfg.compute_time), None)
    store.put(key, **where, provenance=prov, rows=result["rows"], wall_s=result["wall_s"])
    short = stopped_short(result["rows"])
    if short:  # a result, not an error, but never a silent one
        tqdm.write(f"note: {cfg.method} run seed {cfg.seed} stopped short of its {cfg.train_config().epochs} epochs on module(s) "
                   + ", ".join(f"{j} ({n} updates)" for j, n in short.items()) + ": max_reuse left nothing to train on after the producer finished", file=sys.stderr)
    return True


def check_revisions(store: ResultsStore, keys: list[str], running_now: bool, allow_mixed: bool) -> None:
    """One report, one code revision: the stored runs of `keys` and, when runs are to execute,
    this checkout's revision must agree unless `allow_mixed` (--allow-mixed-revisions)."""
    counts = store.revisions(keys)
    if running_now:
        counts.setdefault(git_revision(), 0)
    if len(counts) > 1 and not allow_mixed:
        shown = ", ".join(f"{rev} ({n} stored run(s))" for rev, n in counts.items())
        raise InvalidArgument(f"the results in {store.path} would mix code revisions: {shown}, and this code is {git_revision()}; "
                              "one report must come from one revision: choose another --out, or pass --allow-mixed-revisions")


def run_study(
    spec: StudySpec,
    *,
    profile: str = "default",
    overrides: dict[str, Any] | None = None,
    seeds: int | None = None,
    jobs: int = 1,
    out: Path | None = None,
    launcher: str = "local",
    launcher_options: dict[str, Any] | None = None,
    retry_failed: bool = False,
    allow_mixed_revisions: bool = False,
    on_run_stored: Callable[[RunConfig], None] | None = None,
    show_progress: bool = True,
) -> StudyOutcome:
    """Run every run of `spec` under `profile` not yet in the store at `out`/results.sqlite, on
    `launcher` (dglsim.study.launch) with the study's [launcher] table updated by `launcher_options`.

    Every run is validated before the first starts. A run that fails is recorded with its
    traceback and the study goes on; failed runs are rerun only with `retry_failed`.
    on_run_stored(cfg) is called after each run is committed (tests use it to interrupt a study).
    """
    runs = spec.runs(profile, overrides or {}, seeds)
    check_runs(runs)  # every run, before the first starts
    check_report_settings(spec.name, spec.report_settings(profile))
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise InvalidArgument(f"'--jobs' must be an int >= 1, got {jobs!r}")
    options = LauncherOptions.from_dict(spec.launcher | (launcher_options or {}))
    made = make_launcher(launcher, options, jobs=jobs, threads=options.cpus or default_threads(jobs))
    out = Path(out) if out is not None else Path("results") / spec.name / profile
    with driver_lock(out):
        return _run_locked(spec, runs, profile, overrides, made, out, retry_failed, allow_mixed_revisions, on_run_stored, show_progress)


def _run_locked(spec: StudySpec, runs: list[RunConfig], profile: str, overrides: dict[str, Any] | None, launcher, out: Path,
                retry_failed: bool, allow_mixed: bool, on_run_stored: Callable[[RunConfig], None] | None, show_progress: bool) -> StudyOutcome:
    store = ResultsStore(out / "results.sqlite")
    settings = execution_settings(runs, launcher.threads, here=launcher.name == "local")
    stored = store.execution(settings)
    if stored is not None:
        differs = ", ".join(f"{k} {stored.get(k)!r} -> {settings.get(k)!r}" for k in sorted(set(stored) | set(settings)) if stored.get(k) != settings.get(k))
        raise InvalidArgument(f"the runs in {store.path} were computed under other settings that change results ({differs}); "
                              "resume with the same --jobs (or [launcher] cpus) and device, or choose another --out")
    runs, profiles = resolve_compute_times(runs, store, log=lambda m: print(m, file=sys.stderr))
    by_key = {r.key(): r for r in runs}
    # Outcomes that workers of an earlier driver left behind: commit them before deciding what to run.
    for outcome in inbox.outcomes(out):
        _commit(store, outcome, by_key.get(outcome["key"]) or RunConfig.from_dict(outcome["config"], where=f"{out}/.inbox"), profiles)
        inbox.remove_outcome(out, outcome["key"])
    inbox.clear_stale_running(out)
    done = store.done_keys()
    failed = set(store.failures(list(by_key)).get("key", []))
    pending = [r for r in runs if r.key() not in done and (retry_failed or r.key() not in failed)]
    check_revisions(store, list(by_key), bool(pending), allow_mixed)
    skipped = len(failed - done) if not retry_failed else 0
    print(f"{spec.name} [{profile}]: {len(runs)} runs, {len(runs) - len(pending) - skipped} already stored in {store.path}, "
          + (f"{skipped} failed before (--retry-failed reruns them), " if skipped else "") + f"{len(pending)} to run on launcher {launcher.name}", file=sys.stderr)
    executed: list[str] = []
    # Redraw often on a terminal, rarely into a log file.
    interval = 0.5 if sys.stderr.isatty() else 15.0
    bar = tqdm(total=len(runs), initial=len(runs) - len(pending), desc="runs", unit="run", disable=not show_progress, file=sys.stderr, mininterval=interval)

    @contextlib.contextmanager
    def step_bar(job: RunJob):
        with tqdm(desc=labels.progress(job.cfg), unit="step", leave=False, disable=not show_progress, file=sys.stderr, mininterval=interval) as steps:
            def on_steps(n: int, total: int) -> None:
                steps.total = total
                steps.update(n - steps.n)
            yield on_steps

    newly_failed = 0
    try:
        with launcher:
            launcher.step_progress = step_bar
            launcher.submit([RunJob(cfg, spec.name, profile, str(out), launcher.threads, launcher.name) for cfg in pending])
            while launcher.outstanding:
                for outcome in launcher.wait(timeout=1.0):
                    if outcome["status"] == "refused":  # bad input: the same for every run, so the study stops with its message
                        raise {"DataError": DataError}.get(outcome["error_type"], InvalidArgument)(outcome["error"])
                    if _commit(store, outcome, by_key[outcome["key"]], profiles):
                        executed.append(outcome["key"])
                        if on_run_stored is not None:
                            on_run_stored(by_key[outcome["key"]])
                    else:
                        newly_failed += 1
                    inbox.remove_outcome(out, outcome["key"])
                    bar.update(1)
                running = min(inbox.running_count(out), launcher.outstanding)
                bar.set_postfix_str(f"running {running}, failed {newly_failed}, pending {launcher.outstanding - running}", refresh=False)
    except KeyboardInterrupt:
        bar.close()
        n = len(store.done_keys() & set(by_key))
        print(f"\ninterrupted: {n} of {len(runs)} runs are stored in {store.path}; rerun the same command to resume", file=sys.stderr)
        raise
    bar.close()
    check_revisions(store, list(by_key), False, allow_mixed)  # workers may have run other code than this checkout
    failures = store.failures(list(by_key))
    done_keys = [k for k in by_key if k in store.done_keys()]
    outputs: list[Path] = []
    if done_keys:
        outputs = write_report(spec.name, store.results(done_keys), out, caption_for(spec, profile, runs, overrides, profiles), spec.report_settings(profile))
    failures_csv = out / "failures.csv"
    if len(failures):
        failures.to_csv(failures_csv, index=False)
        outputs.append(failures_csv)
        print(f"{len(failures)} of {len(runs)} runs failed (tracebacks in {failures_csv}); the report covers the {len(done_keys)} stored runs; "
              "rerun with --retry-failed to run them again", file=sys.stderr)
    else:
        failures_csv.unlink(missing_ok=True)
    return StudyOutcome(runs, executed, outputs, store, list(failures.get("key", [])))
