"""README reference tables generated from the Args dataclasses and the config keys.

``python -m components docs`` rewrites the tables between ``<!-- BEGIN name -->`` and
``<!-- END name -->`` in README.md; a test fails when they are out of date.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import sys
from pathlib import Path

from .. import config
from ..cluster import GpuClusterArgs
from ..device_plugin import NvidiaDevicePluginArgs
from ..node_group import GpuNodeGroupArgs
from ..sharing import SharingConfigArgs
from ..stack import GpuSharingArgs
from ..verification import VerificationWorkloadArgs

ARGS = (
    GpuClusterArgs,
    GpuNodeGroupArgs,
    NvidiaDevicePluginArgs,
    SharingConfigArgs,
    VerificationWorkloadArgs,
    GpuSharingArgs,
)
README = Path(__file__).resolve().parents[2] / "README.md"


def _field_docs(cls: type) -> dict[str, tuple[str, str]]:
    """Each field's annotation and its ``#:`` comment, as written in the source."""
    lines = inspect.getsource(cls).splitlines()
    docs = {}
    for f in dataclasses.fields(cls):
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{f.name}:"))
        comment: list[str] = []
        above = at - 1
        while lines[above].strip().startswith("#:"):
            comment.insert(0, lines[above].strip()[2:].strip())
            above -= 1
        annotation = lines[at].split(":", 1)[1].split(" = ")[0].strip()
        docs[f.name] = (annotation, " ".join(comment).replace("``", "`"))
    return docs


def args_table(cls: type) -> str:
    rows = ["| field | type | description and default |", "| --- | --- | --- |"]
    for name, (annotation, doc) in _field_docs(cls).items():
        escaped = annotation.replace("|", "\\|")  # a pipe would end the Markdown cell
        rows.append(f"| `{name}` | `{escaped}` | {doc} |")
    return "\n".join(rows)


def config_table() -> str:
    rows = ["| key | description | default |", "| --- | --- | --- |"]
    for key, (description, default) in config.KEYS.items():
        rows.append(f"| `{config.NAMESPACE}:{key}` | {description} | `{json.dumps(default)}` |")
    return "\n".join(rows)


def tables() -> dict[str, str]:
    return {"config": config_table(), **{cls.__name__: args_table(cls) for cls in ARGS}}


def _escape(replacement: str) -> str:
    """Backslashes in a table are text, not ``re.sub`` escapes."""
    return replacement.replace("\\", "\\\\")


def render(text: str) -> str:
    """``text`` with every marked table replaced by its generated content."""
    for name, table in tables().items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        if not pattern.search(text):
            raise LookupError(f"README has no <!-- BEGIN {name} --> ... <!-- END {name} -->")
        text = pattern.sub(rf"\g<1>{_escape(table)}\n\g<2>", text)
    return text


def main(argv: list[str]) -> int:
    """Rewrite README.md's tables; ``--check`` only says whether they are current."""
    current = README.read_text(encoding="utf-8")
    wanted = render(current)
    if "--check" in argv:
        print("README tables are current" if wanted == current else "README tables are stale")
        return 0 if wanted == current else 1
    README.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
