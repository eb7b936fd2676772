"""An IAM role for one Kubernetes service account, through EKS Pod Identity.

Pod Identity needs no OIDC provider: EKS's agent (the ``eks-pod-identity-agent`` add-on,
``GpuCluster.pod_identity_agent``) hands the role's credentials to the pods of that service
account, and to no other pod on the node.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

#: The principal EKS Pod Identity assumes roles as, with sts:TagSession to add the pod's
#: cluster, namespace and service account as session tags (awsdocs/amazon-eks-user-guide
#: latest/ug/manage-access/aws-access/service-accounts.adoc, EKS Pod Identity's principal;
#: EKS User Guide pod-id-role.html, the trust policy with both actions).
TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
)


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
    policies, and the PodIdentityAssociation for namespace/service_account.

    The association is created after the policies are attached: a pod that starts as soon
    as it exists finds its permissions in place.
    """
    role = aws.iam.Role(f"{name}-role", assume_role_policy=TRUST_POLICY, opts=opts)
    policies: list[pulumi.Resource] = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{arn.rsplit('/', 1)[-1]}", role=role.name, policy_arn=arn, opts=opts
        )
        for arn in managed_policy_arns
    ]
    if inline_policy is not None:
        policies.append(
            aws.iam.RolePolicy(f"{name}-policy", role=role.name, policy=inline_policy, opts=opts)
        )
    return aws.eks.PodIdentityAssociation(
        f"{name}-association",
        cluster_name=cluster_name,
        namespace=namespace,
        service_account=service_account,
        role_arn=role.arn,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=policies)),
    )
