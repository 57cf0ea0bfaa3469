"""A sweep whose study lives in Optuna's storage, shared by any number of workers.

``--storage`` names where: a path (an SQLite file, for workers on one machine), a database
URL Optuna's ``RDBStorage`` takes (``postgresql://...``, ``mysql+pymysql://...``, for workers
on several machines), or ``journal:PATH`` (Optuna's journal file, for a filesystem every
worker mounts, no database needed). Every worker runs the same sweep command; each draws its
trials from the study, so each trial runs once, and the report's Pareto front is computed
from every worker's complete trials.

How the trial count stays exact: the worker that creates the study (creation is atomic in
the storage) enqueues one waiting trial per requested trial; workers only run trials taken
from that queue, which Optuna pops atomically. A worker that dies leaves its trial RUNNING
without a heartbeat; once it is stale, Optuna's ``RetryHeartbeatStaleTrialCallback`` puts a
copy (same parameters) back in the queue and another worker runs it. A journal file has no
heartbeat: there a dead worker's trial stays unfinished (the report shows it as running).

Each trial's user attributes record what the report needs without the session folder
(which stays where its worker wrote it): the host, the session's id and path, its status,
objectives and config.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_unlearn.errors import ConfigError, first_line

JOURNAL_PREFIX = "journal:"
DEFAULT_HEARTBEAT = 60  # seconds between a running trial's heartbeats; stale after two missed
SLOT = "slot"  # user attribute of the study's queued trials (the requested count)
SURPLUS = "surplus"  # a trial Optuna made when another worker took the last queued one: never run


class TrialFailed(Exception):
    """A trial that ended without objectives (its session says why)."""


def storage_kind(url: str) -> str:
    """ "journal", "rdb" (a URL with a scheme) or "sqlite" (a path)."""
    if url.startswith(JOURNAL_PREFIX):
        return "journal"
    return "rdb" if "://" in url else "sqlite"


def open_storage(url: str, heartbeat: int = DEFAULT_HEARTBEAT) -> Any:
    """Optuna's storage for ``--storage URL``; ConfigError, one line, when it cannot be opened."""
    import optuna
    from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend

    hint = (
        "give a path (an SQLite file), a database URL (postgresql://user:password@host/db, "
        "mysql+pymysql://...) or journal:PATH (a journal file on a shared filesystem)"
    )
    url = url.strip()
    kind = storage_kind(url)
    if not url or (kind == "journal" and not url[len(JOURNAL_PREFIX) :].strip()):
        raise ConfigError(f"--storage is empty; {hint}")
    try:
        if kind == "journal":
            path = Path(url[len(JOURNAL_PREFIX) :]).expanduser()
            if not path.parent.is_dir():
                raise ConfigError(f"--storage {url}: the folder {path.parent} does not exist; create it or {hint}")
            return JournalStorage(JournalFileBackend(str(path)))
        if kind == "sqlite":
            path = Path(url).expanduser().resolve()
            if path.is_dir():
                raise ConfigError(f"--storage {url} is a folder; name a file in it (e.g. {path / 'study.db'})")
            if not path.parent.is_dir():
                raise ConfigError(f"--storage {url}: the folder {path.parent} does not exist; create it or {hint}")
            url = f"sqlite:///{path}"
        # SQLite: wait for another worker's write instead of failing on a locked file.
        engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(),
            )
    except ConfigError:
        raise
    except ModuleNotFoundError as error:
        raise ConfigError(
            f"--storage {url}: its database driver is not installed ({error.name}); install it (e.g. pip install "
            "psycopg2-binary for PostgreSQL, pymysql for MySQL)"
        ) from None
    except Exception as error:  # noqa: BLE001 - SQLAlchemy and drivers raise many kinds; all mean "cannot open"
        raise ConfigError(f"--storage {url}: can't open it ({first_line(error)}); {hint}") from None


def _identity_text(ident: dict[str, Any]) -> str:
    return json.dumps(ident, sort_keys=True, default=str)


def open_study(
    storage: Any, name: str, directions: list[Any], sampler: Any, ident: dict[str, Any], trials: int, log
) -> Any:
    """Create the study (and queue ``trials`` trials) or join it; ConfigError when the study
    of that name holds another sweep."""
    import optuna

    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=directions, sampler=sampler)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        theirs = study.user_attrs.get("identity")
        if theirs is not None and theirs != _identity_text(ident):
            raise ConfigError(
                f"study {name} holds another sweep (different method, space or settings); "
                "give another --study or run the command that made it"
            ) from None
        asked = int(study.user_attrs.get("trials", 0))
        if trials > asked:  # the same sweep with more trials: queue the difference
            study.set_user_attr("trials", trials)
            _queue(study, trials - asked)
            log(f"study {name}: {asked} trials asked before, now {trials}")
        log(f"study {name}: joined ({counts(study)})")
        return study
    study.set_user_attr("identity", _identity_text(ident))
    study.set_user_attr("trials", trials)
    _queue(study, trials)
    log(f"study {name}: created with {trials} trials to run")
    return study


def _queue(study: Any, n: int) -> None:
    for _ in range(n):
        study.enqueue_trial({}, user_attrs={SLOT: True})


def counts(study: Any) -> str:
    from collections import Counter

    states = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SURPLUS))
    return ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "no trials"


def has_heartbeat(storage: Any) -> bool:
    """Whether a dead worker's trial is noticed (Optuna's RDB storage beats; its journal does not)."""
    from optuna.storages import RDBStorage

    return isinstance(storage, RDBStorage) and storage.heartbeat_interval is not None


def suggest(trial: Any, name: str, distribution: Any) -> Any:
    """The trial's value of ``name`` (fixed when the trial was queued with it, as a retry is)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log)
    return trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log)


def objective_values(objectives: dict[str, float | None], names: list[str]) -> list[float] | None:
    """What the sampler sees: forget quality as log10 (p-values span dozens of decades);
    retain F1 stands in for model utility where that was not measured."""
    out = []
    for name in names:
        v = objectives.get(name)
        if name == "model_utility" and v is None:
            v = objectives.get("retain_f1")
        if v is None:
            return None
        out.append(math.log10(max(v, 1e-300)) if name == "forget_quality" else v)
    return out


def work(
    study: Any,
    run_point: Callable[[Any, dict[str, Any]], tuple[list[float] | None, str | None]],
    distributions: dict[str, Any],
    heartbeat: int | None,
    log: Callable[[str], None],
) -> int:
    """Run the study's queued trials until none is left and none runs elsewhere (or, without
    a heartbeat, none is left). ``run_point(trial, point)`` runs one and returns its values
    (None: failed, with the reason). Returns how many trials this worker ran."""
    import optuna
    from optuna.trial import TrialState

    ran = 0

    def objective(trial: Any) -> list[float]:
        nonlocal ran
        if not trial.user_attrs.get(SLOT):
            trial.set_user_attr(SURPLUS, True)
            raise optuna.TrialPruned("every queued trial was taken")
        point = {name: suggest(trial, name, d) for name, d in distributions.items()}
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("status", "running")
        ran += 1
        values, reason = run_point(trial, point)
        if values is None:
            raise TrialFailed(reason or "no objectives measured")
        return values

    waited = False
    while True:
        if heartbeat:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)  # a dead worker's trial goes back in the queue
        trials = study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in trials):
            waited = False
            study.optimize(objective, n_trials=1, catch=(TrialFailed,))
            continue
        running = [t for t in trials if t.state == TrialState.RUNNING]
        if not running or not heartbeat:
            return ran
        if not waited:
            log(f"waiting for {len(running)} trial(s) running on other workers (a dead worker's trial is retried)")
            waited = True
        time.sleep(max(1.0, heartbeat / 2))


@dataclass
class StudySession:
    """A trial's session as the study records it (its folder may be on another machine)."""

    id: str
    path: Path
    host: str | None
    stored_config: dict[str, Any] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        return dict(self.stored_config)

    def summary(self) -> dict[str, Any]:
        return {}


def study_trials(study: Any) -> list[Any]:
    """The study's trials as ``store.Trial``s, oldest first: queued and surplus ones left out;
    a trial whose worker vanished reads "interrupted"."""
    from optuna.trial import TrialState

    from tui_unlearn.sweeps.store import Trial

    out = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        if t.state == TrialState.WAITING or attrs.get(SURPLUS) or t.state == TrialState.PRUNED:
            continue
        status = attrs.get("status") or t.state.name.lower()
        if t.state == TrialState.FAIL and status == "running":
            status = "interrupted"  # its worker stopped beating: a retry is queued
        session = StudySession(
            attrs.get("session_id") or f"trial-{t.number}",
            Path(attrs.get("session_path") or ""),
            attrs.get("host"),
            attrs.get("config") or {},
        )
        objectives = attrs.get("objectives") or {}
        out.append(Trial(session, dict(t.params), status, objectives))  # type: ignore[arg-type]
    return out
