"""``python -m components <command>``: the tools a user runs without ``pulumi``.

- ``plan``: run the stack program offline under Pulumi's mock engine.
- ``verify``: check a live cluster really shares its GPUs.
- ``docs``: check (or, with ``--write``, regenerate) the reference tables in README.md.
- ``preflight``: ask the AWS account (read-only) what it would refuse, before ``pulumi up``.

Whatever the input, a command ends with its exit code and, on failure, one line on stderr.
"""

from __future__ import annotations

import os
import sys

from .tools.cli import error

COMMANDS = {
    "plan": "components.tools.plan",
    "verify": "components.tools.verify",
    "docs": "components.tools.reference",
    "preflight": "components.tools.preflight",
}
USAGE = f"usage: python -m components {{{','.join(COMMANDS)}}} [options]  (--help for each)"
#: Exit code of a command whose output was closed early (``| head``), as a shell reports
#: a process ended by SIGPIPE: 128 + 13.
BROKEN_PIPE = 141


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        commands = __doc__.split(chr(10) * 2)[1].replace("``", "")  # plain text, not RST
        print(f"{USAGE}\n\n{commands}")
        return 0
    if not argv or argv[0] not in COMMANDS:
        problem = f"unknown command {argv[0]!r}" if argv else "no command given"
        print(f"python -m components: error: {problem}; {USAGE}", file=sys.stderr)
        return 2
    module = __import__(COMMANDS[argv[0]], fromlist=["main"])
    try:
        code = int(module.main(argv[1:]))
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # What is still buffered for the closed pipe goes nowhere, not to a second error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        error(argv[0], "output closed early")
        return BROKEN_PIPE
    except KeyboardInterrupt:
        error(argv[0], "interrupted")
        return 130


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Pulumi's mock runtime leaves per-thread event loops behind; at a normal interpreter
    # exit their finalizers can print tracebacks after our clean message. Nothing is left
    # to flush or clean up here, so leave at once.
    os._exit(code)
