"""Who holds the keys: cluster admins as managed access entries, the secrets key's policy."""

from __future__ import annotations

import fnmatch
import json
import re

import botocore.session
import pulumi
import pytest

from components import ConfigError, args_from_config
from components.cluster import no_creator_admin
from components.cluster_access import (
    CLUSTER_ADMIN_POLICY,
    CLUSTER_CREATOR_ACTIONS,
    KEY_ADMIN_ACTIONS,
    KEY_USE_ACTIONS,
    key_policy,
)
from components.tools import mocks
from components.tools.plan import config_error
from tests.conftest import ROOT, cluster_args
from tests.test_cluster import TODAY, build, eks_transforms

SESSION = botocore.session.get_session()
EKS = SESSION.get_service_model("eks")
KMS = SESSION.get_service_model("kms")
#: The role behind the mocks' deployer session, path kept (mocks.DEPLOYER_SESSION).
DEPLOYER = f"arn:aws:iam::{mocks.ACCOUNT}:role{mocks.DEPLOYER_ROLE_PATH}{mocks.DEPLOYER_ROLE}"
ALICE = "arn:aws:iam::123456789012:role/platform/alice"
BOB = "arn:aws:iam::123456789012:user/bob"


def admins(plan, typ: str = "aws:eks/accessEntry:AccessEntry") -> list[str]:
    """The principals of the access entries (or associations), in the order of their names:
    resources register in the order their inputs resolve."""
    found = sorted(plan.by_type(typ), key=lambda r: r["name"])
    return [r["inputs"]["principalArn"] for r in found]


def test_the_deployer_is_the_only_admin_by_default_as_its_role():
    """An assumed role's session ARN becomes the role's ARN with its path, which EKS needs."""
    plan = build()
    assert admins(plan) == [DEPLOYER]
    (association,) = plan.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert association["inputs"]["principalArn"] == DEPLOYER
    assert association["inputs"]["policyArn"] == CLUSTER_ADMIN_POLICY
    assert association["inputs"]["accessScope"] == {"type": "cluster"}


def test_declared_admins_replace_the_deployer_who_must_be_among_them():
    plan = build(cluster_admins=[ALICE, DEPLOYER, BOB])
    assert admins(plan) == [ALICE, DEPLOYER, BOB]
    associations = admins(plan, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert associations == [ALICE, DEPLOYER, BOB]
    with pytest.raises(Exception) as error:
        build(cluster_admins=[ALICE])
    assert str(config_error(error.value)) == (
        f"clusterAdmins ['{ALICE}'] leaves out {DEPLOYER}, which runs `pulumi up`: without an "
        "access entry it cannot create the stack's Kubernetes objects. Add it to clusterAdmins"
    )


def test_our_kubernetes_objects_wait_for_the_admins_access():
    """With no creator entry, the deployer reaches the API only through its managed entry."""
    plan = build()
    provider = plan.one("pulumi:providers:kubernetes")
    for association in plan.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        assert association["urn"] in provider["dependencies"]


def test_access_entries_fit_the_eks_api(demo_plan):
    """botocore's eks model: CreateAccessEntry and AssociateAccessPolicy."""
    entry_request = EKS.shape_for("CreateAccessEntryRequest")
    for entry in demo_plan.by_type("aws:eks/accessEntry:AccessEntry"):
        assert set(entry_request.required_members) <= set(entry["inputs"])
        assert "`STANDARD`" in entry_request.members["type"].documentation.replace(
            "<code>", "`"
        ).replace("</code>", "`")
    request = EKS.shape_for("AssociateAccessPolicyRequest")
    scopes = request.members["accessScope"].members["type"].enum
    for association in demo_plan.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        assert set(request.required_members) <= set(association["inputs"])
        assert association["inputs"]["accessScope"]["type"] in scopes


def test_the_creator_gets_no_unmanaged_admin_entry(monkeypatch):
    """pulumi-eks hard-codes bootstrapClusterCreatorAdminPermissions true; EKS takes it only
    at create (CreateAccessConfigRequest has it, UpdateAccessConfigRequest does not)."""
    assert (
        "bootstrapClusterCreatorAdminPermissions"
        in EKS.shape_for("CreateAccessConfigRequest").members
    )
    assert (
        "bootstrapClusterCreatorAdminPermissions"
        not in EKS.shape_for("UpdateAccessConfigRequest").members
    )
    assert no_creator_admin in eks_transforms(monkeypatch)
    opts = pulumi.ResourceOptions()
    given = {
        "name": "c",
        "accessConfig": {
            "authenticationMode": "API",
            "bootstrapClusterCreatorAdminPermissions": True,
        },
    }
    child = no_creator_admin(
        pulumi.ResourceTransformArgs(
            True, "aws:eks/cluster:Cluster", "c-eks-eksCluster", given, opts
        )
    )
    assert child.props == {
        "name": "c",
        "accessConfig": {
            "authenticationMode": "API",
            "bootstrapClusterCreatorAdminPermissions": False,
        },
    }
    assert given["accessConfig"]["bootstrapClusterCreatorAdminPermissions"] is True  # a copy
    assert (
        no_creator_admin(
            pulumi.ResourceTransformArgs(True, "aws:iam/role:Role", "c-eks-eksRole", {}, opts)
        )
        is None
    )


def test_the_docs_delete_an_old_creator_entry_before_the_first_up():
    """A cluster created before the managed entries keeps the creator's entry; EKS takes one
    entry per principal, so ours would fail (ResourceInUseException, pulumi/pulumi-eks#2373)
    unless the old one is deleted first: "once a managed entry exists" never happens."""
    text = " ".join((ROOT / "docs" / "security.md").read_text(encoding="utf-8").split())
    assert "once a managed entry exists" not in text
    before = text.index("**Before the first `pulumi up` with this version**, delete")
    command = text.index(
        "`aws eks delete-access-entry --cluster-name <cluster> --principal-arn <creator-role-arn>`"
    )
    assert before < command < before + 120
    assert "DeleteAccessEntry" in EKS.operation_names


def test_with_the_aws_auth_configmap_the_creator_keeps_its_entry(monkeypatch):
    """pulumi-eks writes aws-auth as the creator (cluster.ts), so the creator stays admin;
    only declared admins get managed entries, and the warning says who else is admin."""
    transforms = eks_transforms(monkeypatch, authentication_mode="API_AND_CONFIG_MAP")
    assert no_creator_admin not in transforms
    plan = build(authentication_mode="API_AND_CONFIG_MAP")
    assert admins(plan) == []
    assert any("keeps the cluster-admin access entry EKS makes" in w for w in plan.warnings)
    assert admins(build(authentication_mode="API_AND_CONFIG_MAP", cluster_admins=[ALICE])) == [
        ALICE
    ]


def test_with_the_aws_auth_configmap_declared_admins_leave_out_the_creator():
    """The creator keeps EKS's entry then, and EKS takes one access entry per principal
    (awsdocs/amazon-eks-user-guide creating-access-entries: "An IAM principal can't be
    included in more than one access entry"): ours for it would fail, ResourceInUseException."""
    with pytest.raises(Exception) as error:
        build(authentication_mode="API_AND_CONFIG_MAP", cluster_admins=[ALICE, DEPLOYER])
    assert str(config_error(error.value)) == (
        f"clusterAdmins ['{ALICE}', '{DEPLOYER}'] names {DEPLOYER}, which runs `pulumi up`: "
        "with authentication_mode API_AND_CONFIG_MAP it keeps the cluster-admin access entry "
        "EKS gives a cluster's creator, and EKS refuses a second entry for it "
        "(ResourceInUseException). Remove it from clusterAdmins"
    )


@pytest.mark.parametrize(
    ("arns", "message"),
    [
        (
            [f"arn:aws:sts::{mocks.ACCOUNT}:assumed-role/Admin/me"],
            "clusterAdmins[0] 'arn:aws:sts::123456789012:assumed-role/Admin/me' is an STS session, "
            "not an IAM principal; name its role, arn:aws:iam::123456789012:role/<path/>Admin",
        ),
        (
            ["arn:aws:iam::123456789012:root"],
            "clusterAdmins[0] 'arn:aws:iam::123456789012:root' is not an IAM role or user ARN",
        ),
        ([ALICE, ALICE], f"clusterAdmins[1] '{ALICE}' is listed twice"),
        ([], "clusterAdmins must be a non-empty list of IAM ARNs"),
        (ALICE, "clusterAdmins must be a non-empty list of IAM ARNs"),
        (["arn:aws:iam::12345:role/x"], "clusterAdmins[0]"),
    ],
)
def test_cluster_admins_are_iam_principals(arns, message):
    with pytest.raises(ConfigError) as error:
        cluster_args(today=TODAY, cluster_admins=arns).validate()
    assert str(error.value).startswith(message)


def test_kms_key_admins_may_be_an_account_root_cluster_admins_not():
    cluster_args(today=TODAY, kms_key_admins=["arn:aws:iam::123456789012:root"]).validate()
    with pytest.raises(ConfigError, match=r"^kmsKeyAdmins\[0\]"):
        cluster_args(today=TODAY, kms_key_admins=["me"]).validate()


def test_admins_come_from_the_stack_config():
    args = args_from_config(
        {
            "aws:region": "us-west-2",
            "eks-gpu-sharing:endpointPublicAccess": "false",
            "eks-gpu-sharing:clusterAdmins": json.dumps([ALICE]),
            "eks-gpu-sharing:kmsKeyAdmins": json.dumps([ALICE, BOB]),
        },
        "dev",
        today=TODAY,
    )
    assert list(args.cluster.cluster_admins) == [ALICE]
    assert list(args.cluster.kms_key_admins) == [ALICE, BOB]
    assert args.cluster.endpoint_public_access is False
    with pytest.raises(ConfigError, match="clusterAdmins must be a list of strings"):
        args_from_config({"eks-gpu-sharing:clusterAdmins": ALICE}, "dev", today=TODAY)
    with pytest.raises(ConfigError, match="endpointPublicAccess must be true or false"):
        args_from_config({"eks-gpu-sharing:endpointPublicAccess": "no"}, "dev", today=TODAY)


# --- The secrets key's policy ------------------------------------------------------------


def statements(plan) -> dict[str, dict]:
    policy = json.loads(plan.one("aws:kms/key:Key")["inputs"]["policy"])
    assert policy["Version"] == "2012-10-17"
    return {s["Sid"]: s for s in policy["Statement"]}


def test_the_key_is_administered_by_the_deployer_and_used_only_through_eks():
    found = statements(build())
    assert found["KeyAdministration"]["Principal"] == {"AWS": [DEPLOYER]}
    use = found["UseThroughEksOnly"]
    assert use["Principal"] == {"AWS": f"arn:aws:iam::{mocks.ACCOUNT}:root"}
    assert use["Condition"] == {
        "StringEquals": {
            "kms:ViaService": "eks.us-west-2.amazonaws.com",
            "kms:CallerAccount": mocks.ACCOUNT,
        }
    }
    assert set(found) == {"KeyAdministration", "DeployerCreatesTheCluster", "UseThroughEksOnly"}


def test_the_deployer_may_let_eks_use_the_key_whoever_administers_it():
    """CreateCluster needs kms:DescribeKey and kms:CreateGrant of its caller
    (awsdocs/amazon-eks-user-guide latest/ug/security/security-k8s.adoc): a statement of
    its own, not the admins' kms:Create* and kms:Describe*."""
    root = f"arn:aws:iam::{mocks.ACCOUNT}:root"
    for plan in (build(), build(kms_key_admins=[ALICE, root])):
        creator = statements(plan)["DeployerCreatesTheCluster"]
        assert creator["Principal"] == {"AWS": DEPLOYER}
        assert creator["Action"] == ["kms:DescribeKey", "kms:CreateGrant"]
        assert "Condition" not in creator
    assert set(CLUSTER_CREATOR_ACTIONS) <= set(KEY_USE_ACTIONS)


def test_key_admins_must_include_the_deployer_or_its_account_root():
    """KMS refuses CreateKey with a policy that locks its caller out (botocore's kms model,
    CreateKey BypassPolicyLockoutSafetyCheck): refused in the preview, not during `up`."""
    assert "lockout" in KMS.operation_model("CreateKey").input_shape.members[
        "BypassPolicyLockoutSafetyCheck"
    ].documentation.lower().replace(" ", "")
    with pytest.raises(Exception) as error:
        build(kms_key_admins=[ALICE])
    root = f"arn:aws:iam::{mocks.ACCOUNT}:root"
    assert str(config_error(error.value)) == (
        f"kmsKeyAdmins ['{ALICE}'] leaves out {DEPLOYER}, which runs `pulumi up`: KMS refuses "
        f"to create a key whose policy locks its creator out. Add it, or the account root "
        f"{root}, to kmsKeyAdmins"
    )
    assert statements(build(kms_key_admins=[ALICE, DEPLOYER]))["KeyAdministration"][
        "Principal"
    ] == {"AWS": [ALICE, DEPLOYER]}
    build(kms_key_admins=[ALICE], kms_key_arn="arn:aws:kms:us-west-2:123456789012:key/given")


def test_declared_key_admins_replace_the_deployer():
    found = statements(build(kms_key_admins=[ALICE, "arn:aws:iam::123456789012:root"]))
    assert found["KeyAdministration"]["Principal"] == {
        "AWS": [ALICE, "arn:aws:iam::123456789012:root"]
    }


def test_no_statement_hands_the_key_to_every_account_admin():
    """KMS's default policy gives the account root kms:*: then any IAM admin could disable
    the key or schedule its deletion, and use it outside EKS."""
    policy = key_policy([ALICE], BOB, account="123456789012", partition="aws", region="eu-west-1")
    for statement in json.loads(policy)["Statement"]:
        assert "kms:*" not in statement["Action"]
        if statement["Principal"]["AWS"] == "arn:aws:iam::123456789012:root":
            assert statement["Condition"]["StringEquals"]["kms:ViaService"] == (
                "eks.eu-west-1.amazonaws.com"
            )
            assert not {"kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy"} & set(
                statement["Action"]
            )
    # No use action for admins, though kms:Create* (CreateGrant) lets them take one.
    assert not {"kms:Decrypt", "kms:Encrypt"} & set(KEY_ADMIN_ACTIONS)


def test_every_action_names_kms_operations_and_the_policy_fits_the_api():
    """Each action (or wildcard) matches operations in botocore's kms model; the document
    fits CreateKeyRequest.Policy (PolicyType: length and characters)."""
    operations = [f"kms:{name}" for name in KMS.operation_names]
    for action in (*KEY_ADMIN_ACTIONS, *KEY_USE_ACTIONS):
        assert fnmatch.filter(operations, action), action
    # What EKS needs of the creator's key access (awsdocs/amazon-eks-user-guide
    # latest/ug/security/security-k8s.adoc): kms:DescribeKey and kms:CreateGrant.
    assert {"kms:DescribeKey", "kms:CreateGrant"} <= set(KEY_USE_ACTIONS)
    shape = KMS.shape_for("CreateKeyRequest").members["Policy"]
    policy = key_policy([ALICE], BOB, account="123456789012", partition="aws", region="us-west-2")
    assert shape.metadata["min"] <= len(policy) <= shape.metadata["max"]
    assert re.fullmatch(shape.metadata["pattern"], policy)


def test_a_given_key_gets_no_policy_from_us():
    plan = build(kms_key_arn="arn:aws:kms:us-west-2:123456789012:key/given")
    assert plan.by_type("aws:kms/key:Key") == []
