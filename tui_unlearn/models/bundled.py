"""Where the bundled tiny models live.

They are committed at the repository's top level (``models_cache/<name>``) so a checkout
shows them; an installed package carries the same folder as ``tui_unlearn._models_cache``
(see ``pyproject.toml``). ``python -m tui_unlearn.models.build_tiny`` rebuilds them.
"""

from __future__ import annotations

from pathlib import Path

from tui_unlearn.errors import ModelLoadError

BUNDLED_MODELS = {
    "tiny-authors": "forget10 + retain90 + utility splits (the target)",
    "tiny-authors-retain": "retain90 + utility splits (the retain-only oracle)",
}
REBUILD_COMMAND = "python -m tui_unlearn.models.build_tiny"


def is_bundled(name: str) -> bool:
    return name in BUNDLED_MODELS


def _checkout_cache() -> Path:
    # tui_unlearn/models/bundled.py -> repository root
    return Path(__file__).resolve().parents[2] / "models_cache"


def _installed_cache() -> Path | None:
    try:
        from importlib.resources import files

        return Path(str(files("tui_unlearn._models_cache")))
    except (ModuleNotFoundError, TypeError):
        return None


def bundled_model_dir(name: str) -> Path:
    """The folder of bundled model ``name`` (Hugging Face format)."""
    if not is_bundled(name):
        raise ModelLoadError(f"{name!r} is not a bundled model; choose one of: {', '.join(BUNDLED_MODELS)}")
    candidates = [_checkout_cache() / name]
    installed = _installed_cache()
    if installed is not None:
        candidates.append(installed / name)
    for folder in candidates:
        if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
            return folder
    raise ModelLoadError(f"bundled model {name!r} is missing from {candidates[0]}; rebuild it with `{REBUILD_COMMAND}`")
