"""The algorithm pane: every registered method, and a form generated from its declaration.

Each field validates as it is typed with the declaration's own ``HyperParam.parse`` (the
same check the CLI and ``resolve`` apply), so the message under a field is the message a
run would fail with.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from tui_unlearn.algorithms import all_algorithms
from tui_unlearn.config import METHOD_DEFAULTED, RUN_DEFAULTS, RunConfig, settings_for
from tui_unlearn.errors import ConfigError, UnlearnError, first_line
from tui_unlearn.params import TUI, Param, show_value
from tui_unlearn.tui.widgets.mounting import Choice, app_closing

# The run settings this tab shows, under these headings: the declarations on RunConfig.
KNOB_GROUPS = (
    ("Run", "Run"),
    ("Evaluation", "Evaluation"),
    ("Regularisers", "Regularisers (any method; 0 is off)"),
    ("Scale", "Scale (accumulation, precision, threads)"),
    ("LoRA", "LoRA (rank 0 is off: full fine-tuning)"),
)


def form_message(param: Param, error: ConfigError) -> str:
    """The declaration's message, in a form's words: an empty box (not "null") is the default."""
    text = str(error)
    if param.nullable:
        text = text.replace(" or null, got", ", or empty for the default; got").replace(", got null", ", got nothing")
    return text


def parse_field(param: Param, text: str) -> Any:
    """A form field's text as the declared value: an empty box is "not set" (None) for a
    nullable text setting too (``Param.parse`` keeps "" as text, which is a value for a flag)."""
    if param.nullable and param.type == "str" and not text.strip():
        return None
    if param.nullable and param.type == "bool" and text.strip() == AUTO:
        return None
    return param.parse(text)


# A boolean the run decides when it is not set (gradient checkpointing: on with LoRA) offers
# "auto" beside true and false.
AUTO = "auto"


def bool_choices(param: Param) -> tuple[str, ...]:
    return (AUTO, "true", "false") if param.nullable else ("true", "false")


def field_text(param: Param, value: Any) -> str:
    """``value`` as the field shows it ("auto" for an unset boolean the run decides)."""
    if value is None and param.nullable and param.type == "bool":
        return AUTO
    return show_value(value)


class ParamValidator(Validator):
    def __init__(self, param: Param) -> None:
        super().__init__()
        self.param = param

    def validate(self, value: str) -> ValidationResult:
        try:
            parse_field(self.param, value)
        except ConfigError as error:
            return self.failure(form_message(self.param, error))
        return self.success()


class ParamField(Vertical):
    """One declared parameter: name, an input (a choice list for choices and booleans), help,
    and the validation message when the value is wrong."""

    def __init__(self, param: Param, value: Any, *, id: str | None = None) -> None:
        super().__init__(classes="param-field", id=id)
        self.param = param
        self.initial = field_text(param, value)
        self.default = param.default  # the run knobs' defaults depend on the method

    def compose(self) -> ComposeResult:
        p = self.param
        with Horizontal(classes="param-row"):
            # 17 columns hold every name but gradient_checkpointing, cut with an ellipsis; the
            # whole name is the tooltip and heads the field help.
            name = Label(p.name, classes="field-name")
            name.tooltip = p.name
            yield name
            choices = p.choices or (bool_choices(p) if p.type == "bool" else None)
            if choices:
                value = self.initial if self.initial in choices else choices[0]
                yield Choice(
                    [(c, c) for c in choices], value=value, allow_blank=False, compact=True, classes="param-input"
                )
            else:
                yield Input(
                    self.initial,
                    compact=True,
                    classes="param-input",
                    validators=[ParamValidator(p)],
                    validate_on=("changed", "submitted"),
                    type="text",
                )
            yield Label(self._help(), classes="param-help", markup=False)
        yield Label("", classes="param-error", markup=False)

    def _help(self) -> str:
        p = self.param
        # Range and default first: when the row is narrow, the prose is what gets cut
        # (the whole of it shows under the form while the field has focus).
        rng = p.range_text()
        facts = [rng] if rng and not p.choices else []
        facts += self._default_fact()
        lead = f"({', '.join(facts)}) " if facts else ""
        return f"{lead}{p.help_clause()}"

    def _default_fact(self) -> list[str]:
        # An empty default means "decided at run time"; the setting's help says by what.
        shown = show_value(self.default)
        return [f"default {shown}"] if shown else []

    def full_help(self) -> Text:
        p = self.param
        rng = p.range_text()
        facts = [f"type {p.type}", *self._default_fact()]
        if rng:
            facts.append(f"allowed {rng}")
        return Text.assemble((p.name, "bold"), f": {p.help.rstrip('.')}. ", (f"({'; '.join(facts)})", "dim"))

    def set_default(self, value: Any) -> None:
        self.default = value
        if self.is_mounted:
            self.query_one(".param-help", Label).update(self._help())

    @property
    def raw(self) -> str:
        if not self.is_mounted or not self.query(".param-input"):
            return self.initial
        widget = self._value_widget()
        return str(widget.value) if isinstance(widget, Select) else widget.value

    def set_raw(self, value: Any) -> None:
        if not self.is_mounted or not self.query(".param-input"):
            # Not composed yet (a busy machine can highlight a method first): the input starts with it.
            self.initial = field_text(self.param, value)
            return
        widget = self._value_widget()
        widget.value = field_text(self.param, value)

    def _value_widget(self) -> Input | Select[str]:
        widget = self.query_one(".param-input")
        assert isinstance(widget, (Input, Select))  # compose yields a Choice or an Input there
        return widget

    def parsed(self) -> Any:
        """The value as the declared type; raises ConfigError (and shows it) when wrong."""
        try:
            return parse_field(self.param, self.raw)
        except ConfigError as error:
            self._show_error(form_message(self.param, error))
            raise

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        result = event.validation_result
        self._show_error(None if result is None or result.is_valid else result.failure_descriptions[0])

    def _show_error(self, message: str | None) -> None:
        label = self.query_one(".param-error", Label)
        label.update(message or "")
        self.set_class(bool(message), "-invalid")


class HyperParamForm(Vertical):
    """The fields of one method's hyperparameters, recomposed when the method changes."""

    algorithm: reactive[str] = reactive("", recompose=True)

    def __init__(self, algorithms: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.algorithms = algorithms
        self.typed: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        algorithm = self.algorithms.get(self.algorithm)
        if algorithm is None:
            return
        for p in algorithm.hyperparams:
            yield ParamField(p, self.typed.get(p.name, p.default))
        if not algorithm.hyperparams:
            yield Static("(this method has no hyperparameters)", classes="pane-help")

    def fields(self) -> list[ParamField]:
        """The current method's fields (none while a recompose is pending)."""
        algorithm = self.algorithms.get(self.algorithm)
        declared = set(algorithm.hyperparams) if algorithm else set()
        return [f for f in self.query(ParamField).results(ParamField) if f.param in declared]


PLAN_HINT = "memory plan: shown here once a setting is changed (tui-unlearn plan prints it in full)"


class PlanReady(Message):
    """The one-line memory plan of the current choices, from the planning worker."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


def plan_line(config: RunConfig) -> str:
    """The Scale group's line: ``memplan``'s summary of ``config`` (model config only, no weights)."""
    from tui_unlearn.config import resolve
    from tui_unlearn.memplan import make_plan

    try:
        return make_plan(resolve(config)).one_line()
    except UnlearnError as error:
        return f"memory plan: {first_line(error)}"


class AlgorithmPane(Horizontal):
    """Pick a method; its hyperparameters, the run knobs and the regularisers below it."""

    def __init__(self, config: RunConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.algorithms = all_algorithms()
        self.algorithm = config.algorithm if config.algorithm in self.algorithms else next(iter(self.algorithms))
        # Values typed per method, so switching back and forth keeps them.
        self.typed: dict[str, dict[str, Any]] = {self.algorithm: dict(config.hparams)}
        self.knob_values: dict[str, Any] = {p.name: getattr(config, p.name) for p in settings_for(TUI)}

    def compose(self) -> ComposeResult:
        options = [
            Option(
                Text.assemble((f"{a.name:<12}", "bold"), (a.description, "dim"), no_wrap=True, overflow="ellipsis"),
                id=a.name,
            )
            for a in self.algorithms.values()
        ]
        yield OptionList(*options, id="algorithm-list")
        with Vertical(id="algorithm-right"):
            with VerticalScroll(id="algorithm-form", can_focus=False):
                yield from self._form()
            yield Static("Tab into a field to read its full help here.", id="field-help")

    def _form(self) -> ComposeResult:
        yield Static("", id="algorithm-about")
        yield Static("Hyperparameters", classes="form-heading")
        yield HyperParamForm(self.algorithms, id="hparam-fields")
        for group, heading in KNOB_GROUPS:
            yield Static(heading, classes="form-heading")
            with Vertical(classes="knob-fields"):
                for knob in settings_for(TUI, group):
                    yield ParamField(knob, self._knob_value(knob), id=f"knob-{knob.name}")
            if group == "Scale":
                yield Static(PLAN_HINT, id="scale-plan", classes="pane-help", markup=False)

    def on_mount(self) -> None:
        if app_closing(self):
            return
        self.query_one("#algorithm-list").border_title = "Algorithm"
        self.query_one("#algorithm-form").border_title = "Settings"
        self.query_one("#field-help").border_title = "Field help"
        names = list(self.algorithms)
        self.query_one("#algorithm-list", OptionList).highlighted = names.index(self.algorithm)
        self._build_form()

    def _method_defaults(self, name: str | None = None) -> dict[str, Any]:
        return {**RUN_DEFAULTS, **self.algorithms[name or self.algorithm].run_defaults}

    def _knob_value(self, knob: Param) -> Any:
        value = self.knob_values.get(knob.name)
        if value is None:
            value = self._method_defaults().get(knob.name, knob.default)
        return value

    @on(events.DescendantFocus)
    def _field_focused(self, event: events.DescendantFocus) -> None:
        field = next((a for a in event.widget.ancestors_with_self if isinstance(a, ParamField)), None)
        if field is not None:
            self.query_one("#field-help", Static).update(field.full_help())
        elif event.widget.id == "algorithm-list":
            self._show_algorithm_help()

    def _show_algorithm_help(self) -> None:
        algorithm = self.algorithms[self.algorithm]
        self.query_one("#field-help", Static).update(
            Text.assemble((algorithm.name, "bold"), ": ", algorithm.description)
        )

    @on(OptionList.OptionHighlighted, "#algorithm-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self.choose(str(event.option.id))
        # The help follows the highlight (it was updated on focus only: one method behind).
        if event.option_list.has_focus:
            self._show_algorithm_help()

    def choose(self, name: str) -> None:
        if name == self.algorithm or name not in self.algorithms:
            return
        self._remember()
        old_defaults = self._method_defaults()
        self.algorithm = name
        new_defaults = self._method_defaults()
        # A knob still at the old method's default follows the new method's default.
        for knob in METHOD_DEFAULTED:
            field = self.query_one(f"#knob-{knob}", ParamField)
            if field.raw.strip() == show_value(old_defaults[knob]):
                field.set_raw(new_defaults[knob])
        self._build_form()

    def _show_method_defaults(self) -> None:
        defaults = self._method_defaults()
        for knob in METHOD_DEFAULTED:
            self.query_one(f"#knob-{knob}", ParamField).set_default(defaults[knob])

    def _remember(self) -> None:
        self.typed[self.algorithm] = {f.param.name: f.raw for f in self.query_one(HyperParamForm).fields()}

    def _build_form(self) -> None:
        algorithm = self.algorithms[self.algorithm]
        self.query_one("#algorithm-about", Static).update(
            Text.assemble((algorithm.name, "bold"), "  ", algorithm.description)
        )
        form = self.query_one(HyperParamForm)
        form.typed = self.typed.get(self.algorithm, {})
        form.algorithm = self.algorithm
        self._show_method_defaults()

    # ---- the Scale group's memory plan ----

    @on(events.DescendantBlur)
    def _field_left(self, event: events.DescendantBlur) -> None:
        if any(isinstance(a, ParamField) for a in event.widget.ancestors_with_self):
            self.refresh_plan()

    @on(Select.Changed)
    def _choice_changed(self, event: Select.Changed) -> None:
        if event.select.has_focus:  # the user's choice, not a value set while mounting
            self.refresh_plan()

    def refresh_plan(self) -> None:
        """Plan the current choices in a thread (torch is imported there, never at start-up);
        the same choices are not planned twice."""
        collect = getattr(self.app, "collect_config", None)
        if collect is None:
            return
        try:
            config = collect()
        except UnlearnError as error:
            self.query_one("#scale-plan", Static).update(f"memory plan: {first_line(error)}")
            return
        key = repr(config)
        if key == getattr(self, "_planned", None):
            return
        self._planned = key
        self.run_worker(
            lambda: self.post_message(PlanReady(plan_line(config))),
            thread=True,
            exclusive=True,
            group="plan",
            exit_on_error=False,
            description="memory plan",
        )

    def on_plan_ready(self, message: PlanReady) -> None:
        self.query_one("#scale-plan", Static).update(message.text)

    def values(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(algorithm, hyperparameters, run knobs) as parsed values.

        Raises ConfigError for the first invalid field, which is focused and shows why.
        """
        hparams, knobs = {}, {}
        fields = [*self.query_one(HyperParamForm).fields(), *self.query(".knob-fields ParamField").results(ParamField)]
        for field in fields:
            try:
                value = field.parsed()
            except ConfigError:
                field.query_one(".param-input").focus()
                raise
            if field.id and field.id.startswith("knob-"):
                name = field.param.name
                method_default = self._method_defaults().get(name)
                at_default = name in METHOD_DEFAULTED and field.raw.strip() == show_value(method_default)
                if at_default and self.knob_values.get(name) is None:
                    # Left at the method's default: the run decides (a pretrained model's rate
                    # differs from the bundled tiny models', see config.method_run_defaults).
                    value = None
                knobs[name] = value
            else:
                hparams[field.param.name] = value
        return self.algorithm, hparams, knobs
