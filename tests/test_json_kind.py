"""One description of a JSON value's kind for every one-line error (tui_unlearn.errors.json_kind)."""

from __future__ import annotations

import pytest

from tui_unlearn.errors import ConfigError, DataError, json_kind
from tui_unlearn.params import Param


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, "null"),
        (True, "true/false"),
        (3, "a number"),
        (2.5, "a number"),
        ("x", "text"),
        ([1], "a list"),
        ({}, "an object"),
    ],
)
def test_each_json_kind_in_words(value, words):
    assert json_kind(value) == words


def test_a_setting_of_the_wrong_kind_says_what_it_got():
    with pytest.raises(ConfigError, match=r"^steps must be an integer, got true/false True$"):
        Param("steps", "int", 1, "help").check(True)
    with pytest.raises(ConfigError, match="got text '3'"):
        Param("steps", "int", 1, "help").check("3")


def test_data_files_of_the_wrong_shape_say_what_they_hold():
    from tui_unlearn.data.fields import rows_to_records
    from tui_unlearn.data.parsers import json_rows

    with pytest.raises(DataError, match="^forget.json holds a number; expected a list of records"):
        json_rows(5, "forget.json")
    with pytest.raises(DataError, match="^record 2 of forget.json is a list; each record must be an object"):
        rows_to_records([{"question": "q", "answer": "a"}, [7]], "forget.json", "record")
