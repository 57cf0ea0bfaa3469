"""The command line: the TUI by default, ``--batch`` for scripts, and subcommands.

stdout carries data only (``--json``: one object; ``--jsonl``: one event a line; else a
table for people); progress and errors go to stderr. Exit codes are ``errors.ExitCode``.
Algorithm hyperparameter flags are generated from the registry's declarations.
"""

from __future__ import annotations

import functools
import inspect
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from tui_unlearn.errors import ConfigError, ExitCode, UnlearnError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="A terminal workbench for machine unlearning of language models.",
)
sessions_app = typer.Typer(help="List, show and delete saved sessions.", no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(sessions_app, name="sessions")


def err(message: str) -> None:
    typer.echo(message, err=True)


def handle_errors(func: Callable) -> Callable:
    """One-line messages and documented exit codes instead of tracebacks."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UnlearnError as exc:
            err(f"error: {exc}")
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            err("interrupted")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

    return wrapper


# ---- generated algorithm flags ----

def _hparam_flags() -> dict[str, tuple[str, str]]:
    """hyperparameter name -> (flag, help naming the methods that take it)."""
    from tui_unlearn.algorithms import all_algorithms

    owners: dict[str, list[str]] = {}
    helps: dict[str, str] = {}
    for algo in all_algorithms().values():
        for p in algo.hyperparams:
            owners.setdefault(p.name, []).append(f"{algo.name}={p.default}")
            helps.setdefault(p.name, p.help)
    return {
        name: ("--" + name.replace("_", "-"), f"[{', '.join(owners[name])}] {helps[name]}")
        for name in owners
    }


def _with_hparam_options(func: Callable) -> Callable:
    """Give ``func`` one ``--name`` option per declared hyperparameter (values arrive in **kwargs)."""
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    for name, (flag, help_text) in _hparam_flags().items():
        params.append(
            inspect.Parameter(
                f"hp_{name}",
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(None, flag, help=help_text, rich_help_panel="Algorithm hyperparameters"),
                annotation=Optional[str],
            )
        )
    func.__signature__ = sig.replace(parameters=params)
    return func


def _algorithms_epilog() -> str:
    from tui_unlearn.algorithms import all_algorithms

    lines = ["\b", "Algorithms:"] + [f"  {a.name:<12} {a.description}" for a in all_algorithms().values()]
    return "\n".join(lines)


# ---- the main command ----

ORACLE_HELP = (
    "Retain-only oracle for forget quality and privacy leakage: a model (bundled name, folder, hub id), "
    "a saved eval session (id or folder), or 'none' (default: tiny-authors-retain for bundled:forget10)."
)
RELEARN_HELP = "Relearning check: fine-tune the result for K steps on half of the forget sample and measure how much of the other half comes back (0: off)."

def build_config(
    config_file: Optional[Path],
    hparams: dict[str, Any],
    probes: list[str] | None,
    **flags: Any,
):
    from tui_unlearn.config import RunConfig, load_config_file

    base = load_config_file(config_file) if config_file else RunConfig()
    return base.with_overrides(hparams=hparams or None, probes=probes or None, **flags)


@app.callback(invoke_without_command=True, epilog=_algorithms_epilog())
@_with_hparam_options
@handle_errors
def main_command(
    ctx: typer.Context,
    batch: bool = typer.Option(False, "--batch", help="Run headless (no TUI) and print results."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Bundled name (tiny-authors, tiny-authors-retain), a local model folder, or a hub id."),
    forget: Optional[str] = typer.Option(None, "--forget", "-f", help="Forget set: a file (.txt .json .jsonl .csv .parquet), '-' for stdin, bundled:forget10, or hf:owner/name[:config][@split]."),
    retain: Optional[str] = typer.Option(None, "--retain", help="Retain set (same sources as --forget)."),
    holdout: Optional[str] = typer.Option(None, "--holdout", help="Holdout set, never trained on (same sources)."),
    algorithm: Optional[str] = typer.Option(None, "--algorithm", "-a", help="Unlearning method (listed below)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Optimisation steps (default: the method's)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (default: the method's)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Forget and retain examples per step."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed."),
    eval_every: Optional[int] = typer.Option(None, "--eval-every", help="Steps between evaluations during the run (0: before/after only)."),
    eval_samples: Optional[int] = typer.Option(None, "--eval-samples", help="Records per split in the before/after evaluation (0: all)."),
    l2_anchor: Optional[float] = typer.Option(None, "--l2-anchor", help="Weight of an L2 pull to the original weights (any method)."),
    kl_retain: Optional[float] = typer.Option(None, "--kl-retain", help="Weight of KL to the original model on retain data (any method)."),
    dropout: Optional[float] = typer.Option(None, "--dropout", help="Dropout on block outputs while unlearning (any method)."),
    grad_clip: Optional[float] = typer.Option(None, "--grad-clip", help="Clip the gradient norm to this (0: no clipping)."),
    max_length: Optional[int] = typer.Option(None, "--max-length", help="Tokens per training example."),
    probe: Optional[list[str]] = typer.Option(None, "--probe", help="A question to watch during the run (repeatable)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="auto, float32, bfloat16 or float16."),
    trust_remote_code: Optional[bool] = typer.Option(None, "--trust-remote-code", help="Allow a model's own Python code to run (off by default)."),
    save_model: Optional[bool] = typer.Option(None, "--save-model", help="Save the unlearned weights into the session (Hugging Face format)."),
    oracle: Optional[str] = typer.Option(None, "--oracle", help=ORACLE_HELP),
    relearn: Optional[int] = typer.Option(None, "--relearn", help=RELEARN_HELP),
    config_file: Optional[Path] = typer.Option(None, "--config", help="A run config (.json or .toml; a session's config.json works)."),
    sessions_dir: Optional[Path] = typer.Option(None, "--sessions-dir", help="Where sessions are saved (env TUI_UNLEARN_SESSIONS_DIR)."),
    models_cache: Optional[str] = typer.Option(None, "--models-cache", help="Where hub models are cached (env TUI_UNLEARN_MODELS_CACHE)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the results."),
    as_jsonl: bool = typer.Option(False, "--jsonl", help="Print every event as a JSON line."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved config as JSON and exit."),
    **hp_flags: Any,
) -> None:
    """Open the workbench, or run headless with --batch."""
    if ctx.invoked_subcommand is not None:
        return
    hparams = {k[3:]: v for k, v in hp_flags.items() if k.startswith("hp_") and v is not None}
    config = build_config(
        config_file, hparams, probe,
        model=model, forget=forget, retain=retain, holdout=holdout, algorithm=algorithm,
        steps=steps, lr=lr, batch_size=batch_size, seed=seed, eval_every=eval_every,
        eval_samples=eval_samples, l2_anchor=l2_anchor, kl_retain=kl_retain, dropout=dropout,
        grad_clip=grad_clip, max_length=max_length,
        device=device, dtype=dtype, trust_remote_code=trust_remote_code, save_model=save_model,
        models_cache=models_cache, oracle=oracle, relearn_steps=relearn,
    )
    if print_config:
        from tui_unlearn.config import resolve

        typer.echo(json.dumps(resolve(config).to_dict(), indent=2))
        return
    if as_json and as_jsonl:
        raise ConfigError("--json and --jsonl cannot be used together; pick one")
    if batch:
        code = run_batch(config, sessions_dir, as_json=as_json, as_jsonl=as_jsonl)
        raise typer.Exit(code)
    from tui_unlearn.tui.app import run_app

    run_app(config, sessions_dir)


def run_batch(config, sessions_dir: Optional[Path], *, as_json: bool, as_jsonl: bool) -> int:
    from tui_unlearn.batch import BatchReporter

    from tui_unlearn.engine import run

    stop_requested = threading.Event()

    def on_sigint(signum, frame):
        if stop_requested.is_set():
            raise KeyboardInterrupt
        stop_requested.set()
        err("stopping after this step (Ctrl-C again to abort now)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    reporter = BatchReporter(as_json=as_json, as_jsonl=as_jsonl)
    stdin_text = sys.stdin.read() if "-" in (config.forget, config.retain, config.holdout) else None
    try:
        result = run(config, reporter.on_event, stop_requested.is_set, sessions_dir=sessions_dir, stdin_text=stdin_text)
    except UnlearnError as exc:
        reporter.close()
        if reporter.session_path:  # the run had started: its session holds the failure
            reporter.print_failure(str(exc))
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    reporter.close()
    reporter.print_result(result)
    return int(result.exit_code)


# ---- eval ----

@app.command("eval")
@handle_errors
def eval_command(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="The model to evaluate (bundled name, local folder or hub id)."),
    forget: Optional[str] = typer.Option(None, "--forget", "-f", help="Forget set (same sources as the main command)."),
    retain: Optional[str] = typer.Option(None, "--retain", help="Retain set."),
    holdout: Optional[str] = typer.Option(None, "--holdout", help="Holdout set, never trained on."),
    oracle: Optional[str] = typer.Option(None, "--oracle", help=ORACLE_HELP),
    relearn: Optional[int] = typer.Option(None, "--relearn", help=RELEARN_HELP),
    eval_samples: Optional[int] = typer.Option(None, "--eval-samples", help="Records per split (0: all)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (which records are sampled)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="auto, float32, bfloat16 or float16."),
    trust_remote_code: Optional[bool] = typer.Option(None, "--trust-remote-code", help="Allow a model's own Python code to run."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="A run config (.json or .toml)."),
    sessions_dir: Optional[Path] = typer.Option(None, "--sessions-dir", help="Where sessions are saved (env TUI_UNLEARN_SESSIONS_DIR)."),
    models_cache: Optional[str] = typer.Option(None, "--models-cache", help="Where hub models are cached."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the results."),
) -> None:
    """Evaluate a model without unlearning (a session of kind eval; usable as --oracle)."""
    from tui_unlearn.batch import BatchReporter
    from tui_unlearn.engine import evaluate_model

    config = build_config(
        config_file, {}, None,
        model=model, forget=forget, retain=retain, holdout=holdout, oracle=oracle, relearn_steps=relearn,
        eval_samples=eval_samples, seed=seed, device=device, dtype=dtype,
        trust_remote_code=trust_remote_code, models_cache=models_cache,
    )
    reporter = BatchReporter(as_json=as_json, as_jsonl=False)
    stdin_text = sys.stdin.read() if "-" in (config.forget, config.retain, config.holdout) else None
    try:
        result = evaluate_model(config, reporter.on_event, sessions_dir=sessions_dir, stdin_text=stdin_text)
    except UnlearnError as exc:
        reporter.close()
        if reporter.session_path:
            reporter.print_failure(str(exc))
        raise
    reporter.close()
    reporter.print_result(result)
    raise typer.Exit(int(result.exit_code))


# ---- analyze ----

@app.command("analyze")
@handle_errors
def analyze_command(
    session_ids: list[str] = typer.Argument(..., help="Session ids (or unique prefixes, or folders) to compare."),
    sessions_dir: Optional[Path] = typer.Option(None, "--sessions-dir", help="Sessions folder."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write one row per session to this CSV file."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the comparison to this JSON file."),
    markdown_path: Optional[Path] = typer.Option(None, "--markdown", help="Write the tables to this Markdown file."),
    no_charts: bool = typer.Option(False, "--no-charts", help="Print the tables only."),
    width: int = typer.Option(100, "--width", help="Chart width in characters."),
) -> None:
    """Compare sessions: tables and charts on stdout, exports to CSV, JSON and Markdown.

    Sessions that cannot be read are left out with a note on stderr (exit 3 if none can).
    """
    from tui_unlearn.analysis.comparison import Comparison
    from tui_unlearn.analysis.curves import comparison_charts
    from tui_unlearn.analysis.exports import EXPORTERS, write_export
    from tui_unlearn.errors import DataError
    from tui_unlearn.paths import sessions_dir as resolve_dir
    from tui_unlearn.sessions import open_session

    root = resolve_dir(sessions_dir)
    sessions = [open_session(root, ref) for ref in session_ids]
    comparison = Comparison.of(sessions)
    for note in comparison.notes:
        err(f"note: {note}")
    if not comparison.sessions:
        raise DataError("none of the sessions given can be read; nothing to compare")
    typer.echo(comparison.text())
    if not no_charts:
        typer.echo("")
        typer.echo(comparison_charts(comparison, width=width))
    for path, kind in ((csv_path, "csv"), (json_path, "json"), (markdown_path, "markdown")):
        if path is not None:
            write_export(path, EXPORTERS[kind](comparison))
            err(f"wrote {path}")


# ---- sessions ----

def _sessions_root(sessions_dir: Optional[Path]) -> Path:
    """The sessions folder to read; a file there is a usage error (exit 2)."""
    from tui_unlearn.paths import sessions_dir as resolve_dir

    root = resolve_dir(sessions_dir)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} is a file, not a sessions folder; pass --sessions-dir with a folder")
    return root


def _stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


@sessions_app.command("list")
@handle_errors
def sessions_list(
    sessions_dir: Optional[Path] = typer.Option(None, "--sessions-dir", help="Sessions folder."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """List saved sessions, newest first. A session that cannot be read is listed with
    status "unreadable" and why (JSON: its "problem")."""
    from tui_unlearn.analysis.tables import session_row, sessions_table
    from tui_unlearn.sessions import list_sessions

    root = _sessions_root(sessions_dir)
    rows = [session_row(s) for s in list_sessions(root)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
    elif not rows:
        err(f"no sessions in {root}")
    else:
        typer.echo(sessions_table(rows))


@sessions_app.command("show")
@handle_errors
def sessions_show(
    session_id: str = typer.Argument(..., help="Session id (or a unique prefix, or its folder)."),
    sessions_dir: Optional[Path] = typer.Option(None, "--sessions-dir", help="Sessions folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Show one session's config and before/after metrics (or why it cannot be read)."""
    from tui_unlearn.analysis.tables import session_report
    from tui_unlearn.sessions import open_session

    session = open_session(_sessions_root(sessions_dir), session_id)
    if as_json:
        typer.echo(json.dumps({"summary": session.summary(), "config": session.config()}, indent=2, default=str))
    else:
        typer.echo(session_report(session))


@sessions_app.command("delete")
@handle_errors
def sessions_delete(
    session_id: str = typer.Argument(..., help="Session id (or a unique prefix)."),
    sessions_dir: Optional[Path] = typer.Option(None, "--sessions-dir", help="Sessions folder."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete one session folder.

    Exit 0 when deleted or when the answer is no; 2 for an unknown id, a session whose run
    is still going, or no terminal to ask on without --yes.
    """
    from tui_unlearn.sessions import delete_session, open_session

    root = _sessions_root(sessions_dir)
    session = open_session(root, session_id)
    running = session.still_running()
    if running is not None:
        raise ConfigError(running)
    if not yes:
        if not _stdin_is_terminal():
            raise ConfigError(f"no terminal to confirm on; pass --yes to delete {session.id}")
        if not typer.confirm(f"delete session {session.id}?", err=True):
            raise typer.Exit(int(ExitCode.OK))
    delete_session(session, root)
    err(f"deleted {session.id}")


def main() -> None:
    app(prog_name="tui-unlearn")
