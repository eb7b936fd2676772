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


#: An image reference as container runtimes parse it: ``[domain[:port]/]path[:tag][@digest]``
#: (distribution/reference regexp.go, ``referencePat``; a tag is ASCII word characters,
#: ``.`` and ``-``, at most 128).
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
IMAGE_REFERENCE = (
    rf"(?P<repository>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)


def pinned_image(field: str, value: Any) -> re.Match[str]:
    """An image reference with a release tag or a digest: no tag means ``latest``, which moves."""
    found = re.fullmatch(IMAGE_REFERENCE, value) if isinstance(value, str) else None
    if found is None:
        raise ConfigError(
            f"{field} {value!r} is not an image reference ([registry/]repository:tag or @digest)"
        )
    if not found["digest"] and found["tag"] in (None, "latest"):
        raise ConfigError(
            f"{field} {value!r} is not pinned; name a release tag (not latest) or a digest"
        )
    return found


#: An IAM role (its path kept) or user ARN, in any partition (IAM User Guide, "IAM
#: identifiers": names of letters, digits and ``+=,.@_-``, paths between slashes).
IAM_PRINCIPAL_ARN = (
    r"arn:aws(-cn|-us-gov)?:iam::\d{12}:(role|user)/([\w+=,.@-]+/)*[\w+=,.@-]{1,128}"
)
#: An account's root: in a key policy, every principal of the account whose IAM policies
#: allow it (AWS KMS Developer Guide, "Default key policy").
ACCOUNT_ROOT_ARN = r"arn:aws(-cn|-us-gov)?:iam::\d{12}:root"


def iam_principals(field: str, values: Any, *, root: bool = False) -> None:
    """A non-empty list of distinct IAM role or user ARNs (``root``: account roots too).

    An assumed-role (STS session) ARN is refused with the role ARN to use instead: access
    entries and key policies name the role, and EKS refuses a session principal (botocore's
    eks model, CreateAccessEntryRequest.principalArn: "You can't use the STS session
    principal type"; a role ARN may keep its path: EKS User Guide, creating-access-entries
    .html). EKS refuses a principal in two access entries, so duplicates are refused.
    """
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise ConfigError(f"{field} must be a non-empty list of IAM ARNs, got {values!r}")
    pattern = f"({IAM_PRINCIPAL_ARN})|({ACCOUNT_ROOT_ARN})" if root else IAM_PRINCIPAL_ARN
    for i, value in enumerate(values):
        session = re.fullmatch(
            r"arn:(aws[-a-z]*):sts::(\d{12}):assumed-role/([^/]+)/.*", str(value)
        )
        if session:
            partition, account, role = session.groups()
            raise ConfigError(
                f"{field}[{i}] {value!r} is an STS session, not an IAM principal; name its "
                f"role, arn:{partition}:iam::{account}:role/<path/>{role}"
            )
        allowed = "an IAM role or user ARN (arn:aws:iam::<account>:role/<name>)"
        matches(f"{field}[{i}]", value, pattern, allowed + (" or account root" if root else ""))
        if value in values[:i]:
            raise ConfigError(f"{field}[{i}] {value!r} is listed twice")
