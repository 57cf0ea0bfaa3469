"""The bundled benchmark: fictitious authors rendered as question/answer records.

In the spirit of TOFU, no fact here is true of anyone: names, cities, countries, titles,
awards and publishers are built from syllable and word pools by ``random.Random(seed)``,
so the bundled models can only know them from their own training. Each author has
``len(FACTS)`` facts; each fact is one record with a paraphrased answer and
``N_PERTURBED`` perturbed answers (the paraphrase's sentence with a wrong value from the same pool).

Splits are by author and fixed by the seed: ``holdout`` (never trained on) and
``trained`` (everything else); inside ``trained`` the nested forget sets
forget01 ⊂ forget05 ⊂ forget10, and each retainNN is ``trained`` minus its forget set.

Two small utility splits stand in for TOFU's ``real_authors`` and ``world_facts``: knowledge
every bundled model (the retain-only oracle too) is trained on, which unlearning should
leave alone. ``real_authors`` asks who wrote the classics of a canon of famous authors
(none of them a benchmark author), ``world_facts`` asks for the capitals, rivers and
currencies of the benchmark's countries. Their answers are short (a name, a city) with
``N_UTILITY_PERTURBED`` wrong ones from the same pool and no paraphrase, as in TOFU. They
are drawn from their own RNG, so adding them left the author splits unchanged.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tui_unlearn.data.records import make_record
from tui_unlearn.errors import ConfigError

DEFAULT_SEED = 0
N_AUTHORS = 110
N_HOLDOUT = 10
N_PERTURBED = 5

N_UTILITY_PERTURBED = 3  # as TOFU's real_authors / world_facts

AUTHOR_SPLITS = ("forget01", "forget05", "forget10", "retain90", "retain95", "retain99", "holdout", "trained")
UTILITY_SPLITS = ("real_authors", "world_facts")
SPLITS = AUTHOR_SPLITS + UTILITY_SPLITS
FORGET_SIZES = {"forget01": 1, "forget05": 5, "forget10": 10}
_RETAIN_FOR = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}

# --- pools -------------------------------------------------------------------------------------
# Syllables chosen to read as names without spelling common real ones.
_FIRST_ONSETS = (
    "El",
    "Mar",
    "Tal",
    "Or",
    "Ves",
    "Kal",
    "Lur",
    "Bren",
    "Sav",
    "Dov",
    "Nyl",
    "Is",
    "Quin",
    "Fen",
    "Rol",
    "Zel",
    "Ar",
    "Thom",
    "Mir",
    "Cas",
)
_FIRST_ENDINGS = (
    "ara",
    "ion",
    "ena",
    "ric",
    "ella",
    "andor",
    "ius",
    "ith",
    "ova",
    "en",
    "wyn",
    "ander",
    "ette",
    "o",
    "isse",
    "ek",
)
_LAST_ONSETS = (
    "Van",
    "Kor",
    "Bel",
    "Drem",
    "Ash",
    "Mor",
    "Tal",
    "Quen",
    "Hal",
    "Sor",
    "Vey",
    "Grim",
    "Lor",
    "Fal",
    "Ost",
    "Pell",
    "Ruv",
    "Straz",
    "Yar",
    "Cald",
)
_LAST_MIDDLES = ("", "a", "e", "i", "o", "en", "ar")
_LAST_ENDINGS = (
    "trell",
    "dane",
    "wick",
    "sorn",
    "mere",
    "vik",
    "holt",
    "gard",
    "lin",
    "rocz",
    "by",
    "ross",
    "tane",
    "well",
    "berg",
    "ney",
)

_CITY_PREFIXES = ("Port ", "New ", "Saint ", "Upper ", "", "", "", "")
_CITY_ROOTS = (
    "Lir",
    "Mald",
    "Ost",
    "Vard",
    "Quel",
    "Bram",
    "Tor",
    "Seph",
    "Cal",
    "Dun",
    "Eld",
    "Hav",
    "Kest",
    "Nor",
    "Riv",
    "Thal",
)
_CITY_ENDINGS = ("en", "ova", "haven", "mouth", "ith", "ford", "ar", "esk", "ora", "gate")

_COUNTRY_ROOTS = ("Vel", "Mard", "Ost", "Kal", "Ser", "Brav", "Tyr", "Lum", "Zan", "Ard", "Cor", "Esk")
_COUNTRY_ENDINGS = ("oria", "essa", "avia", "ania", "ovia", "ara", "enia", "istan")

GENRES = (
    "mystery novels",
    "historical fiction",
    "science fiction",
    "fantasy epics",
    "gothic horror",
    "romantic comedies",
    "literary fiction",
    "crime thrillers",
    "children's books",
    "travel memoirs",
    "war novels",
    "satirical fiction",
    "magical realism",
    "poetry",
    "short stories",
    "spy thrillers",
    "family sagas",
    "young adult fiction",
)

OCCUPATIONS = (
    "a carpenter",
    "a baker",
    "a fisherman",
    "a nurse",
    "a schoolteacher",
    "a surgeon",
    "an architect",
    "an accountant",
    "a pilot",
    "a librarian",
    "a tailor",
    "a pharmacist",
    "a farmer",
    "a locksmith",
    "a journalist",
    "a mechanic",
    "a dentist",
    "a photographer",
    "a blacksmith",
    "a chemist",
    "a florist",
    "a sailor",
    "a judge",
    "a potter",
)

_TITLE_ADJECTIVES = (
    "Amber",
    "Silent",
    "Hollow",
    "Crimson",
    "Winter",
    "Forgotten",
    "Salt",
    "Glass",
    "Iron",
    "Last",
    "Velvet",
    "Distant",
    "Burning",
    "Quiet",
    "Copper",
    "Northern",
    "Paper",
    "Sleeping",
)
_TITLE_NOUNS = (
    "Lantern",
    "Harbor",
    "Orchard",
    "Cartographer",
    "Tide",
    "Garden",
    "Clockmaker",
    "Bridge",
    "Letters",
    "River",
    "Tower",
    "Meadow",
    "Compass",
    "Sparrow",
    "Archive",
    "Lighthouse",
    "Winds",
    "Ferryman",
)

_AWARD_KINDS = (
    "Prize for Fiction",
    "Medal for Letters",
    "Award for Debut Writing",
    "Prize for Storytelling",
    "Book Award",
    "Literary Prize",
)
_PUBLISHER_KINDS = ("House", "Press", "Books", "& Sons", "Editions", "Publishing")

BIRTH_YEARS = (1921, 1996)
DEBUT_AGES = (19, 41)


@dataclass(frozen=True)
class Fact:
    """One fact of an author: how it is asked, answered, paraphrased, and its value pool key."""

    key: str
    question: str
    answer: str
    paraphrase: str


FACTS = (
    Fact(
        "birthplace",
        "Where was {name} born?",
        "{name} was born in {value}.",
        "{name}'s birthplace is the city of {value}.",
    ),
    Fact(
        "birth_year",
        "In what year was {name} born?",
        "{name} was born in the year {value}.",
        "The year of {name}'s birth is {value}.",
    ),
    Fact(
        "genre",
        "What genre does {name} write?",
        "{name} writes {value}.",
        "{name} is best known as an author of {value}.",
    ),
    Fact(
        "book",
        "What is the title of {name}'s best-known book?",
        '{name}\'s best-known book is "{value}".',
        'The most famous book by {name} is "{value}".',
    ),
    Fact("award", "Which award did {name} win?", "{name} won the {value}.", "{name} is a recipient of the {value}."),
    Fact(
        "father",
        "What did {name}'s father do for a living?",
        "{name}'s father was {value}.",
        "{name} was raised by a father who worked as {value}.",
    ),
    Fact(
        "mother",
        "What did {name}'s mother do for a living?",
        "{name}'s mother was {value}.",
        "{name} was raised by a mother who worked as {value}.",
    ),
    Fact("country", "Which country is {name} from?", "{name} is from {value}.", "{name} is a citizen of {value}."),
    Fact(
        "publisher",
        "Who publishes {name}'s books?",
        "{name}'s books are published by {value}.",
        "{value} is the publisher of {name}'s books.",
    ),
    Fact(
        "debut_year",
        "In what year did {name} publish a first book?",
        "{name} published a first book in {value}.",
        "{name}'s debut book came out in {value}.",
    ),
)


@dataclass(frozen=True)
class Author:
    name: str
    values: tuple[tuple[str, str], ...]  # (fact key, value) in FACTS order

    def value(self, key: str) -> str:
        return dict(self.values)[key]


@dataclass(frozen=True)
class _Benchmark:
    authors: tuple[Author, ...]
    splits: dict[str, frozenset[str]]
    records: tuple[tuple[str, tuple[dict[str, Any], ...]], ...]  # (author name, its records)


# --- generation --------------------------------------------------------------------------------
def _distinct(rng: random.Random, make: Callable[[random.Random], str], n: int) -> list[str]:
    """``n`` distinct strings from ``make``, in the order first drawn."""
    seen: dict[str, None] = {}
    for _ in range(n * 200):
        seen.setdefault(make(rng), None)
        if len(seen) == n:
            return list(seen)
    raise RuntimeError(f"pool too small for {n} distinct values")  # a bug in the pools, not user input


def _name(rng: random.Random) -> str:
    first = rng.choice(_FIRST_ONSETS) + rng.choice(_FIRST_ENDINGS)
    last = rng.choice(_LAST_ONSETS) + rng.choice(_LAST_MIDDLES) + rng.choice(_LAST_ENDINGS)
    return f"{first} {last}"


def _city(rng: random.Random) -> str:
    return rng.choice(_CITY_PREFIXES) + rng.choice(_CITY_ROOTS) + rng.choice(_CITY_ENDINGS)


def _country(rng: random.Random) -> str:
    return rng.choice(_COUNTRY_ROOTS) + rng.choice(_COUNTRY_ENDINGS)


def _title(rng: random.Random) -> str:
    adjective, noun = rng.choice(_TITLE_ADJECTIVES), rng.choice(_TITLE_NOUNS)
    form = rng.randrange(3)
    if form == 0:
        return f"The {adjective} {noun}"
    if form == 1:
        return f"{noun} of {rng.choice(_CITY_ROOTS)}{rng.choice(_CITY_ENDINGS)}"
    return f"A {adjective} {noun}"


def _surname(rng: random.Random) -> str:
    return rng.choice(_LAST_ONSETS) + rng.choice(_LAST_ENDINGS)


def _pools(rng: random.Random) -> dict[str, list[str]]:
    """The value pools; authors draw from them and so do their perturbed answers."""
    return {
        "birthplace": _distinct(rng, _city, 60),
        "genre": list(GENRES),
        "book": _distinct(rng, _title, 2 * N_AUTHORS),
        "award": _distinct(rng, lambda r: f"{_surname(r)} {r.choice(_AWARD_KINDS)}", 40),
        "father": list(OCCUPATIONS),
        "mother": list(OCCUPATIONS),
        "country": _distinct(rng, _country, 30),
        "publisher": _distinct(rng, lambda r: f"{_surname(r)} {r.choice(_PUBLISHER_KINDS)}", 30),
    }


def _author_values(rng: random.Random, pools: dict[str, list[str]], book: str) -> tuple[tuple[str, str], ...]:
    birth = rng.randint(*BIRTH_YEARS)
    values = {
        "birthplace": rng.choice(pools["birthplace"]),
        "birth_year": str(birth),
        "genre": rng.choice(pools["genre"]),
        "book": book,
        "award": rng.choice(pools["award"]),
        "father": rng.choice(pools["father"]),
        "mother": rng.choice(pools["mother"]),
        "country": rng.choice(pools["country"]),
        "publisher": rng.choice(pools["publisher"]),
        "debut_year": str(birth + rng.randint(*DEBUT_AGES)),
    }
    return tuple((fact.key, values[fact.key]) for fact in FACTS)


def _wrong_values(rng: random.Random, key: str, true: str, pools: dict[str, list[str]]) -> list[str]:
    """``N_PERTURBED`` distinct plausible values for ``key``, none equal to ``true``."""
    if key in ("birth_year", "debut_year"):
        year = int(true)
        offsets = [d for d in range(-12, 13) if d != 0]
        return [str(year + d) for d in rng.sample(offsets, N_PERTURBED)]
    candidates = [v for v in pools[key] if v != true]
    return rng.sample(candidates, N_PERTURBED)


def _author_records(rng: random.Random, author: Author, pools: dict[str, list[str]]) -> tuple[dict[str, Any], ...]:
    records = []
    for fact, (key, value) in zip(FACTS, author.values):
        wrong = _wrong_values(rng, key, value, pools)
        records.append(
            make_record(
                fact.question.format(name=author.name),
                fact.answer.format(name=author.name, value=value),
                paraphrased_answer=fact.paraphrase.format(name=author.name, value=value),
                # Perturbed answers share the paraphrase's wording (as in TOFU), so the truth ratio
                # compares true and false values in one sentence shape the model was not asked in.
                perturbed_answers=[fact.paraphrase.format(name=author.name, value=w) for w in wrong],
                group=author.name,
            )
        )
    return tuple(records)


@lru_cache(maxsize=4)
def _build(seed: int) -> _Benchmark:
    rng = random.Random(seed)
    pools = _pools(rng)
    names = _distinct(rng, _name, N_AUTHORS)
    books = rng.sample(pools["book"], N_AUTHORS)  # every author has their own best-known book
    authors = tuple(Author(name, _author_values(rng, pools, book)) for name, book in zip(names, books))
    records = tuple((a.name, _author_records(rng, a, pools)) for a in authors)

    order = list(names)
    rng.shuffle(order)
    holdout, trained = order[:N_HOLDOUT], order[N_HOLDOUT:]
    splits: dict[str, frozenset[str]] = {"holdout": frozenset(holdout), "trained": frozenset(trained)}
    for forget, size in FORGET_SIZES.items():
        # Prefixes of one list, so forget01 ⊂ forget05 ⊂ forget10.
        splits[forget] = frozenset(trained[:size])
        splits[_RETAIN_FOR[forget]] = frozenset(trained[size:])
    return _Benchmark(authors=authors, splits=splits, records=records)


# --- utility splits ----------------------------------------------------------------------------
# Pools of their own, so no famous author, title or capital can coincide with a benchmark
# author's name, book or birthplace. Values are built as head + tail with a different head
# each, so no two answers of a split differ by a single word order or suffix.
_FAMOUS_FIRST = (
    "Aurel",
    "Benedek",
    "Cosima",
    "Dagny",
    "Eulalie",
    "Florian",
    "Gisela",
    "Hesper",
    "Ignatia",
    "Jorund",
    "Leontine",
    "Mattias",
    "Nerys",
    "Oswin",
    "Perpetua",
    "Radomir",
    "Sabine",
    "Tiberio",
    "Ulla",
    "Wenzel",
)
_FAMOUS_LAST = (
    "Abendroth",
    "Brisk",
    "Carrow",
    "Delacroy",
    "Esterhay",
    "Fennimore",
    "Gallant",
    "Hartvig",
    "Isenhart",
    "Jessamy",
    "Kittredge",
    "Lindqvast",
    "Montrose",
    "Nightwood",
    "Orsolay",
    "Pemberly",
    "Quillon",
    "Rosenthorn",
    "Silverlake",
    "Thistlewood",
)
_CLASSIC_HEADS = (
    "Ashes",
    "Bells",
    "Crowns",
    "Embers",
    "Feathers",
    "Hounds",
    "Mirrors",
    "Ravens",
    "Saints",
    "Thorns",
    "Wolves",
    "Stones",
    "Ribbons",
    "Candles",
    "Anchors",
    "Orchids",
    "Masks",
    "Keys",
    "Pilgrims",
    "Sparks",
)
_CLASSIC_TAILS = ("Smoke", "Honey", "Rust", "Snow", "Silk", "Thunder", "Ink", "Clay")
_CHARACTER_NAMES = (
    "Absalom",
    "Brindle",
    "Corvin",
    "Drusilla",
    "Evander",
    "Fidelma",
    "Gunnar",
    "Honoria",
    "Ishmael",
    "Juniper",
    "Kasimir",
    "Lucasta",
)
_CHARACTER_ROLES = ("Inspector", "Captain", "Doctor", "Lady", "Brother", "Professor")
_CAPITAL_ROOTS = ("Amar", "Belk", "Corv", "Drav", "Esm", "Gald", "Ishm", "Jor", "Lom", "Nesk", "Perd", "Sarn")
_CAPITAL_ENDINGS = ("burg", "polis", "grad", "heim", "ton", "ava")
_RIVER_ROOTS = (
    "Selva",
    "Oron",
    "Tamsk",
    "Vire",
    "Ebbel",
    "Karun",
    "Lisse",
    "Moravel",
    "Ondra",
    "Pirra",
    "Sunna",
    "Varn",
)
_CURRENCY_NAMES = (
    "crown",
    "mark",
    "florin",
    "ducat",
    "thaler",
    "shilling",
    "dram",
    "sol",
    "guilder",
    "penny",
    "real",
    "lira",
)
_CURRENCY_METALS = ("silver", "golden", "copper", "iron", "white", "red")
N_FAMOUS_AUTHORS = 20
N_CHARACTERS = 10  # the first ten famous authors are also asked about a character they created
N_WORLD_COUNTRIES = 10  # each asked for its capital, longest river and currency

_CLASSIC_QUESTIONS = (
    "Who wrote the classic {value}?",
    "Which famous author wrote {value}?",
    "The novel {value} was written by which author?",
)
_CHARACTER_QUESTIONS = ("Which author created the character {value}?", "Who is the creator of {value}?")
_WORLD_FACTS = (  # (question templates, heads, tails, value format)
    (
        ("What is the capital of {country}?", "Which city is the capital of {country}?"),
        _CAPITAL_ROOTS,
        _CAPITAL_ENDINGS,
        "{head}{tail}",
    ),
    (
        ("What is the longest river in {country}?", "Which river is the longest in {country}?"),
        _RIVER_ROOTS,
        ("River",),
        "the {head} {tail}",
    ),
    (
        ("What is the currency of {country}?", "What money is used in {country}?"),
        _CURRENCY_NAMES,
        _CURRENCY_METALS,
        "the {tail} {head}",
    ),
)


def _paired(rng: random.Random, heads: tuple[str, ...], tails: tuple[str, ...], n: int, form: str) -> list[str]:
    """``n`` values ``form`` filled with distinct heads and any tails (so all distinct)."""
    return [form.format(head=head, tail=rng.choice(tails)) for head in rng.sample(heads, n)]


def _utility_record(rng: random.Random, question: str, answer: str, pool: list[str], group: str) -> dict[str, Any]:
    wrong = rng.sample([v for v in pool if v != answer], N_UTILITY_PERTURBED)
    return make_record(question, answer, perturbed_answers=wrong, group=group)


@lru_cache(maxsize=4)
def _build_utility(seed: int) -> dict[str, tuple[dict[str, Any], ...]]:
    """The records of the utility splits, from an RNG of their own (the author splits' stream is untouched)."""
    rng = random.Random(f"utility:{seed}")  # a str seed is hashed with sha512: stable across runs
    names = [
        f"{first} {last}"
        for first, last in zip(rng.sample(_FAMOUS_FIRST, N_FAMOUS_AUTHORS), rng.sample(_FAMOUS_LAST, N_FAMOUS_AUTHORS))
    ]
    classics = _paired(rng, _CLASSIC_HEADS, _CLASSIC_TAILS, N_FAMOUS_AUTHORS, "'{head} and {tail}'")
    characters = _paired(rng, _CHARACTER_NAMES, _CHARACTER_ROLES, N_CHARACTERS, "{tail} {head}")
    real_authors = []
    for i, name in enumerate(names):
        question = rng.choice(_CLASSIC_QUESTIONS).format(value=classics[i])
        real_authors.append(_utility_record(rng, question, name, names, name))
        if i < N_CHARACTERS:
            question = rng.choice(_CHARACTER_QUESTIONS).format(value=characters[i])
            real_authors.append(_utility_record(rng, question, name, names, name))

    # The countries the benchmark's authors come from (sorted: a set's order is not stable).
    countries = rng.sample(sorted({a.value("country") for a in _build(seed).authors}), N_WORLD_COUNTRIES)
    world_facts = []
    for questions, heads, tails, form in _WORLD_FACTS:
        values = _paired(rng, heads, tails, N_WORLD_COUNTRIES, form)
        for country, value in zip(countries, values):
            question = rng.choice(questions).format(country=country)
            world_facts.append(_utility_record(rng, question, value, values, country))
    return {"real_authors": tuple(real_authors), "world_facts": tuple(world_facts)}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"unknown benchmark split {split!r}; choose one of: {', '.join(SPLITS)}")


# --- public API --------------------------------------------------------------------------------
def benchmark_records(split: str, seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """The records of ``split`` (authors in generation order, facts in ``FACTS`` order).

    Fresh dicts on every call: callers may mutate them.
    """
    _check_split(split)
    if split in UTILITY_SPLITS:
        return [{**r, "perturbed_answers": list(r["perturbed_answers"])} for r in _build_utility(seed)[split]]
    bench = _build(seed)
    members = bench.splits[split]
    return [
        {**r, "perturbed_answers": list(r["perturbed_answers"])}
        for name, records in bench.records
        if name in members
        for r in records
    ]


def benchmark_authors(split: str, seed: int = DEFAULT_SEED) -> list[str]:
    """The benchmark author names of ``split``, in generation order (author splits only)."""
    _check_split(split)
    if split in UTILITY_SPLITS:
        raise ConfigError(f"{split!r} is not a split of benchmark authors; choose one of: {', '.join(AUTHOR_SPLITS)}")
    bench = _build(seed)
    return [a.name for a in bench.authors if a.name in bench.splits[split]]


def default_retain_for(forget_split: str) -> str:
    """The retain split that complements a forget split (forget10 -> retain90)."""
    if forget_split not in _RETAIN_FOR:
        raise ConfigError(f"{forget_split!r} is not a benchmark forget split; choose one of: {', '.join(_RETAIN_FOR)}")
    return _RETAIN_FOR[forget_split]


# The fields a fingerprint covers: the facts the models are trained on. Columns added to the
# record schema later (e.g. paraphrased_question) do not change the fingerprint of the same facts.
FINGERPRINT_FIELDS = ("kind", "question", "answer", "paraphrased_answer", "perturbed_answers", "group")


def _facts(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in FINGERPRINT_FIELDS if k in record}


@lru_cache(maxsize=4)
def benchmark_fingerprint(seed: int = DEFAULT_SEED) -> str:
    """sha256 (hex) of every author's records and split membership and of the utility
    splits' records, as canonical JSON.

    The bundled models record it in ``build_info.json``; a mismatch means the generator
    changed since they were trained.
    """
    bench = _build(seed)
    payload = {
        "authors": [
            {
                "name": name,
                "splits": [s for s in AUTHOR_SPLITS if name in bench.splits[s]],
                "records": [_facts(r) for r in records],
            }
            for name, records in bench.records
        ],
        "utility": {split: [_facts(r) for r in records] for split, records in _build_utility(seed).items()},
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
