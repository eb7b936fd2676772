"""Who holds the keys to a GpuCluster: its cluster admins and the secrets key's policy."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from .errors import ConfigError

#: EKS's access policy for cluster-admin (awsdocs/amazon-eks-user-guide
#: latest/ug/manage-access/k8s-access/access-policy-reference.adoc).
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
#: What a key administrator may do: manage the key (the KeyAdministration statement of
#: terraform-aws-modules/terraform-aws-kms main.tf, from the AWS KMS Developer Guide,
#: "Allows key administrators to administer the KMS key"). No use action is listed, but
#: kms:Create* includes kms:CreateGrant and kms:Put* includes kms:PutKeyPolicy, so an
#: admin can give itself the use of the key: admins are trusted with the secrets.
KEY_ADMIN_ACTIONS = (
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
)
#: What the principal calling CreateCluster needs of the key: kms:DescribeKey and
#: kms:CreateGrant (awsdocs/amazon-eks-user-guide latest/ug/security/security-k8s.adoc,
#: "scope down the permissions"); the grant EKS makes lets the cluster role encrypt and
#: decrypt, whatever this policy says.
CLUSTER_CREATOR_ACTIONS = ("kms:DescribeKey", "kms:CreateGrant")
#: What EKS does with the key for the account's principals.
KEY_USE_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
    "kms:CreateGrant",
    "kms:ListGrants",
)


def deployer(opts: pulumi.InvokeOutputOptions) -> pulumi.Output[str]:
    """The IAM principal running ``pulumi up``: an assumed role's role ARN, path included.

    sts:GetCallerIdentity names a session (``arn:aws:sts::<account>:assumed-role/<role>/
    <session>``), which EKS refuses in an access entry (validation.iam_principals). The
    session context gives the role's ARN with its path (IAM GetRole, through pulumi-aws's
    aws.iam.getSessionContext); for a user it is the user's ARN.
    """
    caller = aws.get_caller_identity_output(opts=opts)
    return aws.iam.get_session_context_output(arn=caller.arn, opts=opts).issuer_arn


def principals(given: Sequence[str] | None, default: pulumi.Output[str]) -> list[pulumi.Input[str]]:
    """The ARNs given, else the deployer's: as many resources as ARNs, known now."""
    return list(given) if given is not None else [default]


def deployer_among(admins: Sequence[str], deployer: pulumi.Output[str]) -> pulumi.Output[str]:
    """The deployer, refused unless the declared ``admins`` name it: its Kubernetes objects
    go through its own access entry, the only one it has (no creator entry)."""

    def check(arn: str) -> str:
        if arn not in admins:
            raise ConfigError(
                f"clusterAdmins {list(admins)} leaves out {arn}, which runs `pulumi up`: "
                "without an access entry it cannot create the stack's Kubernetes objects. "
                "Add it to clusterAdmins"
            )
        return arn

    return deployer.apply(check)


def deployer_not_among(admins: Sequence[str], deployer: pulumi.Output[str]) -> pulumi.Output[str]:
    """The deployer, refused if the declared ``admins`` name it while the creator keeps EKS's
    own entry (``API_AND_CONFIG_MAP``): EKS takes one access entry per principal
    (awsdocs/amazon-eks-user-guide creating-access-entries: "An IAM principal can't be
    included in more than one access entry"), so ours would fail, ResourceInUseException."""

    def check(arn: str) -> str:
        if arn in admins:
            raise ConfigError(
                f"clusterAdmins {list(admins)} names {arn}, which runs `pulumi up`: with "
                "authentication_mode API_AND_CONFIG_MAP it keeps the cluster-admin access "
                "entry EKS gives a cluster's creator, and EKS refuses a second entry for it "
                "(ResourceInUseException). Remove it from clusterAdmins"
            )
        return arn

    return deployer.apply(check)


def key_admins_include(admins: Sequence[str], deployer: pulumi.Output[str]) -> pulumi.Output[str]:
    """The deployer, refused unless the declared key ``admins`` name it or its account root
    (which hands the decision to IAM): KMS refuses CreateKey with a policy that would lock
    its caller out (botocore's kms model, CreateKey BypassPolicyLockoutSafetyCheck:
    MalformedPolicyDocumentException), which `up` would find only after the preview."""

    def check(arn: str) -> str:
        root = ":".join(arn.split(":")[:5]) + ":root"
        if arn not in admins and root not in admins:
            raise ConfigError(
                f"kmsKeyAdmins {list(admins)} leaves out {arn}, which runs `pulumi up`: KMS "
                "refuses to create a key whose policy locks its creator out. Add it, or the "
                f"account root {root}, to kmsKeyAdmins"
            )
        return arn

    return deployer.apply(check)


def key_policy(
    admins: Sequence[str], deployer: str, account: str, partition: str, region: str
) -> str:
    """The secrets key's policy: ``admins`` administer it; ``deployer`` may let EKS use it
    for a cluster it creates; the account uses it through EKS.

    No statement gives the account root ``kms:*`` (KMS's default policy): with it any
    IAM admin of the account could disable the key or schedule its deletion.
    ``kms:ViaService`` limits use to requests EKS makes in this region on a principal's
    behalf (AWS KMS Developer Guide, "kms:ViaService"), and IAM still decides which
    principals. KMS refuses a policy that would lock its caller out (botocore's kms model,
    CreateKey BypassPolicyLockoutSafetyCheck), so ``admins`` must include the deployer.
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "KeyAdministration",
            "Effect": "Allow",
            "Principal": {"AWS": list(admins)},
            "Action": list(KEY_ADMIN_ACTIONS),
            "Resource": "*",
        },
        {
            "Sid": "DeployerCreatesTheCluster",
            "Effect": "Allow",
            "Principal": {"AWS": deployer},
            "Action": list(CLUSTER_CREATOR_ACTIONS),
            "Resource": "*",
        },
        {
            "Sid": "UseThroughEksOnly",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
            "Action": list(KEY_USE_ACTIONS),
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": f"eks.{region}.amazonaws.com",
                    "kms:CallerAccount": account,
                }
            },
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def secrets_key_policy(
    given: Sequence[str] | None,
    deployer: pulumi.Output[str],
    region: pulumi.Input[str],
    opts: pulumi.InvokeOutputOptions,
) -> pulumi.Output[str]:
    """key_policy in the deployer's account and partition, for the key admins ``given``
    (checked to include the deployer), else the deployer."""
    caller = aws.get_caller_identity_output(opts=opts)
    admins = principals(given, deployer)
    if given is not None:
        deployer = key_admins_include(given, deployer)

    def policy(values: list[str]) -> str:
        caller_arn, deployer, region, *admins = values
        _, partition, _, _, account, _ = caller_arn.split(":", 5)
        return key_policy(admins, deployer, account=account, partition=partition, region=region)

    return pulumi.Output.all(caller.arn, deployer, region, *admins).apply(policy)


def cluster_admins(
    name: str,
    cluster_name: pulumi.Input[str],
    admins: Sequence[pulumi.Input[str]],
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> list[aws.eks.AccessPolicyAssociation]:
    """An access entry and the cluster-admin policy, cluster-wide, for each of ``admins``.

    Inputs as botocore's eks model takes them: CreateAccessEntryRequest (clusterName,
    principalArn, type STANDARD) and AssociateAccessPolicyRequest (accessScope type
    ``cluster``, AccessScopeType).
    """
    associations = []
    for i, arn in enumerate(admins):
        entry = aws.eks.AccessEntry(
            f"{name}-admin-{i}",
            cluster_name=cluster_name,
            principal_arn=arn,
            type="STANDARD",
            tags=tags,
            opts=opts,
        )
        associations.append(
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{i}",
                cluster_name=cluster_name,
                principal_arn=entry.principal_arn,
                policy_arn=CLUSTER_ADMIN_POLICY,
                access_scope={"type": "cluster"},
                opts=opts,
            )
        )
    return associations
