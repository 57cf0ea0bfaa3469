"""Fuzzing the loaders: whatever a user feeds them, the outcome is records or a one-line DataError.

Random bytes, random JSON / JSON Lines / CSV shapes (nested values, wrong types, empty,
cut short) in random encodings, through a file of every suffix and through standard
input (as bytes and as pasted text). Any other exception is a bug.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tui_unlearn.data.files import max_data_bytes
from tui_unlearn.data.loading import FILE_FORMATS, LoadedData, load_split, read_stdin_text
from tui_unlearn.data.records import COLUMNS
from tui_unlearn.errors import DataError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXT_SUFFIXES = sorted(s for s in FILE_FORMATS if s != ".parquet")
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252")
# Keys the loader knows, so generated rows often reach the field mapping, plus odd ones.
KEYS = st.one_of(
    st.sampled_from(
        [
            "question",
            "Answer",
            "prompt",
            "response",
            "text",
            "instruction",
            "input",
            "output",
            "q",
            "a",
            "paraphrased_answer",
            "paraphrased_question",
            "perturbed_answer",
            "perturbed_answers",
            "author",
            "data",
            "records",
            "answers",
        ]
    ),
    st.text(max_size=6),
)
# Texts JSON can carry and a naive reader trips on: a lone UTF-16 half ("\ud800" in JSON),
# and line separators that str.splitlines() splits on inside a JSON Lines string.
ODD_TEXTS = st.sampled_from(["q\ud800", "\udfff", "a\u2028b", "x\u0085y", "p\u2029q", "\x1c\x1d\x1e"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    ODD_TEXTS,
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3), max_leaves=12
)
ROWS = st.lists(st.one_of(st.dictionaries(KEYS, VALUES, max_size=5), VALUES), max_size=5)


@st.composite
def json_texts(draw) -> str:
    """A JSON document, JSON Lines, several arrays in a row, or one of them cut short."""
    rows = draw(ROWS)
    shape = draw(st.sampled_from(["list", "wrapped", "value", "lines", "raw lines", "arrays", "columns"]))
    if shape == "list":
        text = json.dumps(rows)
    elif shape == "wrapped":
        text = json.dumps({draw(KEYS): rows, draw(KEYS): draw(VALUES)})
    elif shape == "value":
        text = json.dumps(draw(VALUES))
    elif shape == "lines":
        text = "\n".join(json.dumps(row) for row in rows)
    elif shape == "raw lines":  # U+2028, NEL and the like left unescaped, as JSON allows
        text = "\n".join(json.dumps(row, ensure_ascii=False) for row in rows)
    elif shape == "arrays":
        text = "\n".join(json.dumps(rows[i : i + 2]) for i in range(0, len(rows), 2))
    else:
        text = json.dumps({key: draw(st.lists(VALUES, max_size=3)) for key in draw(st.lists(KEYS, max_size=3))})
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]  # a truncated paste
    return text


@st.composite
def csv_texts(draw) -> str:
    """CSV or TSV text from random cells, sometimes with rows of the wrong length or raw quotes."""
    delimiter = draw(st.sampled_from([",", "\t"]))
    header = draw(st.lists(KEYS, min_size=0, max_size=4))
    rows = draw(st.lists(st.lists(st.text(max_size=12), max_size=5), max_size=5))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()
    if draw(st.booleans()):
        text += draw(st.text(alphabet='"\n\r,\tab\\', max_size=12))
    return text


QA_TEXT = st.lists(
    st.one_of(st.sampled_from(["Q: who?", "A: me", "Question: when?", "Answer: now", "", "  "]), st.text(max_size=15)),
    max_size=8,
).map("\n".join)
# Nesting past Python's recursion limit, and integers past its digit limit for int().
EXTREME_JSON = st.one_of(
    st.builds(lambda n, opening: opening * n, st.integers(500, 5000), st.sampled_from(["[", '{"a":', '[{"text":'])),
    st.integers(4300, 5000).map(lambda n: '[{"text": ' + "7" * n + "}]"),
)
ANY_TEXT = st.one_of(json_texts(), csv_texts(), QA_TEXT, st.text(max_size=60), EXTREME_JSON)


def encoded(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


def check(load) -> None:
    """``load()`` gives a cleaned split or raises a one-line DataError; nothing else."""
    try:
        loaded = load()
    except DataError as error:
        message = str(error)
        assert message and "\n" not in message and message == message.strip(), message
        return
    assert isinstance(loaded, LoadedData) and len(loaded.records) == loaded.report.kept > 0
    for record in loaded.records:
        assert tuple(record) == COLUMNS and record["answer"]
        assert all(isinstance(record[k], str) for k in COLUMNS if k != "perturbed_answers")
        assert all(isinstance(p, str) for p in record["perturbed_answers"])
        # Every text must be writable as UTF-8 (sessions, tokenizers): no lone surrogates.
        json.dumps(record, ensure_ascii=False).encode("utf-8")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@SETTINGS
@given(data=st.binary(max_size=300), suffix=st.sampled_from(sorted(FILE_FORMATS)))
def test_random_bytes_in_a_file_of_any_suffix(folder, data, suffix):
    path = folder / f"random{suffix}"
    path.write_bytes(data)
    check(lambda: load_split(str(path), "forget"))


@SETTINGS
@given(text=ANY_TEXT, suffix=st.sampled_from(TEXT_SUFFIXES), encoding=st.sampled_from(ENCODINGS))
@pytest.mark.slow
def test_random_shapes_and_encodings_in_a_file(folder, text, suffix, encoding):
    path = folder / f"shaped{suffix}"
    path.write_bytes(encoded(text, encoding))
    check(lambda: load_split(str(path), "retain"))


@SETTINGS
@given(text=ANY_TEXT, encoding=st.sampled_from(ENCODINGS))
def test_random_shapes_through_stdin(text, encoding):
    stream = io.TextIOWrapper(io.BytesIO(encoded(text, encoding)), encoding="utf-8")
    check(lambda: load_split("-", "holdout", stdin=read_stdin_text(stream)))


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes_through_stdin(data):
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    check(lambda: load_split("-", "forget", stdin=read_stdin_text(stream)))


@SETTINGS
@given(text=ANY_TEXT)
def test_random_pasted_text(text):
    check(lambda: load_split("-", "forget", stdin=text))


@settings(max_examples=25, deadline=None)
@given(
    columns=st.dictionaries(
        st.sampled_from(["question", "answer", "text", "perturbed_answer", "paraphrased_question", "x"]),
        st.sampled_from(["str", "list", "int", "null"]),
        max_size=4,
    ),
    rows=st.integers(0, 4),
    seed=st.integers(0, 2**16),
)
def test_random_parquet_tables(folder, columns, rows, seed):
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    assume(columns)
    rng = random.Random(seed)
    make = {
        "str": lambda: rng.choice(["", " ", "Paris", "a?", None]),
        "list": lambda: rng.choice([[], ["x", "y"], None]),
        "int": lambda: rng.choice([0, -1, 2**40, None]),
        "null": lambda: None,
    }
    table = pa.table({name: [make[kind]() for _ in range(rows)] for name, kind in columns.items()})
    path = folder / "table.parquet"
    pq.write_table(table, path)
    check(lambda: load_split(str(path), "forget"))


def special_file(folder, kind: str, suffix: str):
    """A path of ``kind``: what no data file is, or something no reader should wait on."""
    path = folder / f"special-{kind}{suffix}"
    if os.path.lexists(path):
        return path
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "endless":  # says it holds more than the limit; takes no disk
        with open(path, "wb") as fh:
            fh.truncate(max_data_bytes() + 1)
    elif kind == "dangling link":
        path.symlink_to(folder / "nowhere" / f"x{suffix}")
    elif kind == "link loop":
        path.symlink_to(path)
    elif kind == "long name":
        return folder / ("n" * 300 + suffix)
    return path


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(["fifo", "folder", "endless", "dangling link", "link loop", "long name", "/dev/zero"]),
    suffix=st.sampled_from(sorted(FILE_FORMATS)),
)
def test_special_files_are_refused_without_waiting(folder, kind, suffix):
    """A FIFO with no writer, a device, an endless file: one line, at once (an alarm fails a hang)."""
    path = "/dev/zero" if kind == "/dev/zero" else str(special_file(folder, kind, suffix))

    def alarm(signum, frame):
        raise AssertionError(f"{kind} {suffix}: the loader is still waiting after 20 s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(20)
    try:
        with pytest.raises(DataError) as caught:
            load_split(path, "forget")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    message = str(caught.value)
    assert message and "\n" not in message and message == message.strip(), message
