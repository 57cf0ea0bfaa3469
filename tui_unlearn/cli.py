"""The command line: the TUI by default, ``--batch`` for scripts, and subcommands.

stdout carries data only (``--json``: one object; ``--jsonl``: one event a line; else a
table for people); progress and errors go to stderr. Exit codes are ``errors.ExitCode``.
Run-setting and hyperparameter flags are generated from their declarations
(``cli_options``): this module only says what each command does with them.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from tui_unlearn.cli_options import (
    CommandLine,
    NamedArguments,
    show_version,
    split_values,
    with_hparam_options,
    with_setting_options,
)
from tui_unlearn.errors import ConfigError, ExitCode, UnlearnError
from tui_unlearn.params import CLI, EVAL
from tui_unlearn.printable import printable

app = typer.Typer(
    cls=CommandLine,
    add_completion=False,
    no_args_is_help=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    help="A terminal workbench for machine unlearning of language models.",
)
sessions_app = typer.Typer(
    help="List, show and delete saved sessions.", no_args_is_help=True, pretty_exceptions_enable=False
)
app.add_typer(sessions_app, name="sessions")


def is_secondary_rank() -> bool:
    """Under `accelerate launch` every process runs this CLI: only the first one talks to people."""
    return os.environ.get("RANK", "0") not in ("", "0")


def err(message: str) -> None:
    if not is_secondary_rank():
        typer.echo(printable(message), err=True)


def say(text: str) -> None:
    """Text for people on stdout; whatever it quotes from files is shown, never obeyed."""
    typer.echo(printable(text))


def charts_in_colour() -> bool:
    """Colour codes in charts only on a colour terminal (not a pipe, not NO_COLOR)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def say_chart(chart: str) -> None:
    """A chart on stdout: its labels went through printable() where they were made, so
    its colour codes (``charts_in_colour``) are kept."""
    typer.echo(chart)


def handle_errors(func: Callable) -> Callable:
    """One-line messages and documented exit codes instead of tracebacks."""
    path_options = _path_options(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            _check_paths(path_options, kwargs)
            return func(*args, **kwargs)
        except UnlearnError as exc:
            err(f"error: {exc}")
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            err("interrupted")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

    return wrapper


def _path_options(func: Callable) -> dict[str, str]:
    """{parameter: flag} of the command's options that take a file or folder."""
    import inspect

    found = {}
    for name, parameter in inspect.signature(func).parameters.items():
        option = parameter.default
        decls = getattr(option, "param_decls", None)
        if not decls:
            continue
        if (
            getattr(option, "metavar", None) == "PATH"
            or "Path" in str(parameter.annotation)
            or decls[0].endswith("-dir")
        ):
            found[name] = decls[0]
    return found


def _check_paths(path_options: dict[str, str], values: dict[str, Any]) -> None:
    """One check for every path option: a name longer than a file system allows fails
    deep inside (even Path.exists raises on it); say so first, as a usage error."""
    from tui_unlearn.paths import path_problem

    for name, flag in path_options.items():
        value = values.get(name)
        problem = path_problem(value) if value else None
        if problem:
            raise ConfigError(f"{flag} {problem}")


def _algorithms_epilog() -> str:
    from tui_unlearn.algorithms import all_algorithms

    lines = ["\b", "Algorithms:"] + [f"  {a.name:<12} {a.description}" for a in all_algorithms().values()]
    return "\n".join(lines)


def build_config(config_file: Path | None, values: dict[str, Any]):
    """The RunConfig of a command: the ``--config`` file (or the defaults), then the flags given."""
    from tui_unlearn.config import RunConfig, load_config_file, require_remote_code_consent

    settings, hparams = split_values(values)
    base = load_config_file(config_file) if config_file else RunConfig()
    if "trust_remote_code" not in settings:  # a file alone never turns it on: the flag must say so too
        require_remote_code_consent(base, f"config file {config_file}", ", or set it to false in the file")
    return base.with_overrides(hparams=hparams or None, **settings)


# ---- the main command ----

CONFIG_HELP = "A run config (.json or .toml; a session's config.json works). Flags given win over it."
SESSIONS_HELP = "Where sessions are saved (env TUI_UNLEARN_SESSIONS_DIR)."


@app.callback(invoke_without_command=True, epilog=_algorithms_epilog())
@with_hparam_options
@with_setting_options(CLI)
@handle_errors
def main_command(
    ctx: typer.Context,
    batch: bool = typer.Option(False, "--batch", help="Run headless (no TUI) and print results."),
    config_file: Path | None = typer.Option(None, "--config", help=CONFIG_HELP, metavar="PATH"),
    sessions_dir: str | None = typer.Option(None, "--sessions-dir", help=SESSIONS_HELP, metavar="PATH"),
    as_json: bool = typer.Option(False, "--json", help="With --batch: print one JSON object with the results."),
    as_jsonl: bool = typer.Option(False, "--jsonl", help="With --batch: print every event as a JSON line."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved config as JSON and exit."),
    version: bool = typer.Option(
        False, "--version", callback=show_version, is_eager=True, help="Print the version and exit."
    ),
    resume: str | None = typer.Option(
        None,
        "--resume",
        metavar="SESSION",
        help="With --batch: continue a killed or interrupted run from its checkpoint, in its own session and config.",
    ),
    **values: Any,
) -> None:
    """Open the workbench, or run headless with --batch."""
    if ctx.invoked_subcommand is not None:
        return
    if as_json and as_jsonl:
        raise ConfigError("--json and --jsonl cannot be used together; pick one")
    if resume is not None:
        settings, hparams = split_values(values)
        if not batch:
            raise ConfigError("--resume continues a run headless: add --batch")
        # --trust-remote-code is consent, not a run setting: a session folder may come from
        # someone else, so its config alone never runs a model folder's own code.
        allow_remote_code = bool(settings.pop("trust_remote_code", False))
        from tui_unlearn.config import MACHINE_SETTINGS, SETTINGS

        # This machine's settings (threads, device, ...) may change; the run's own may not.
        machine = {name: value for name, value in settings.items() if name in MACHINE_SETTINGS}
        fixed = [f"--{name.replace('_', '-')}" for name in [*settings, *hparams] if name not in machine]
        if fixed or config_file or print_config:
            given = ", ".join(fixed + ["--config"] * bool(config_file) + ["--print-config"] * bool(print_config))
            allowed = ", ".join(f"--{n.replace('_', '-')}" for n in sorted(MACHINE_SETTINGS) if n in SETTINGS)
            raise ConfigError(
                f"--resume runs the session's own config: drop {given} (only this machine's settings may change: {allowed})"
            )
        code = run_batch(
            None,
            sessions_dir,
            as_json=as_json,
            as_jsonl=as_jsonl,
            resume=resume,
            allow_remote_code=allow_remote_code,
            machine=machine,
        )
        raise typer.Exit(code)
    config = build_config(config_file, values)
    if print_config:
        from tui_unlearn.config import resolve
        from tui_unlearn.engine.runtime import default_threads

        resolved = resolve(config)
        processes = int(os.environ.get("WORLD_SIZE", "1"))
        derived = {
            "processes": processes,
            "effective_batch": resolved.batch_size * resolved.grad_accum * processes,
            "threads": resolved.threads or default_threads(),
        }
        typer.echo(json.dumps({**resolved.to_dict(), "_resolved": derived}, indent=2))
        return
    if batch:
        code = run_batch(config, sessions_dir, as_json=as_json, as_jsonl=as_jsonl)
        raise typer.Exit(code)
    if as_json or as_jsonl:
        raise ConfigError("--json and --jsonl are batch output: add --batch to run headless")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ConfigError("the workbench needs a terminal (stdin or stdout is redirected): add --batch to run headless")
    from tui_unlearn.tui.app import run_app

    run_app(config, sessions_dir)


def run_batch(
    config,
    sessions_dir: str | None,
    *,
    as_json: bool,
    as_jsonl: bool,
    resume: str | None = None,
    allow_remote_code: bool = False,
    machine: dict[str, Any] | None = None,
) -> int:
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
    from tui_unlearn.data.sources import read_stdin_text

    reads_stdin = config is not None and "-" in (config.forget, config.retain, config.holdout)
    stdin_text = read_stdin_text() if reads_stdin else None
    try:
        result = run(
            config,
            reporter.on_event,
            stop_requested.is_set,
            sessions_dir=sessions_dir,
            stdin_text=stdin_text,
            resume=resume,
            allow_remote_code=allow_remote_code,
            machine=machine,
        )
    except UnlearnError as exc:
        reporter.close()
        if reporter.session_path:  # the run had started: its session holds the failure
            reporter.print_failure(str(exc))
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    reporter.close()
    if is_secondary_rank():
        return int(result.exit_code)
    reporter.print_result(result)
    return int(result.exit_code)


# ---- eval ----


@app.command("eval")
@with_setting_options(EVAL)
@handle_errors
def eval_command(
    config_file: Path | None = typer.Option(None, "--config", help=CONFIG_HELP, metavar="PATH"),
    sessions_dir: str | None = typer.Option(None, "--sessions-dir", help=SESSIONS_HELP, metavar="PATH"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the results."),
    **values: Any,
) -> None:
    """Evaluate a model without unlearning: a session of kind eval, usable later as --oracle."""
    from tui_unlearn.batch import BatchReporter
    from tui_unlearn.engine import evaluate_model

    config = build_config(config_file, values)
    reporter = BatchReporter(as_json=as_json, as_jsonl=False)
    from tui_unlearn.data.sources import read_stdin_text

    stdin_text = read_stdin_text() if "-" in (config.forget, config.retain, config.holdout) else None
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


@app.command("analyze", cls=NamedArguments)
@handle_errors
def analyze_command(
    session_ids: list[str] = typer.Argument(
        ..., metavar="SESSION", help="Session ids (or unique prefixes, or folders) to compare, or one sweep folder."
    ),
    sessions_dir: str | None = typer.Option(None, "--sessions-dir", help="Sessions folder.", metavar="PATH"),
    csv_path: Path | None = typer.Option(
        None, "--csv", help="Write one row per session to this CSV file.", metavar="PATH"
    ),
    json_path: Path | None = typer.Option(
        None, "--json", help="Write the comparison to this JSON file.", metavar="PATH"
    ),
    markdown_path: Path | None = typer.Option(
        None, "--markdown", help="Write the tables to this Markdown file.", metavar="PATH"
    ),
    no_charts: bool = typer.Option(False, "--no-charts", help="Print the tables only."),
    width: int = typer.Option(100, "--width", help="Chart width in characters.", metavar="INT"),
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
    from tui_unlearn.sweeps.cli_view import sweep_sessions

    chart = None if no_charts else say_chart
    sessions = sweep_sessions(session_ids, root, echo=say, chart=chart, width=width, colour=charts_in_colour())
    sessions = sessions if sessions is not None else [open_session(root, ref) for ref in session_ids]
    comparison = Comparison.of(sessions)
    for note in comparison.notes:
        err(f"note: {note}")
    if not comparison.sessions:
        raise DataError("none of the sessions given can be read; nothing to compare")
    say(comparison.text())
    if not no_charts:
        say("")
        say_chart(comparison_charts(comparison, width=width, colour=charts_in_colour()))
    for path, kind in ((csv_path, "csv"), (json_path, "json"), (markdown_path, "markdown")):
        if path is not None:
            write_export(path, EXPORTERS[kind](comparison))
            err(f"wrote {path}")


# ---- watch ----


@app.command("watch", cls=NamedArguments)
@handle_errors
def watch_command(
    session_id: str = typer.Argument(..., metavar="SESSION", help="Session id (or a unique prefix, or its folder)."),
    sessions_dir: str | None = typer.Option(None, "--sessions-dir", help=SESSIONS_HELP, metavar="PATH"),
) -> None:
    """Watch a run that another process is writing (a --batch run in tmux, under accelerate
    launch or a job scheduler): its progress, curves and probe answers, live.

    It follows the session's events.jsonl as it grows and says when the run finished,
    failed, or stopped writing without finishing. A finished session is replayed.
    Exit 2 for an unknown session or without a terminal.
    """
    from tui_unlearn.sessions import open_session

    session = open_session(_sessions_root(sessions_dir), session_id)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ConfigError(
            f"watch needs a terminal (stdin or stdout is redirected); "
            f"'tui-unlearn sessions show {session.id}' prints the session instead"
        )
    from tui_unlearn.tui.app import run_app

    run_app(None, sessions_dir, watch=session)


# ---- sweep ----


@app.command("sweep", epilog=_algorithms_epilog())
@with_hparam_options
@with_setting_options(CLI)
@handle_errors
def sweep_command(
    grid: list[str] = typer.Option(
        [],
        "--grid",
        metavar="NAME=V1,V2,...",
        help="Values to try for one hyperparameter or setting (repeatable): every combination runs.",
    ),
    trials: int | None = typer.Option(
        None,
        "--trials",
        metavar="N",
        min=1,
        help="Let Optuna's multi-objective sampler pick N trials in the method's search space.",
    ),
    space: list[str] = typer.Option(
        [],
        "--space",
        metavar="NAME=LOW:HIGH[:log]",
        help="With --trials: search this range (or A|B|C choices) instead of the method's (repeatable).",
    ),
    parallel: int = typer.Option(1, "--parallel", metavar="K", min=1, help="Run K trials at once where memory allows."),
    config_file: Path | None = typer.Option(None, "--config", help=CONFIG_HELP, metavar="PATH"),
    sessions_dir: str | None = typer.Option(None, "--sessions-dir", help=SESSIONS_HELP, metavar="PATH"),
    sweep_dir: Path | None = typer.Option(
        None,
        "--sweep-dir",
        metavar="PATH",
        help="The sweep's folder (default: one named after the sweep, in the sessions folder).",
    ),
    storage: str | None = typer.Option(
        None,
        "--storage",
        metavar="URL",
        help="Keep the study in Optuna's storage so any number of workers (the same command, here or on other "
        "machines) share it: a path (SQLite), a database URL (postgresql://...) or journal:PATH (shared filesystem).",
    ),
    study: str | None = typer.Option(
        None, "--study", metavar="NAME", help="With --storage: the study's name (default: the sweep's folder name)."
    ),
    heartbeat: int | None = typer.Option(
        None,
        "--heartbeat",
        metavar="SECONDS",
        min=1,
        help="With --storage: seconds between a running trial's heartbeats; a trial silent for two is retried "
        "(default 60).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (its 'pareto' key lists the front)."),
    no_charts: bool = typer.Option(False, "--no-charts", help="Print the table only."),
    **values: Any,
) -> None:
    """Sweep a method's hyperparameters: each trial a session, the Pareto front of forgetting
    against utility, the best configuration as a config file. The same command again resumes."""
    from tui_unlearn.paths import sessions_dir as resolve_dir
    from tui_unlearn.sweeps import run_sweep

    base = build_config(config_file, values)
    report = run_sweep(
        base,
        root=resolve_dir(sessions_dir),
        grid_items=grid,
        space_items=space,
        trials=trials,
        parallel=parallel,
        folder=sweep_dir,
        log=err,
        storage=storage,
        study_name=study,
        heartbeat=heartbeat,
    )
    if as_json:
        typer.echo(json.dumps(report.to_json()))
    else:
        say(report.table())
        if not no_charts:
            say_chart(report.scatter(colour=charts_in_colour()))
    if report.best_config is not None:
        err(
            f"best configuration: {report.best_config} (run it with: tui-unlearn --batch --config {report.best_config})"
        )
    if report.early_failures:
        from tui_unlearn.errors import RunFailedError

        raise RunFailedError(
            f"{len(report.early_failures)} trial(s) failed before a session existed: {report.early_failures[0]}; "
            "fix that and run the same sweep command again (finished trials are kept)"
        )


# ---- plan ----


@app.command("plan", epilog=_algorithms_epilog())
@with_hparam_options
@with_setting_options(CLI)
@handle_errors
def plan_command(
    gpu_memory: str | None = typer.Option(
        None,
        "--gpu-memory",
        metavar="SIZE",
        help="A device's memory (80GiB, 24GB): say whether the run fits, and what makes it.",
    ),
    devices: int = typer.Option(8, "--devices", metavar="N", min=1, max=4096, help="Devices for DDP, FSDP and ZeRO-3."),
    config_file: Path | None = typer.Option(None, "--config", help=CONFIG_HELP, metavar="PATH"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    **values: Any,
) -> None:
    """Plan a run's memory before loading anything: the model's config only (meta device, no
    weights), per-device peak by part under 1 process, DDP, FSDP and ZeRO-3 (same options as a run)."""
    from tui_unlearn.config import resolve
    from tui_unlearn.memplan import make_plan, parse_memory

    memory = parse_memory(gpu_memory) if gpu_memory is not None else None
    report = make_plan(resolve(build_config(config_file, values)), memory=memory, devices=devices)
    if as_json:
        typer.echo(json.dumps(report.to_json()))
    else:
        say(report.text())


# ---- sessions ----


def _sessions_root(sessions_dir: str | None) -> Path:
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
    sessions_dir: str | None = typer.Option(None, "--sessions-dir", help="Sessions folder."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """List saved sessions, newest first. A session that cannot be read is listed with
    status "unreadable" and why (JSON: its "problem")."""
    from tui_unlearn.analysis.tables import session_row, sessions_table
    from tui_unlearn.sessions import json_safe, list_sessions

    root = _sessions_root(sessions_dir)
    rows = [session_row(s) for s in list_sessions(root)]
    if as_json:
        typer.echo(json.dumps(json_safe(rows), indent=2, default=str, allow_nan=False))
    elif not rows:
        err(f"no sessions in {root}")
    else:
        say(sessions_table(rows))


@sessions_app.command("show")
@handle_errors
def sessions_show(
    session_id: str = typer.Argument(..., help="Session id (or a unique prefix, or its folder)."),
    sessions_dir: str | None = typer.Option(None, "--sessions-dir", help="Sessions folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Show one session's config and before/after metrics (or why it cannot be read)."""
    from tui_unlearn.analysis.tables import session_report
    from tui_unlearn.sessions import json_safe, open_session

    session = open_session(_sessions_root(sessions_dir), session_id)
    if as_json:
        shown = json_safe({"summary": session.summary(), "config": session.config()})
        typer.echo(json.dumps(shown, indent=2, default=str, allow_nan=False))
    else:
        say(session_report(session))


@sessions_app.command("delete")
@handle_errors
def sessions_delete(
    session_id: str = typer.Argument(..., help="Session id (or a unique prefix)."),
    sessions_dir: str | None = typer.Option(None, "--sessions-dir", help="Sessions folder."),
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
    try:
        app(prog_name="tui-unlearn")
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        _exit_fast(code)
        raise


def _exit_fast(code: int) -> None:
    """Leave without the interpreter's teardown once a run is over and everything is written.

    Collecting torch's and transformers' modules and objects at exit took seconds after the
    last event (measured 1.4 s quiet, 4 s on a busy machine) for nothing: sessions are written
    with flushes and atomic renames as they go. Only stdout and stderr are still buffered.
    Under a launcher (several processes) the normal exit lets the process group close down.
    """
    from tui_unlearn.engine.runtime import is_distributed

    if "torch" not in sys.modules or is_distributed():
        return
    # A thread still at work (a TUI run being marked interrupted) must be allowed to finish.
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: nothing more can be said anyway
        pass
    os._exit(code)
