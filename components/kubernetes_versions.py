"""Which Kubernetes version a cluster gets: what the calendar knows, and what EKS answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from . import catalog, validation
from .errors import ConfigError


def check_calendar(version: str, day: dt.date) -> None:
    """What the calendar knows for certain on ``day``; a version newer than it is left to
    EKS (:func:`newest_supported`)."""
    supported = catalog.versions_in_standard_support(day)
    validation.matches(
        "kubernetesVersion",
        version,
        r"1\.[0-9]+",
        f"a Kubernetes minor version such as {', '.join(supported) or '1.35'}",
    )
    newest_known = max(catalog.EKS_STANDARD_SUPPORT_ENDS, key=catalog.minor)
    if catalog.minor(version) <= catalog.minor(newest_known):
        _check_supported(version, supported, f"on {day}")


def newest_supported(wanted: str | None, versions: Sequence[Any]) -> str:
    """The version to create: ``wanted`` if EKS lists it in standard support, else refused;
    ``None`` picks the newest EKS lists (DescribeClusterVersions, versionStatus
    STANDARD_SUPPORT; botocore's eks model, ClusterVersionInformation)."""
    supported = sorted((v.cluster_version for v in versions), key=catalog.minor)
    if not supported:
        raise ConfigError("EKS lists no Kubernetes version in standard support in this region")
    if wanted is None:
        return supported[-1]
    _check_supported(wanted, supported, "by EKS's own list")
    return wanted


def _check_supported(version: str, supported: Sequence[str], when: str) -> None:
    if version in supported:
        return
    if not supported:
        raise ConfigError(
            f"kubernetesVersion {version!r}: no Kubernetes version is in EKS standard support "
            f"{when} by the calendar in components/catalog.py (as of "
            f"{catalog.CALENDAR_AS_OF}); update the catalog"
        )
    validation.one_of(
        "kubernetesVersion",
        version,
        supported,
        f"is not in EKS standard support {when} (extended support costs 6x per hour)",
    )
