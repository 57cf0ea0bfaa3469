"""The docs hold together: every relative link in README.md, CONTRIBUTING.md and docs/ reaches a
file (and a heading, where it names one), and the tables that list what the code registers list
exactly that: the methods, the recipes, the events a run emits."""

from __future__ import annotations

import re
from pathlib import Path

from project_docs import DOCS, ROOT, doc_text, pages

from tui_unlearn import events as ev
from tui_unlearn.algorithms import BUILTIN as METHODS
from tui_unlearn.recipes import BUILTIN as RECIPES

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def prose(text: str) -> str:
    """Markdown without its fenced code blocks (a link-like string in code is not a link)."""
    return FENCE.sub("", text)


def anchors(path: Path) -> set[str]:
    """The heading anchors GitHub makes for a Markdown file (duplicates get -1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for line in prose(path.read_text(encoding="utf-8")).splitlines():
        heading = re.match(r"#{1,6} +(.*?) *#* *$", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in LINK.findall(prose(path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):  # http(s):, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no heading #{anchor} in {linked.name})")
    return broken


def test_every_relative_link_reaches_its_file_and_heading():
    found = {str(p.relative_to(ROOT)): broken_links(p) for p in [*pages(), ROOT / "CONTRIBUTING.md"]}
    assert {page: links for page, links in found.items() if links} == {}


def test_the_link_check_sees_a_broken_link_and_a_missing_heading(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n## Two words\n\n[x](b.md) [y](#two-words) [z](#none)\n")
    assert broken_links(tmp_path / "a.md") == ["b.md (no such file)", "#none (no heading #none in a.md)"]
    assert anchors(DOCS / "metrics-and-recipes.md") >= {
        "evaluation-robustness-and-analysis",
        "the-bundled-target-and-oracle-evaluated-tui-unlearn-eval",
    }


def test_every_doc_page_is_in_the_readme_contents():
    readme = doc_text("README.md")
    assert [p.name for p in sorted(DOCS.glob("*.md")) if f"](docs/{p.name})" not in readme] == []


def first_column(page: str, header: str) -> list[str]:
    """The backticked names in the first column of the table whose header row starts with ``header``."""
    text = doc_text(page)
    names = []
    for row in text[text.index(header) :].splitlines()[2:]:
        if not row.startswith("|"):
            break  # the table ends at its first line that is no row
        cell = re.match(r"\| `([^`]+)`", row)
        names.append(cell.group(1) if cell else row)
    return names


def test_the_methods_table_lists_every_built_in_method_in_order():
    assert first_column("methods.md", "| method | what it does |") == list(METHODS)
    count = re.search(r"the (\d+) unlearning methods", doc_text("README.md"))
    assert count and int(count.group(1)) == len(METHODS)


def test_the_recipes_table_lists_every_built_in_recipe_in_order():
    assert first_column("metrics-and-recipes.md", "| recipe | command | computes |") == list(RECIPES)


def test_the_architecture_page_lists_every_event_a_run_emits():
    text = doc_text("architecture.md")
    table = text[text.index("| event (`--jsonl` name) | when |") :].split("\n\n")[0]
    listed = dict(re.findall(r"^\| `(\w+)` \(`(\w+)`\)", table, re.M))
    assert {cls.__name__: kind for kind, cls in ev.EVENT_TYPES.items()} == listed
