"""What every ``python -m components`` command shares: one-line usage errors, safe writes.

A path a tool writes is checked, and its parent folders made, before any work
(:func:`writable`, :func:`manifest_folder`), and a run that fails removes the folders it
made (:func:`remove_folders`); a file appears whole or not at all (:func:`write_text`), and
a manifest folder holds exactly the last plan's objects (:func:`replace_manifests`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from ..errors import ConfigError

#: Every command's messages start ``python -m components <command>: ``, as argparse's do.
PROG = "python -m components"


class UsageError(Exception):
    """Bad usage or an output that cannot be written: one line, exit 2."""


def error(command: str, message: object) -> None:
    """The one line a failed command leaves on stderr."""
    print(f"{PROG} {command}: error: {message}", file=sys.stderr)


def refused(command: str, err: UsageError | ConfigError) -> int:
    """Say why ``command`` stops; its exit code: 2 for bad usage, 1 for config it refuses."""
    error(command, err)
    return 2 if isinstance(err, UsageError) else 1


def warning(command: str, message: object) -> None:
    """A warning line on stderr, so that ``command > file`` still shows it."""
    print(f"{PROG} {command}: warning: {message}", file=sys.stderr)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage itself is in ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def path_arg(text: str) -> Path:
    """A path option's value; ``Path("")`` would silently be ``.``."""
    if not text:
        raise argparse.ArgumentTypeError("the path is empty")
    return Path(text)


def _make_folders(folder: Path, made: list[Path]) -> None:
    """``mkdir -p folder``, adding each folder it creates to ``made``."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    finally:
        made.extend(p for p in missing if p.is_dir())


def remove_folders(made: list[Path]) -> None:
    """Undo :func:`_make_folders` after a failed run: remove those folders, deepest first,
    where they are still empty (anything in them is someone else's)."""
    for folder in sorted(made, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()


def writable(path: Path, what: str, made: list[Path]) -> Path:
    """``path``'s parent folders exist (new ones added to ``made``) and a file can be created
    there; else UsageError."""
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder; give a file name")
    try:
        _make_folders(path.parent, made)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}."):
            pass
    except OSError as err:
        raise UsageError(f"cannot write {what} {path}: {err.strerror or err}") from None
    return path


def _mode_for(path: Path) -> int:
    """The mode ``open(path, "w")`` leaves: the file's own, or 0o666 less the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_text(path: Path, text: str) -> None:
    """Write through a temporary file beside ``path``, so a reader never sees half of it.

    mkstemp makes the temporary file 0600; it gets the mode a plain write would leave.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        Path(temporary).unlink(missing_ok=True)


#: The files ``plan --manifests`` writes: ``NN-<kind>-<name>.yaml``, each starting with
#: MANIFEST_MARK, so that a file a user named alike is never taken for ours.
MANIFEST_FILE = re.compile(r"[0-9]{2,}-[a-z0-9][-a-z0-9.]*\.yaml")
MANIFEST_MARK = f"# written by {PROG} plan\n"


def _ours(path: Path) -> bool:
    """A file plan wrote: its name and its first line say so."""
    if not (MANIFEST_FILE.fullmatch(path.name) and path.is_file()):
        return False
    try:
        with path.open(encoding="utf-8") as f:
            return f.readline() == MANIFEST_MARK
    except (OSError, UnicodeDecodeError):
        return False


def manifest_folder(path: Path, made: list[Path]) -> Path:
    """A folder that is new, empty or holds only manifests this tool wrote; else UsageError.

    Folders it creates are added to ``made``.

    The folder is for ``kubectl apply -f``, so a stale object of an earlier plan must not
    survive in it; and a file someone else put there is never ours to delete.
    """
    if path.exists() and not path.is_dir():
        raise UsageError(f"--manifests {path} is a file; give a folder")
    if path.is_dir():
        foreign = sorted(p.name for p in path.iterdir() if not _ours(p))
        if foreign:
            raise UsageError(
                f"--manifests {path} holds {foreign[0]!r}, which plan did not write (its files "
                f"start {MANIFEST_MARK.strip()!r}); give a new or empty folder, or one holding "
                "only plan's files"
            )
    try:
        _make_folders(path, made)
        for where in (path, path.parent):  # the new files are written beside it first
            with tempfile.NamedTemporaryFile(dir=where, prefix=f".{path.name}."):
                pass
    except OSError as err:
        raise UsageError(f"cannot write --manifests {path}: {err.strerror or err}") from None
    return path


def replace_manifests(folder: Path, files: dict[str, str]) -> None:
    """Make ``folder`` hold exactly ``files`` (name -> text, each starting with MANIFEST_MARK),
    written beside it first."""
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        for old in folder.iterdir():
            if _ours(old):
                old.unlink()
        for name in files:
            os.replace(staging / name, folder / name)
    except OSError as err:
        raise UsageError(f"cannot write --manifests {folder}: {err.strerror or err}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
