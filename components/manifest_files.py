"""Loads the plain YAML in ``manifests/`` so components change it as dicts."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

_HERE = Path(__file__).resolve().parent


def manifest_dir() -> Path:
    """``manifests/`` of a source checkout, or ``components/manifests`` of a wheel."""
    packaged = _HERE / "manifests"
    return packaged if packaged.is_dir() else _HERE.parent / "manifests"


@functools.cache
def _documents(filename: str) -> tuple[dict[str, Any], ...]:
    with open(manifest_dir() / filename, encoding="utf-8") as f:
        return tuple(doc for doc in yaml.safe_load_all(f) if doc)


def load(filename: str) -> dict[str, dict[str, Any]]:
    """A fresh, mutable copy of a manifest file's objects, keyed by ``kind``."""
    docs = _documents(filename)
    by_kind = {doc["kind"]: copy.deepcopy(doc) for doc in docs}
    if len(by_kind) != len(docs):
        raise ValueError(f"{filename}: one object per kind expected")
    return by_kind
