"""The engine never imports Textual, and the TUI starts without torch or transformers.

Checked in fresh interpreters, because only ``sys.modules`` shows whether a deferred
import really is deferred.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HEADLESS = [
    "import tui_unlearn.engine",
    "import tui_unlearn.config",
    "import tui_unlearn.events",
    "import tui_unlearn.sessions",
    "from tui_unlearn.analysis import comparison, curves, exports, reporting, tables",
    "import tui_unlearn.batch",
    "import tui_unlearn.cli",
    "import tui_unlearn.data.loading",
    "import tui_unlearn.models.loading",
    "from tui_unlearn.algorithms import all_algorithms; all_algorithms()",
]
TUI_LIBS = ("textual", "textual_plotext", "plotext")
HEAVY = ("torch", "transformers", "datasets")


def loaded_after(code: str, watch: tuple[str, ...]) -> list[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {watch!r} if m in sys.modules]))"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("statement", HEADLESS)
def test_engine_modules_do_not_import_the_tui(statement):
    assert loaded_after(statement, TUI_LIBS) == []


def test_the_batch_command_path_does_not_import_the_tui(tmp_path):
    code = (
        "import sys\n"
        "from tui_unlearn.cli import app\n"
        f"sys.argv = ['tui-unlearn', '--print-config', '--steps', '3', '--sessions-dir', {str(tmp_path)!r}]\n"
        "try:\n"
        "    app(prog_name='tui-unlearn')\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code"
    )
    assert loaded_after(code, TUI_LIBS) == []


def test_importing_the_app_does_not_import_torch_or_transformers():
    assert loaded_after("import tui_unlearn.tui.app", HEAVY) == []


def test_the_first_screen_comes_up_without_torch_or_transformers(tmp_path):
    code = (
        "import asyncio\n"
        "from tui_unlearn.tui.app import create_app\n"
        "async def main():\n"
        f"    app = create_app(sessions_dir={str(tmp_path)!r})\n"
        "    async with app.run_test(size=(80, 24)) as pilot:\n"
        "        await pilot.pause()\n"
        "asyncio.run(main())"
    )
    assert loaded_after(code, ("torch", "transformers")) == []


def test_every_package_ships_in_the_wheel():
    """pyproject lists packages by hand: a new package left out installs without its code."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(init.parent.relative_to(root).parts) for init in (root / "tui_unlearn").rglob("__init__.py")}
    assert on_disk <= listed, sorted(on_disk - listed)
