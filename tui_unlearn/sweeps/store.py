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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    """Create the sweep folder (or reuse it when its identity matches) and return sweep.json."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SWEEP_FILE
    if path.is_file():
        meta = json.loads(path.read_text(encoding="utf-8"))
        if meta.get("identity") == json.loads(json.dumps(ident, default=str)):
            return meta
        from tui_unlearn.errors import ConfigError

        raise ConfigError(
            f"{folder} holds another sweep (different method, space or settings); "
            "choose another --sweep-dir or leave it out"
        )
    meta = {"id": folder.name, "identity": ident, "created": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write_json(path, meta)
    return meta


def read_meta(folder: Path) -> dict[str, Any]:
    return json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))


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

    after = summary.get("metrics", {}).get("after", {})
    before_fm = summary.get("field_metrics", {}).get("before", {}) or {}
    before = summary.get("metrics", {}).get("before", {})
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


def read_trials(folder: Path, names: list[str], algorithm: str) -> list[Trial]:
    """Every trial session in ``folder``, oldest first, with its swept values and objectives."""
    trials = []
    for session in reversed(list_sessions(folder)):
        config = session.config()
        if config.get("algorithm") != algorithm:
            continue
        hparams = config.get("hparams", {}) or {}
        point = {n: hparams[n] if n in hparams else config.get(n) for n in names}
        summary = session.summary()
        trials.append(Trial(session, point, summary.get("status", "?"), objectives_of(summary), summary))
    return trials


def write_best_config(folder: Path, trial: Trial) -> Path:
    """The trial's config as a file ``--batch --config`` runs."""
    config = {k: v for k, v in trial.session.config().items() if not k.startswith("_")}
    path = folder / BEST_CONFIG_FILE
    atomic_write_json(path, config)
    return path
