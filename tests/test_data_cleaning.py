"""Cleaning records and removing forget records from the retain set."""

from __future__ import annotations

import pytest

from tui_unlearn.data.cleaning import (
    CleaningReport,
    clean_records,
    match_key,
    normalize_text,
    remove_forget_from_holdout,
    remove_forget_from_retain,
)
from tui_unlearn.data.records import COLUMNS, make_record, to_dataset
from tui_unlearn.errors import DataError


def test_normalize_text_collapses_spaces_but_keeps_line_breaks():
    raw = "  Para\u00a0one\t\tgoes   on \r\n  and on\r\n\r\n\r\n\n para\u200b two  "
    assert normalize_text(raw) == "Para one goes on\nand on\n\npara two"
    assert normalize_text(None) == ""
    # Composed and decomposed forms of the same letter are one text after cleaning.
    assert normalize_text("cafe\u0301") == normalize_text("caf\u00e9")


def test_match_key_ignores_case_punctuation_and_whitespace():
    assert match_key(" Paris, France. ") == match_key("paris france") == "parisfrance"
    assert match_key("Straße") == match_key("STRASSE")
    assert match_key("Lir") != match_key("Ost")


def test_clean_records_drops_empty_and_duplicate_records_and_reports_counts():
    records = [
        make_record("Where?", "  In   Lir. "),
        make_record("Where?", "In Lir."),  # duplicate after normalisation
        make_record("Where?", "in lir."),  # differs in case: kept (dedupe is exact)
        make_record("Empty answer?", "   "),
        make_record("", "\n\t"),
        make_record("  ", "Some text"),  # a blank question makes it plain text
    ]
    kept, report = clean_records(records)
    assert report == CleaningReport(loaded=6, empty_dropped=2, duplicates_dropped=1, kept=3)
    assert all(tuple(r) == COLUMNS for r in kept)
    assert [(r["kind"], r["question"], r["answer"]) for r in kept] == [
        ("qa", "Where?", "In Lir."),
        ("qa", "Where?", "in lir."),
        ("text", "", "Some text"),
    ]
    assert report.summary() == "6 loaded, 2 empty, 1 duplicates, 3 kept"


def test_clean_records_cleans_extras_and_keeps_the_first_duplicate():
    records = [
        make_record(
            "Q?",
            "A.",
            paraphrased_answer="  P. ",
            paraphrased_question=" Q  again? ",
            perturbed_answers=["  x ", "", " "],
            group=" G ",
        ),
        make_record("Q?", "A.", paraphrased_answer="other", perturbed_answers=["y"]),
    ]
    kept, report = clean_records(to_dataset(records))  # a Dataset works as well as a list
    assert report.duplicates_dropped == 1
    assert kept[0]["paraphrased_answer"] == "P."
    assert kept[0]["paraphrased_question"] == "Q again?"
    assert kept[0]["perturbed_answers"] == ["x"]
    assert kept[0]["group"] == "G"


def test_clean_records_of_nothing_is_an_empty_dataset():
    kept, report = clean_records([])
    assert kept == [] and report.kept == 0


def test_remove_forget_from_retain_exact_and_normalised_matches():
    forget = [make_record("Where was Alia born?", "In Port Liren."), make_record("", "A secret paragraph.")]
    retain = [
        make_record("Where was Alia born?", "In Port Liren."),  # exact
        make_record("where was alia born", "in port liren"),  # normalised
        make_record("Where was Alia born?", "In Ost."),  # same question, other answer: kept
        make_record("", "a  SECRET paragraph"),  # plain text, normalised
        make_record("What does Odo write?", "Poetry."),
    ]
    kept, removed = remove_forget_from_retain(to_dataset(retain), to_dataset(forget))
    assert removed == 3
    assert [(r["question"], r["answer"]) for r in kept] == [
        ("Where was Alia born?", "In Ost."),
        ("What does Odo write?", "Poetry."),
    ]
    assert all(tuple(r) == COLUMNS for r in kept)


def test_remove_forget_from_retain_does_not_match_text_against_qa():
    forget = [make_record("", "Poetry.")]
    retain = [make_record("What does Odo write?", "Poetry.")]
    kept, removed = remove_forget_from_retain(retain, forget)
    assert removed == 0 and [(r["kind"], r["answer"]) for r in kept] == [("qa", "Poetry.")]


def test_punctuation_only_records_match_only_exactly():
    forget = [make_record("?", "!")]
    retain = [make_record("?", "!"), make_record("...", "--"), make_record("Q?", "A.")]
    kept, removed = remove_forget_from_retain(retain, forget)
    assert removed == 1 and [r["answer"] for r in kept] == ["--", "A."]


def test_removing_the_whole_retain_set_is_an_error():
    records = [make_record("Q?", "A."), make_record("R?", "B.")]
    with pytest.raises(DataError) as excinfo:
        remove_forget_from_retain(records, records)
    message = str(excinfo.value)
    assert "\n" not in message
    assert "every record of the retain set (2) is also in the forget set" in message
    assert "give a retain set" in message


def test_an_empty_retain_set_stays_empty_without_error():
    kept, removed = remove_forget_from_retain([], [make_record("Q?", "A.")])
    assert len(kept) == 0 and removed == 0


def test_remove_forget_from_holdout_drops_shared_records():
    forget = [make_record("Where was Alia born?", "In Port Liren."), make_record("", "A secret paragraph.")]
    holdout = [
        make_record("where was alia born", "in port liren"),  # normalised match
        make_record("", "A secret paragraph."),  # exact match
        make_record("Where was Tor born?", "In Ost."),
    ]
    kept, removed = remove_forget_from_holdout(holdout, forget)
    assert removed == 2 and [r["question"] for r in kept] == ["Where was Tor born?"]


def test_a_holdout_set_that_is_all_forget_records_is_an_error():
    records = [make_record("Q?", "A.")]
    with pytest.raises(DataError) as excinfo:
        remove_forget_from_holdout(records, records)
    message = str(excinfo.value)
    assert "\n" not in message and "every record of the holdout set (1) is also in the forget set" in message
