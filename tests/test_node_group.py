"""GpuNodeGroup under mocks: g4dn, NVIDIA AMI, IMDSv2, encrypted disk, least-privilege role."""

from __future__ import annotations

import base64
import email
import json
import shlex

import pytest
import tomllib

from components import (
    ConfigError,
    GpuNodeGroup,
    GpuNodeGroupArgs,
    al2023,
    catalog,
    conventions,
    node_template,
)
from components.plugin_config import Flags, PluginConfig, mps, time_slicing
from components.tools import plan as planner
from components.tools.mocks import AwsLikeMocks
from tests.conftest import run_program


def build(**kwargs):
    args = GpuNodeGroupArgs(cluster_name="demo", subnet_ids=["subnet-a", "subnet-b"], **kwargs)
    return run_program(lambda: GpuNodeGroup("g", args))


def update(mocks: AwsLikeMocks, **kwargs) -> dict:
    """One more `pulumi up` of the group against the same (mocked) account."""
    args = GpuNodeGroupArgs(cluster_name="demo", subnet_ids=["subnet-a", "subnet-b"], **kwargs)
    plan = planner.record(lambda: GpuNodeGroup("g", args), "test", {}, mocks=mocks)
    return plan.one("aws:eks/nodeGroup:NodeGroup")["inputs"]["launchTemplate"]


def test_node_group_defaults():
    plan = build()
    group = plan.one("aws:eks/nodeGroup:NodeGroup")["inputs"]
    assert group["instanceTypes"] == ["g4dn.xlarge"]
    assert group["amiType"] == "AL2023_x86_64_NVIDIA"
    assert group["capacityType"] == "ON_DEMAND"
    assert group["scalingConfig"] == {"desiredSize": 1, "minSize": 1, "maxSize": 1}
    assert group["taints"] == [
        {"key": conventions.GPU_TAINT_KEY, "value": "true", "effect": "NO_SCHEDULE"}
    ]
    assert group["labels"][conventions.PLUGIN_CONFIG_NODE_LABEL] == "default"
    assert "remoteAccess" not in group  # no SSH


def test_launch_template_requires_imdsv2_and_encrypts_the_volume():
    plan = build()
    template = plan.one("aws:ec2/launchTemplate:LaunchTemplate")["inputs"]
    assert template["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }
    (disk,) = template["blockDeviceMappings"]
    assert disk["deviceName"] == "/dev/xvda"
    assert disk["ebs"]["encrypted"] == "true" and disk["ebs"]["volumeType"] == "gp3"
    assert "keyName" not in template
    assert "tagSpecifications" not in template  # no tags given, none to copy onto instances
    group = plan.one("aws:eks/nodeGroup:NodeGroup")
    assert group["inputs"]["launchTemplate"]["version"] == "1"


def test_role_has_exactly_the_worker_policies_and_the_group_waits_for_them():
    plan = build()
    role = plan.one("aws:iam/role:Role")
    assume = json.loads(role["inputs"]["assumeRolePolicy"])
    assert assume["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    attachments = plan.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert sorted(a["inputs"]["policyArn"].rsplit("/", 1)[1] for a in attachments) == sorted(
        catalog.WORKER_NODE_POLICIES
    )
    group = plan.one("aws:eks/nodeGroup:NodeGroup")
    for attachment in attachments:
        assert attachment["urn"] in group["dependencies"]


def test_spot_bottlerocket_and_a_bigger_group():
    plan = build(
        capacity_type="SPOT",
        ami_type="BOTTLEROCKET_x86_64_NVIDIA",
        instance_type="g4dn.12xlarge",
        min_size=0,
        desired_size=1,
        max_size=3,
    )
    group = plan.one("aws:eks/nodeGroup:NodeGroup")["inputs"]
    assert (group["capacityType"], group["amiType"]) == ("SPOT", "BOTTLEROCKET_x86_64_NVIDIA")
    template = plan.one("aws:ec2/launchTemplate:LaunchTemplate")["inputs"]
    # The data volume, where Bottlerocket keeps images; /dev/xvda is its small OS volume
    # (bottlerocket-os/bottlerocket README.md, "Default Volumes").
    assert template["blockDeviceMappings"][0]["deviceName"] == "/dev/xvdb"
    assert not plan.warnings  # Bottlerocket is a supported path, not a warned-about one


def test_a_template_change_gives_the_group_a_new_template_version():
    """EKS rolls the nodes onto a new launch-template version: the group must follow the
    latest one. The mocks number versions as EC2 does (components/tools/mocks.py)."""
    mocks = AwsLikeMocks()
    first = update(mocks)
    assert first["version"] == "1"
    assert update(mocks) == first  # nothing changed: no new version, no roll
    changed = update(mocks, disk_size_gib=100)
    assert changed == {"id": first["id"], "version": "2"}
    assert update(mocks, disk_size_gib=100, tags={"team": "ml"})["version"] == "3"  # tag specs
    assert update(mocks, imds_hop_limit=2)["version"] == "4"


def test_gpus_per_node_is_what_ec2_reports_for_the_instance_type():
    """Counted from the mocked DescribeInstanceTypes answer, whose GPU counts
    tests/test_aws_models.py checks against EC2's recorded data."""
    holder = {}

    def program():
        holder["g"] = GpuNodeGroup(
            "g",
            GpuNodeGroupArgs(
                cluster_name="demo", subnet_ids=["a", "b"], instance_type="g4dn.metal"
            ),
        )
        import pulumi

        pulumi.export("gpus", holder["g"].gpus_per_node)

    assert run_program(program).outputs["gpus"] == 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cluster_name": None}, "GpuNodeGroupArgs needs cluster_name and subnet_ids"),
        ({"disk_size_gib": 8}, "disk_size_gib must be between 20 and 65536, got 8"),
        (
            {"plugin_config_key": "has space"},
            "plugin_config_key 'has space' is not a valid label value (the node label "
            "nvidia.com/device-plugin.config)",
        ),
        ({"labels": {"a": 1}}, "labels must be a map of strings to strings, got {'a': 1}"),
        ({"min_size": True}, "gpuNodeMin must be an integer, got True"),
        ({"tags": {"team": 7}}, "tags must be a map of strings to strings, got {'team': 7}"),
        ({"plugin_config": 5}, "plugin_config must be a PluginConfig, got 5"),
        ({"autoscaled": "yes"}, "autoscaled must be true or false, got 'yes'"),
    ],
)
def test_bad_args_are_rejected(kwargs, message):
    base = {"cluster_name": "demo", "subnet_ids": ["a", "b"]}
    with pytest.raises(ConfigError) as error:
        GpuNodeGroupArgs(**{**base, **kwargs}).validate()
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"instance_type": "m5.large"},
            "gpuInstanceType 'm5.large' is not a g4dn instance type with NVIDIA GPUs; use one of "
            "g4dn.xlarge, g4dn.2xlarge, g4dn.4xlarge, g4dn.8xlarge, g4dn.12xlarge, "
            "g4dn.16xlarge, g4dn.metal",
        ),
        (
            {"ami_type": "AL2_x86_64_GPU"},
            "gpuAmiType 'AL2_x86_64_GPU' is deprecated (Amazon Linux 2 AMIs are no longer "
            "updated since 2025-11-26); use one of AL2023_x86_64_NVIDIA, "
            "BOTTLEROCKET_x86_64_NVIDIA",
        ),
    ],
)
def test_a_type_we_do_not_run_is_refused_with_what_to_use(kwargs, message):
    with pytest.raises(ConfigError) as error:
        GpuNodeGroupArgs(cluster_name="demo", subnet_ids=["a", "b"], **kwargs).validate()
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("size", "refused"), [(19, True), (20, False), (65536, False), (65537, True)]
)
def test_the_volume_size_is_one_ec2_takes_for_the_ami(size, refused):
    """gp3 in a launch template: 1 to 65,536 GiB (botocore's ec2 model,
    LaunchTemplateEbsBlockDeviceRequest.VolumeSize); never less than the AMI's 20 GiB
    snapshot (awslabs/amazon-eks-ami templates/al2023/template.json)."""
    args = GpuNodeGroupArgs(cluster_name="demo", subnet_ids=["a", "b"], disk_size_gib=size)
    if not refused:
        args.validate()
        return
    with pytest.raises(ConfigError) as error:
        args.validate()
    assert str(error.value) == f"disk_size_gib must be between 20 and 65536, got {size}"


def test_metadata_hop_limit_and_ssh_are_opt_in_and_warned_about():
    plan = build(imds_hop_limit=2, ssh_key_name="ops")
    template = plan.one("aws:ec2/launchTemplate:LaunchTemplate")["inputs"]
    assert template["metadataOptions"]["httpPutResponseHopLimit"] == 2
    assert template["keyName"] == "ops"
    assert any("node role's credentials" in w for w in plan.warnings)
    assert any("accept SSH" in w for w in plan.warnings)
    assert not build().warnings


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"imds_hop_limit": 0}, "imds_hop_limit must be between 1 and 64, got 0"),
        # botocore's ec2 model, CreateKeyPairRequest.KeyName: up to 255 ASCII characters.
        ({"ssh_key_name": ""}, "ssh_key_name '' is not a key pair name"),
        ({"ssh_key_name": "clé"}, "ssh_key_name 'clé' is not a key pair name"),
        ({"ssh_key_name": "k" * 256}, f"ssh_key_name {'k' * 256!r} is not a key pair name"),
    ],
)
def test_bad_security_args(kwargs, message):
    with pytest.raises(ConfigError) as error:
        GpuNodeGroupArgs(cluster_name="demo", subnet_ids=["a", "b"], **kwargs).validate()
    assert str(error.value) == message


def test_the_role_is_one_ec2_can_assume_and_everything_is_tagged():
    plan = build(tags={"team": "ml"})
    role = plan.one("aws:iam/role:Role")["inputs"]
    assert json.loads(role["assumeRolePolicy"]) == {
        "Version": "2012-10-17",  # the IAM policy language version; anything else is refused
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    for typ in ("aws:iam/role:Role", "aws:ec2/launchTemplate:LaunchTemplate"):
        assert plan.one(typ)["inputs"]["tags"] == {"team": "ml"}, typ
    # The node group also carries the Cluster Autoscaler's node template (node_template.py).
    group_tags = plan.one("aws:eks/nodeGroup:NodeGroup")["inputs"]["tags"]
    assert {k: v for k, v in group_tags.items() if not k.startswith(node_template.PREFIX)} == {
        "team": "ml"}


def test_the_template_says_what_it_enforces_and_its_volume_goes_with_the_node():
    template = build().one("aws:ec2/launchTemplate:LaunchTemplate")["inputs"]
    assert template["description"] == "GPU nodes: IMDSv2 only, encrypted gp3 volume, no SSH key"
    (disk,) = template["blockDeviceMappings"]
    assert disk["ebs"] == {
        "volumeSize": 50,
        "volumeType": "gp3",
        "encrypted": "true",
        "deleteOnTermination": "true",
    }


def test_warnings_say_what_is_at_stake():
    assert build(imds_hop_limit=2, ssh_key_name="ops").warnings == [
        "imds_hop_limit 2: pods can reach the instance metadata and use the node role's "
        "credentials",
        "ssh_key_name 'ops': the GPU nodes accept SSH with that key",
    ]


def test_tags_are_copied_onto_the_instances_and_volumes_the_template_launches():
    import botocore.session

    template = build(tags={"team": "ml"}).one("aws:ec2/launchTemplate:LaunchTemplate")["inputs"]
    assert template["tagSpecifications"] == [
        {"resourceType": "instance", "tags": {"team": "ml"}},
        {"resourceType": "volume", "tags": {"team": "ml"}},
    ]
    kinds = botocore.session.get_session().get_service_model("ec2").shape_for("ResourceType").enum
    assert {"instance", "volume"} <= set(kinds)


def test_a_group_without_its_cluster_says_what_it_needs():
    with pytest.raises(ConfigError) as error:
        GpuNodeGroupArgs().validate()
    assert str(error.value) == "GpuNodeGroupArgs needs cluster_name and subnet_ids"


def test_the_instance_type_is_looked_up_through_the_groups_aws_provider():
    import pulumi
    import pulumi_aws as aws

    mocks = AwsLikeMocks()

    def program():
        provider = aws.Provider("elsewhere", region="eu-west-1")
        args = GpuNodeGroupArgs(cluster_name="demo", subnet_ids=["a", "b"])
        GpuNodeGroup("g", args, opts=pulumi.ResourceOptions(providers={"aws": provider}))

    planner.record(program, "test", {}, mocks=mocks)
    assert mocks.calls == [("aws:ec2/getInstanceType:getInstanceType", "eu-west-1")]


# --- AL2023: the NVIDIA toolkit ignores the env var, through the template's user data -------


def al2023_parts(template: dict) -> list:
    """The user data as cloud-init and nodeadm read it: a MIME multi-part archive."""
    archive = email.message_from_bytes(base64.b64decode(template["userData"], validate=True))
    assert archive.get_content_type() == "multipart/mixed"
    return archive.get_payload()


def test_al2023_nodes_run_a_script_that_turns_the_env_var_off_before_any_pod():
    """EKS merges its NodeConfig into MIME user data (awsdocs amazon-eks-user-guide
    launch-templates.adoc); cloud-init runs text/x-shellscript parts in cloud-final, before
    nodeadm-run starts kubelet (awslabs/amazon-eks-ami nodeadm-run.service)."""
    template = build().one("aws:ec2/launchTemplate:LaunchTemplate")["inputs"]
    (part,) = al2023_parts(template)
    assert part.get_content_type() == "text/x-shellscript"
    script = part.get_payload()
    assert script.startswith("#!/bin/bash\nset -euo pipefail\n")
    # nvidia-ctk config flags: NVIDIA/nvidia-container-toolkit cmd/nvidia-ctk/config/config.go;
    # keys: api/config/v1/config.go.
    assert shlex.split(script.splitlines()[2]) == [
        "nvidia-ctk", "config", "--config-file=/etc/nvidia-container-runtime/config.toml",
        "--in-place",
        "--set", "accept-nvidia-visible-devices-envvar-when-unprivileged=false",
        "--set", "accept-nvidia-visible-devices-as-volume-mounts=true",
    ]


def test_al2023_user_data_fits_ec2():
    """botocore ec2 model, RequestLaunchTemplateData.UserData: base64, limited to 16 KB."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("ec2")
    doc = model.shape_for("RequestLaunchTemplateData").members["UserData"].documentation
    assert "base64-encoded" in doc and "16 KB" in doc
    assert len(al2023.user_data()) < 16 * 1024


def test_al2023_user_data_is_the_same_each_up_so_nodes_roll_only_when_it_changes():
    """A random MIME boundary would be a new template version, and new nodes, every up."""
    mocks = AwsLikeMocks()
    first = update(mocks)
    assert first["version"] == "1"
    assert update(mocks) == first
    assert update(mocks, ami_type=BOTTLEROCKET)["version"] == "2"
    assert update(mocks)["version"] == "3"


# --- Bottlerocket: the host plugin's sharing in the launch template's user data -----------

BOTTLEROCKET = "BOTTLEROCKET_x86_64_NVIDIA"


def host_settings(template: dict) -> dict:
    return tomllib.loads(base64.b64decode(template["userData"]).decode())


def test_bottlerocket_nodes_get_their_sharing_as_user_data_and_labels():
    plan = build(ami_type=BOTTLEROCKET, plugin_config=time_slicing(4, rename_by_default=True))
    template = plan.one("aws:ec2/launchTemplate:LaunchTemplate")["inputs"]
    assert host_settings(template)["settings"]["kubelet-device-plugins"]["nvidia"] == {
        "device-sharing-strategy": "time-slicing",
        "time-slicing": {"replicas": 4, "rename-by-default": True,
                         "fail-requests-greater-than-one": False},
    }
    labels = plan.one("aws:eks/nodeGroup:NodeGroup")["inputs"]["labels"]
    assert labels[conventions.HOST_PLUGIN_RESOURCE_LABEL] == "gpu.shared"
    assert labels[conventions.HOST_PLUGIN_UNITS_LABEL] == "4"


def test_bottlerocket_without_a_config_is_told_whole_gpus_and_al2023_gets_no_sharing():
    template = build(ami_type=BOTTLEROCKET).one("aws:ec2/launchTemplate:LaunchTemplate")
    assert host_settings(template["inputs"])["settings"]["kubelet-device-plugins"] == {
        "nvidia": {"device-sharing-strategy": "none"}}
    plan = build(plugin_config=time_slicing(4))
    user_data = plan.one("aws:ec2/launchTemplate:LaunchTemplate")["inputs"]["userData"]
    assert "time-slicing" not in base64.b64decode(user_data).decode()
    assert conventions.HOST_PLUGIN_UNITS_LABEL not in plan.one(
        "aws:eks/nodeGroup:NodeGroup")["inputs"]["labels"]


def test_a_replicas_change_on_bottlerocket_rolls_the_nodes_onto_a_new_template_version():
    """EKS replaces a group's nodes when its launch template version changes (awsdocs
    amazon-eks-user-guide launch-templates.md: "all nodes in the group are recycled")."""
    mocks = AwsLikeMocks()
    first = update(mocks, ami_type=BOTTLEROCKET, plugin_config=time_slicing(4))
    assert first["version"] == "1"
    assert update(mocks, ami_type=BOTTLEROCKET, plugin_config=time_slicing(4)) == first
    assert update(mocks, ami_type=BOTTLEROCKET, plugin_config=time_slicing(6))["version"] == "2"
    assert update(mocks, ami_type=BOTTLEROCKET, plugin_config=mps(2))["version"] == "3"


def test_a_config_bottlerocket_cannot_say_is_refused_before_anything_exists():
    with pytest.raises(ConfigError) as error:
        GpuNodeGroupArgs(cluster_name="demo", subnet_ids=["a"], ami_type=BOTTLEROCKET,
                         plugin_config=PluginConfig(flags=Flags(mig_strategy="single")),
                         ).validate()
    assert str(error.value).startswith("plugin_config.flags.migStrategy 'single' cannot be set")
    # The same config is fine where our own plugin reads it.
    GpuNodeGroupArgs(cluster_name="demo", subnet_ids=["a"],
                     plugin_config=PluginConfig(flags=Flags(mig_strategy="single"))).validate()
