"""What every EKS node of ours gets, GPU or not: a role with the worker policies and no more,
and a launch template with IMDSv2 and an encrypted gp3 volume."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from . import catalog


def node_role(
    name: str, tags: Mapping[str, str], opts: pulumi.ResourceOptions
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """The nodes' IAM role: worker node and ECR pull-only policies. The VPC CNI's policy is
    on aws-node's own role (GpuCluster), never here, where every host-network pod could use
    it. A node group must depend on the attachments: EKS checks them at create."""
    role = aws.iam.Role(
        f"{name}-role",
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "ec2.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
        tags=dict(tags),
        opts=opts,
    )
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy}",
            role=role.name,
            policy_arn=f"arn:aws:iam::aws:policy/{policy}",
            opts=opts,
        )
        for policy in catalog.WORKER_NODE_POLICIES
    ]
    return role, attachments


def launch_template(
    name: str,
    *,
    description: str,
    device_name: str,
    volume_gib: int,
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
    imds_hop_limit: int = 1,
    key_name: str | None = None,
    user_data: str | None = None,
) -> aws.ec2.LaunchTemplate:
    """A template naming no AMI, so EKS picks the group's AMI and merges its own bootstrap
    with ``user_data`` (awsdocs launch-templates). IMDSv2 only; at hop limit 1 containers
    (one hop further) cannot reach the instance metadata, so pods cannot borrow the node
    role. The volume on ``device_name`` is gp3, encrypted, deleted with the instance."""
    return aws.ec2.LaunchTemplate(
        f"{name}-lt",
        description=description,
        metadata_options={
            "http_endpoint": "enabled",
            "http_tokens": "required",
            "http_put_response_hop_limit": imds_hop_limit,
        },
        block_device_mappings=[
            {
                "device_name": device_name,
                "ebs": {
                    "volume_size": volume_gib,
                    "volume_type": "gp3",
                    "encrypted": "true",
                    "delete_on_termination": "true",
                },
            }
        ],
        key_name=key_name,
        user_data=user_data,
        tag_specifications=[
            {"resource_type": kind, "tags": dict(tags)} for kind in ("instance", "volume")
        ]
        if tags
        else None,
        tags=dict(tags),
        opts=opts,
    )
