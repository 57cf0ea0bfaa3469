"""Engine hints name a setting so both faces' users can act: the flag and, where the TUI has a
field for it, that field (tui_unlearn.setting_names)."""

from __future__ import annotations

from tui_unlearn.config import SETTINGS
from tui_unlearn.setting_names import OWN_TAB, in_the_tui, setting_name


def test_a_setting_with_a_tui_field_is_named_by_flag_and_field():
    assert setting_name("lr") == "--lr (lr in the Algorithm tab)"
    assert setting_name("retain") == "--retain (retain in the Data tab)"
    assert setting_name("mixed_precision", "fp16") == "--mixed-precision fp16 (mixed_precision in the Algorithm tab)"
    assert setting_name("student_layers", 0) == "--student-layers 0 (student_layers in the Algorithm tab)"


def test_a_flag_only_setting_is_named_by_its_flag():
    assert setting_name("guard_general", 0) == "--guard-general 0"
    assert setting_name("lora_targets") == "--lora-target"
    assert in_the_tui("guard_general", "calibrate") == ""


def test_several_settings_share_one_parenthesis_grouped_by_tab():
    assert in_the_tui("retain", "lr", "steps", "guard_general") == (
        " (in the TUI: retain in the Data tab; lr, steps in the Algorithm tab)"
    )


def test_the_own_tab_settings_exist():
    assert set(OWN_TAB) <= set(SETTINGS)


def test_the_out_of_memory_hint_names_both_faces():
    from tui_unlearn.engine.runtime import OOM_HELP

    assert "--batch-size" in OOM_HELP and "batch_size" in OOM_HELP.split("(in the TUI:")[1]
