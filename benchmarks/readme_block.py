"""Replace a generated block of README.md: the text between its NAME:start and NAME:end markers."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def replace_readme_block(name: str, body: str) -> None:
    """Put ``body`` between the README's ``NAME`` markers; exit naming them if they are missing."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = README.read_text()
    pattern = re.compile(f"{re.escape(start)}.*?{re.escape(end)}", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {start} ... {end} block")
    README.write_text(pattern.sub(lambda _: f"{start}\n{body}\n{end}", text))
