"""The probe pane: chosen questions with the original model's answer beside the current one."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, ListItem, ListView, Static

from tui_unlearn import events as ev
from tui_unlearn.tui.widgets.mounting import app_closing

SPLIT_STYLES = {"forget": "bold red", "retain": "bold green", "custom": "bold cyan"}


def probe_card(probe: dict[str, str]) -> Group:
    """One probe as a small table: question, gold answer, original and current answer."""
    split = probe.get("split", "custom")
    head = Text.assemble((f"{split:<7}", SPLIT_STYLES.get(split, "bold")), " ", probe.get("question", ""))
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", width=10, no_wrap=True)
    table.add_column(ratio=1)
    if probe.get("answer"):
        table.add_row("  gold", probe["answer"])
    original, current = probe.get("original"), probe.get("current")
    if original is None and current is None:
        table.add_row("", Text("answered at the first evaluation of the next run", style="dim italic"))
    else:
        table.add_row("  original", original or "")
        # Marked in words as well as colour: a changed answer must show without colour too.
        changed = (current or "").strip() != (original or "").strip()
        table.add_row(
            Text("  now ≠" if changed else "  now =", style="bold" if changed else "dim"),
            Text(current or "", style="bold yellow" if changed else ""),
        )
    return Group(head, table)


class ProbeItem(ListItem):
    def __init__(self, probe: dict[str, str]) -> None:
        super().__init__(Static(probe_card(probe)))
        self.probe = probe


class ProbePane(Vertical):
    """Probe answers as they change, and the questions the user adds for the next run."""

    BINDINGS = [
        Binding(
            "delete",
            "remove_probe",
            "Remove probe",
            id="remove-probe",
            tooltip="Remove the highlighted question you added (it is not asked in the next run)",
        ),
    ]

    def __init__(self, questions: list[str] | None = None, *, watch: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.watching = watch  # another process's run: its questions are fixed
        self.user_questions: list[str] = [] if watch else list(questions or [])
        self.answers: list[dict[str, str]] = []
        self.answer_step: int | None = None

    def compose(self) -> ComposeResult:
        if not self.watching:
            with Horizontal(id="probe-add"):
                yield Input(placeholder="Your question; Enter adds it", id="probe-input", compact=True)
                yield Button("Add", id="probe-add-button", compact=True)
        yield Label("", id="probe-caption", markup=False)
        yield ListView(id="probe-list")

    def on_mount(self) -> None:
        if app_closing(self):
            return
        self._render_list()

    def questions(self) -> list[str]:
        return list(self.user_questions)

    def show_answers(self, probes: ev.ProbeAnswers) -> None:
        self.answers = list(probes.probes)
        self.answer_step = probes.step
        self._render_list()

    def clear_answers(self) -> None:
        self.answers, self.answer_step = [], None
        self._render_list()

    def _render_list(self, note: str | None = None, select: str | None = None) -> None:
        """Show the answers and the pending questions; ``select``: highlight that question of
        yours and scroll it into view (once the new items are mounted)."""
        if self.answer_step is None:
            caption = (
                "No answers yet: they come with the run's first evaluation."
                if self.watching
                else "No run yet: forget and retain questions are picked when a run starts."
            )
        else:
            caption = f"Answers at step {self.answer_step}. original: before unlearning; now ≠ changed, now = the same."
        self.query_one("#probe-caption", Label).update(f"{note}\n{caption}" if note else caption)
        asked = {p.get("question") for p in self.answers if p.get("split") == "custom"}
        pending = [{"split": "custom", "question": q} for q in self.user_questions if q not in asked]
        view = self.query_one("#probe-list", ListView)
        items = [ProbeItem(p) for p in [*self.answers, *pending]]
        target = min(view.index or 0, len(items) - 1)
        if select is not None:
            target = next(
                (
                    i
                    for i, item in enumerate(items)
                    if item.probe.get("split") == "custom" and item.probe.get("question") == select
                ),
                target,
            )
        view.clear()
        mounted = view.extend(items)

        async def highlight() -> None:
            await mounted
            if items and view.is_attached:
                view.index = target
                if select is not None:
                    view.scroll_to_widget(items[target], animate=False)

        self.call_later(highlight)

    def _add(self) -> None:
        box = self.query_one("#probe-input", Input)
        question = box.value.strip()
        if not question:
            return
        if question in self.user_questions:
            self._render_list(f"Already listed: {question}", select=question)
        else:
            self.user_questions.append(question)
            self._render_list(f"Added: {question} (asked from the next run on)", select=question)
        box.value = ""

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "probe-input":
            event.stop()
            self._add()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "probe-add-button":
            event.stop()
            self._add()

    def action_remove_probe(self) -> None:
        view = self.query_one("#probe-list", ListView)
        item = view.highlighted_child
        if isinstance(item, ProbeItem) and item.probe.get("split") == "custom":
            question = item.probe.get("question")
            if question in self.user_questions:
                self.user_questions.remove(question)
                self.answers = [p for p in self.answers if p.get("question") != question or p.get("split") != "custom"]
                self._render_list()
