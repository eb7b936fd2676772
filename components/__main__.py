"""``python -m components <command>``: the tools a user runs without ``pulumi``.

- ``plan``: run the stack program offline under Pulumi's mock engine.
- ``verify``: check a live cluster really shares its GPUs.
- ``docs``: regenerate the reference tables in README.md from the Args.
- ``preflight``: ask the AWS account (read-only) what it would refuse, before ``pulumi up``.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    commands = {
        "plan": "components.tools.plan",
        "verify": "components.tools.verify",
        "docs": "components.tools.reference",
        "preflight": "components.tools.preflight",
    }
    if not argv or argv[0] not in commands:
        print(
            "usage: python -m components {plan,verify,docs,preflight} [options]  (--help for each)",
            file=sys.stderr,
        )
        return 2
    module = __import__(commands[argv[0]], fromlist=["main"])
    return int(module.main(argv[1:]))


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Pulumi's mock runtime leaves per-thread event loops behind; at a normal interpreter
    # exit their finalizers can print tracebacks after our clean message. Nothing is left
    # to flush or clean up here, so leave at once.
    os._exit(code)
