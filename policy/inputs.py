"""What every check reads: a resource's inputs, as CrossGuard or the offline plan holds them.

During ``pulumi preview`` CrossGuard hands over read-only mappings and sequences whose
unknown values raise when read; the helpers let that through to CrossGuard, which then
reports the rule as not runnable until ``pulumi up``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Props = Mapping[str, Any]
#: (resource type, inputs) -> one message per violation.
Check = Callable[[str, Props], list[str]]


@dataclass(frozen=True)
class StackResource:
    """What a stack policy needs of one resource, from CrossGuard or from the offline plan."""

    urn: str
    type: str
    props: Props
    dependencies: tuple[str, ...]


def get(props: Any, *path: str) -> Any:
    """The value at ``path``, or ``None`` where the path ends early."""
    for key in path:
        if not isinstance(props, Mapping):
            return None
        props = props.get(key)
    return props


def items(value: Any) -> list[Any]:
    """A list input as a list; anything else (absent, a string) as no items."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return []


def is_true(value: Any) -> bool:
    """The AWS provider carries some booleans as strings (``encrypted: "true"``)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")
