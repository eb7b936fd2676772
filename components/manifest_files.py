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
    """A fresh, mutable copy of a manifest file's objects, keyed by ``kind``, or by
    ``kind/name`` (as kubectl names them) for a kind the file holds more than once."""
    docs = _documents(filename)
    kinds = [doc["kind"] for doc in docs]
    by_key = {
        kind if kinds.count(kind) == 1 else f"{kind}/{doc['metadata']['name']}": copy.deepcopy(doc)
        for kind, doc in zip(kinds, docs, strict=True)
    }
    if len(by_key) != len(docs):
        raise ValueError(f"{filename}: two objects of one kind and name")
    return by_key
