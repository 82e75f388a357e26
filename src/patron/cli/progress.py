"""Progress display on stderr (hidden when stderr is not a terminal or output is JSON)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def _console(quiet: bool) -> Console:
    from rich.console import Console

    console = Console(stderr=True, quiet=quiet)
    console.quiet = quiet or not console.is_terminal  # a finished bar would leave a blank line
    return console


@contextmanager
def counting_progress(label: str, *, quiet: bool = False, unit: str = "rows") -> Iterator[Callable[[int], None]]:
    """A progress line counting rows (or ``unit``) done; yields the callback to report the count."""
    console = None if quiet else _console(quiet)
    if console is None or console.quiet:  # nothing would show: Rich's progress is not imported
        yield lambda n: None
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,} " + unit), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda n: bar.update(task, completed=n)


@contextmanager
def spinner(label: str, *, quiet: bool = False) -> Iterator[None]:
    """A spinner with elapsed time for a step whose progress cannot be counted."""
    console = None if quiet else _console(quiet)
    if console is None or console.quiet:  # nothing would show: Rich's progress is not imported
        yield
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True) as bar:
        bar.add_task(label, total=None)
        yield
