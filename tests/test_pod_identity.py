"""EKS Pod Identity: the agent, one role per service account, and aws-node's CNI role."""

from __future__ import annotations

import json

import botocore.session
import pulumi
import pytest
from moto.iam.aws_managed_policies import aws_managed_policies_data

from components import catalog
from components.pod_identity import TRUST_POLICY, pod_identity_role
from tests.conftest import by_name, run_program

EKS = botocore.session.get_session().get_service_model("eks")
AWS_MANAGED_POLICIES = json.loads(aws_managed_policies_data)


def test_a_role_for_one_service_account_with_its_policies_first():
    def program():
        pod_identity_role(
            "ca",
            cluster_name="demo",
            namespace="kube-system",
            service_account="cluster-autoscaler",
            managed_policy_arns=["arn:aws:iam::aws:policy/ReadOnlyAccess"],
            inline_policy='{"Version": "2012-10-17", "Statement": []}',
            opts=pulumi.ResourceOptions(),
        )

    plan = run_program(program)
    role = plan.one("aws:iam/role:Role")
    assert json.loads(role["inputs"]["assumeRolePolicy"]) == json.loads(TRUST_POLICY)
    association = plan.one("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    inputs = association["inputs"]
    assert (inputs["clusterName"], inputs["namespace"], inputs["serviceAccount"]) == (
        "demo",
        "kube-system",
        "cluster-autoscaler",
    )
    assert inputs["roleArn"].startswith("arn:aws:iam::123456789012:role/ca-role")
    attachment = plan.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    inline = plan.one("aws:iam/rolePolicy:RolePolicy")
    assert attachment["inputs"]["policyArn"] == "arn:aws:iam::aws:policy/ReadOnlyAccess"
    # A pod that starts as soon as the association exists finds its permissions.
    assert {attachment["urn"], inline["urn"]} <= set(association["dependencies"])


def test_the_trust_policy_is_pod_identitys():
    """EKS Pod Identity assumes the role as pods.eks.amazonaws.com and tags the session
    (awsdocs/amazon-eks-user-guide latest/ug/manage-access/aws-access/service-accounts.adoc)."""
    (statement,) = json.loads(TRUST_POLICY)["Statement"]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]


def test_associations_fit_create_pod_identity_association(demo_plan):
    request = EKS.shape_for("CreatePodIdentityAssociationRequest")
    for association in demo_plan.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation"):
        for member in request.required_members:
            assert member in association["inputs"], member


def test_aws_node_gets_the_cni_policy_and_the_node_role_does_not(demo_plan):
    association = by_name(demo_plan, "gpu-sharing-cluster-aws-node-association")["inputs"]
    assert (association["namespace"], association["serviceAccount"]) == ("kube-system", "aws-node")
    cni = by_name(demo_plan, "gpu-sharing-cluster-aws-node-AmazonEKS_CNI_Policy")["inputs"]
    assert cni["policyArn"] == "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
    node_policies = {
        a["inputs"]["policyArn"]
        for a in demo_plan.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a["parent"].endswith("GpuNodeGroup::gpu-sharing-gpu")
    }
    assert node_policies == {
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
    }


@pytest.mark.parametrize("policy", [*catalog.WORKER_NODE_POLICIES, catalog.CNI_POLICY])
def test_the_managed_policies_exist_in_aws(policy):
    """moto's copy of the AWS managed policies; ReadOnly's ecr:DescribeRepositories and
    ecr:ListImages are what PullOnly leaves out."""
    assert policy in AWS_MANAGED_POLICIES
    pull = json.dumps(AWS_MANAGED_POLICIES["AmazonEC2ContainerRegistryPullOnly"])
    assert "ecr:BatchGetImage" in pull and "ecr:DescribeRepositories" not in pull


def test_nodes_join_only_after_aws_node_can_get_its_role(demo_plan):
    """EKS injects Pod Identity credentials when a pod is created: the association and the
    agent must exist before the first node's aws-node pod, or the node never gets Ready.
    The node groups wait for both (through ``cluster_name``); the two are created side by
    side, since an association does not need the agent to exist."""
    association = by_name(demo_plan, "gpu-sharing-cluster-aws-node-association")
    agent = by_name(demo_plan, "gpu-sharing-cluster-pod-identity-agent")
    assert agent["inputs"]["addonName"] == "eks-pod-identity-agent"
    assert agent["urn"] not in association["dependencies"]
    for group in demo_plan.by_type("aws:eks/nodeGroup:NodeGroup"):
        assert {association["urn"], agent["urn"]} <= set(group["dependencies"])


def test_the_agent_fits_create_addon_and_is_exposed(demo_plan):
    inputs = by_name(demo_plan, "gpu-sharing-cluster-pod-identity-agent")["inputs"]
    for member in EKS.shape_for("CreateAddonRequest").required_members:
        assert member in inputs


def test_network_policies_are_enforced_by_the_vpc_cni(demo_plan):
    """Without the network-policy agent the VPC CNI ignores NetworkPolicy objects
    (awsdocs/amazon-eks-user-guide latest/ug/networking/eks-networking-add-ons.adoc)."""
    options = demo_plan.one("eks:index:Cluster")["inputs"]["vpcCniOptions"]
    assert options["enableNetworkPolicy"] is True
