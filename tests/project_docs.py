"""The user documentation as tests read it: README.md and every page under docs/.

Tests that hold the docs to the code (the keys table, the --jsonl event list, promised
numbers) read the text here, so a section can move between README.md and docs/ without the
test losing it; a test that needs one table reads that one page.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def pages() -> list[Path]:
    """README.md, then docs/*.md by name."""
    return [README, *sorted(DOCS.glob("*.md"))]


def doc_text(page: str | None = None) -> str:
    """One page (``"README.md"`` or a name under docs/, e.g. ``"workbench.md"``), or all of them
    joined (None)."""
    if page is None:
        return "\n".join(path.read_text(encoding="utf-8") for path in pages())
    path = README if page == README.name else DOCS / page
    return path.read_text(encoding="utf-8")
