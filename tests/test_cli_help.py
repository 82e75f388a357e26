"""The CLI's help (issue 21): every command's help shows its texts as written (brackets kept),
paragraphs reflowed to the terminal, ``-h`` as well as ``--help``, ``patron --version``, shell
completion, and choices listed for options that take one of a fixed set of values.

Commands are found by walking the Click command tree Typer builds, so a command added later is
checked without editing this file."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

from patron.cli import app, main

WIDTH = 80
"""Terminal width the help is rendered for (``COLUMNS``); Click wraps to two columns less."""


def commands(group: Any = None, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path of names, command) of the root, every group and every command under it."""
    group = group or typer.main.get_command(app)
    yield path, group
    if hasattr(group, "commands"):  # a group (Typer builds on its own copy of Click)
        for name, command in sorted(group.commands.items()):
            yield from commands(command, (*path, name))


ALL = list(commands())
IDS = [" ".join(p) or "patron" for p, _ in ALL]


def help_of(path: tuple[str, ...], flag: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    assert main([*path, flag]) == 0
    return capsys.readouterr().out


def texts(command: Any) -> list[str]:
    """The help texts written for ``command``: its own and each parameter's."""
    own = (command.help or "").partition("\f")[0]
    return [own] + [getattr(p, "help", None) or "" for p in command.params]


def squeeze(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize(("path", "command"), ALL, ids=IDS)
def test_help_keeps_every_bracketed_word(path: tuple[str, ...], command: Any,
                                         capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    shown = squeeze(help_of(path, "--help", capsys, monkeypatch))
    bracketed = [b for text in texts(command) for b in re.findall(r"\[[^\[\]]*\]", text)]
    for words in bracketed:
        assert squeeze(words) in shown, f"{' '.join(path)} --help lost {words!r}"
    assert "\\[" not in shown, f"{' '.join(path)} --help shows a markup escape"


def _paragraphs(help_text: str) -> Iterator[list[str]]:
    """Paragraphs (lists of lines) of the description: the text between ``Usage:`` and the first
    section (``Options:``, ``Arguments:``, ``Commands:``)."""
    lines = help_text.splitlines()
    body = []
    for line in lines[1:]:
        if re.match(r"^[A-Z][a-z]+:$", line):
            break
        body.append(line)
    block: list[str] = []
    for line in [*body, ""]:
        if line.strip():
            block.append(line)
        elif block:
            yield block
            block = []


@pytest.mark.parametrize(("path", "command"), [(p, c) for p, c in ALL if "\n" in (c.help or "")],
                         ids=[i for i, (_, c) in zip(IDS, ALL, strict=True) if "\n" in (c.help or "")])
def test_help_paragraphs_are_reflowed(path: tuple[str, ...], command: Any,
                                      capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A hard-wrapped docstring is filled to the terminal: each line of a paragraph but its last
    is as full as it can be (the next line's first word would not fit), and no text is lost."""
    shown = help_of(path, "--help", capsys, monkeypatch)
    limit = WIDTH - 2
    for block in _paragraphs(shown):
        for line, following in itertools.pairwise(block):
            next_word = following.split()[0]
            assert len(line.rstrip()) + 1 + len(next_word) > limit, f"ragged line in {' '.join(path)} --help: {line!r}"
    assert squeeze(command.help or "").replace("\b", "") in squeeze(shown)


@pytest.mark.parametrize(("path", "command"), ALL, ids=IDS)
def test_short_help_flag(path: tuple[str, ...], command: Any,
                         capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert help_of(path, "-h", capsys, monkeypatch) == help_of(path, "--help", capsys, monkeypatch)


def test_version_option(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"patron {version('patron')}\n"


def test_shell_completion_is_offered(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    shown = help_of((), "--help", capsys, monkeypatch)
    assert "--install-completion" in shown and "--show-completion" in shown
    # Typer detects the user's shell from the parent process (none under pytest-xdist); its own
    # switch for tests makes --show-completion take the shell as a value instead
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    assert main(["--show-completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert "_PATRON_COMPLETE=complete_bash" in script and "complete " in script
