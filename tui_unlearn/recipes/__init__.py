"""Evaluation recipes: which benchmark's numbers an evaluation reproduces.

One module per recipe declares a :class:`~tui_unlearn.recipes.base.Recipe` and registers
it here (built-ins listed in ``BUILTIN``, others from packages' ``tui_unlearn.recipes`` entry
points); ``--recipe`` (CLI, ``eval``, TUI) chooses among ``recipe_names()``. Importing
this package reads the declarations only (no torch, no data).

- ``bundled``: the bundled fictitious-authors benchmark (or your own data) with TOFU's
  metrics, made faithful where it differed from TOFU for no reason;
- ``tofu``: TOFU (Maini et al. 2024) on its own files, forget quality on the whole forget
  split, the nine-part model utility;
- ``muse``: MUSE (Shi et al. 2024): VerbMem, KnowMem on forget and retain, PrivLeak;
- ``wmdp``: WMDP (Li et al. 2024): multiple-choice accuracy on the forget topic and on
  MMLU-style utility questions.
"""

from __future__ import annotations

from tui_unlearn.recipes.base import EvalSplit, Headline, Recipe

__all__ = [
    "BUILTIN",
    "DEFAULT_RECIPE",
    "EvalSplit",
    "Headline",
    "Recipe",
    "all_recipes",
    "get_recipe",
    "recipe_names",
    "register",
]

DEFAULT_RECIPE = "bundled"
# The built-in recipes: one module each in this package, imported by name (see tui_unlearn.plugins)
# in the order the CLI, the TUI and docs/metrics-and-recipes.md list them; plugins' recipes follow, by name.
BUILTIN = (
    "bundled",
    "tofu",
    "muse",
    "wmdp",
)
_REGISTRY: dict[str, Recipe] = {}
_loaded = False


def register(recipe: Recipe) -> Recipe:
    if recipe.name in _REGISTRY:
        raise ValueError(f"recipe {recipe.name!r} registered twice")
    _REGISTRY[recipe.name] = recipe
    return recipe


def all_recipes() -> dict[str, Recipe]:
    """name -> recipe, in the order the CLI lists them."""
    global _loaded
    if not _loaded:
        from tui_unlearn.plugins import RECIPES, import_builtin, load_plugins

        _loaded = True
        import_builtin(__name__, BUILTIN)
        load_plugins(RECIPES, Recipe, register, lambda: _REGISTRY)
    ranked = sorted(_REGISTRY, key=lambda name: (BUILTIN.index(name) if name in BUILTIN else len(BUILTIN), name))
    return {name: _REGISTRY[name] for name in ranked}


def recipe_names() -> tuple[str, ...]:
    return tuple(all_recipes())


def get_recipe(name: str) -> Recipe:
    from tui_unlearn.errors import ConfigError

    recipes = all_recipes()
    if name not in recipes:
        raise ConfigError(f"unknown recipe {name!r}; choose one of: {', '.join(recipes)}")
    return recipes[name]
