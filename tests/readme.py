"""The README's examples, found by the HTML comment that precedes each (`<!-- ldap-config -->`).

Tests load them as they are written, so the documentation cannot drift from what works.
"""

from __future__ import annotations

import pathlib
import re

README = pathlib.Path(__file__).parent.parent / "README.md"


def readme_block(marker: str) -> str:
    """The fenced block right after `<!-- marker -->`."""
    found = re.search(rf"<!-- {re.escape(marker)} -->\n```\w*\n(.*?)```", README.read_text(), re.S)
    if found is None:
        raise LookupError(f"README.md has no block marked {marker!r}")
    return found[1]
