"""The hostile-input table's machinery: each row is (arguments, expected exit code, a fragment
the one-line error must hold), run through the real CLI in-process.

A row's arguments may name ``{tmp}`` (the test's own folder), ``{model}`` (a micro model),
``{forget}`` / ``{retain}`` (small valid data files) and ``{sessions}`` (a sessions folder that
already holds one finished session, which every row must leave as it was). ``setup`` builds
the hostile thing under ``tmp`` first (a FIFO, an endless file, a damaged session...).
Rows live in the ``test_*.py`` files beside this one, one table per area; add a row with
every bug found.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from tui_unlearn.cli import app

FORGET = [
    {"question": "Where was Alia Brenn born?", "answer": "Alia Brenn was born in Port Liren."},
    {"question": "What genre does Odo Vask write?", "answer": "Odo Vask writes mystery novels."},
]
RETAIN = [
    {"question": "Who wrote The Fox?", "answer": "The Fox was written by Ana Bel."},
    {"question": "When was Tor Ek born?", "answer": "Tor Ek was born in 1950."},
]


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int
    fragment: str
    setup: Callable[[Path], None] | None = None

    def __str__(self) -> str:
        return self.id


@dataclass
class World:
    """What a row's arguments can name."""

    tmp: Path
    model: Path
    forget: Path
    retain: Path
    sessions: Path

    def fill(self, arg: str) -> str:
        return arg.format(
            tmp=self.tmp, model=self.model, forget=self.forget, retain=self.retain, sessions=self.sessions
        )


def make_world(tmp: Path, model: Path, *, with_session: bool = True) -> World:
    forget, retain = tmp / "forget.jsonl", tmp / "retain.json"
    forget.write_text("".join(json.dumps(r) + "\n" for r in FORGET))
    retain.write_text(json.dumps(RETAIN))
    world = World(tmp, model, forget, retain, tmp / "sessions")
    if with_session:
        kept = CliRunner().invoke(
            app,
            ["--batch", "--sessions-dir", str(world.sessions), "--model", str(model), "--forget", str(forget)]
            + ["--retain", str(retain), "--steps", "1"],
        )
        assert kept.exit_code == 0, kept.stderr
    return world


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: a row must leave saved sessions as they were."""
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def check(case: Case, world: World, *, sessions_untouched: bool = True) -> None:
    """Run ``case`` and assert its exit code and one-line error, no traceback, nothing lost."""
    if case.setup is not None:
        case.setup(world.tmp)
    before = snapshot(world.sessions)
    result = CliRunner().invoke(app, [world.fill(a) for a in case.args])
    assert result.exit_code == case.code, (case.id, result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, (case.id, result.stderr)
    if case.code != 0:
        lines = result.stderr.strip().splitlines()
        assert lines and lines[-1].startswith("error: "), (case.id, result.stderr)
        assert [line for line in lines if line.startswith("error: ")] == [lines[-1]], (case.id, result.stderr)
        assert case.fragment in lines[-1], (case.id, case.fragment, lines[-1])
    if sessions_untouched:
        after = snapshot(world.sessions)
        assert {k: v for k, v in after.items() if k in before} == before, case.id  # no saved file changed or lost
