"""The CLI's progress display (patron.cli.progress): Rich's progress machinery is used only when
something would show (stderr a terminal, not quiet), so that a one-shot command writing to a
pipe or printing JSON does not import it."""

from __future__ import annotations

import sys

import pytest

from patron.cli.progress import counting_progress, spinner


@pytest.fixture
def no_rich_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any import of rich.progress fails."""
    monkeypatch.setitem(sys.modules, "rich.progress", None)


@pytest.mark.parametrize("quiet", [True, False])
def test_nothing_to_show_needs_no_progress_machinery(quiet: bool, no_rich_progress: None, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    assert not sys.stderr.isatty()  # pytest captures stderr
    with spinner("working", quiet=quiet):
        pass
    with counting_progress("counting", quiet=quiet) as report:
        report(10)


def test_a_terminal_gets_the_spinner(no_rich_progress: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich takes FORCE_COLOR as a terminal: then the spinner is drawn with rich.progress."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    with pytest.raises(ImportError), spinner("working"):
        pass
    with pytest.raises(ImportError), counting_progress("counting"):
        pass
