"""README reference tables generated from the Args dataclasses and the config keys.

``python -m components docs`` checks the tables between ``<!-- BEGIN name -->`` and
``<!-- END name -->`` in README.md (exit 1 when stale); ``--write`` rewrites them. A test
fails when they are out of date.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from pathlib import Path

from .. import config
from ..admission_policy import GpuAdmissionPolicyArgs
from ..autoscaler import ClusterAutoscalerArgs
from ..cluster import GpuClusterArgs
from ..device_plugin import NvidiaDevicePluginArgs
from ..node_group import GpuNodeGroupArgs
from ..sharing import SharingConfigArgs
from ..stack import GpuSharingArgs
from ..verification import VerificationWorkloadArgs
from .cli import Parser, UsageError, error, path_arg, writable, write_text

ARGS = (
    GpuClusterArgs,
    GpuNodeGroupArgs,
    NvidiaDevicePluginArgs,
    SharingConfigArgs,
    VerificationWorkloadArgs,
    GpuAdmissionPolicyArgs,
    ClusterAutoscalerArgs,
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
            raise LookupError(f"no <!-- BEGIN {name} --> ... <!-- END {name} --> to fill")
        text = pattern.sub(rf"\g<1>{_escape(table)}\n\g<2>", text)
    return text


def main(argv: list[str]) -> int:
    parser = Parser(
        prog="python -m components docs",
        description="Check that README.md's reference tables match the Args and config keys "
        "(exit 0: current; 1: stale; 2: usage, or README cannot be read or written).",
    )
    parser.add_argument("--write", action="store_true", help="rewrite the stale tables")
    parser.add_argument(
        "--readme", type=path_arg, default=README, metavar="FILE", help="default: %(default)s"
    )
    args = parser.parse_args(argv)
    try:
        current = args.readme.read_text(encoding="utf-8")
        wanted = render(current)
        if wanted != current and args.write:
            write_text(writable(args.readme, "--readme", []), wanted)  # just read: it exists
    except (OSError, UnicodeDecodeError) as err:
        error("docs", f"cannot read {args.readme}: {getattr(err, 'strerror', None) or err}")
        return 2
    except LookupError as err:
        error("docs", f"{args.readme}: {err}")
        return 2
    except UsageError as err:
        error("docs", err)
        return 2
    if wanted == current:
        print(f"{args.readme}: tables are current")
    elif args.write:
        print(f"{args.readme}: tables rewritten")
    else:
        error("docs", f"{args.readme}: tables are stale; run: python -m components docs --write")
        return 1
    return 0
