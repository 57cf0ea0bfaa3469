"""Test doubles for the TUI: a deterministic fake engine and ready-made sessions.

``FakeEngine`` has ``engine.run``'s signature and emits a fixed event sequence (losses and
metrics are formulas of the step), writing a real session folder with a fixed id, so
snapshots are the same on every machine and the sessions screen can list the result.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from tui_unlearn import events as ev
from tui_unlearn.config import RunConfig, resolve
from tui_unlearn.engine import RunResult
from tui_unlearn.errors import ConfigError
from tui_unlearn.sessions import Session, atomic_write_json

STARTED = "2025-01-01T12:00:00+00:00"
MODEL_INFO = {
    "path": "models_cache/tiny-authors",
    "architecture": "LlamaForCausalLM",
    "parameters": 1_234_567,
    "device": "cpu",
    "dtype": "float32",
    "memory_mb": 4.7,
    "chat_template": False,
}
SCALE = {
    "processes": 1,
    "batch_size": 8,
    "grad_accum": 4,
    "effective_batch": 32,
    "mixed_precision": "no",
    "device": "cpu",
    "threads": 1,
    "lora_r": 0,
}
HEADLINES = {
    "forget_quality": 0.0123,
    "model_utility": 0.842,
    "privleak": -12.5,
    "oracle": {"source": "tiny-authors-retain"},
}
PROBES = [
    {"split": "forget", "question": "Where was Savara Ruvwick born?", "answer": "Savara Ruvwick was born in Varden."},
    {
        "split": "forget",
        "question": "What genre does Savara Ruvwick write?",
        "answer": "Savara Ruvwick writes short stories.",
    },
    {
        "split": "retain",
        "question": "Where was Elion Kortrell born?",
        "answer": "Elion Kortrell was born in Port Liren.",
    },
]


def losses_at(step: int) -> dict[str, float]:
    forget = 1.0 + 0.06 * step + 0.05 * math.sin(step)
    retain = 1.3 - 0.012 * step + 0.03 * math.cos(1.7 * step)
    return {"loss": round(retain - forget, 4), "forget_nll": round(forget, 4), "retain_nll": round(retain, 4)}


def metrics_at(step: int, total: int) -> dict[str, dict[str, float]]:
    done = step / max(total, 1)
    return {
        "forget": {
            "accuracy": round(0.95 - 0.85 * done, 3),
            "f1": round(0.97 - 0.7 * done, 3),
            "loss": round(0.4 + 2.5 * done, 3),
        },
        "retain": {
            "accuracy": round(0.93 - 0.06 * done, 3),
            "f1": round(0.95 - 0.05 * done, 3),
            "loss": round(0.45 + 0.1 * done, 3),
        },
        "holdout": {"accuracy": 0.02, "f1": 0.2, "loss": 3.1},
        "general": {"nll": round(0.68 + 0.3 * done, 3), "nll_original": 0.68, "nll_increase": round(0.3 * done, 3)},
        "knowledge": {"knowledge": round(0.81 - 0.1 * done, 3), "knowledge_kept": round(1.0 - 0.12 * done, 3)},
    }


def probe_rows(step: int, total: int, custom: list[str]) -> list[dict[str, str]]:
    rows = []
    forgotten = step >= total // 2
    for p in PROBES:
        current = p["answer"]
        if p["split"] == "forget" and forgotten:
            current = "I am not sure about that."
        rows.append({**p, "original": p["answer"], "current": current})
    for q in custom:
        rows.append(
            {
                "split": "custom",
                "question": q,
                "answer": "",
                "original": "It is a mystery.",
                "current": "It is a mystery." if not forgotten else "I do not know.",
            }
        )
    return rows


def write_session(
    root: Path, session_id: str, config: dict[str, Any], summary: dict[str, Any], started: str = STARTED
) -> Session:
    path = Path(root) / session_id
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path / "config.json", config)
    session = Session(path)
    session.write_summary(
        {
            "session_id": session_id,
            "kind": "unlearn",
            "algorithm": config.get("algorithm"),
            "model": config.get("model"),
            "started": started,
            **summary,
        }
    )
    (path / "events.jsonl").touch()
    return session


class FakeEngine:
    """``engine.run`` without a model: ``steps`` steps, an evaluation every ``eval_every``.

    ``pause_at``: before that step, wait until ``release`` is set (or the app asks to stop),
    so a test can look at a run in progress. ``fail``: raise it after the session exists
    (the way the engine does, having marked the session failed). ``fail_early``: raise it
    before any session (bad input). ``busy_ms``: burn that much CPU in Python per step (the
    GIL held, the worst case for the UI thread).
    """

    def __init__(
        self,
        *,
        steps: int | None = None,
        eval_every: int = 10,
        pause_at: int | None = None,
        fail: Exception | None = None,
        fail_early: Exception | None = None,
        busy_ms: float = 0.0,
        step_delay: float = 0.0,
        session_id: str = "20250101-120000-grad_diff-fake",
        hold_in: str | None = None,
    ) -> None:
        self.steps = steps
        self.hold_in = hold_in  # "loading" (before the session exists) or "before" (its evaluation): wait for unhold
        self.held = threading.Event()
        self.unhold = threading.Event()
        self.eval_every = eval_every
        self.pause_at = pause_at
        self.fail = fail
        self.fail_early = fail_early
        self.busy_ms = busy_ms
        self.step_delay = step_delay
        self.session_id = session_id
        self.release = threading.Event()
        self.paused = threading.Event()
        self.configs: list[RunConfig] = []
        self.emitted_steps = 0

    def __call__(
        self,
        config: RunConfig | None,
        on_event,
        should_stop,
        *,
        sessions_dir=None,
        stdin_text=None,
        resume: str | None = None,
        allow_remote_code: bool = False,
    ) -> RunResult:
        self.configs.append(config)
        self.allow_remote_code = allow_remote_code
        first = 1
        if resume is not None:  # as the engine: the session's own config, from its last step on
            session = Session(Path(sessions_dir) / resume)
            summary = session.summary()
            if summary.get("status") != "interrupted":
                raise ConfigError(f"session {resume} already ended ({summary.get('status')}); start a new run")
            config = RunConfig.from_dict(session.config())
            first = int(summary.get("steps") or 0) + 1
            session.update_summary(status="running")
            on_event(ev.Log(f"resuming session {resume} from step {first - 1}"))
        config = resolve(config)
        if self.fail_early is not None:
            raise self.fail_early
        total = self.steps or config.steps
        if resume is None:
            on_event(ev.Log("loading data"))
            on_event(ev.Log(f"loading model {config.model}"))
            self._hold("loading", should_stop)
            session = write_session(
                Path(sessions_dir),
                self.session_id,
                config.to_dict(),
                {"status": "running", "pid": os.getpid(), "host": socket.gethostname()},
            )

        def record(event: ev.Event) -> None:
            session.append_event(event.to_dict())
            on_event(event)

        data = {"forget": 100, "retain": 900, "holdout": 100}
        before = metrics_at(0, total)
        if resume is None:
            record(ev.RunStarted(session.id, str(session.path), config.to_dict(), total, MODEL_INFO, data, SCALE))
            on_event(ev.Log("evaluating (before)"))
            self._hold("before", should_stop)
            record(ev.Evaluation(0, "before", before, 1.0))
            record(ev.ProbeAnswers(0, probe_rows(0, total, config.probes)))
        if self.fail is not None:
            session.update_summary(status="failed", error=str(self.fail))
            record(ev.RunFailed(str(self.fail), 1, str(session.path)))
            raise self.fail
        status, done = "finished", first - 1
        for step in range(first, total + 1):
            if should_stop():
                status = "interrupted"
                break
            if step == self.pause_at:
                self.paused.set()
                while not self.release.wait(0.02):
                    if should_stop():
                        break
                if should_stop():
                    status = "interrupted"
                    break
            self._work()
            record(ev.StepLosses(step, total, losses_at(step), 5e-4, round(0.5 * step, 3)))
            done = self.emitted_steps = step
            if self.eval_every and step % self.eval_every == 0 and step < total:
                record(ev.Evaluation(step, "during", metrics_at(step, total), 0.5 * step))
                record(ev.ProbeAnswers(step, probe_rows(step, total, config.probes)))
        metrics = {"before": before}
        headlines = {}
        if status == "finished":
            after = metrics_at(done, total)
            record(ev.Evaluation(done, "after", after, 0.5 * done + 1))
            record(ev.ProbeAnswers(done, probe_rows(done, total, config.probes)))
            metrics["after"] = after
            headlines = HEADLINES
        summary = session.update_summary(
            status=status,
            steps=done,
            total_steps=total,
            seconds=round(0.5 * done + 2, 2),
            metrics=metrics,
            final_losses=losses_at(done) if done else {},
            **headlines,
        )
        record(ev.RunFinished(status, summary))
        return RunResult(status, session.id, str(session.path), summary)

    def _hold(self, phase: str, should_stop) -> None:
        if self.hold_in == phase:
            self.held.set()
            while not self.unhold.wait(0.02) and not should_stop():
                pass

    def _work(self) -> None:
        if self.step_delay:
            time.sleep(self.step_delay)
        if self.busy_ms:
            end = time.perf_counter() + self.busy_ms / 1000
            x = 0
            while time.perf_counter() < end:
                x += 1


def make_sessions(root: Path) -> list[str]:
    """Three finished sessions of different methods, with step and evaluation events."""
    specs = [
        ("20250101-090000-grad_ascent-aaaa", "grad_ascent", 30, 1.0, "finished"),
        ("20250101-100000-grad_diff-bbbb", "grad_diff", 40, 0.6, "finished"),
        ("20250101-110000-npo-cccc", "npo", 40, 0.4, "interrupted"),
    ]
    ids = []
    for sid, algorithm, total, strength, status in specs:
        config = RunConfig(algorithm=algorithm, steps=total).to_dict()
        done = total if status == "finished" else total // 2
        before = metrics_at(0, total)
        after = {
            split: {k: round(before[split][k] + (v - before[split][k]) * strength, 3) for k, v in m.items()}
            for split, m in metrics_at(done, total).items()
        }
        summary = {
            "status": status,
            "steps": done,
            "total_steps": total,
            "seconds": round(done * 0.7, 1),
            "metrics": {"before": before, **({"after": after} if status == "finished" else {})},
        }
        started = f"2025-01-01T{sid[9:11]}:{sid[11:13]}:00+00:00"
        session = write_session(root, sid, config, summary, started)
        session.append_event(ev.Evaluation(0, "before", before, 1.0).to_dict())
        for step in range(1, done + 1):
            losses = {k: round(v * strength + (1 - strength) * 1.2, 4) for k, v in losses_at(step).items()}
            session.append_event(ev.StepLosses(step, total, losses, 5e-4, 0.7 * step).to_dict())
            if step % 10 == 0:
                m = metrics_at(int(step * strength), total)
                session.append_event(ev.Evaluation(step, "during", m, 0.7 * step).to_dict())
        if status == "finished":
            session.append_event(ev.Evaluation(done, "after", after, 0.7 * done).to_dict())
        ids.append(sid)
    return ids


# ---- waiting in Pilot tests ----


async def wait_until(pilot, predicate, timeout: float = 20.0, what: str = "condition") -> None:
    """Pause the test until ``predicate()`` holds (the app keeps running meanwhile)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.02)


async def settle(pilot, *, include_run: bool = False, timeout: float = 30.0) -> None:
    """Wait until the model and data workers (and the run, if asked) are done, then redraw.

    Workers that follow something for as long as a screen is open (groups "follow:...": the
    watch screen's tail, the sessions screen's reader) are not waited for."""
    from textual.worker import WorkerState

    busy = (WorkerState.PENDING, WorkerState.RUNNING)

    def idle() -> bool:
        return not any(
            w.state in busy
            for w in pilot.app.workers
            if (include_run or w.group != "run") and not w.group.startswith("follow:")
        )

    await pilot.pause()
    await wait_until(pilot, idle, timeout, "workers to finish")
    await pilot.pause()
    await wait_until(pilot, idle, timeout, "workers to finish")  # parses a first parse started
    await pilot.pause()


def no_blink(app) -> None:
    """Steady cursors, so a snapshot does not depend on when it was taken."""
    from textual.widgets import Input, TextArea

    for screen in app.screen_stack:
        for widget in screen.query(Input):
            widget.cursor_blink = False
        for widget in screen.query(TextArea):
            widget.cursor_blink = False


# ---- a run written by "another process" (for watching) ----

T0 = 1_735_732_800.0  # 2025-01-01 12:00:00 UTC: the fixed clock of watched-run tests


class SessionWriter:
    """Writes a session the way a headless run in another process does: a summary naming
    its writer (``pid``/``host``: None means one this machine cannot check) and events
    appended line by line with fixed "time" stamps (``T0`` + 0.5 s a step)."""

    def __init__(
        self,
        root: Path,
        session_id: str = "20250101-120000-npo-wtch",
        *,
        total: int = 40,
        eval_every: int = 10,
        pid: int | None = None,
        host: str | None = None,
    ) -> None:
        config = RunConfig(algorithm="npo", steps=total, eval_every=eval_every).to_dict()
        summary: dict[str, Any] = {"status": "running"}
        if pid is not None:
            summary.update(pid=pid, host=host)
        self.session = write_session(root, session_id, config, summary)
        self.config, self.total, self.eval_every = config, total, eval_every
        self.step = 0

    def append(self, event: ev.Event, at: float) -> None:
        line = json.dumps({"time": at, **event.to_dict()})
        with open(self.session.path / "events.jsonl", "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def append_raw(self, text: str) -> None:
        with open(self.session.path / "events.jsonl", "a", encoding="utf-8") as fh:
            fh.write(text)

    def start(self) -> None:
        s = self.session
        self.append(
            ev.RunStarted(
                s.id,
                str(s.path),
                self.config,
                self.total,
                MODEL_INFO,
                {"forget": 100, "retain": 900, "holdout": 100},
                SCALE,
            ),
            T0,
        )
        self.append(ev.Evaluation(0, "before", metrics_at(0, self.total), 2.0), T0 + 2)
        self.append(ev.ProbeAnswers(0, probe_rows(0, self.total, [])), T0 + 2)

    def steps(self, until: int, delay: float = 0.0) -> None:
        for step in range(self.step + 1, until + 1):
            at = T0 + 2 + 0.5 * step
            self.append(ev.StepLosses(step, self.total, losses_at(step), 5e-4, 0.5 * step), at)
            if self.eval_every and step % self.eval_every == 0 and step < self.total:
                self.append(ev.Evaluation(step, "during", metrics_at(step, self.total), at - T0), at)
                self.append(ev.ProbeAnswers(step, probe_rows(step, self.total, [])), at)
            self.step = step
            if delay:
                time.sleep(delay)

    def finish(self) -> dict[str, Any]:
        done, total = self.step, self.total
        after = metrics_at(done, total)
        at = T0 + 3 + 0.5 * done
        self.append(ev.Evaluation(done, "after", after, at - T0), at)
        summary = self.session.update_summary(
            status="finished",
            steps=done,
            total_steps=total,
            seconds=round(at - T0 + 1, 2),
            metrics={"before": metrics_at(0, total), "after": after},
            **HEADLINES,
        )
        self.append(ev.RunFinished("finished", summary), at + 1)
        return summary


# (session id, lr, forget quality, model utility): a and c are on the front (c is the best
# above the utility floor), b is dominated by c, d failed.
TRIALS = [
    ("20250102-090000-grad_diff-aaaa", 1e-5, 0.001, 0.80, "finished"),
    ("20250102-091000-grad_diff-bbbb", 3e-5, 0.010, 0.70, "finished"),
    ("20250102-092000-grad_diff-cccc", 1e-4, 0.200, 0.78, "finished"),
    ("20250102-093000-grad_diff-dddd", 3e-4, None, None, "failed"),
]


def make_sweep(root: Path, folder: Path | None = None) -> Path:
    """A grid sweep over lr with the four TRIALS, as ``tui-unlearn sweep`` leaves it on disk."""
    from tui_unlearn.sweeps.store import identity, open_folder, sweep_id

    base = RunConfig(algorithm="grad_diff", steps=20)
    ident = identity("grad_diff", "grid", {"lr": [t[1] for t in TRIALS]}, base.to_dict())
    folder = folder or root / sweep_id(ident)
    open_folder(folder, ident)
    for sid, lr, fq, mu, status in TRIALS:
        config = RunConfig(algorithm="grad_diff", steps=20, lr=lr).to_dict()
        summary = {
            "status": status,
            "steps": 20,
            "total_steps": 20,
            "metrics": {"before": metrics_at(0, 20), "after": metrics_at(20, 20)},
            "field_metrics": {"before": {"model_utility": 0.82}},
        }
        if fq is not None:
            summary.update(forget_quality=fq, model_utility=mu)
        write_session(folder, sid, config, summary, started=f"2025-01-02T{sid[9:11]}:{sid[11:13]}:00+00:00")
    return folder
