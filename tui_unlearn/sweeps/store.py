"""A sweep on disk: a folder holding ``sweep.json`` and one session folder per trial.

The folder's name is derived from what defines the sweep (method, what varies and how,
and every other setting of the base config: model, data, steps, ...), so running the same
sweep command again finds the same folder and its finished trials: they are read back
from their sessions, never rerun. Trials are ordinary sessions (``sessions list``,
``analyze`` and the TUI read them as any other).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tui_unlearn.errors import ConfigError, DataError, first_line
from tui_unlearn.phase_names import Phase
from tui_unlearn.sessions import Session, atomic_write_json, list_sessions

SWEEP_FILE = "sweep.json"
BEST_CONFIG_FILE = "best-config.json"
COMPLETE = ("finished", "diverged")  # a result; failed or interrupted trials run again


def identity(algorithm: str, mode: str, space: dict[str, Any], base_config: dict[str, Any]) -> dict[str, Any]:
    swept = set(space)
    fixed = {k: v for k, v in sorted(base_config.items()) if k not in swept}
    if "hparams" in fixed:
        fixed["hparams"] = {k: v for k, v in sorted(fixed["hparams"].items()) if k not in swept}
    return {"algorithm": algorithm, "mode": mode, "space": space, "base": fixed}


def sweep_id(ident: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:10]
    return f"sweep-{ident['algorithm']}-{digest}"


def is_sweep_dir(path: Path) -> bool:
    return path.is_dir() and (path / SWEEP_FILE).is_file()


def list_sweeps(root: Path) -> list[Path]:
    """Sweep folders directly under ``root`` (a sessions folder), newest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if is_sweep_dir(p)]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def open_folder(folder: Path, ident: dict[str, Any]) -> dict[str, Any]:
    """Create the sweep folder (or reuse it when its identity matches) and return sweep.json.

    ConfigError (exit 2) for a folder that is a file or cannot be created or written in,
    before any trial runs; DataError (exit 3) for a sweep.json that cannot be read.
    """
    hint = "choose a folder you can write to with --sweep-dir (or leave it out)"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"the sweep folder {folder} is a file, or a part of its path is; {hint}") from None
    except OSError as error:
        raise ConfigError(f"can't create the sweep folder {folder}: {_reason(error)}; {hint}") from None
    path = folder / SWEEP_FILE
    if path.is_file():
        meta = read_meta(folder)
        if meta.get("identity") == json.loads(json.dumps(ident, default=str)):
            _probe_writable(folder, hint)
            return meta
        raise ConfigError(
            f"{folder} holds another sweep (different method, space or settings); "
            "choose another --sweep-dir or leave it out"
        )
    meta = {"id": folder.name, "identity": ident, "created": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        atomic_write_json(path, meta)
    except OSError as error:
        raise ConfigError(f"can't write in the sweep folder {folder}: {_reason(error)}; {hint}") from None
    return meta


def _probe_writable(folder: Path, hint: str) -> None:
    """Trials write sessions here: find out now, not after the first trial failed for it."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
            pass
    except OSError as error:
        raise ConfigError(f"can't write in the sweep folder {folder}: {_reason(error)}; {hint}") from None


def _reason(error: OSError) -> str:
    return " ".join((error.strerror or str(error) or type(error).__name__).split()).lower()


def read_meta(folder: Path) -> dict[str, Any]:
    """The folder's sweep.json; DataError, one line, when it cannot be read or is not a sweep's."""
    path = folder / SWEEP_FILE
    what = "remove it (its trial sessions stay; the same sweep command writes it again) or choose another folder"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(f"can't read {path}: {_reason(error)}; check its permissions") from None
    except (UnicodeDecodeError, RecursionError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise DataError(f"{path} is damaged ({first_line(error)}); {what}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("identity"), dict):
        raise DataError(f"{path} is damaged (it holds no sweep identity); {what}")
    return meta


@dataclass
class Trial:
    """One trial as its session tells it."""

    session: Session
    point: dict[str, Any]  # the swept names' values
    status: str
    objectives: dict[str, float | None] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.status in COMPLETE


def objectives_of(summary: dict[str, Any]) -> dict[str, float | None]:
    """forget_quality, holdout_parity, model_utility, utility_ratio (over the original's),
    retain_f1 (and its ratio), forget accuracy and relearning recovery of one finished run
    (None where it was not measured)."""
    from tui_unlearn.engine.stop_rules import holdout_parity

    after = summary.get("metrics", {}).get(Phase.AFTER, {})
    before_fm = summary.get("field_metrics", {}).get(Phase.BEFORE, {}) or {}
    before = summary.get("metrics", {}).get(Phase.BEFORE, {})
    mu = summary.get("model_utility")
    mu0 = before_fm.get("model_utility")
    f1, f10 = after.get("retain", {}).get("f1"), before.get("retain", {}).get("f1")
    relearn = summary.get("relearn") or {}
    out = {
        "forget_quality": summary.get("forget_quality"),
        "holdout_parity": holdout_parity(after.get("forget", {})),
        "model_utility": mu,
        "utility_ratio": mu / mu0 if isinstance(mu, (int, float)) and mu0 else None,
        # Model utility needs paraphrased and perturbed retain answers; without them, retain F1 stands in.
        "retain_f1": f1,
        "retain_f1_ratio": f1 / f10 if isinstance(f1, (int, float)) and f10 else None,
        "forget_accuracy": after.get("forget", {}).get("accuracy"),
        "relearn_recovered": relearn.get("recovered"),
    }
    return {k: (float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None) for k, v in out.items()}


def point_of(config: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """A trial's swept values, from its config.json: a method's hyperparameter or a setting."""
    hparams = config.get("hparams") or {}
    hparams = hparams if isinstance(hparams, dict) else {}
    return {n: hparams[n] if n in hparams else config.get(n) for n in names}


def trial_points(sessions: list[Session]) -> list[dict[str, Any] | None]:
    """For each session, its swept values when it is a trial of a sweep (its folder holds a
    readable sweep.json, its method the sweep's), else None."""
    sweep_of: dict[Path, tuple[list[str], Any] | None] = {}  # folder -> (swept names, method)
    out: list[dict[str, Any] | None] = []
    for session in sessions:
        folder = session.path.parent
        if folder not in sweep_of:
            sweep_of[folder] = None
            if is_sweep_dir(folder):
                try:
                    ident = read_meta(folder)["identity"]
                except DataError:  # a damaged sweep.json: its sessions keep their usual names
                    ident = {}
                space = ident.get("space")
                if isinstance(space, dict) and space:
                    sweep_of[folder] = ([str(n) for n in space], ident.get("algorithm"))
        sweep = sweep_of[folder]
        config, problem = session.read_config() if sweep else ({}, "not a trial")
        if sweep is None or problem is not None or config.get("algorithm") != sweep[1]:
            out.append(None)
        else:
            out.append(point_of(config, sweep[0]))
    return out


def read_trials(folder: Path, names: list[str], algorithm: str) -> list[Trial]:
    """Every trial session in ``folder``, oldest first, with its swept values and objectives."""
    trials = []
    for session in reversed(list_sessions(folder)):
        config = session.config()
        if config.get("algorithm") != algorithm:
            continue
        point = point_of(config, names)
        summary = session.summary()
        trials.append(Trial(session, point, summary.get("status", "?"), objectives_of(summary), summary))
    return trials


def latest_attempts(trials: list[Trial]) -> tuple[list[Trial], int]:
    """(the trials that count, how many earlier attempts were left out).

    A trial killed or failed is run again by the next run of the sweep, as a new session;
    the old one stays on disk (a session is never deleted for the user) but no longer
    counts: a point's attempt that did not finish is left out when the same point has a
    complete trial or a later attempt. Complete trials always count.
    """
    by_point: dict[str, list[int]] = {}
    for index, trial in enumerate(trials):  # oldest first
        by_point.setdefault(json.dumps(trial.point, sort_keys=True, default=str), []).append(index)
    dropped: set[int] = set()
    for indices in by_point.values():
        any_complete = any(trials[i].complete for i in indices)
        for position, i in enumerate(indices):
            later = position < len(indices) - 1
            if not trials[i].complete and (any_complete or later):
                dropped.add(i)
    return [t for i, t in enumerate(trials) if i not in dropped], len(dropped)


def write_best_config(folder: Path, trial: Trial) -> Path:
    """The trial's config as a file ``--batch --config`` runs."""
    config = {k: v for k, v in trial.session.config().items() if not k.startswith("_")}
    path = folder / BEST_CONFIG_FILE
    atomic_write_json(path, config)
    return path
