"""Rules for the Cluster Autoscaler: its release pinned to our table, its IAM policy no wider
than the one its README documents, and its permissions on a Pod Identity role, not a node's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from components import catalog, conventions
from components.autoscaler import (
    DESCRIBE_ACTIONS,
    IMAGE_REPOSITORY,
    NODEGROUP_ACTIONS,
    SCALING_ACTIONS,
)
from policy.aws_checks import ROLE, ROLE_POLICY_ATTACHMENT, trusts
from policy.inputs import Props, StackResource, get, items
from policy.kubernetes_checks import _containers, _name

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY = "aws:iam/policy:Policy"
#: The resources that carry policy documents.
POLICY_HOLDERS = (ROLE_POLICY, POLICY, ROLE)
#: Everything the autoscaler's documented policy grants (kubernetes/autoscaler
#: cluster-autoscaler/cloudprovider/aws/README.md, "Full Cluster Autoscaler Features Policy").
AUTOSCALER_ACTIONS = frozenset((*DESCRIBE_ACTIONS, *SCALING_ACTIONS, *NODEGROUP_ACTIONS))
POD_IDENTITY_SERVICE = conventions.POD_IDENTITY_SERVICE


def autoscaler_image_pinned(resource_type: str, props: Props) -> list[str]:
    """The autoscaler image is a release our version table lists (catalog)."""
    releases = sorted(f"v{v}" for v in catalog.CLUSTER_AUTOSCALER_VERSIONS.values())
    _, containers = _containers(resource_type, props)
    violations = []
    for container in containers:
        image = container.get("image")
        name, _, tag = image.rpartition(":") if isinstance(image, str) else ("", "", "")
        if name == IMAGE_REPOSITORY and tag not in releases:
            violations.append(
                f"{_name(container)}: {image!r} is not a Cluster Autoscaler release of "
                f"components/catalog.py (CLUSTER_AUTOSCALER_VERSIONS: {', '.join(releases)}); "
                "use the one of the cluster's Kubernetes minor"
            )
    return violations


def _allowed_actions(document: Any) -> list[str]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    statements = get(document, "Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    actions: list[str] = []
    for statement in items(statements):
        if get(statement, "Effect") != "Allow":
            continue
        action = get(statement, "Action")
        actions += [action] if isinstance(action, str) else [a for a in items(action)]
    return actions


def _grants_autoscaling(actions: Sequence[str]) -> bool:
    return any(a.lower().startswith("autoscaling:") or a == "*" for a in actions)


def _documents(resource_type: str, props: Props) -> list[Any]:
    """The policy documents a resource carries: a RolePolicy's or a managed Policy's, or a
    Role's inline policies (pulumi-aws Role ``inlinePolicies``)."""
    if resource_type in (ROLE_POLICY, POLICY):
        return [props.get("policy")]
    if resource_type == ROLE:
        return [get(inline, "policy") for inline in items(props.get("inlinePolicies"))]
    return []


def _autoscaling_actions(resource_type: str, props: Props) -> list[str]:
    """The actions of the resource's documents that grant Auto Scaling actions."""
    found = [_allowed_actions(document) for document in _documents(resource_type, props)]
    return [action for actions in found if _grants_autoscaling(actions) for action in actions]


def autoscaler_policy_documented(resource_type: str, props: Props) -> list[str]:
    """A policy that grants Auto Scaling actions grants no wildcard and nothing beyond the
    autoscaler's documented policy."""
    extra = sorted(
        {a for a in _autoscaling_actions(resource_type, props) if a not in AUTOSCALER_ACTIONS}
    )
    if not extra:
        return []
    return [
        f"actions {', '.join(extra)} go beyond the Cluster Autoscaler's documented policy "
        f"(kubernetes/autoscaler cloudprovider/aws/README.md): grant only "
        f"{', '.join(sorted(AUTOSCALER_ACTIONS))}, each named, no wildcards"
    ]


def autoscaler_pod_identity_role(resources: Sequence[StackResource]) -> list[tuple[str, str]]:
    """Scaling permissions sit on a role only EKS Pod Identity assumes: on a node role every
    pod that reaches the instance metadata could resize the cluster. The role is the one a
    RolePolicy depends on, the one a managed Policy is attached to, or the Role itself."""
    roles = {r.urn: r for r in resources if r.type == ROLE}
    attachments = [r for r in resources if r.type == ROLE_POLICY_ATTACHMENT]
    violations = []
    for policy in resources:
        if not _autoscaling_actions(policy.type, policy.props):
            continue
        holders = {policy.urn} & set(roles) | set(policy.dependencies) & set(roles)
        if policy.type == POLICY:
            holders = {
                urn
                for attachment in attachments
                if policy.urn in attachment.dependencies
                for urn in set(attachment.dependencies) & set(roles)
            }
        for urn in holders:
            trust = roles[urn].props.get("assumeRolePolicy")
            if trusts(trust, "ec2.amazonaws.com") or not trusts(trust, POD_IDENTITY_SERVICE):
                violations.append(
                    (
                        policy.urn,
                        "Auto Scaling permissions on a role that EKS Pod Identity "
                        f"({POD_IDENTITY_SERVICE}) does not assume alone; give the Cluster "
                        "Autoscaler its own Pod Identity role, never the node role",
                    )
                )
    return violations
