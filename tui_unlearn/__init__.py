"""tui-unlearn: a terminal workbench for machine unlearning of language models."""

__version__ = "0.1.0"
