"""Print the code block a document marks for the host-project test, so that the test runs the
documented steps themselves: `python doc_snippet.py README.md settings`.

A block is marked by an HTML comment on the line before its opening fence:
`<!-- host-project-test: settings -->`. A name marked twice, or not at all, is an error.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MARKER = re.compile(r"^<!-- host-project-test: ([\w-]+) -->\s*$")


def snippet(document: Path, name: str) -> str:
    lines = document.read_text(encoding="utf-8").splitlines()
    found: list[str] = []
    for index, line in enumerate(lines):
        match = MARKER.match(line)
        if not match or match.group(1) != name:
            continue
        if found:
            raise SystemExit(f"{document}: the snippet {name!r} is marked twice")
        fence = lines[index + 1] if index + 1 < len(lines) else ""
        if not fence.startswith("```"):
            raise SystemExit(f"{document}:{index + 2}: a code fence must follow the marker of {name!r}")
        end = next((i for i in range(index + 2, len(lines)) if lines[i].startswith("```")), None)
        if end is None:
            raise SystemExit(f"{document}: the code block of {name!r} is not closed")
        found = lines[index + 2 : end]
    if not found:
        raise SystemExit(f"{document}: no code block marked `<!-- host-project-test: {name} -->`")
    return "\n".join(found) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: doc_snippet.py DOCUMENT NAME")
    sys.stdout.write(snippet(Path(sys.argv[1]), sys.argv[2]))
