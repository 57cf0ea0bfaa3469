"""Running a sweep's trials: one after another in this process, or K at a time as
``tui-unlearn --batch`` subprocesses when memory allows.

One after another in this process is the default: the trials share a
:class:`~tui_unlearn.engine.warm.WarmStart` (records, tokenizer, plan, oracle and the loaded
model, its original weights restored from memory before each trial), so a trial costs its
training and its evaluation after, not a Python start, imports and a model load. Trials run
at the same time need a process each (each trains its own copy of the weights): those run
as subprocesses, as does every trial with ``isolate`` (the benchmark's baseline).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_unlearn.errors import ExitCode, UnlearnError, first_line

GIB = 1024**3
PROCESS_OVERHEAD = 0.6 * GIB  # python + torch + tokenizer per trial process (measured ~0.5 GiB on CPU)
# Weights, gradients and AdamW's two moments; one more copy when a frozen reference is kept.
COPIES_TRAINED, COPIES_REFERENCE = 4, 1


def weights_bytes(config: Any) -> int | None:
    """Size of the model's safetensors files when it is a local or bundled folder, else None."""
    from tui_unlearn.models.bundled import bundled_model_dir, is_bundled

    try:
        folder = bundled_model_dir(config.model) if is_bundled(config.model) else Path(config.model).expanduser()
    except UnlearnError:
        return None
    files = list(folder.glob("*.safetensors")) if folder.is_dir() else []
    return sum(f.stat().st_size for f in files) or None


def memory_available(device: str) -> int:
    """Free bytes where the trials will put their weights (the GPU's, else the machine's)."""
    import psutil

    if device != "cpu":
        try:
            import torch

            if torch.cuda.is_available():
                return int(torch.cuda.mem_get_info()[0])
        except Exception:  # a broken CUDA setup: judge by host memory
            pass
    return int(psutil.virtual_memory().available)


def parallel_that_fits(parallel: int, config: Any, needs_reference: bool, log: Callable[[str], None]) -> int:
    """``parallel``, or fewer when that many trials would not fit in free memory."""
    if parallel <= 1:
        return 1
    size = weights_bytes(config)
    if size is None:
        log(f"cannot tell the size of {config.model}; running {parallel} trials at once as asked")
        return parallel
    need = size * (COPIES_TRAINED + (COPIES_REFERENCE if needs_reference else 0)) + PROCESS_OVERHEAD
    fits = max(1, int(0.8 * memory_available(config.device) // need))
    if fits < parallel:
        log(f"memory allows {fits} trial(s) at once (about {need / GIB:.1f} GiB each), not {parallel}")
        return fits
    return parallel


@dataclass(frozen=True)
class EarlyFailure:
    """A trial that failed before its session existed: nothing on disk tells why, so this does."""

    reason: str
    exit_code: int = int(ExitCode.RUN_FAILED)


TrialResult = str | EarlyFailure  # the trial's session id, or why it has none


def run_in_process(
    config: Any, folder: Path, warm: Any = None, on_session: Callable[[str, str], None] | None = None
) -> TrialResult:
    """Run one trial with the engine here: its session id, or why it failed before one existed.

    ``warm``: the ``engine.warm.WarmStart`` the sweep's trials in this process share;
    ``on_session(id, path)`` hears of the trial's session as soon as it exists."""
    from tui_unlearn import events
    from tui_unlearn.engine import run

    started: list[str] = []

    def on_event(event: Any) -> None:
        if isinstance(event, events.RunStarted):
            started.append(event.session_id)
            if on_session is not None:
                on_session(event.session_id, event.session_path)

    try:
        result = run(config, on_event, sessions_dir=folder, warm=warm)
    except UnlearnError as error:
        if started:  # the session holds the failure; the report shows it
            return started[-1]
        return EarlyFailure(first_line(error), int(error.exit_code))
    if result.status == "interrupted":
        # Ctrl-C reached the engine, which ended this trial's session as interrupted: it was
        # meant for the sweep (before, the next trial started and the sweep exited 0).
        raise KeyboardInterrupt
    return result.session_id or EarlyFailure("the run ended without a session", int(result.exit_code))


def run_subprocess(config: Any, folder: Path) -> TrialResult:
    """Run one trial as ``tui-unlearn --batch --json`` in a child process."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=folder, prefix=".trial-", delete=False) as fh:
        json.dump(config.to_dict(), fh)
        path = fh.name
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tui_unlearn", "--batch", "--json", "--config", path, "--sessions-dir", str(folder)],
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": str(config.threads or 1)},
        )
    finally:
        os.unlink(path)
    for line in reversed(done.stdout.splitlines()):
        try:
            session_id = json.loads(line).get("session_id")
        except (ValueError, AttributeError):
            continue
        if session_id:
            return session_id
    errors = [line[len("error: ") :] for line in done.stderr.splitlines() if line.startswith("error: ")]
    reason = errors[-1] if errors else f"the trial process exited with code {done.returncode} and said nothing"
    return EarlyFailure(reason, done.returncode or int(ExitCode.RUN_FAILED))


def run_trials(
    configs: list[Any],
    folder: Path,
    parallel: int,
    on_done: Callable[[int, Any, TrialResult], None],
    *,
    warm: Any = None,
    isolate: bool = False,
) -> list[TrialResult]:
    """Run every config as a session in ``folder``; ``on_done(i, config, result)`` after each.

    One at a time in this process, sharing ``warm``; ``parallel`` > 1 or ``isolate``: each in
    its own process."""
    if parallel <= 1:
        ids: list[TrialResult] = []
        for i, config in enumerate(configs):
            ids.append(run_subprocess(config, folder) if isolate else run_in_process(config, folder, warm))
            on_done(i, config, ids[-1])
        return ids
    cores = os.cpu_count() or 1
    # Each child gets its share of the cores unless the user fixed --threads.
    configs = [c if c.threads else c.with_overrides(threads=max(1, cores // parallel)) for c in configs]

    def one(i: int) -> TrialResult:
        result = run_subprocess(configs[i], folder)
        on_done(i, configs[i], result)
        return result

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(one, range(len(configs))))
