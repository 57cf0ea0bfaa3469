"""What a run uses when it is told nothing: the bundled tiny model, its forget set, a method.

Below the config, so that modules the config runs (the recipes' settings) can compare a
setting with its default without importing the config.
"""

DEFAULT_MODEL = "tiny-authors"
DEFAULT_FORGET = "bundled:forget10"
DEFAULT_ALGORITHM = "grad_diff"
# The retain-only oracle used for forget quality and privacy leakage on the bundled benchmark.
DEFAULT_ORACLE = "tiny-authors-retain"
DEFAULT_ORACLE_FORGET = "bundled:forget10"
