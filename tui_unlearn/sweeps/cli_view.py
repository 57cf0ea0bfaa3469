"""``analyze SWEEP_FOLDER``: a sweep shown as one group, its table and front, then its front compared."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tui_unlearn.sweeps.store import is_sweep_dir


def sweep_sessions(
    refs: list[str],
    root: Path,
    *,
    echo: Callable[[str], None],
    chart: Callable[[str], None] | None,
    width: int,
    colour: bool = False,
):
    """When ``refs`` is one sweep folder (a path, or a name under ``root``): print its report
    (``chart``: how its chart is printed, None for none; ``colour``: with colour codes) and
    return the sessions on its Pareto front for the comparison; else None."""
    if len(refs) != 1:
        return None
    folder = Path(refs[0]).expanduser()
    if not is_sweep_dir(folder):
        folder = root / refs[0]
        if not is_sweep_dir(folder):
            return None
    from tui_unlearn.errors import ConfigError
    from tui_unlearn.sweeps.report import SweepReport

    report = SweepReport.of(folder)
    echo(report.table())
    if chart is not None:
        chart(report.scatter(width=width, colour=colour))
    if not report.front:
        raise ConfigError(f"sweep {folder.name} has no finished trial yet; run the sweep command again to resume it")
    echo("")
    return [t.session for t in report.front]
