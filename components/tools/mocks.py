"""Pulumi mocks that answer like AWS and Kubernetes would, for the offline plan and tests.

What AWS would say comes from :mod:`components.catalog` (instance GPUs), from
:data:`G4DN_AZS` (AZ offerings), both checked against EC2's recorded answers in the tests,
from how EC2 numbers launch-template versions, and from how the services name things (ARNs,
IDs, auto-names with a random suffix).
``pulumi_eks.Cluster`` is a remote component under mocks: its children are not expanded,
so we answer the outputs our program reads from it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from typing import Any

import pulumi

from .. import catalog
from ..errors import ConfigError

ACCOUNT = "123456789012"
#: Who runs the plan: a session of a role with a path, as SSO roles have, so that the
#: conversion to the role's ARN (cluster_access.deployer) is exercised.
DEPLOYER_ROLE_PATH = "/aws-reserved/sso.amazonaws.com/"
DEPLOYER_ROLE = "AWSReservedSSO_Admin_0123456789abcdef"
DEPLOYER_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/{DEPLOYER_ROLE}/deployer@example.com"
#: The region the mocks answer for when the stack sets no aws:region.
DEFAULT_REGION = "us-west-2"
#: DescribeSubnets filters the mocks answer (names from botocore's ec2 model).
SUBNET_FILTERS = frozenset({"vpc-id", "default-for-az", "availability-zone"})

#: AZs that offer g4dn, per region: EC2's DescribeInstanceTypeOfferings, which `pulumi up`
#: asks for real. The real regions match moto's recorded offerings (tests/test_mocks.py checks
#: them); no real region offers g4dn in exactly one AZ, so ONE_AZ_REGION is synthetic, there
#: to show what a user gets in such a region.
ONE_AZ_REGION = "synthetic-one-az-1"
G4DN_AZS: dict[str, tuple[str, ...]] = {
    "us-west-2": ("us-west-2a", "us-west-2b", "us-west-2c"),
    "us-east-1": ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1f"),
    "us-west-1": ("us-west-1a", "us-west-1b"),
    "eu-west-1": ("eu-west-1a", "eu-west-1b", "eu-west-1c"),
    "ap-south-2": (),  # three AZs, none with g4dn
    ONE_AZ_REGION: (f"{ONE_AZ_REGION}a",),
}

#: The AZs of the mock account, per region: name -> zone ID, for every region in G4DN_AZS.
#: Names map to IDs differently in each AWS account; the mock account maps them as the
#: account moto recorded did (DescribeAvailabilityZones, and the zone IDs of its
#: instance_type_offerings/availability-zone-id/<region>.json), so the AZs that offer g4dn
#: by name above are the ones that offer it by ID (tests/test_mocks.py checks both). No AZ
#: EKS refuses for clusters (cluster.EKS_UNSUPPORTED_AZ_IDS) offers g4dn: us-east-1e is
#: use1-az3, with none. The synthetic region's IDs are made up in the real format.
ZONE_IDS: dict[str, dict[str, str]] = {
    "us-west-2": {
        "us-west-2a": "usw2-az2",
        "us-west-2b": "usw2-az1",
        "us-west-2c": "usw2-az3",
        "us-west-2d": "usw2-az4",
    },
    "us-east-1": {
        "us-east-1a": "use1-az6",
        "us-east-1b": "use1-az1",
        "us-east-1c": "use1-az2",
        "us-east-1d": "use1-az4",
        "us-east-1e": "use1-az3",
        "us-east-1f": "use1-az5",
    },
    "us-west-1": {"us-west-1a": "usw1-az3", "us-west-1b": "usw1-az1"},
    "eu-west-1": {"eu-west-1a": "euw1-az3", "eu-west-1b": "euw1-az1", "eu-west-1c": "euw1-az2"},
    "ap-south-2": {"ap-south-2a": "aps2-az1", "ap-south-2b": "aps2-az2", "ap-south-2c": "aps2-az3"},
    ONE_AZ_REGION: {
        f"{ONE_AZ_REGION}a": "syn1-az1",
        f"{ONE_AZ_REGION}b": "syn1-az2",
        f"{ONE_AZ_REGION}c": "syn1-az3",
    },
}

#: Launch-template inputs that are not template data: changing them makes no new version.
#: pulumi-aws's update (hashicorp/terraform-provider-aws,
#: internal/service/ec2/ec2_launch_template.go, resourceLaunchTemplateUpdate) calls
#: CreateLaunchTemplateVersion only when one of its `updateKeys` (every data field, the
#: description and tag_specifications) changed; tags, default_version and
#: update_default_version are not among them.
NOT_TEMPLATE_DATA = frozenset({"tags", "tagsAll", "defaultVersion", "updateDefaultVersion"})


def _suffix(*parts: str, length: int = 7) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def default_vpc(region: str) -> str:
    """The ID of the region's default VPC: each region has its own."""
    return f"vpc-{_suffix(region, 'default-vpc', length=17)}"


def kubeconfig(cluster_name: str, region: str) -> dict[str, Any]:
    """The kubeconfig pulumi-eks exports: the endpoint, CA and an `aws eks get-token` exec
    with no profile (generateKubeconfig in pulumi/pulumi-eks nodejs/eks/cluster/cluster.ts)."""
    args = ["--region", region, "eks", "get-token", "--cluster-name", cluster_name]
    args += ["--output", "json"]
    endpoint = f"https://{_suffix(cluster_name, length=32).upper()}.gr7.{region}.eks.amazonaws.com"
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nmock\n-----END CERTIFICATE-----\n")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kubernetes",
                "cluster": {"server": endpoint, "certificate-authority-data": ca.decode()},
            }
        ],
        "contexts": [{"name": "aws", "context": {"cluster": "kubernetes", "user": "aws"}}],
        "current-context": "aws",
        "users": [
            {
                "name": "aws",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": args,
                        "env": [
                            {
                                "name": "KUBERNETES_EXEC_INFO",
                                "value": '{"apiVersion": "client.authentication.k8s.io/v1beta1"}',
                            }
                        ],
                    }
                },
            }
        ],
    }


class AwsLikeMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and data-source calls as the clouds would."""

    def __init__(self, region: str = DEFAULT_REGION) -> None:
        self.region = region
        #: Launch templates by resource name: their data and versions so far. One mocks
        #: object used for two program runs sees the second as an update of the first.
        self.launch_templates: dict[str, list[dict[str, Any]]] = {}
        #: Region of each explicit AWS provider, by ID: a call through one goes to its region.
        self.provider_regions: dict[str, str] = {}
        #: Each data-source call, with the region that answered it.
        self.calls: list[tuple[str, str]] = []

    def _region_of(self, provider: str | None) -> str:
        """The region a request goes to: its provider's ("<urn>::<id>"), else the default."""
        return self.provider_regions.get((provider or "").rpartition("::")[2], self.region)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        name, typ = args.name, args.typ
        region = self._region_of(args.provider)
        rid = f"{name}-{_suffix(typ, name)}"
        if typ == "eks:index:Cluster":
            cluster_name = inputs.get("name") or rid
            config = kubeconfig(cluster_name, region)
            return rid, {
                **inputs,
                "kubeconfig": config,
                "kubeconfigJson": json.dumps(config),
                "clusterSecurityGroupId": f"sg-{_suffix(name, 'cluster', length=17)}",
                "nodeSecurityGroupId": f"sg-{_suffix(name, 'node', length=17)}",
            }
        if typ == "pulumi:providers:aws":
            self.provider_regions[rid] = inputs.get("region") or region
            return rid, inputs
        if typ == "aws:kms/key:Key":
            key_id = (
                f"{_suffix(name, length=8)}-{_suffix(name, 'k', length=4)}-4d2e-9f1a-"
                f"{_suffix(name, 'id', length=12)}"
            )
            return key_id, {**inputs, "keyId": key_id, "arn": _arn("kms", region, f"key/{key_id}")}
        if typ == "aws:iam/role:Role":
            role = inputs.get("name") or rid
            return role, {
                **inputs,
                "name": role,
                "arn": _arn("iam", "", f"role/{role}"),
                "uniqueId": f"AROA{_suffix(role, length=17).upper()}",
            }
        if typ == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
            return f"{inputs['role']}-{rid}", inputs
        if typ == "aws:ec2/launchTemplate:LaunchTemplate":
            lt = f"lt-{_suffix(name, length=17)}"
            latest = self._template_version(name, inputs)
            return lt, {
                **inputs,
                "arn": _arn("ec2", region, f"launch-template/{lt}"),
                "latestVersion": latest,
                "defaultVersion": latest if inputs.get("updateDefaultVersion") else 1,
            }
        if typ == "aws:eks/nodeGroup:NodeGroup":
            group = inputs.get("nodeGroupName") or rid
            uuid = _node_group_uuid(group)
            return f"{inputs['clusterName']}:{group}", {
                **inputs,
                "nodeGroupName": group,
                "arn": _arn("eks", region, f"nodegroup/{inputs['clusterName']}/{group}/{uuid}"),
                "status": "ACTIVE",
                # EKS names the group's Auto Scaling group eks-<node group>-<its UUID>
                # (DescribeNodegroup resources.autoScalingGroups, botocore eks model).
                "resources": [{"autoscalingGroups": [{"name": f"eks-{group}-{uuid}"}]}],
            }
        if typ.startswith("kubernetes:"):
            metadata = dict(inputs.get("metadata") or {})
            metadata.setdefault("name", rid)
            metadata["uid"] = _suffix(typ, name, length=32)
            namespace = metadata.get("namespace")
            return (f"{namespace}/{metadata['name']}" if namespace else metadata["name"]), {
                **inputs,
                "metadata": metadata,
            }
        return rid, inputs

    def _template_version(self, name: str, inputs: dict[str, Any]) -> int:
        """As EC2: a new template is version 1; changed template data is latestVersion + 1."""
        data = {k: v for k, v in inputs.items() if k not in NOT_TEMPLATE_DATA}
        versions = self.launch_templates.setdefault(name, [])
        if not versions or versions[-1] != data:
            versions.append(data)
        return len(versions)

    @staticmethod
    def _known_region(region: str) -> None:
        """Facts about AZs exist here only for some regions; say so rather than guess."""
        if region not in G4DN_AZS:
            raise ConfigError(
                f"the offline plan knows only the regions {', '.join(sorted(G4DN_AZS))}, not "
                f"aws:region {region!r} (a real `pulumi up` asks EC2 about it)"
            )

    def _zones(self, region: str) -> dict[str, Any]:
        """getAvailabilityZones: the region's AZ names and the mock account's zone IDs."""
        self._known_region(region)
        names = sorted(ZONE_IDS[region])
        ids = [ZONE_IDS[region][az] for az in names]
        return {"id": region, "names": names, "zoneIds": ids, "groupNames": [region]}

    @staticmethod
    def _cluster_versions(a: dict[str, Any]) -> dict[str, Any]:
        """DescribeClusterVersions as EKS answered on the calendar's "as of" day: the offline
        plan knows no later answer, and only the versions in standard support, so it refuses
        to answer for others rather than leave them out."""
        status, cluster_type = a.get("versionStatus"), a.get("clusterType")
        if status != "STANDARD_SUPPORT" or a.get("defaultOnly") or a.get("includeAll"):
            raise NotImplementedError(
                "the offline mocks know only the versions in standard support "
                f"(versionStatus STANDARD_SUPPORT), not {a}"
            )
        only = a.get("clusterVersionsOnlies")
        versions = [
            _cluster_version(version)
            for version in catalog.versions_in_standard_support(catalog.CALENDAR_AS_OF)
            if cluster_type in (None, "eks") and (not only or version in only)
        ]
        return {"id": "eks", "clusterVersions": versions, **a}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]]]:
        region = self._region_of(args.provider)
        self.calls.append((args.token, region))
        return self._answer(args.token, dict(args.args), region), []

    def _answer(self, token: str, a: dict[str, Any], region: str) -> dict[str, Any]:
        if token == "aws:index/getRegion:getRegion":
            return {"id": region, "region": region, "name": region}
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return self._zones(region)
        if token == "aws:eks/getClusterVersions:getClusterVersions":
            return self._cluster_versions(a)
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            user_id = f"AROA{_suffix(DEPLOYER_ROLE, length=17).upper()}:deployer@example.com"
            return {"id": ACCOUNT, "accountId": ACCOUNT, "arn": DEPLOYER_SESSION, "userId": user_id}
        if token == "aws:iam/getSessionContext:getSessionContext":
            return _session_context(a["arn"])
        if token == "aws:ec2/getVpc:getVpc":
            if not a.get("default"):
                raise NotImplementedError("the offline mocks know only the default VPC")
            vpc = default_vpc(region)
            return {
                "id": vpc,
                "cidrBlock": "172.31.0.0/16",
                "default": True,
                "arn": _arn("ec2", region, f"vpc/{vpc}"),
            }
        if token == "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings":
            self._known_region(region)
            types = _filter(a, "instance-type")
            offered = all(t in catalog.G4DN for t in types)
            azs = list(G4DN_AZS.get(region, ())) if offered else []
            # Without a location type EC2 lists the offerings in the Region (botocore's ec2
            # model, DescribeInstanceTypeOfferings: "If no location is specified, the
            # default is to list the instance types that are offered in the current Region").
            location_type = a.get("locationType") or "region"
            if location_type == "region":
                azs = [region] if azs else []
            elif location_type != "availability-zone":
                raise NotImplementedError(f"the offline mocks have no {location_type} offerings")
            return {
                "id": region,
                "locations": azs,
                "locationTypes": [location_type] * len(azs),
                "instanceTypes": [types[0]] * len(azs),
            }
        if token == "aws:ec2/getSubnets:getSubnets":
            # The region's default VPC has one default subnet per AZ, and nothing else.
            names = {f["name"] for f in a.get("filters") or []}
            if not names <= SUBNET_FILTERS:
                raise NotImplementedError(f"the offline mocks have no subnet filters {names}")
            vpc = default_vpc(region)
            azs = [
                az
                for az in _filter(a, "availability-zone")
                if az in ZONE_IDS.get(region, {})
                and _filter(a, "vpc-id") in ([], [vpc])
                and _filter(a, "default-for-az") in ([], ["true"])
            ]
            return {"id": region, "ids": [f"subnet-{_suffix(vpc, az, length=17)}" for az in azs]}
        if token == "aws:ec2/getInstanceType:getInstanceType":
            known = catalog.G4DN.get(a["instanceType"])
            gpus = (
                [
                    {
                        "count": known.gpus,
                        "manufacturer": "NVIDIA",
                        "name": known.gpu_model,
                        "memorySize": known.gpu_memory_mib,
                    }
                ]
                if known
                else []
            )
            return {
                "id": a["instanceType"],
                "instanceType": a["instanceType"],
                "gpuses": gpus,
                "defaultVcpus": known.vcpus if known else 2,
                "memorySize": known.memory_mib if known else 4096,
            }
        raise NotImplementedError(f"the offline mocks have no answer for {token}")


def _node_group_uuid(group: str) -> str:
    """The UUID EKS gives a node group, in its format (8-4-4-4-12 hex digits)."""
    digits = _suffix(group, "uuid", length=32)
    return "-".join(digits[a:b] for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32)))


def _cluster_version(version: str) -> dict[str, Any]:
    """One ClusterVersionInformation (botocore's eks model) with the fields of pulumi-aws's
    GetClusterVersionsClusterVersionResult that the catalog gives: EKS releases a version
    14 months before its standard support ends, and extended support ends 12 months after
    (awsdocs/amazon-eks-user-guide, latest/ug/versioning/kubernetes-versions.adoc). The
    default version, platform version and patch version are EKS's to say: left out."""
    ends = catalog.EKS_STANDARD_SUPPORT_ENDS[version]
    return {
        "clusterType": "eks",
        "clusterVersion": version,
        "releaseDate": _months_after(ends, -14).isoformat(),
        "endOfStandardSupportDate": ends.isoformat(),
        "endOfExtendedSupportDate": _months_after(ends, 12).isoformat(),
        "versionStatus": "STANDARD_SUPPORT",
    }


def _session_context(arn: str) -> dict[str, Any]:
    """As pulumi-aws's aws.iam.getSessionContext (its docs: "For non-role ARNs, this data
    source simply passes the ARN through in issuerArn"): an assumed-role ARN becomes its
    role's, with the path IAM GetRole gives (the session ARN has none:
    hashicorp/terraform-provider-aws#19957)."""
    found = re.fullmatch(r"arn:([^:]+):sts::(\d{12}):assumed-role/([^/]+)/(.+)", arn)
    if not found:
        return {"id": arn, "arn": arn, "issuerArn": arn, "issuerId": "", "issuerName": ""}
    partition, account, role, session = found.groups()
    if (account, role) != (ACCOUNT, DEPLOYER_ROLE):
        raise NotImplementedError(f"the offline mocks know only the deployer's role, not {arn}")
    return {
        "id": arn,
        "arn": arn,
        "issuerArn": f"arn:{partition}:iam::{account}:role{DEPLOYER_ROLE_PATH}{role}",
        "issuerId": f"AROA{_suffix(role, length=17).upper()}",
        "issuerName": role,
        "sessionName": session,
    }


def _months_after(day: dt.date, months: int) -> dt.date:
    month = day.year * 12 + day.month - 1 + months
    return day.replace(year=month // 12, month=month % 12 + 1)


def _arn(service: str, region: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


def _filter(args: dict, name: str) -> list[str]:
    for f in args.get("filters") or []:
        if f["name"] == name:
            return list(f["values"])
    return []
