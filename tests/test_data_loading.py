"""Loading forget/retain/holdout sets from every source into the record schema."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tui_unlearn.data import hub
from tui_unlearn.data.loading import LoadedData, load_records, load_source, load_split, parse_text
from tui_unlearn.data.records import COLUMNS
from tui_unlearn.errors import DataError, ExitCode

ROOT = Path(__file__).resolve().parents[1]


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message == message.strip() and message
    assert "Traceback" not in message
    return message


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return str(path)


def pairs(records) -> list[tuple[str, str]]:
    return [(r["question"], r["answer"]) for r in records]


def column(records, name: str) -> list:
    return [r[name] for r in records]


# --- text and stdin ---------------------------------------------------------------------------
def test_txt_with_qa_lines_becomes_qa_records(tmp_path):
    path = write(
        tmp_path / "facts.txt",
        "Q: Where was Alia Brenn born?\nA: In Port Liren.\n\n"
        "Question: What does she write?\nAnswer: Mystery novels,\nmostly short ones.\n",
    )
    loaded = load_split(path, "forget")
    assert loaded.detected_format == "txt (Q:/A: pairs)"
    assert pairs(loaded.records) == [
        ("Where was Alia Brenn born?", "In Port Liren."),
        ("What does she write?", "Mystery novels,\nmostly short ones."),
    ]
    assert set(column(loaded.records, "kind")) == {"qa"}
    assert [list(r) for r in loaded.records] == [list(COLUMNS)] * 2
    assert list(loaded.to_dataset().column_names) == list(COLUMNS)


def test_txt_paragraphs_split_on_blank_lines_and_keep_line_breaks(tmp_path):
    path = write(tmp_path / "doc.txt", "First paragraph,\nsecond line.\n\n\n  Second   paragraph. \n")
    loaded = load_split(path, "forget")
    assert loaded.detected_format == "txt (paragraphs)"
    assert column(loaded.records, "answer") == ["First paragraph,\nsecond line.", "Second paragraph."]
    assert column(loaded.records, "question") == ["", ""]
    assert column(loaded.records, "kind") == ["text", "text"]


def test_txt_without_blank_lines_is_one_record_per_line(tmp_path):
    path = write(tmp_path / "lines.txt", "one\ntwo\r\nthree\n")
    loaded = load_split(path, "forget")
    assert loaded.detected_format == "txt (lines)"
    assert column(loaded.records, "answer") == ["one", "two", "three"]


def test_stdin_text_argument_is_parsed_like_a_txt_file():
    loaded = load_split("-", "forget", stdin="Q: Who?\nA: Odo Vask.\n")
    assert loaded.detected_format == "pasted (Q:/A: pairs)"
    assert pairs(loaded.records) == [("Who?", "Odo Vask.")]


def test_stdin_recognises_pasted_json_lines():
    pasted = '{"prompt": "Who?", "completion": "Odo."}\n{"text": "Some text."}\n'
    records, detected = load_records("-", stdin=pasted)
    assert detected.startswith("pasted jsonl (mixed")
    assert [(r["kind"], r["question"], r["answer"]) for r in records] == [
        ("qa", "Who?", "Odo."),
        ("text", "", "Some text."),
    ]


def test_stdin_starting_with_a_bracket_that_is_not_json_is_text():
    records, detected = load_records("-", stdin="[Chapter 1] It was a dark night.")
    assert detected == "pasted (lines)"
    assert records[0]["answer"] == "[Chapter 1] It was a dark night."


def test_stdin_is_read_when_no_text_is_given(monkeypatch):
    stream = io.TextIOWrapper(io.BytesIO(b"Q: a?\nA: b\n"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stream)
    assert pairs(load_split("-", "forget").records) == [("a?", "b")]


def test_stdin_from_a_terminal_is_an_error(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    with pytest.raises(DataError) as excinfo:
        load_split("-", "forget")
    message = one_line_error(excinfo)
    assert "nothing was piped in" in message and message.startswith("forget set:")


def test_qa_text_with_a_question_but_no_answer_names_the_line(tmp_path):
    path = write(tmp_path / "qa.txt", "Q: one?\nA: yes\nQ: two?\n\nQ: three?\nA: no\n")
    with pytest.raises(DataError) as excinfo:
        load_split(path, "forget")
    message = one_line_error(excinfo)
    assert "line 3 of" in message and "question without an answer" in message


def test_qa_text_with_lines_outside_a_pair_is_an_error():
    with pytest.raises(DataError) as excinfo:
        load_split("-", "forget", stdin="My notes\nQ: one?\nA: yes\n")
    message = one_line_error(excinfo)
    assert "line 1 of standard input is outside a Q:/A: pair" in message


@pytest.mark.parametrize(
    "text, expected",
    [
        ("A: stray\nQ: one?\nA: yes\n", "line 1 of standard input: an answer with no question before it"),
        ("Q: one?\nA: yes\nA: no\n", "line 3 of standard input: a second answer to the question on line 1"),
    ],
)
def test_qa_text_answer_errors(text, expected):
    with pytest.raises(DataError) as excinfo:
        load_split("-", "forget", stdin=text)
    assert expected in one_line_error(excinfo)


def test_parse_text_ignores_an_answer_line_with_no_question_anywhere():
    records, layout = parse_text("A: list item\nB: another\n")
    assert layout == "lines" and [r["answer"] for r in records] == ["A: list item", "B: another"]


# --- structured files -------------------------------------------------------------------------
def test_json_list_of_objects_with_tofu_extras(tmp_path):
    rows = [
        {
            "question": "Where was X born?",
            "answer": "X was born in Lir.",
            "paraphrased_answer": "Lir is X's birthplace.",
            "perturbed_answer": ["X was born in Ost.", "X was born in Vard."],
        }
    ]
    path = write(tmp_path / "tofu.json", json.dumps(rows))
    loaded = load_split(path, "forget")
    assert loaded.detected_format == "json (question/answer, paraphrased, perturbed)"
    record = loaded.records[0]
    assert record["paraphrased_answer"] == "Lir is X's birthplace."
    assert record["perturbed_answers"] == ["X was born in Ost.", "X was born in Vard."]


@pytest.mark.parametrize("key", ["data", "records", "train", "Examples"])
def test_json_object_holding_the_list_under_a_key(tmp_path, key):
    path = write(tmp_path / "wrapped.json", json.dumps({"meta": {"v": 1}, key: [{"q": "a?", "a": "b"}]}))
    assert pairs(load_source(path)) == [("a?", "b")]


def test_json_single_record_columns_and_strings(tmp_path):
    single = write(tmp_path / "one.json", json.dumps({"question": "a?", "answer": "b", "perturbed_answers": ["c"]}))
    assert pairs(load_source(single)) == [("a?", "b")]
    columns = write(tmp_path / "cols.json", json.dumps({"question": ["a?", "c?"], "answer": ["b", "d"]}))
    assert pairs(load_source(columns)) == [("a?", "b"), ("c?", "d")]
    strings = write(tmp_path / "strings.json", json.dumps(["text one", "text two"]))
    dataset = load_source(strings)
    assert dataset["kind"] == ["text", "text"] and dataset["answer"] == ["text one", "text two"]


def test_jsonl_aliases_alpaca_and_plain_text(tmp_path):
    lines = [
        {"Instruction": "Translate", "input": "bonjour", "output": "hello"},
        {"instruction": "Say hi", "input": "", "output": "hi"},
    ]
    alpaca = write(tmp_path / "alpaca.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    records, detected = load_records(alpaca)
    assert detected == "jsonl (instruction+input/output)"
    assert [(r["question"], r["answer"]) for r in records] == [("Translate\n\nbonjour", "hello"), ("Say hi", "hi")]

    for q, a in [("prompt", "completion"), ("query", "response"), ("input", "target"), ("q", "a")]:
        path = write(tmp_path / f"{q}.jsonl", json.dumps({q: "Q?", a: "A.", "author": "Odo"}) + "\n")
        loaded = load_split(path, "retain")
        assert pairs(loaded.records) == [("Q?", "A.")] and column(loaded.records, "group") == ["Odo"]
        assert loaded.detected_format == f"jsonl ({q}/{a})"

    for name in ["text", "content", "document", "body"]:
        path = write(tmp_path / f"{name}.ndjson", json.dumps({name: "Plain text.", "id": 3}) + "\n")
        dataset = load_source(path)
        assert dataset["kind"] == ["text"] and dataset["answer"] == ["Plain text."]


def test_json_lines_saved_as_json_and_squad_style_answers(tmp_path):
    rows = [{"question": "Capital?", "answers": {"text": ["Paris", "paris"], "answer_start": [0, 0]}}] * 2
    path = write(tmp_path / "squad.json", "\n".join(json.dumps(r) for r in rows))
    records, detected = load_records(path)
    assert detected == "jsonl (question/answers)"
    assert [(r["question"], r["answer"]) for r in records] == [("Capital?", "Paris")] * 2


def test_csv_and_tsv_with_quoted_commas_and_newlines(tmp_path):
    path = write(tmp_path / "qa.csv", 'Question,Answer\n"Where, exactly?","In Lir,\nnear the sea"\nshort,\n')
    loaded = load_split(path, "forget")
    assert loaded.detected_format == "csv (question/answer)"
    assert pairs(loaded.records) == [("Where, exactly?", "In Lir,\nnear the sea")]
    assert loaded.report.empty_dropped == 1  # the row with an empty answer

    tsv = write(tmp_path / "qa.tsv", "prompt\tresponse\nwho?\tme\n")
    assert pairs(load_source(tsv)) == [("who?", "me")]


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "qa.parquet"
    pq.write_table(pa.table({"question": ["a?", "c?"], "answer": ["b", "d"], "perturbed_answers": [["x"], []]}), path)
    loaded = load_split(str(path), "holdout")
    assert loaded.detected_format == "parquet (question/answer, perturbed)"
    assert pairs(loaded.records) == [("a?", "b"), ("c?", "d")]
    assert column(loaded.records, "perturbed_answers") == [["x"], []]


def test_utf8_bom_and_utf16_files_are_read(tmp_path):
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffquestion,answer\ncafé?,oui\n".encode("utf-8"))
    assert pairs(load_source(str(bom))) == [("café?", "oui")]
    utf16 = tmp_path / "u16.txt"
    utf16.write_bytes("Q: café?\nA: oui\n".encode("utf-16"))
    assert pairs(load_source(str(utf16))) == [("café?", "oui")]


def test_load_split_returns_a_report_of_the_cleaning(tmp_path):
    rows = [{"text": " same  text "}, {"text": "same text"}, {"text": "   "}, {"text": "other"}]
    path = write(tmp_path / "t.jsonl", "\n".join(json.dumps(r) for r in rows))
    loaded = load_split(path, "forget")
    assert isinstance(loaded, LoadedData) and loaded.role == "forget" and loaded.source == path
    assert loaded.report.as_dict() == {"loaded": 4, "empty_dropped": 1, "duplicates_dropped": 1, "kept": 2}
    assert column(loaded.records, "answer") == ["same text", "other"]


# --- bundled and hub --------------------------------------------------------------------------
def test_bundled_benchmark_split():
    pytest.importorskip("tui_unlearn.data.benchmark")
    loaded = load_split("bundled:forget01", "forget")
    assert loaded.detected_format == "bundled benchmark (forget01)"
    assert len(loaded.records) > 0 and set(column(loaded.records, "kind")) == {"qa"}
    assert all(column(loaded.records, "perturbed_answers"))


def test_unknown_bundled_split_is_a_data_error():
    pytest.importorskip("tui_unlearn.data.benchmark")
    with pytest.raises(DataError) as excinfo:
        load_split("bundled:forget99", "forget")
    assert "forget99" in one_line_error(excinfo)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("hf:locuslab/TOFU", ("locuslab/TOFU", None, "train")),
        ("hf:locuslab/TOFU:forget10", ("locuslab/TOFU", "forget10", "train")),
        ("hf:locuslab/TOFU:forget10@test", ("locuslab/TOFU", "forget10", "test")),
        ("hf:squad@validation", ("squad", None, "validation")),
        ("locuslab/TOFU:retain90", ("locuslab/TOFU", "retain90", "train")),
        ("owner/data.v2@train[:10]", ("owner/data.v2", None, "train[:10]")),
    ],
)
def test_hub_specs_are_parsed(monkeypatch, spec, expected):
    calls = []
    monkeypatch.setattr(hub, "load_hub", lambda *args: calls.append(args[:3]) or ([], "hub"))
    load_records(spec)
    assert calls == [expected]


@pytest.fixture
def datasets_cache(tmp_path, monkeypatch):
    """Keep datasets' arrow cache inside tmp_path."""
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    return tmp_path


def test_hub_path_loads_a_local_dataset_folder(datasets_cache):
    folder = datasets_cache / "my-dataset"
    folder.mkdir()
    write(folder / "train.jsonl", json.dumps({"prompt": "Who?", "response": "Odo."}) + "\n")
    loaded = load_split(f"hf:{folder}", "forget")
    assert pairs(loaded.records) == [("Who?", "Odo.")]
    assert loaded.detected_format == f"dataset folder {folder} (prompt/response)"
    # A folder given as a plain path loads the same way.
    assert pairs(load_split(str(folder), "retain").records) == [("Who?", "Odo.")]


def test_hub_errors_are_one_line(datasets_cache):
    folder = datasets_cache / "ds"
    folder.mkdir()
    write(folder / "train.jsonl", json.dumps({"question": "a?", "answer": "b"}) + "\n")
    with pytest.raises(DataError) as excinfo:
        load_split(f"hf:{folder}@test", "forget")
    message = one_line_error(excinfo)
    assert "Unknown split" in message and "@split" in message


def test_missing_hub_dataset_while_offline(monkeypatch, datasets_cache):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("datasets.config.HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(DataError) as excinfo:
        load_split("hf:nobody-here/no-such-dataset", "forget")
    message = one_line_error(excinfo)
    assert "nobody-here/no-such-dataset" in message and "HF_HUB_OFFLINE" in message
    # Without the prefix it might have been a mistyped path: the message says there is none.
    with pytest.raises(DataError) as excinfo:
        load_split("nobody-here/no-such-dataset", "forget")
    assert "no file or folder named nobody-here/no-such-dataset exists either" in one_line_error(excinfo)


def test_empty_local_dataset_folder(datasets_cache):
    folder = datasets_cache / "empty"
    folder.mkdir()
    with pytest.raises(DataError) as excinfo:
        load_split(str(folder), "retain")
    message = one_line_error(excinfo)
    assert message.startswith(f"retain set: can't load dataset folder {folder}:") and ".jsonl" in message


# --- errors -----------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(DataError) as excinfo:
        load_split(str(tmp_path / "nope.jsonl"), "forget")
    message = one_line_error(excinfo)
    assert message.startswith("forget set: file not found:") and "nope.jsonl" in message
    assert excinfo.value.exit_code == ExitCode.LOAD


def test_missing_relative_file_with_a_slash_is_not_taken_for_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as excinfo:
        load_split("data/forget.csv", "retain")
    message = one_line_error(excinfo)
    assert "file not found: data/forget.csv" in message and str(tmp_path) in message


def test_empty_forget_set(tmp_path):
    path = write(tmp_path / "empty.jsonl", "\n\n")
    with pytest.raises(DataError) as excinfo:
        load_split(path, "forget")
    message = one_line_error(excinfo)
    assert message.startswith("the forget set is empty:") and "empty.jsonl" in message


def test_empty_after_cleaning(tmp_path):
    path = write(tmp_path / "blank.csv", "question,answer\nq1,  \nq2,\t\n")
    with pytest.raises(DataError) as excinfo:
        load_split(path, "holdout")
    message = one_line_error(excinfo)
    assert message.startswith("the holdout set is empty after cleaning:") and "all 2 records" in message


def test_unknown_file_format(tmp_path):
    path = write(tmp_path / "sheet.xlsx", "x")
    with pytest.raises(DataError) as excinfo:
        load_split(path, "forget")
    message = one_line_error(excinfo)
    assert "unknown file format '.xlsx'" in message
    for ext in (".txt", ".json", ".jsonl", ".csv", ".parquet"):
        assert ext in message


def test_non_utf8_text(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("first line\ncafé\n".encode("latin-1"))
    with pytest.raises(DataError) as excinfo:
        load_split(str(path), "forget")
    message = one_line_error(excinfo)
    assert "latin1.txt is not UTF-8" in message and "line 2" in message and "re-save it as UTF-8" in message


def test_json_parse_error_names_the_line(tmp_path):
    text = '[\n  {"question": "a?", "answer": "b"},\n  {"question": "c?" "answer": "d"}\n]'
    path = write(tmp_path / "bad.json", text)
    with pytest.raises(DataError) as excinfo:
        load_split(path, "forget")
    message = one_line_error(excinfo)
    assert "bad.json is not valid JSON" in message and "line 3" in message


def test_jsonl_parse_error_names_the_line(tmp_path):
    path = write(tmp_path / "bad.jsonl", '{"text": "ok"}\n\n{"text": "broken}\n')
    with pytest.raises(DataError) as excinfo:
        load_split(path, "forget")
    message = one_line_error(excinfo)
    assert "line 3 of" in message and "bad.jsonl" in message and "not valid JSON" in message


def test_csv_parse_errors_name_the_line(tmp_path):
    quoting = write(tmp_path / "quoting.csv", 'question,answer\na?,b\n"c?"x,d\n')
    with pytest.raises(DataError) as excinfo:
        load_split(quoting, "forget")
    message = one_line_error(excinfo)
    assert "quoting.csv is not valid CSV at line 3" in message

    extra = write(tmp_path / "extra.csv", "question,answer\na?,b,c\n")
    with pytest.raises(DataError) as excinfo:
        load_split(extra, "forget")
    message = one_line_error(excinfo)
    assert "line 2 of" in message and "3 fields but the header has 2" in message


def test_no_recognisable_fields_names_the_fields_found(tmp_path):
    path = write(tmp_path / "odd.csv", "foo,bar\n1,2\n")
    with pytest.raises(DataError) as excinfo:
        load_split(path, "forget")
    message = one_line_error(excinfo)
    assert "no recognisable fields (found: foo, bar)" in message
    assert "question" in message and "answer" in message and "text" in message


def test_a_later_record_without_fields_is_pointed_at(tmp_path):
    path = write(tmp_path / "mixed.jsonl", '{"text": "fine"}\n{"title": "no body"}\n')
    with pytest.raises(DataError) as excinfo:
        load_split(path, "forget")
    assert "line 2 of" in one_line_error(excinfo) and "title" in str(excinfo.value)


def test_questions_without_answers(tmp_path):
    path = write(tmp_path / "q.jsonl", '{"question": "a?"}\n')
    with pytest.raises(DataError) as excinfo:
        load_split(path, "forget")
    message = one_line_error(excinfo)
    assert "has questions (question) but no answers" in message


def test_json_object_without_a_list_of_records(tmp_path):
    path = write(tmp_path / "obj.json", json.dumps({"name": "x", "version": 2}))
    with pytest.raises(DataError) as excinfo:
        load_split(path, "forget")
    message = one_line_error(excinfo)
    assert "keys name, version" in message


def test_json_list_holding_numbers(tmp_path):
    path = write(tmp_path / "nums.json", "[1, 2]")
    with pytest.raises(DataError) as excinfo:
        load_split(path, "forget")
    assert "record 1 of" in one_line_error(excinfo) and "number" in str(excinfo.value)


def test_empty_spec_and_unknown_role():
    with pytest.raises(DataError) as excinfo:
        load_split("  ", "forget")
    assert "no data source given" in one_line_error(excinfo)
    with pytest.raises(ValueError):
        load_split("-", "teacher", stdin="x")


def test_importing_the_module_loads_neither_datasets_nor_torch():
    code = (
        "import sys, tui_unlearn.data.loading; "
        "print(sorted(m for m in ('datasets', 'torch', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_bundled_stdin_and_plain_files_load_without_datasets_or_pyarrow(tmp_path):
    files = {
        "f.jsonl": '{"question": "a?", "answer": "b"}\n',
        "f.json": '[{"question": "a?", "answer": "b"}]',
        "f.csv": "question,answer\na?,b\n",
        "f.tsv": "question\tanswer\na?\tb\n",
        "f.txt": "Q: a?\nA: b\n",
    }
    for name, text in files.items():
        write(tmp_path / name, text)
    paths = [str(tmp_path / name) for name in sorted(files)]
    code = (
        "import sys\n"
        "from tui_unlearn.data.loading import load_split\n"
        "sizes = [len(load_split('bundled:forget10', 'forget'))]\n"
        f"sizes += [len(load_split(path, 'retain')) for path in {paths!r}]\n"
        "sizes.append(len(load_split('-', 'holdout', stdin='[{\"text\": \"t\"}]')))\n"
        "print(sizes, sorted(m for m in ('datasets', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[100, 1, 1, 1, 1, 1, 1] []"
