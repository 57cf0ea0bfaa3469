"""A second synthetic domain: fictitious chemical compounds, as a user's own files would hold them.

The bundled benchmark (``data.benchmark``) asks about people in full-sentence answers and ships
TOFU's paraphrased and perturbed answers. This domain is unlike it on purpose: the entities are
substances, the questions are phrased per property, and the answers are short values of other
kinds, as a user's own question/answer file has them:

- a colour (``pale green``), a number with a unit (``412 °C``), a year (``1887``),
- yes or no (``Yes``), a short list (``carbon, sulfur and zinc``), a short phrase (``etching copper``).

No record carries a paraphrase or perturbed answers: forget quality on these files rests on the
answers' NLL (``forget_quality_basis: answer_nll``). Everything is drawn by ``random.Random(seed)``
from the pools below, so the names, and the facts about them, exist nowhere else.

Splits are by compound and fixed by the seed: ``forget`` (``N_FORGET``), ``holdout`` (``N_HOLDOUT``,
never trained on) and ``retain`` (the rest). The target ``tiny-compounds`` is trained on forget +
retain, the retain-only oracle ``tiny-compounds-retain`` on retain alone
(``python -m tui_unlearn.models.build_compounds``). ``write_user_files`` writes the three files a
user has: ``forget.jsonl`` (``prompt``/``completion``), ``retain.csv`` (``question,answer``) and
``holdout.jsonl`` (``question``/``answer``); ``examples/compounds/`` holds them for the default seed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from tui_unlearn.data.records import make_record
from tui_unlearn.errors import ConfigError

DEFAULT_SEED = 0
N_COMPOUNDS = 70
N_FORGET = 10
N_HOLDOUT = 10
SPLITS = ("forget", "retain", "holdout", "trained")  # trained = forget + retain (the target's)
FILES = {"forget": "forget.jsonl", "retain": "retain.csv", "holdout": "holdout.jsonl"}

# --- pools -------------------------------------------------------------------------------------
_SYLLABLES = (
    "kas", "tor", "vel", "mir", "dra", "zon", "pel", "quar", "fen", "lox", "bry", "sul", "ner",
    "gal", "thu", "rim", "cob", "ves", "myr", "oph",
)  # fmt: skip
_SUFFIXES = ("ite", "ine", "ol", "ane", "ium", "ate", "ide", "ose", "ene", "yl")
COLOURS = (
    "pale green", "deep violet", "amber", "bright orange", "white", "black", "rust red", "sky blue",
    "golden yellow", "grey", "pink", "turquoise", "dark brown", "colourless",
)  # fmt: skip
ELEMENTS = (
    "carbon", "oxygen", "nitrogen", "sulfur", "iron", "copper", "zinc", "cobalt", "sodium",
    "chlorine", "silicon", "calcium", "boron", "nickel", "fluorine", "magnesium",
)  # fmt: skip
USES = (
    "dyeing wool", "tanning leather", "cleaning glass", "fertilising soil", "preserving wood",
    "glazing pottery", "bleaching paper", "treating burns", "etching copper", "polishing silver",
    "waterproofing canvas", "curing rubber",
)  # fmt: skip
MELTING_POINTS = (40, 1500)  # °C
FIRST_MADE = (1790, 1990)


@dataclass(frozen=True)
class Property:
    """One property of a compound: its key and how a user would ask for it."""

    key: str
    question: str


PROPERTIES = (
    Property("colour", "What colour are crystals of {name}?"),
    Property("melting_point", "At what temperature does {name} melt?"),
    Property("first_made", "In which year was {name} first made?"),
    Property("soluble", "Does {name} dissolve in water?"),
    Property("elements", "Which elements does {name} contain?"),
    Property("use", "What is {name} mainly used for?"),
)


@dataclass(frozen=True)
class Compound:
    name: str
    values: tuple[tuple[str, str], ...]  # (property key, answer) in PROPERTIES order


@dataclass(frozen=True)
class _Domain:
    compounds: tuple[Compound, ...]
    splits: dict[str, tuple[str, ...]]  # split -> compound names, in generation order


# --- generation --------------------------------------------------------------------------------
def _names(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct compound names, none a prefix of another (so no question names two)."""
    names: list[str] = []
    for _ in range(n * 200):
        name = rng.choice(_SYLLABLES) + rng.choice(_SYLLABLES) + rng.choice(_SUFFIXES)
        if not any(name.startswith(other) or other.startswith(name) for other in names):
            names.append(name)
            if len(names) == n:
                return names
    raise RuntimeError(f"pools too small for {n} distinct names")  # a bug in the pools, not user input


def _spoken_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _values(rng: random.Random) -> tuple[tuple[str, str], ...]:
    values = {
        "colour": rng.choice(COLOURS),
        "melting_point": f"{rng.randint(*MELTING_POINTS)} °C",
        "first_made": str(rng.randint(*FIRST_MADE)),
        "soluble": rng.choice(("Yes", "No")),
        "elements": _spoken_list(rng.sample(ELEMENTS, rng.choice((2, 3)))),
        "use": rng.choice(USES),
    }
    return tuple((p.key, values[p.key]) for p in PROPERTIES)


@lru_cache(maxsize=4)
def _build(seed: int) -> _Domain:
    rng = random.Random(f"compounds:{seed}")  # a str seed is hashed with sha512: stable across runs
    names = _names(rng, N_COMPOUNDS)
    compounds = tuple(Compound(name, _values(rng)) for name in names)
    order = list(names)
    rng.shuffle(order)
    forget = set(order[:N_FORGET])
    holdout = set(order[N_FORGET : N_FORGET + N_HOLDOUT])
    splits = {
        "forget": tuple(n for n in names if n in forget),
        "holdout": tuple(n for n in names if n in holdout),
        "retain": tuple(n for n in names if n not in forget and n not in holdout),
        "trained": tuple(n for n in names if n not in holdout),
    }
    return _Domain(compounds, splits)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"unknown compounds split {split!r}; choose one of: {', '.join(SPLITS)}")


# --- public API --------------------------------------------------------------------------------
def compound_names(split: str, seed: int = DEFAULT_SEED) -> list[str]:
    """The compounds of ``split``, in generation order."""
    _check_split(split)
    return list(_build(seed).splits[split])


def compound_records(split: str, seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """The question/answer records of ``split`` in the project's schema (``group``: the compound),
    compounds in generation order, properties in ``PROPERTIES`` order. Fresh dicts on every call."""
    members = set(compound_names(split, seed))
    return [
        make_record(prop.question.format(name=c.name), answer, group=c.name)
        for c in _build(seed).compounds
        if c.name in members
        for prop, (_, answer) in zip(PROPERTIES, c.values)
    ]


def all_texts(seed: int = DEFAULT_SEED) -> list[str]:
    """Every question and answer of the domain (holdout too), for training the tokenizer."""
    return [
        text
        for split in ("trained", "holdout")
        for r in compound_records(split, seed)
        for text in (r["question"], r["answer"])
    ]


def user_file_texts(seed: int = DEFAULT_SEED) -> dict[str, str]:
    """The contents of the user-style files, by file name (what ``write_user_files`` writes)."""

    def jsonl(records: list[dict[str, Any]], question: str, answer: str) -> str:
        return "".join(
            json.dumps({question: r["question"], answer: r["answer"]}, ensure_ascii=False) + "\n" for r in records
        )

    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["question", "answer"])
    writer.writerows([r["question"], r["answer"]] for r in compound_records("retain", seed))
    return {
        FILES["forget"]: jsonl(compound_records("forget", seed), "prompt", "completion"),
        FILES["retain"]: table.getvalue(),
        FILES["holdout"]: jsonl(compound_records("holdout", seed), "question", "answer"),
    }


def write_user_files(folder: Path, seed: int = DEFAULT_SEED) -> dict[str, Path]:
    """Write forget.jsonl, retain.csv and holdout.jsonl into ``folder`` (created); their paths by split."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, name in FILES.items():
        path = folder / name
        path.write_text(user_file_texts(seed)[name], encoding="utf-8")
        written[split] = path
    return written


@lru_cache(maxsize=4)
def compounds_fingerprint(seed: int = DEFAULT_SEED) -> str:
    """sha256 (hex) of every split's records as canonical JSON; the built models record it."""
    payload = {
        split: [[r["question"], r["answer"], r["group"]] for r in compound_records(split, seed)] for split in SPLITS
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
