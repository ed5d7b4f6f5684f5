"""docs/console.md: its commands are the ones the browser tests run (conftest.doc_commands), and
every picture and page it links to exists."""

from __future__ import annotations

import re

from tests.console.conftest import DOC, doc_commands


def test_console_doc_links_resolve_and_its_commands_are_woow_commands() -> None:
    text = DOC.read_text()
    targets = re.findall(r"\]\(([^)#]+)\)", text)
    assert targets, "docs/console.md links nothing"
    for target in targets:
        if not target.startswith("http"):
            assert (DOC.parent / target).is_file(), f"docs/console.md: {target} does not exist"
    commands = doc_commands()
    assert any(c.startswith("woow api") for c in commands) and any("token create" in c for c in commands)
    assert all(c.startswith("woow ") for c in commands)
