"""Command-line options generated from the declarations, and the help and errors around them.

Every run setting is a :class:`~tui_unlearn.params.Param` on ``RunConfig`` and every method
hyperparameter one in its method's file; this module turns them into typer options (type,
metavar, default and range in the help), so adding a setting or a hyperparameter never
touches the CLI. It also owns how the command line talks to people: one-line usage errors
(exit 2), ``--version``, and a ``--help`` that differs from ``--batch --help`` (the first is
an overview, the second lists every run option by group).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
import typer
from typer import Abort
from typer.core import TyperArgument, TyperCommand, TyperGroup

# typer 0.29 vendors its own click (typer._click): its errors are not the click package's.
try:
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # a typer that uses the click package itself
    from click.exceptions import ClickException, UsageError  # type: ignore[assignment]

from tui_unlearn.errors import ExitCode
from tui_unlearn.params import Param, show_value

if TYPE_CHECKING:
    # What typer passes to a group's methods: its vendored click's types, not the click package's.
    from typer._click import Context, HelpFormatter

SETTING_PREFIX = "set_"
HPARAM_PREFIX = "hp_"
HPARAMS_GROUP = "Method hyperparameters"
FACE_GROUP = "General"

_ANNOTATIONS = {
    "int": int | None,
    "float": float | None,
    "bool": bool | None,
    "str": str | None,
    "strlist": list[str] | None,
}
_METAVARS = {"int": "INT", "float": "FLOAT", "str": "TEXT", "strlist": "TEXT"}
# Options named in the short --help overview; --batch --help lists them all.
OVERVIEW_OPTIONS = (
    "--batch",
    "--model",
    "--forget",
    "--retain",
    "--algorithm",
    "--steps",
    "--config",
    "--sessions-dir",
    "--json",
    "--jsonl",
    "--print-config",
    "--version",
    "--help",
)


def metavar(param: Param) -> str | None:
    """What --help shows after the flag; a repeatable (list) option ends in "..."."""
    if param.type == "bool":
        return None
    if param.metavar:
        name = param.metavar
    elif param.choices:
        name = "[" + "|".join(param.choices) + "]"
    else:
        name = _METAVARS[param.type]
    return f"{name}..." if param.type == "strlist" and not name.endswith("...") else name


def setting_help(param: Param, default_note: str | None = None) -> str:
    """The declaration's help plus its default and allowed range, as --help shows them."""
    parts = [param.help.rstrip(".") + "."]
    if default_note is not None:
        parts.append(f"[default: {default_note}]")
    elif param.type != "bool" and param.default not in (None, [], {}):
        parts.append(f"[default: {show_value(param.default)}]")
    rng = param.range_text()
    if rng and not param.choices:
        parts.append(f"[range: {rng}]")
    return " ".join(parts)


def _option(param: Param, help_text: str) -> Any:
    names = [param.option] + ([param.short] if param.short else [])
    # On by default, or decided by the run when not given: the flag pair sets it either way.
    if param.type == "bool" and (param.default is True or param.nullable):
        names = [f"{param.option}/--no-{param.option[2:]}"]
    return typer.Option(
        None, *names, help=help_text, metavar=metavar(param), show_default=False, rich_help_panel=param.group or None
    )


def add_options(func: Callable, options: list[tuple[str, Any, Any]]) -> Callable:
    """Append keyword-only typer options (name, annotation, typer.Option) to ``func``'s signature."""
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    for name, annotation, option in options:
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation))
    func.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return func


def with_setting_options(face: str) -> Callable[[Callable], Callable]:
    """Give the command one option per run setting shown in ``face`` (values arrive in **kwargs
    as ``set_<name>``)."""

    def decorate(func: Callable) -> Callable:
        from tui_unlearn.config import METHOD_DEFAULTED, settings_for

        options = []
        for param in settings_for(face):
            note = method_defaults_note(param.name) if param.name in METHOD_DEFAULTED else None
            options.append(
                (SETTING_PREFIX + param.name, _ANNOTATIONS[param.type], _option(param, setting_help(param, note)))
            )
        return add_options(func, options)

    return decorate


def method_defaults_note(name: str) -> str:
    """ "5e-04; grad_diff 2e-04, idk 1e-03": the run default and the methods that change it."""
    from tui_unlearn.algorithms import all_algorithms
    from tui_unlearn.config import PRETRAINED_LORA_LR, PRETRAINED_LR, RUN_DEFAULTS

    own = [f"{a.name} {show_value(a.run_defaults[name])}" for a in all_algorithms().values() if name in a.run_defaults]
    base = show_value(RUN_DEFAULTS[name])
    note = f"{base}; {', '.join(own)}" if own else base
    if name == "lr":
        note = (
            f"a pretrained model {show_value(PRETRAINED_LR)} (with LoRA {show_value(PRETRAINED_LORA_LR)}); "
            f"the bundled tiny models {note}"
        )
    return note


def hparam_declarations() -> dict[str, tuple[Param, dict[str, Any]]]:
    """Hyperparameter name -> (a declaration, {method: its default}) over every method."""
    from tui_unlearn.algorithms import all_algorithms

    out: dict[str, tuple[Param, dict[str, Any]]] = {}
    for algo in all_algorithms().values():
        for p in algo.hyperparams:
            first, owners = out.setdefault(p.name, (p, {}))
            owners[algo.name] = p.default
            if first.type != p.type:  # two methods disagree on the type: take text, each method parses
                out[p.name] = (Param(p.name, "str", None, first.help), owners)
    return out


def with_hparam_options(func: Callable) -> Callable:
    """Give the command one option per declared hyperparameter, typed as declared
    (``--beta FLOAT``), its help naming each method's default (values arrive as ``hp_<name>``)."""
    options = []
    for name, (param, owners) in hparam_declarations().items():
        defaults = ", ".join(f"{method} {show_value(default)}" for method, default in owners.items())
        text = f"{param.help[:1].upper()}{param.help[1:].rstrip('.')}. [{defaults}]"
        rng = param.range_text()
        if rng and not param.choices:
            text += f" [range: {rng}]"
        flag = Param(name, param.type, None, text, choices=param.choices, group=HPARAMS_GROUP)
        annotation = _ANNOTATIONS[param.type] if param.type in _ANNOTATIONS else str | None
        options.append((HPARAM_PREFIX + name, annotation, _option(flag, text)))
    return add_options(func, options)


def split_values(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings, hyperparameters) given on the command line, without the ones left out."""
    settings = {
        k[len(SETTING_PREFIX) :]: v for k, v in kwargs.items() if k.startswith(SETTING_PREFIX) and v is not None
    }
    hparams = {k[len(HPARAM_PREFIX) :]: v for k, v in kwargs.items() if k.startswith(HPARAM_PREFIX) and v is not None}
    if not settings.get("probes"):  # typer gives [] for a repeatable option left out
        settings.pop("probes", None)
    return settings, hparams


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"tui-unlearn {version('tui-unlearn')}"
    except PackageNotFoundError:
        from tui_unlearn import __version__

        return f"tui-unlearn {__version__}"


def show_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


class NamedArguments(TyperCommand):
    """A command whose arguments' metavars say what they are: its help shows ``SESSION``,
    not ``SESSION <str>`` or ``SESSION <list[str]>`` (Python types mean nothing to a user)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument) and param.metavar:
                param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]


# ---- the group: one-line errors, two helps ----


class CommandLine(TyperGroup):
    """The top-level command: usage errors in one line, ``--batch --help`` its own page."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except UsageError as error:
            if type(error).__name__ == "NoArgsIsHelpError":  # a group called bare: its help, not an error
                error.show()
                sys.exit(int(ExitCode.USAGE))
            where = error.ctx.command_path if error.ctx is not None else (prog_name or "tui-unlearn")
            message = error.format_message().rstrip(".")
            click.echo(f"error: {message}; see '{where} --help'", err=True)
            sys.exit(int(ExitCode.USAGE))
        except ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except Abort:
            click.echo("interrupted", err=True)
            sys.exit(int(ExitCode.INTERRUPTED))
        sys.exit(code if isinstance(code, int) else 0)

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        # --help is eager and fires before --batch is read; remember both were given.
        ctx.meta["batch_help"] = "--batch" in args and any(a in ("-h", "--help") for a in args)
        return super().parse_args(ctx, args)

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        if ctx.meta.get("batch_help"):
            return self._format_batch_help(ctx, formatter)
        self.format_usage(ctx, formatter)
        formatter.write_paragraph()
        formatter.write_text(
            "A terminal workbench for machine unlearning of language models. With no command it opens "
            "the workbench (TUI); with --batch it runs headless: stdout is data, progress and errors go "
            "to stderr."
        )
        with formatter.section("Commands"):
            formatter.write_dl(
                [
                    (name, (cmd.help or "").split("\n\n")[0].replace("\n", " "))
                    for name, cmd in self.commands.items()
                    if not cmd.hidden
                ]
            )
        with formatter.section("Common options (every run option: tui-unlearn --batch --help)"):
            rows = [p.get_help_record(ctx) for p in self.get_params(ctx)]
            wanted = [r for r in rows if r and any(name in OVERVIEW_OPTIONS for name in _names(r[0]))]
            formatter.write_dl(wanted)
        self.format_epilog(ctx, formatter)

    def _format_batch_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "--batch [OPTIONS]")
        formatter.write_paragraph()
        formatter.write_text(
            "Run one unlearning job headless: load, evaluate before, unlearn, evaluate after, save a "
            "session. stdout: a table, or --json (one object), or --jsonl (one event a line). Exit "
            "codes: 0 finished, 1 failed or diverged, 2 usage or config error, 3 model or data could "
            "not be loaded, 130 interrupted (Ctrl-C stops after the current step)."
        )
        groups: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            panel = getattr(param, "rich_help_panel", None) or FACE_GROUP
            groups.setdefault(panel, []).append(record)
        for panel, rows in groups.items():
            with formatter.section(panel):
                formatter.write_dl(rows)
        self.format_epilog(ctx, formatter)


def _names(option_text: str) -> list[str]:
    return [part.strip().split(" ")[0] for part in option_text.split(",")]
