"""Small checks shared by every Args type; each raises ConfigError naming the field."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Any

import pulumi

from .errors import ConfigError

#: A Kubernetes label value (and ConfigMap key) that is not empty.
LABEL_VALUE = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
#: A DNS-1123 label: namespace names.
DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
#: A DNS-1123 subdomain: the prefix of a label key (kubernetes/apimachinery
#: pkg/util/validation/validation.go, IsDNS1123Subdomain).
DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
#: An extended resource name as the device plugin advertises it: ``<domain>/<name>``.
EXTENDED_RESOURCE = r"[a-z0-9.-]+/[A-Za-z0-9._-]+"
#: An EKS cluster name: botocore's eks model, shape ClusterName (pattern
#: ``^[0-9A-Za-z][A-Za-z0-9\-_]*``, length 1 to 100).
EKS_CLUSTER_NAME = r"[0-9A-Za-z][A-Za-z0-9\-_]{0,99}"


def is_known(value: Any) -> bool:
    """Plain values are checked now; Pulumi Outputs are the caller's to get right."""
    return not isinstance(value, pulumi.Output)


def one_of(field: str, value: Any, allowed: Iterable[str] | Iterable[int], why: str = "") -> None:
    choices: list[Any] = list(allowed)
    if value not in choices:
        reason = f" {why}" if why else ""
        raise ConfigError(f"{field} {value!r}{reason}; use one of {', '.join(map(str, choices))}")


def integer(field: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{field} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{field} must be {bound}, got {value}")


def boolean(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{field} must be true or false, got {value!r}")


def matches(field: str, value: Any, pattern: str, what: str) -> None:
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise ConfigError(f"{field} {value!r} is not {what}")


def cidrs(field: str, values: Any) -> list[str]:
    """IPv4 CIDR blocks in canonical form; at least one.

    IPv4 only: our clusters are IPv4, and EKS adds no IPv6 block to an IPv4 cluster's
    public endpoint (botocore's eks model, VpcConfigRequest.publicAccessCidrs).
    """
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise ConfigError(f"{field} must be a non-empty list of CIDR blocks, got {values!r}")
    out = []
    for i, value in enumerate(values):
        try:
            network = ipaddress.ip_network(value, strict=True)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{field}[{i}] {value!r} is not a CIDR block ({e})") from None
        if network.version != 4:
            raise ConfigError(
                f"{field}[{i}] {value!r} is IPv6; the cluster is IPv4, and EKS accepts only "
                "IPv4 blocks for its public endpoint"
            )
        out.append(str(network))
    return out


def string_map(field: str, values: Any) -> None:
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in values.items()
    ):
        raise ConfigError(f"{field} must be a map of strings to strings, got {values!r}")


def node_labels(field: str, values: Any) -> None:
    """Labels an EKS node group accepts and Kubernetes puts on its nodes.

    Kubernetes: a key is ``[prefix/]name``, the prefix a DNS subdomain, the name and the
    value as LABEL_VALUE (kubernetes/apimachinery pkg/util/validation/validation.go,
    IsQualifiedName and IsValidLabelValue). EKS: a key and a value each 1 to 63 characters
    (botocore's eks model, shapes labelKey and labelValue), the prefix included.
    """
    string_map(field, values)
    for key, value in values.items():
        prefix, _, name = key.rpartition("/")
        if (
            len(key) > 63
            or not re.fullmatch(LABEL_VALUE, name)
            or ("/" in key and not re.fullmatch(DNS_SUBDOMAIN, prefix))
        ):
            raise ConfigError(
                f"{field} key {key!r} is not a node label key: [prefix/]name, at most 63 "
                "characters in all, the name letters, digits, -, _ and . between alphanumerics"
            )
        if not re.fullmatch(LABEL_VALUE, value):
            raise ConfigError(
                f"{field}[{key!r}] {value!r} is not a node label value: 1 to 63 letters, "
                "digits, -, _ and . between alphanumerics"
            )
