"""An IAM role for one Kubernetes service account, delivered by EKS Pod Identity."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

#: Who may assume the role, and how: the EKS Pod Identity service, which also tags the
#: session with the cluster, namespace and service account (EKS docs, pod-id-role.html).
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "pods.eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    ],
}


def pod_identity_role(
    name: str,
    *,
    cluster_name: pulumi.Input[str],
    namespace: str,
    service_account: str,
    managed_policy_arns: Sequence[str] = (),
    inline_policy: pulumi.Input[str] | None = None,
    opts: pulumi.ResourceOptions,
) -> aws.eks.PodIdentityAssociation:
    """IAM role trusted by pods.eks.amazonaws.com (sts:AssumeRole + sts:TagSession), its
    policies, and the PodIdentityAssociation for namespace/service_account."""
    role = aws.iam.Role(f"{name}-role", assume_role_policy=json.dumps(TRUST_POLICY), opts=opts)
    policies: list[pulumi.Resource] = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{arn.rsplit('/', 1)[-1]}", role=role.name, policy_arn=arn, opts=opts
        )
        for arn in managed_policy_arns
    ]
    if inline_policy is not None:
        policies.append(
            aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=inline_policy, opts=opts)
        )
    return aws.eks.PodIdentityAssociation(
        f"{name}-association",
        cluster_name=cluster_name,
        namespace=namespace,
        service_account=service_account,
        role_arn=role.arn,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=policies)),
    )
