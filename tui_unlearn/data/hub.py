"""Hub datasets and local dataset folders, read with ``datasets.load_dataset``.

A spec is ``owner/name[:config][@split]`` (split defaults to ``train``) or a local folder
of data files. ``datasets`` is imported only here (and for Parquet files), so the other
sources stay cheap.

Without a network the hub client retries for about half a minute before giving up.
So before a hub load, unless offline mode is on (``HF_HUB_OFFLINE``), one TCP connection
to the hub's host is tried with a short timeout; when it fails the load stops there
with a one-line ``DataError`` saying to set ``HF_HUB_OFFLINE=1`` (to use the local
cache) or to pass a local path. A connection error raised by the load itself gets the
same message. Nothing here retries.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tui_unlearn.data.fields import data_error, rows_to_records
from tui_unlearn.errors import DataError, first_line

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0  # seconds for the one connection attempt before a hub load
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
# A raw socket bypasses an HTTP proxy: with one configured, the probe could fail while
# the hub is reachable, so it is skipped.
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
# Connection failures as the hub client stack names them (requests, urllib3, httpx and
# huggingface_hub), matched by name so none of those packages has to be importable.
_CONNECTION_ERRORS = frozenset(
    {
        "ConnectionError",
        "ConnectError",
        "ConnectTimeout",
        "NetworkError",
        "TimeoutException",
        "Timeout",
        "ReadTimeout",
        "TimeoutError",
        "MaxRetryError",
        "NewConnectionError",
        "NameResolutionError",
        "OfflineModeIsEnabled",
        "gaierror",
    }
)


def load_hub_spec(rest: str) -> tuple[list[dict[str, Any]], str]:
    """``owner/name[:config][@split]`` or a local folder, with or without config and split."""
    name, config, split = rest, None, "train"
    if not _is_local(rest):
        if "@" in name:
            name, split = name.rsplit("@", 1)
        if ":" in name and not _is_local(name):
            name, config = name.split(":", 1)
    if not name.strip() or not split.strip() or (config is not None and not config.strip()):
        raise data_error(
            f"can't read hub dataset spec 'hf:{rest}'; write hf:owner/name, hf:owner/name:config "
            "or hf:owner/name:config@split"
        )
    local = Path(name).expanduser()
    display = f"folder {name}" if _is_local(name) else name
    return load_hub(str(local) if _is_local(name) else name, config or None, split, display)


def _is_local(name: str) -> bool:
    """Whether ``name`` is a path that exists here (os.path.exists: a name too long or a
    folder that cannot be entered is no local path, where Path.exists would raise)."""
    return os.path.exists(os.path.expanduser(name))


def load_hub(name: str, config: str | None, split: str, display: str) -> tuple[list[dict[str, Any]], str]:
    """The records of a hub dataset (``display == name``) or a local folder, and a label."""
    is_hub = display == name
    if is_hub and not offline_mode() and not _proxy_configured():
        unreachable = hub_unreachable()
        if unreachable is not None:
            raise _no_network(name, unreachable)
    import datasets

    try:
        with _progress_bars_off():
            dataset = datasets.load_dataset(name, config, split=split)
    except Exception as error:  # datasets raises many types; each becomes one line
        raise _hub_error(error, name, config, split, display) from error
    label = f"hub dataset {name}" if is_hub else f"dataset {display}"
    records, fields = rows_to_records(dataset.to_list(), display, "row")
    return records, f"{label} ({fields})"


def offline_mode() -> bool:
    """Whether the environment turns the hub client's offline mode on."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARIABLES)


def hub_unreachable(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when a TCP connection to the hub's host (``HF_ENDPOINT``) opens within
    ``timeout`` seconds, else why not, in a few words. One attempt, no retry."""
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", "").strip() or DEFAULT_ENDPOINT)
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as error:  # gaierror (no DNS), refused, unreachable, timeout
        if isinstance(error, TimeoutError):
            return f"{host}: no answer within {timeout:g} s"
        return f"{host}: {error.strerror or first_line(error)}"


def _proxy_configured() -> bool:
    return any(os.environ.get(v, "").strip() for v in _PROXY_VARIABLES)


def _no_network(name: str, reason: str) -> DataError:
    return data_error(
        f"can't reach the Hugging Face Hub for {name} ({reason}); set HF_HUB_OFFLINE=1 to use a copy "
        "in the local cache, or pass a local path (a data file or a folder of them)"
    )


def is_connection_error(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, is a failure to reach a server."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ConnectionError, TimeoutError, socket.gaierror)):
            return True
        if any(cls.__name__ in _CONNECTION_ERRORS for cls in type(current).__mro__):
            return True
        current = current.__cause__ or current.__context__
    return False


def _hub_error(error: Exception, name: str, config: str | None, split: str, display: str) -> DataError:
    first = first_line(error)
    shown = ("hub dataset " if display == name else "dataset ") + display + (f":{config}" if config else "")
    shown += f"@{split}" if split != "train" else ""
    connection = is_connection_error(error)
    if offline_mode() and (connection or "offline" in first.lower()):
        return data_error(
            f"hub dataset {name} is not in the local cache and offline mode is on (HF_HUB_OFFLINE); "
            "download it once on a machine with internet access, or give a local file"
        )
    if display != name:  # a local folder
        return data_error(
            f"can't load {shown}: {first}; the folder should hold .jsonl, .json, .csv or .parquet files "
            "(choose a split with @split)"
        )
    if connection:
        return _no_network(name, first)
    if type(error).__name__ in ("DatasetNotFoundError", "FileNotFoundError", "RepositoryNotFoundError"):
        return data_error(
            f"hub dataset {name} not found: {first}; check the name (owner/name), and log in for a private "
            "or gated dataset"
        )
    return data_error(f"can't load {shown}: {first}; choose the config with :config and the split with @split")


@contextmanager
def _progress_bars_off() -> Iterator[None]:
    """datasets draws progress bars on stderr, which would scribble over the TUI."""
    try:
        from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    except ImportError:  # older datasets: leave the bars alone
        yield
        return
    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()
