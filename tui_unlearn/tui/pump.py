"""From engine events on the training thread to a few app messages a second.

``EventPump`` is the ``on_event`` callable handed to ``engine.run``. Step losses are
buffered and posted as one ``StepWindow`` at most every ``interval`` seconds, so the UI
redraws a few times a second however fast the steps come, and no loss point is dropped.
Any other event first flushes the buffer (so order is kept: steps before the evaluation
that followed them) and is then posted at once. The app also calls ``flush()`` from a
timer, so the last steps before a long evaluation do not wait for the next event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tui_unlearn import events as ev
from tui_unlearn.tui.messages import StepWindow, message_for

DEFAULT_INTERVAL = 0.25  # seconds between step windows: four redraws a second


class EventPump:
    def __init__(
        self, post: Callable, *, interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic
    ):
        self._post = post
        self._interval = interval
        self._clock = clock
        self._pending: list[ev.StepLosses] = []
        self.started = False  # a RunStarted went through: the run has a session
        self._last_flush = float("-inf")
        # One lock for buffering and posting: a window is always posted before any
        # message of a later event, whichever thread flushes.
        self._lock = threading.Lock()

    def __call__(self, event: ev.Event) -> None:
        with self._lock:
            if isinstance(event, ev.StepLosses):
                self._pending.append(event)
                if self._clock() - self._last_flush >= self._interval:
                    self._flush_locked()
                return
            self._flush_locked()
            if isinstance(event, ev.RunStarted):
                self.started = True
            message = message_for(event)
            if message is not None:
                self._post(message)

    def flush(self) -> None:
        """Post the buffered steps now (called from the UI's timer and at the end of a run)."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._last_flush = self._clock()
        if self._pending:
            window, self._pending = self._pending, []
            self._post(StepWindow(window))
