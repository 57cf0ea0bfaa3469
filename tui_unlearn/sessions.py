"""A session is a folder: config.json, events.jsonl, summary.json and, optionally, model/.

Writes are atomic (temp file + rename) and events are appended line by line, so a run
killed at any moment leaves a readable session. A session whose summary still says
"running" but whose process is gone is reported as "interrupted".
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from tui_unlearn.errors import ConfigError
from tui_unlearn.paths import is_safe_name

CONFIG_FILE = "config.json"
EVENTS_FILE = "events.jsonl"
SUMMARY_FILE = "summary.json"
EXAMPLES_FILE = "examples.jsonl"
MODEL_DIR = "model"

STATUSES = ("running", "finished", "failed", "interrupted", "diverged")


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Session:
    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    # ---- creation and writing ----
    @classmethod
    def create(cls, root: Path, label: str, config: dict[str, Any], kind: str = "unlearn") -> "Session":
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
                "status": "running",
                "algorithm": config.get("algorithm"),
                "model": config.get("model"),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "pid": os.getpid(),
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
        summary = {**self.summary(), **changes}
        self.write_summary(summary)
        return summary

    def write_examples(self, rows: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(r, default=_jsonable) + "\n" for r in rows)
        atomic_write_text(self.path / EXAMPLES_FILE, text)

    # ---- reading ----
    def config(self) -> dict[str, Any]:
        return _read_json(self.path / CONFIG_FILE)

    def summary(self) -> dict[str, Any]:
        summary = _read_json(self.path / SUMMARY_FILE)
        if summary.get("status") == "running" and not self._owner_alive(summary):
            summary["status"] = "interrupted"
        return summary

    def _owner_alive(self, summary: dict[str, Any]) -> bool:
        pid, host = summary.get("pid"), summary.get("host")
        if not isinstance(pid, int) or host != socket.gethostname():
            return True  # cannot tell from here; trust what was written
        return _pid_alive(pid)

    def events(self) -> Iterator[dict[str, Any]]:
        path = self.path / EVENTS_FILE
        if not path.exists():
            return
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    # A run killed mid-write leaves a partial last line; the rest is good.
                    continue

    def examples(self) -> list[dict[str, Any]]:
        path = self.path / EXAMPLES_FILE
        if not path.exists():
            return []
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    @property
    def model_path(self) -> Path | None:
        path = self.path / MODEL_DIR
        return path if path.is_dir() else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"status": "unreadable"}


def is_session_dir(path: Path) -> bool:
    return path.is_dir() and (path / SUMMARY_FILE).exists()


def list_sessions(root: Path) -> list[Session]:
    """Sessions under ``root``, newest first (by folder name, which starts with a timestamp)."""
    if not root.is_dir():
        return []
    found = [Session(p) for p in root.iterdir() if is_safe_name(p.name) and is_session_dir(p)]
    return sorted(found, key=lambda s: s.id, reverse=True)


def open_session(root: Path, ref: str) -> Session:
    """A session by id (or unique id prefix) under ``root``, or by a path to its folder."""
    as_path = Path(ref)
    if as_path.is_dir() and is_session_dir(as_path):
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
    """Remove one session folder, refusing anything that is not a session directly under root."""
    path = session.path.resolve()
    if path.parent != root.resolve() or not is_session_dir(path):
        raise ConfigError(f"{session.path} is not a session folder inside {root}")
    shutil.rmtree(path)
