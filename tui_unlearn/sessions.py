"""A session is a folder: config.json, events.jsonl, summary.json and, optionally, model/.

Writes are atomic (temp file + rename; the model folder too) and events are appended line
by line, so a run killed at any moment leaves a readable session. A session whose summary
still says "running" but whose process is gone is reported as "interrupted".

Every reader checks what it reads: a summary that cannot be used makes the session
``unreadable`` (with the reason) instead of raising, and event or example lines that are not
what they should be are skipped and counted.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from tui_unlearn.atomic import write_folder_atomically
from tui_unlearn.errors import ConfigError, first_line
from tui_unlearn.paths import is_safe_name
from tui_unlearn.session_files import (  # noqa: F401  (the file names are part of this module's API)
    CONFIG_FILE,
    EVENTS_FILE,
    EXAMPLES_FILE,
    SUMMARY_FILE,
    JsonLines,
    event_problem,
    example_problem,
    read_json_lines,
    read_json_object,
    summary_problem,
)

MODEL_DIR = "model"
# A model being saved lives here until it is complete; readers never look at it.
MODEL_TMP_PREFIX = f".{MODEL_DIR}.tmp-"
# atomic_write_text's temp files end so; one killed mid-write stays until its session is resumed.
TMP_SUFFIX = ".tmp"
LOCK_WAIT_S = 2.0  # how long a delete or a resume waits for another one's brief hold on a session
PROGRESS_EVERY_S = 1.0  # at most one progress write a second (each is a small fsync'd file)


class Status(StrEnum):
    """How a session ended (or that it has not). Equal to the plain strings in summary.json."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    DIVERGED = "diverged"
    UNREADABLE = "unreadable"  # said by readers of a summary they cannot use; never written


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def new_session_id(label: str) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe_label = "".join(c if c.isalnum() or c in "_-" else "-" for c in label)[:32] or "run"
    return f"{stamp}-{safe_label}-{secrets.token_hex(2)}"


def _pid_alive(pid: int, started: float | None = None) -> bool:
    """Whether process ``pid`` exists and, when ``started`` (its creation time, epoch
    seconds, as :func:`_process_started` recorded it) is known, is that same process: pids
    are reused, and a live stranger must not make a dead run look like it is going."""
    if pid <= 0:  # 0 and negatives name process groups, not a process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except (OverflowError, OSError):
        return False
    if started is None:
        return True
    now = _process_started(pid)
    return now is None or abs(now - started) < 1.0  # creation times are rounded to ticks


def _process_started(pid: int) -> float | None:
    """Creation time of process ``pid`` (epoch seconds), or None where it cannot be read."""
    import psutil

    try:
        return round(psutil.Process(pid).create_time(), 2)
    except (psutil.Error, OSError):
        return None


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as null: JSON has no such numbers (a diverged run's
    losses, a damaged summary), and ``--json`` output must parse with any JSON reader."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


@contextmanager
def session_lock(path: Path) -> Iterator[None]:
    """Hold ``path`` (a session folder) while deciding who writes it: a delete and a resume, or
    two resumes, started at once must not both find the session free. The hold is an advisory
    lock on the folder itself (no lock file is left behind), taken only for that decision.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows has no flock: the status check alone decides
        yield
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise ConfigError(f"session {path.name} is gone (deleted by another process?)") from None
    except OSError as exc:
        raise ConfigError(f"cannot open the session folder {path}: {exc.strerror or first_line(exc)}") from None
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ConfigError(
                        f"session {path.name} is being resumed or deleted by another process; try again"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def check_sessions_dir_writable(root: Path) -> None:
    """Create ``root`` if missing and prove a file can be written in it; else ConfigError.

    Called before any data or model is loaded, so a bad ``--sessions-dir`` costs nothing.
    """
    hint = "pass --sessions-dir with a folder you can write to"
    if root.exists() and not root.is_dir():
        raise ConfigError(f"the sessions folder {root} is a file; {hint}")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"cannot create the sessions folder {root}: a part of that path is a file; {hint}") from None
    except OSError as exc:
        raise ConfigError(
            f"cannot create the sessions folder {root}: {exc.strerror or first_line(exc)}; {hint}"
        ) from None
    try:
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"cannot write in the sessions folder {root}: {exc.strerror or first_line(exc)}; {hint}"
        ) from None


@dataclass
class Session:
    path: Path
    _progress_written: float = field(default=-math.inf, init=False, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.path.name

    # ---- creation and writing ----
    @classmethod
    def create(cls, root: Path, label: str, config: dict[str, Any], kind: str = "unlearn") -> Session:
        root.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            path = root / new_session_id(label)
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - ten random collisions in one second
            raise ConfigError(f"could not create a session folder in {root}")
        session = cls(path)
        atomic_write_json(path / CONFIG_FILE, config)
        session.write_summary(
            {
                "session_id": session.id,
                "kind": kind,
                "status": Status.RUNNING,
                "algorithm": config.get("algorithm"),
                "model": config.get("model"),
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
                "pid": os.getpid(),
                "pid_started": _process_started(os.getpid()),
                "host": socket.gethostname(),
            }
        )
        (path / EVENTS_FILE).touch()
        return session

    def append_event(self, event: dict[str, Any]) -> None:
        line = json.dumps({"time": round(time.time(), 3), **event}, default=_jsonable)
        with open(self.path / EVENTS_FILE, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.path / SUMMARY_FILE, summary)

    def update_summary(self, **changes: Any) -> dict[str, Any]:
        # The summary as written (not as read back: a writer is its own run, never "interrupted").
        written, problem = read_json_object(self.path / SUMMARY_FILE)
        summary = {**(written if problem is None else {}), **changes}
        self.write_summary(summary)
        return summary

    def record_progress(self, step: int, total: int) -> None:
        """Write ``steps`` (done so far) and ``total_steps`` into summary.json as the run goes.

        Throttled to one write per PROGRESS_EVERY_S seconds; the last step (``step >=
        total``) is always written. Listings then show how far a running (or killed) run got.
        """
        now = time.monotonic()
        if step < total and now - self._progress_written < PROGRESS_EVERY_S:
            return
        self._progress_written = now
        self.update_summary(steps=step, total_steps=total)

    def claim(self) -> None:
        """Mark this session as this process's run (a resumed run): refused while another
        process runs it. The pid comes with its start time, so the session reads as running
        (and cannot be deleted or resumed twice) for as long as this process lives."""
        with session_lock(self.path):
            running = self.still_running()
            if running is not None:
                raise ConfigError(running)
            self.update_summary(
                status=Status.RUNNING,
                pid=os.getpid(),
                pid_started=_process_started(os.getpid()),
                host=socket.gethostname(),
                ended=None,
                error=None,
            )

    def remove_strays(self) -> list[str]:
        """Remove what a killed writer left half-written (temp files and folders of atomic
        writes, checkpoints and model saves); only the session's own writer may call this.
        Returns the names removed."""
        from tui_unlearn.engine.checkpoint import TMP_PREFIX

        removed = []
        for stray in self.path.iterdir():
            name = stray.name
            temp_file = name.startswith(".") and name.endswith(TMP_SUFFIX)
            if not (temp_file or name.startswith((TMP_PREFIX, MODEL_TMP_PREFIX))):
                continue
            if stray.is_dir() and not stray.is_symlink():
                shutil.rmtree(stray, ignore_errors=True)
            else:
                stray.unlink(missing_ok=True)
            removed.append(name)
        return removed

    def write_examples(self, rows: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(r, default=_jsonable) + "\n" for r in rows)
        atomic_write_text(self.path / EXAMPLES_FILE, text)

    def save_model(self, write: Callable[[Path], None], name: str = MODEL_DIR) -> Path:
        """Save a model into ``model/`` (or ``name``: an adapter) all at once: ``write(folder)``
        fills a temp folder inside the session, renamed to ``name`` only when ``write`` returns.

        A kill mid-save leaves a hidden temp folder (ignored by readers, removed by the next
        save) and no ``model/``; an exception from ``write`` removes the temp folder and
        propagates. Returns the path of ``model/``.
        """
        for stray in self.path.glob(f"{MODEL_TMP_PREFIX}*"):
            shutil.rmtree(stray, ignore_errors=True)
        return write_folder_atomically(self.path / name, MODEL_TMP_PREFIX, write)

    # ---- reading ----
    def read_config(self) -> tuple[dict[str, Any], str | None]:
        """(config.json's object, None) or ({}, why it cannot be read)."""
        return read_json_object(self.path / CONFIG_FILE)

    def config(self) -> dict[str, Any]:
        return self.read_config()[0]

    def summary(self) -> dict[str, Any]:
        """summary.json as it stands now.

        A run whose process is gone reads "interrupted"; a summary that cannot be used
        reads ``{"session_id", "status": "unreadable", "problem": why}``.
        """
        summary, problem = read_json_object(self.path / SUMMARY_FILE)
        problem = problem or summary_problem(summary)
        if problem is not None:
            return {"session_id": self.id, "status": Status.UNREADABLE, "problem": problem}
        if summary.get("status") in tuple(Status):
            summary["status"] = Status(summary["status"])
        if summary.get("status") == Status.RUNNING and not self._owner_alive(summary):
            summary["status"] = Status.INTERRUPTED
        return summary

    @property
    def problem(self) -> str | None:
        """Why this session cannot be read (its summary), or None."""
        summary = self.summary()
        return summary.get("problem") if summary.get("status") == Status.UNREADABLE else None

    def _owner_alive(self, summary: dict[str, Any]) -> bool:
        pid, host, started = summary.get("pid"), summary.get("host"), summary.get("pid_started")
        if not isinstance(pid, int) or host != socket.gethostname():
            return True  # cannot tell from here; trust what was written
        return _pid_alive(pid, started if isinstance(started, (int, float)) else None)

    def still_running(self) -> str | None:
        """Why this session must not be deleted now (its run is going on), or None.

        A run on this host is checked by its pid; one elsewhere (or without a pid) is taken
        at its word, since nothing here can tell whether it is still going.
        """
        summary = self.summary()  # a running session whose process is gone reads interrupted
        if summary.get("status") != Status.RUNNING:
            return None
        pid, host = summary.get("pid"), summary.get("host")
        if isinstance(pid, int) and host == socket.gethostname():
            return f"session {self.id} is still running (pid {pid}); stop that run first (ctrl+c where it runs, or kill {pid})"
        where = f" on {host}" if host else ""
        return (
            f"session {self.id} says it is still running{where} and this machine cannot check; "
            f"if that run is gone, remove {self.path} by hand"
        )

    def read_events(self) -> JsonLines:
        """The usable events of events.jsonl and how many lines were skipped."""
        return read_json_lines(self.path / EVENTS_FILE, event_problem)

    def events(self) -> Iterator[dict[str, Any]]:
        yield from self.read_events().rows

    def read_examples(self) -> JsonLines:
        """The usable rows of examples.jsonl and how many lines were skipped."""
        return read_json_lines(self.path / EXAMPLES_FILE, example_problem)

    def examples(self) -> list[dict[str, Any]]:
        return self.read_examples().rows

    @property
    def model_path(self) -> Path | None:
        """``model/`` when a save completed (a save in progress lives in a hidden temp folder)."""
        path = self.path / MODEL_DIR
        return path if path.is_dir() else None


def is_session_dir(path: Path) -> bool:
    try:
        return path.is_dir() and (path / SUMMARY_FILE).exists()
    except (OSError, ValueError):  # a folder we may not look into; a name with a NUL
        return False


def list_sessions(root: Path) -> list[Session]:
    """Sessions under ``root``, newest first (by folder name, which starts with a timestamp).

    A missing ``root`` holds none; a file or an unreadable folder is a ConfigError.
    """
    if not root.exists():
        return []
    if not root.is_dir():
        raise ConfigError(f"the sessions folder {root} is a file; pass --sessions-dir with a folder")
    try:
        entries = list(root.iterdir())
    except OSError as exc:
        raise ConfigError(f"cannot read the sessions folder {root}: {exc.strerror or first_line(exc)}") from None
    found = [Session(p) for p in entries if is_safe_name(p.name) and is_session_dir(p)]
    return sorted(found, key=lambda s: s.id, reverse=True)


def open_session(root: Path, ref: str) -> Session:
    """A session by id (or unique id prefix) under ``root``, or by a path to its folder."""
    as_path = Path(ref)
    if is_session_dir(as_path):
        return Session(as_path)
    if not is_safe_name(ref):
        raise ConfigError(f"{ref!r} is not a session id (letters, digits, '.', '_' and '-' only)")
    exact = root / ref
    if is_session_dir(exact):
        return Session(exact)
    matches = [s for s in list_sessions(root) if s.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConfigError(f"no session {ref!r} in {root}; see 'tui-unlearn sessions list'")
    raise ConfigError(f"{ref!r} matches {len(matches)} sessions; give more of the id")


def delete_session(session: Session, root: Path) -> None:
    """Remove one session folder, refusing anything that is not a session directly under
    root, and a session whose run is still going (``Session.still_running``)."""
    path = session.path.resolve()
    if path.parent != root.resolve() or not is_session_dir(path):
        raise ConfigError(f"{session.path} is not a session folder inside {root}")
    with session_lock(path):  # a resume claiming it now would otherwise lose its folder
        running = session.still_running()
        if running is not None:
            raise ConfigError(running)
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise ConfigError(f"cannot delete {path}: {exc.strerror or first_line(exc)}") from None
