"""Hyperparameter sweeps: a grid, or Optuna's multi-objective sampler, over one method.

``run_sweep`` turns a base config into trials (each an ordinary session inside the sweep
folder), skips the trials a previous run of the same sweep already finished, runs the rest
(``parallel`` at a time where memory allows) and returns a :class:`SweepReport`: the
trials, the Pareto front of forgetting (forget quality, or holdout parity without an
oracle) against model utility, and the best configuration, written as a config file.
Optuna does the sampling (TPE, which handles several objectives); this package only feeds
it the finished trials and runs what it asks for.

With ``storage`` the study lives in Optuna's storage instead (``sweeps.study``): any number
of workers, here or on other machines, run the same command and draw trials from it; each
worker's sessions stay in its own sweep folder, and the report covers every worker's trials.
Trials run one after another in this process share what does not change between them
(``engine.warm``); ``parallel`` > 1 runs them as subprocesses.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from tui_unlearn.errors import ConfigError, ExitCode, UnlearnError
from tui_unlearn.sweeps.report import WITH_ORACLE, WITHOUT_ORACLE, SweepReport
from tui_unlearn.sweeps.runner import EarlyFailure, TrialResult
from tui_unlearn.sweeps.store import is_sweep_dir, list_sweeps, read_trials, write_best_config

__all__ = ["run_sweep", "SweepReport", "is_sweep_dir", "list_sweeps", "sweep_folder"]


def _plan(base: Any, grid_items: list[str], space_items: list[str], trials: int | None):
    """(algorithm, resolved base, mode, space description, grid points or Optuna space)."""
    from tui_unlearn.algorithms import get_algorithm
    from tui_unlearn.config import resolve
    from tui_unlearn.sweeps import space as sp

    algorithm = get_algorithm(base.algorithm)
    resolved = resolve(base)
    if grid_items and trials:
        raise ConfigError("give either --grid (every combination) or --trials N (a sampler), not both")
    if grid_items:
        if space_items:
            raise ConfigError("--space sets ranges for --trials; a grid lists its values with --grid")
        grid = sp.parse_grid(algorithm, grid_items)
        return algorithm, resolved, "grid", sp.describe(grid), sp.grid_points(grid)
    if not trials:
        raise ConfigError("say what to sweep: --grid NAME=V1,V2,... (repeatable) or --trials N")
    space = {**sp.default_space(algorithm, resolved.lr), **sp.parse_space(algorithm, space_items)}
    return algorithm, resolved, "optuna", sp.describe(space), space


def sweep_folder(base: Any, grid_items: list[str], space_items: list[str], trials: int | None, root: Path) -> Path:
    """Where this sweep lives under ``root`` (the same for the same sweep command)."""
    from tui_unlearn.sweeps.store import identity, sweep_id

    algorithm, _, mode, described, _ = _plan(base, grid_items, space_items, trials)
    return root / sweep_id(identity(algorithm.name, mode, described, base.defining_dict()))


def run_sweep(
    base: Any,
    *,
    root: Path,
    grid_items: list[str] = (),  # type: ignore[assignment]
    space_items: list[str] = (),  # type: ignore[assignment]
    trials: int | None = None,
    parallel: int = 1,
    folder: Path | None = None,
    log: Callable[[str], None] = lambda line: None,
    storage: str | None = None,
    study_name: str | None = None,
    heartbeat: int | None = None,
    isolate: bool = False,
) -> SweepReport:
    """Run (or resume) the sweep and report it; ``folder`` overrides where it lives.

    ``storage``: an Optuna storage (``sweeps.study.open_storage``) holding the study
    ``study_name`` (default: the sweep folder's name) that this process works on as one of
    its workers; ``heartbeat``: seconds between a running trial's heartbeats there.
    ``isolate``: every trial in its own process (one after another) instead of this one."""
    from tui_unlearn.engine.warm import WarmStart
    from tui_unlearn.sweeps import space as sp
    from tui_unlearn.sweeps.runner import parallel_that_fits, run_trials
    from tui_unlearn.sweeps.store import identity, open_folder, sweep_id

    grid_items, space_items = list(grid_items), list(space_items)
    algorithm, resolved, mode, described, plan = _plan(base, grid_items, space_items, trials)
    ident = identity(algorithm.name, mode, described, base.defining_dict())
    shared_storage = None
    if storage is not None:
        from tui_unlearn.sweeps.study import DEFAULT_HEARTBEAT, open_storage

        if mode == "grid":
            raise ConfigError("--storage shares an Optuna study: give --trials N (and --space), not --grid")
        if parallel > 1:
            raise ConfigError(
                "--storage: start more workers (the same command, here or on other machines) instead of --parallel"
            )
        heartbeat = heartbeat or DEFAULT_HEARTBEAT
        shared_storage = open_storage(storage, heartbeat)  # a bad URL fails before any folder is made
    folder = folder or root / sweep_id(ident)
    open_folder(folder, ident)
    names = list(described)
    done = [t for t in read_trials(folder, names, algorithm.name) if t.complete]
    parallel = parallel_that_fits(parallel, resolved, algorithm.needs_reference, log)

    early: list[EarlyFailure] = []
    ran: list[Any] = []
    warm = WarmStart()

    def on_done(i: int, config: Any, session_id: TrialResult) -> None:
        from tui_unlearn.sessions import Session
        from tui_unlearn.sweeps.store import objectives_of

        ran.append(session_id)
        shown = ", ".join(f"{n}={_value(config, n)}" for n in names)
        if isinstance(session_id, EarlyFailure):
            early.append(session_id)
            log(f"trial {shown}: failed before a session existed: {session_id.reason}")
            return
        summary = Session(folder / session_id).summary()
        o = objectives_of(summary)
        numbers = ", ".join(
            f"{k.replace('_', ' ')} {v:.3g}"
            for k, v in o.items()
            if k in ("forget_quality", "holdout_parity", "model_utility") and v is not None
        )
        log(f"trial {shown}: {summary.get('status')}, {numbers or 'no objectives measured'} (session {session_id})")

    try:
        if mode == "grid":
            todo = [p for p in plan if not any(t.point == p for t in done)]
            log(
                f"sweep {folder.name}: {len(plan)} grid points, {len(plan) - len(todo)} already done, {len(todo)} to run"
            )
            run_trials(
                [sp.trial_config(base, algorithm, p) for p in todo],
                folder,
                parallel,
                on_done,
                warm=warm,
                isolate=isolate,
            )
        elif shared_storage is not None:
            assert trials is not None  # _plan: the Optuna mode has a count
            study = _shared(
                base,
                algorithm,
                resolved,
                plan,
                ident,
                trials,
                folder,
                names,
                log,
                on_done,
                warm,
                isolate,
                shared_storage,
                study_name or folder.name,
                heartbeat,
            )
        else:
            _optuna(base, algorithm, resolved, plan, done, trials, parallel, folder, names, log, on_done, warm, isolate)
    except KeyboardInterrupt:  # Ctrl-C: the trial running is interrupted (its session says so), no other starts
        log(f"sweep {folder.name} interrupted: its finished trials are kept; the same command resumes it")
        raise

    if early and len(early) == len(ran):
        # Nothing on disk would tell why; the first reason (and its exit code) stands for all.
        error = UnlearnError(
            f"every trial failed before a session existed ({len(early)} of {len(ran)}): {early[0].reason}"
        )
        try:
            error.exit_code = ExitCode(early[0].exit_code)
        except ValueError:  # a child process killed by a signal, or some other code
            error.exit_code = ExitCode.RUN_FAILED
        raise error
    if shared_storage is not None:
        report = SweepReport.of_study(folder, study, utility_floor=resolved.utility_floor)
    else:
        report = SweepReport.of(folder, utility_floor=resolved.utility_floor)
    report.early_failures = [f.reason for f in early]
    if report.best is not None:
        report.best_config = write_best_config(folder, report.best)
    return report


def _objectives(resolved: Any) -> tuple[tuple[str, str], ...]:
    has_oracle = bool(resolved.oracle) and resolved.oracle.strip().lower() != "none"
    return WITH_ORACLE if has_oracle else WITHOUT_ORACLE


def _shared(
    base,
    algorithm,
    resolved,
    space,
    ident,
    trials,
    folder,
    names,
    log,
    on_done,
    warm,
    isolate,
    storage,
    name,
    heartbeat,
):
    """This process as one worker of the study ``name`` in ``storage``; returns the study."""
    import optuna

    from tui_unlearn.sessions import Session
    from tui_unlearn.sweeps import space as sp
    from tui_unlearn.sweeps import study as shared
    from tui_unlearn.sweeps.runner import run_in_process, run_subprocess
    from tui_unlearn.sweeps.store import objectives_of

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objectives = _objectives(resolved)
    directions = ["maximize" if goal == "max" else "minimize" for _, goal in objectives]
    # Workers must not draw the same points: each its own seed (the sweep's, this host and process).
    seed = hash((base.seed, socket.gethostname(), os.getpid())) % 2**31
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(3, min(10, trials // 3)), constant_liar=True)
    study = shared.open_study(storage, name, directions, sampler, ident, trials, log)
    distributions = sp.optuna_distributions(space)

    def run_point(trial, point):
        config = sp.trial_config(base, algorithm, point)

        def on_session(session_id: str, path: str) -> None:
            trial.set_user_attr("session_id", session_id)
            trial.set_user_attr("session_path", path)

        result = run_subprocess(config, folder) if isolate else run_in_process(config, folder, warm, on_session)
        on_done(0, config, result)
        trial.set_user_attr("config", config.to_dict())
        if isinstance(result, EarlyFailure):
            trial.set_user_attr("status", "failed")
            return None, result.reason
        session = Session(folder / result)
        summary = session.summary()
        found = objectives_of(summary)
        trial.set_user_attr("session_id", session.id)
        trial.set_user_attr("session_path", str(session.path))
        trial.set_user_attr("status", summary.get("status", "?"))
        trial.set_user_attr("objectives", found)
        complete = summary.get("status") in ("finished", "diverged")
        values = shared.objective_values(found, [n for n, _ in objectives]) if complete else None
        return values, None if values else (summary.get("error") or f"the trial ended {summary.get('status')}")

    ran = shared.work(study, run_point, distributions, heartbeat if shared.has_heartbeat(storage) else None, log)
    log(f"study {name}: this worker ran {ran} trial(s); {shared.counts(study)}")
    return study


def _optuna(
    base, algorithm, resolved, space, done, trials, parallel, folder, names, log, on_done, warm, isolate
) -> None:
    import optuna

    from tui_unlearn.sweeps import space as sp
    from tui_unlearn.sweeps.runner import run_trials

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    has_oracle = bool(resolved.oracle) and resolved.oracle.strip().lower() != "none"
    objectives = WITH_ORACLE if has_oracle else WITHOUT_ORACLE
    directions: list[Literal["minimize", "maximize"]] = [
        "maximize" if goal == "max" else "minimize" for _, goal in objectives
    ]
    distributions = sp.optuna_distributions(space)
    sampler = optuna.samplers.TPESampler(
        seed=base.seed, n_startup_trials=max(3, min(10, trials // 3)), constant_liar=parallel > 1
    )
    study = optuna.create_study(directions=directions, sampler=sampler)

    def values(objs: dict[str, float | None]) -> list[float] | None:
        out = []
        for name, _ in objectives:
            v = objs.get(name)
            if name == "model_utility" and v is None:
                v = objs.get("retain_f1")  # no perturbed retain answers: retain F1 stands in, as in the report
            if v is None:
                return None
            # p-values span dozens of decades: the sampler sees their logarithm.
            out.append(math.log10(max(v, 1e-300)) if name == "forget_quality" else v)
        return out

    for t in done:  # what earlier runs of this sweep finished
        v = values(t.objectives)
        try:
            study.add_trial(
                optuna.trial.create_trial(
                    params=t.point,
                    distributions=distributions,
                    values=v,
                    state=optuna.trial.TrialState.COMPLETE if v else optuna.trial.TrialState.FAIL,
                )
            )
        except ValueError:
            continue  # its values lie outside the space (cannot happen for the same sweep)
    todo = max(0, trials - len(done))
    log(f"sweep {folder.name}: {trials} trials asked, {len(done)} already done, {todo} to run")
    while todo > 0:
        batch = [study.ask(distributions) for _ in range(min(parallel, todo))]
        configs = [sp.trial_config(base, algorithm, t.params) for t in batch]
        ids = run_trials(configs, folder, parallel, on_done, warm=warm, isolate=isolate)
        for trial, session_id in zip(batch, ids):
            found = [t for t in read_trials(folder, names, algorithm.name) if t.session.id == session_id]
            v = values(found[0].objectives) if found and found[0].complete else None
            study.tell(trial, v) if v else study.tell(trial, state=optuna.trial.TrialState.FAIL)
        todo -= len(batch)


def _value(config: Any, name: str) -> Any:
    value = config.hparams.get(name, getattr(config, name, None))
    return f"{value:g}" if isinstance(value, float) else value
