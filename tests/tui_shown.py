"""What the app showed as notifications, read from ``run_test``'s public ``message_hook``.

Textual keeps shown notifications in private state; a test records every message the app
handles (``app.run_test(message_hook=seen.append)``) and reads the ``Notify`` ones here.
Unlike the app's own list, expired notifications are kept: a test sees all it was told.
"""

from __future__ import annotations

from textual.notifications import Notification, Notify


def shown(messages: list) -> list[Notification]:
    """The notifications among ``messages``, in the order the app showed them."""
    return [m.notification for m in messages if isinstance(m, Notify)]
