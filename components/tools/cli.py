"""What every ``python -m components`` command shares: one-line usage errors, safe writes.

A path a tool writes is checked, and its parent folders made, before any work
(:func:`writable`, :func:`manifest_folder`); a file appears whole or not at all
(:func:`write_text`), and a manifest folder holds exactly the last plan's objects
(:func:`replace_manifests`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import NoReturn


class UsageError(Exception):
    """Bad usage or an output that cannot be written: one line, exit 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage itself is in ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def writable(path: Path, what: str) -> Path:
    """``path``'s parent folders exist and a file can be created there; else UsageError."""
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}."):
            pass
    except OSError as err:
        raise UsageError(f"cannot write {what} {path}: {err.strerror or err}") from None
    return path


def write_text(path: Path, text: str) -> None:
    """Write through a temporary file beside ``path``, so a reader never sees half of it."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        Path(temporary).unlink(missing_ok=True)


#: The files ``plan --manifests`` writes: ``NN-<kind>-<name>.yaml``.
MANIFEST_FILE = re.compile(r"[0-9]{2,}-[a-z0-9][-a-z0-9.]*\.yaml")


def manifest_folder(path: Path) -> Path:
    """A folder that is new, empty or holds only manifests this tool wrote; else UsageError.

    The folder is for ``kubectl apply -f``, so a stale object of an earlier plan must not
    survive in it; and a file someone else put there is never ours to delete.
    """
    if path.exists() and not path.is_dir():
        raise UsageError(f"--manifests {path} is a file; give a folder")
    if path.is_dir():
        foreign = sorted(p.name for p in path.iterdir() if not MANIFEST_FILE.fullmatch(p.name))
        if foreign:
            raise UsageError(
                f"--manifests {path} holds {foreign[0]!r}, which plan did not write; give a "
                "new or empty folder, or one holding only plan's NN-kind-name.yaml files"
            )
    try:
        path.mkdir(parents=True, exist_ok=True)
        for where in (path, path.parent):  # the new files are written beside it first
            with tempfile.NamedTemporaryFile(dir=where, prefix=f".{path.name}."):
                pass
    except OSError as err:
        raise UsageError(f"cannot write --manifests {path}: {err.strerror or err}") from None
    return path


def replace_manifests(folder: Path, files: dict[str, str]) -> None:
    """Make ``folder`` hold exactly ``files`` (name -> text), written beside it first."""
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        for old in folder.iterdir():
            if MANIFEST_FILE.fullmatch(old.name):
                old.unlink()
        for name in files:
            os.replace(staging / name, folder / name)
    except OSError as err:
        raise UsageError(f"cannot write --manifests {folder}: {err.strerror or err}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
