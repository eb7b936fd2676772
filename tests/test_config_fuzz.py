"""Fuzzed stack config: every value is either accepted or rejected with a ConfigError that
names the key the user set, and every accepted config builds.

A person can type anything into ``pulumi config set``; what comes back must be a message
naming the key, never a traceback from deep inside a component. Accepted configs are judged
against slices counted here, from EC2's GPU counts (moto's recorded DescribeInstanceTypes),
not from the validator's own ``max_slices``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import subprocess
import sys
from typing import Any

import boto3
import pulumi
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from components import ConfigError, GpuSharing, GpuSharingArgs, args_from_config, catalog
from components.config import KEYS, NAMESPACE, SHARING_STRATEGIES
from components.tools import mocks
from components.tools.mocks import AwsLikeMocks
from components.tools.plan import config_error, kubernetes_objects, record
from tests.conftest import ROOT, examples

TODAY = dt.date(2026, 11, 22)

# Under mutmut each mutant must meet the same examples, or its verdict is a coin toss, and
# a failing example needs no shrinking: a kill is a kill.
settings.register_profile("mutmut", derandomize=True, phases=[Phase.explicit, Phase.generate])
if os.environ.get("MUTANT_UNDER_TEST"):
    settings.load_profile("mutmut")

#: The role the mocks say runs `pulumi up` (an SSO role, with its path).
DEPLOYER = f"arn:aws:iam::{mocks.ACCOUNT}:role{mocks.DEPLOYER_ROLE_PATH}{mocks.DEPLOYER_ROLE}"

SIZES = ["0", "1", "2", "3", "100", "101", "-1", "1e3", "true", ""]
#: Per key, values a person might mean, so fuzzing gets past the first check of each key.
PLAUSIBLE: dict[str, list[str]] = {
    "kubernetesVersion": ["1.34", "1.35", "1.29", "1.36", "v1.35", " 1.35 "],
    "gpuInstanceType": ["g4dn.xlarge", "g4dn.12xlarge", "g4dn.metal", "p4d.24xlarge", "m5.large"],
    "gpuAmiType": [
        "AL2023_x86_64_NVIDIA",
        "BOTTLEROCKET_x86_64_NVIDIA",
        "AL2_x86_64_GPU",
        "CUSTOM",
    ],
    "gpuCapacityType": ["ON_DEMAND", "SPOT", "spot", " "],
    "gpuNodeDesired": SIZES,
    "gpuNodeMin": SIZES,
    "gpuNodeMax": SIZES,
    "timeSlicingReplicas": ["1", "2", "5", "48", "0", "4294967296"],
    "verificationPods": ["0", "1", "3", "5", "48", "1000", "1001"],
    "verificationMode": ["nvidia-smi", "measure", "bench"],
    "devicePluginVersion": ["v0.17.0", "v0.20.0", "v0.19.3", "v0.16.2", "latest", "0.20.0"],
    "publicAccessCidrs": [
        '["203.0.113.7/32"]',
        '["203.0.113.7/32"]',
        '["0.0.0.0/0"]',
        '["10.0.0.0/33"]',
        "[]",
        '"0.0.0.0/0"',
        '["::/0"]',
    ],
    "allowPublicAccessFromAnywhere": ["false", "true", "yes"],
    "endpointPublicAccess": ["true", "false", "off"],
    "clusterAdmins": [
        '["arn:aws:iam::123456789012:role/admin"]',
        json.dumps(["arn:aws:iam::123456789012:role/admin", DEPLOYER]),
        '["arn:aws:sts::123456789012:assumed-role/admin/me"]',
        "[]",
    ],
    "kmsKeyAdmins": [
        '["arn:aws:iam::123456789012:root"]',
        '["arn:aws:iam::123456789012:user/bob", "arn:aws:iam::123456789012:user/bob"]',
    ],
    "clusterAutoscaler": ["true", "false", "yes"],
}


@functools.cache
def ec2_gpus() -> dict[str, int]:
    """GPUs per g4dn size as EC2 answers DescribeInstanceTypes (moto's recorded data)."""
    with mock_aws():
        pages = (
            boto3.client("ec2", region_name="us-west-2")
            .get_paginator("describe_instance_types")
            .paginate(Filters=[{"Name": "instance-type", "Values": ["g4dn.*"]}])
        )
        return {
            t["InstanceType"]: sum(g["Count"] for g in t["GpuInfo"]["Gpus"])
            for page in pages
            for t in page["InstanceTypes"]
        }


def units_per_gpu(group: dict[str, Any]) -> int:
    """What a node's device plugin advertises per GPU, ours or (on Bottlerocket) the host's
    told by its user data: replicas when shared, else 1."""
    sharing = group["sharing"]
    if sharing["strategy"] == "none":
        return 1
    return sharing["replicas"]


def autoscaled(groups: list[dict[str, Any]], autoscaler: bool = True) -> bool:
    """The Cluster Autoscaler runs when it is on and some group can change size."""
    return autoscaler and any(g.get("min", 1) < g.get("max", 1) for g in groups)


def renamed(group: dict[str, Any]) -> bool:
    """Advertises a renamed resource, by our plugin or (told by its user data) the host's."""
    return resource_asked(group["sharing"]) != "nvidia.com/gpu"


def slices(groups: list[dict[str, Any]], autoscaler: bool = True) -> int:
    """Units the verification pods can get: the first group's, on the most nodes it can have
    (max with the autoscaler, else desired: nothing else scales a group)."""
    first = groups[0]
    instance = first.get("instanceType", "g4dn.xlarge")
    nodes = first.get("max", 1) if autoscaled(groups, autoscaler) else first.get("desired", 1)
    return nodes * ec2_gpus()[instance] * units_per_gpu(first)


def plausible(key: str) -> list[str]:
    """A key added since this table was written is tried with its documented default."""
    default = KEYS[key][1]
    return PLAUSIBLE.get(key, [default if isinstance(default, str) else json.dumps(default)])


# --- Valid node groups, and near-valid ones with exactly one field broken ----------------

group_names = st.from_regex(r"[a-z][a-z0-9-]{0,14}[a-z0-9]", fullmatch=True) | st.sampled_from(
    ["gpu", "default", "A.b_c", "x"]
)
valid_sharing = st.one_of(
    st.just({"strategy": "none"}),
    st.builds(
        lambda r, rename: (
            {"strategy": "time-slicing", "replicas": r}
            | ({"renameByDefault": rename} if rename is not None and (r > 1 or not rename) else {})
        ),
        st.integers(1, 64),
        st.none() | st.booleans(),
    ),
    st.integers(2, 48).map(lambda r: {"strategy": "mps", "replicas": r}),
)


@st.composite
def valid_group(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.integers(0, 4))
    high = draw(st.integers(max(low, 1), 6))
    group: dict[str, Any] = {"name": draw(group_names), "sharing": draw(valid_sharing)}
    optional = {
        "instanceType": st.sampled_from(sorted(catalog.G4DN)),
        "amiType": st.sampled_from(catalog.NVIDIA_AMI_TYPES),
        "capacityType": st.sampled_from(catalog.CAPACITY_TYPES),
    }
    for field, values in optional.items():
        if draw(st.booleans()):
            group[field] = draw(values)
    if draw(st.booleans()):
        group |= {"min": low, "desired": draw(st.integers(low, high)), "max": high}
    return group


valid_groups = st.lists(valid_group(), min_size=1, max_size=3, unique_by=lambda g: g["name"])

#: One field of one group set to a value the user may type and we must refuse, with the
#: key the message must name (``{i}`` is the group's index).
BREAKS: list[tuple[str, Any, str]] = [
    *[("instanceType", v, "instanceType") for v in ("m5.large", "p4d.24xlarge", 7, None)],
    *[("amiType", v, "amiType") for v in ("CUSTOM", "AL2_x86_64_GPU", "")],
    *[("capacityType", v, "capacityType") for v in ("spot", "RESERVED", None)],
    *[("min", v, "min") for v in (-1, 101, True, "1")],
    *[("max", v, "max") for v in (0, 101, 1.5)],
    *[("desired", v, "desired") for v in (-1, 101, None)],
    *[("name", v, "name") for v in ("Bad Name", "-x", "x" * 64)],
    ("name", 5, ""),
    ("sharing", None, "sharing"),
    ("sharing", {"strategy": "MPS", "replicas": 2}, "sharing"),
    ("sharing", {"replicas": 2}, "sharing"),
    ("sharing", {"strategy": "time-slicing", "replicas": 0}, "sharing"),
    ("sharing", {"strategy": "time-slicing", "replicas": "2"}, "sharing"),
    ("sharing", {"strategy": "time-slicing", "replicas": True}, "sharing"),
    ("sharing", {"strategy": "time-slicing", "replica": 2}, "sharing"),
    ("sharing", {"strategy": "time-slicing", "replicas": 2, "slices": 4}, "sharing"),
    ("sharing", {"strategy": "mps", "replicas": 2, "renamebydefault": True}, "sharing"),
    ("sharing", {"strategy": "time-slicing", "replicas": 1, "renameByDefault": True}, "sharing"),
    ("sharing", {"strategy": "time-slicing", "replicas": 2, "renameByDefault": "yes"}, "sharing"),
    ("sharing", {"strategy": "mps", "replicas": 4, "renameByDefault": False}, "sharing"),
    ("sharing", {"strategy": "none", "replicas": 4}, "sharing"),
    ("instances", 2, ""),  # an unknown field
]


def names_the_key(message: str, i: int, named: str) -> bool:
    """The message names what the user set: ``nodeGroups[i]`` or one of its fields."""
    return (f"nodeGroups[{i}].{named}" if named else f"nodeGroups[{i}]") in message


def config_of(groups: list[dict[str, Any]], pods: int | None) -> dict[str, str]:
    values = {
        f"{NAMESPACE}:nodeGroups": json.dumps(groups),
        f"{NAMESPACE}:publicAccessCidrs": '["203.0.113.7/32"]',
    }
    if pods is not None:
        values[f"{NAMESPACE}:verificationPods"] = str(pods)
    return values


def built(args: GpuSharingArgs) -> tuple[dict[str, int], list[dict[str, Any]], Any]:
    """The stack under the mocks: slices per node of each group, its objects, its plan."""

    def program() -> None:
        pulumi.export("slices", GpuSharing("fuzz", args).gpu_slices_per_node)

    plan = record(program, "fuzz", {"aws:region": "us-west-2"})
    return plan.outputs["slices"], kubernetes_objects(plan), plan


@settings(
    max_examples=examples(40),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(valid_groups, st.none() | st.integers(0, 40))
def test_valid_node_groups_are_accepted_exactly_when_the_pods_fit_and_they_build(groups, pods):
    values = config_of(groups, pods)
    wanted = 5 if pods is None else pods
    if autoscaled(groups) and any(renamed(g) for g in groups):
        event("refused: renamed resource with the autoscaler")
        with pytest.raises(ConfigError, match=r"advertises nvidia.com/gpu.shared .*#8095"):
            args_from_config(values, "fuzz", today=TODAY)
        return
    if wanted > slices(groups):
        event("refused: more pods than slices")
        with pytest.raises(ConfigError, match=f"verificationPods {wanted} is more than"):
            args_from_config(values, "fuzz", today=TODAY)
        return
    event("accepted and built")
    args = args_from_config(values, "fuzz", today=TODAY)
    per_node, objects, plan = built(args)
    assert per_node == {
        g["name"]: ec2_gpus()[g.get("instanceType", "g4dn.xlarge")] * units_per_gpu(g)
        for g in groups
    }
    node_groups = {
        r["name"]: r["inputs"]
        for r in plan.by_type("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")
    }
    assert sorted(node_groups) == sorted(f"fuzz-{g['name']}-ng" for g in groups)
    for group in groups:
        inputs = node_groups[f"fuzz-{group['name']}-ng"]
        assert inputs["scalingConfig"]["maxSize"] == group.get("max", 1)
        assert inputs["instanceTypes"] == [group.get("instanceType", "g4dn.xlarge")]
    deployments = [o for o in objects if o["kind"] == "Deployment"
                   and o["metadata"]["name"] == "gpu-sharing-verification"]
    assert [d["spec"]["replicas"] for d in deployments] == ([wanted] if wanted else [])
    autoscalers = [o for o in objects if o["metadata"]["name"] == "cluster-autoscaler"
                   and o["kind"] == "Deployment"]
    assert len(autoscalers) == autoscaled(groups)
    for deployment in deployments:
        limits = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits[resource_asked(groups[0]["sharing"])] == "1"


def resource_asked(sharing: dict[str, Any]) -> str:
    """renameByDefault advertises ``<resource>.shared`` (NVIDIA/k8s-device-plugin,
    api/config/v1/replicas.go, DefaultSharedRename); only time-slicing sets it here."""
    renamed = sharing.get("renameByDefault") and sharing["replicas"] > 1
    return "nvidia.com/gpu.shared" if renamed else "nvidia.com/gpu"


@pytest.mark.parametrize(("field", "value", "named"), BREAKS)
@settings(max_examples=examples(10), deadline=None, database=None)
@given(groups=valid_groups, data=st.data())
def test_one_broken_field_is_refused_naming_it(field, value, named, groups, data):
    i = data.draw(st.integers(0, len(groups) - 1), label="group")
    groups[i] = {**groups[i], field: value}
    with pytest.raises(ConfigError) as error:
        args_from_config(config_of(groups, 1), "fuzz", today=TODAY)
    assert names_the_key(str(error.value), i, named), str(error.value)


def test_one_time_sliced_replica_is_a_whole_gpu():
    groups = [{"name": "a", "sharing": {"strategy": "time-slicing", "replicas": 1}}]
    args = args_from_config(config_of(groups, 1), "fuzz", today=TODAY)
    assert args.plugin_configs["a"].strategy == "none"


def test_a_bad_strategy_lists_the_strategies():
    groups = [{"name": "a", "sharing": {"strategy": "MPS", "replicas": 2}}]
    with pytest.raises(ConfigError) as error:
        args_from_config(config_of(groups, 1), "fuzz", today=TODAY)
    assert str(error.value).endswith(".sharing.strategy 'MPS'; use one of time-slicing, mps, none")


def test_rename_needs_two_replicas_and_says_so():
    sharing = {"strategy": "time-slicing", "replicas": 1, "renameByDefault": True}
    groups = [{"name": "a", "sharing": sharing}]
    with pytest.raises(ConfigError) as error:
        args_from_config(config_of(groups, 1), "fuzz", today=TODAY)
    assert str(error.value).endswith("nodeGroups[0].sharing: renameByDefault needs replicas >= 2")


def test_a_name_used_twice_is_refused_naming_the_second():
    groups = [{"name": "a", "sharing": {"strategy": "none"}}] * 2
    with pytest.raises(ConfigError, match=r"nodeGroups\[1\]\.name 'a' is used twice"):
        args_from_config(config_of(groups, 1), "fuzz", today=TODAY)


# --- Anything at all ---------------------------------------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
sharing = st.fixed_dictionaries(
    {"strategy": st.sampled_from([*SHARING_STRATEGIES, "MPS", 3])},
    optional={"replicas": st.integers(-2, 10**9) | json_leaves, "renameByDefault": json_leaves},
)
node_group = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["gpu", "a", "b", "default", "Bad Name", ""]) | json_leaves,
        "sharing": sharing | json_values,
        "instanceType": st.sampled_from(PLAUSIBLE["gpuInstanceType"]) | json_leaves,
        "amiType": st.sampled_from(PLAUSIBLE["gpuAmiType"]) | json_leaves,
        "capacityType": st.sampled_from(PLAUSIBLE["gpuCapacityType"]) | json_leaves,
        **{size: st.integers(-1, 101) | json_leaves for size in ("desired", "min", "max")},
    },
)
anything = st.text(max_size=30) | st.integers().map(str) | json_values.map(json.dumps)
#: Pulumi hands a program strings; a few non-strings check the guard against them.
not_strings = st.sampled_from([None, 5, ["a"]])


def value_for(key: str) -> st.SearchStrategy[Any]:
    """Mostly values shaped for ``key``, so fuzzing gets past its first check, else anything."""
    shaped = (
        (valid_groups | st.lists(node_group, min_size=1, max_size=3)).map(json.dumps)
        if key == "nodeGroups"
        else st.sampled_from(plausible(key))
    )
    return st.one_of(shaped, shaped, shaped, shaped, anything)


junk = st.dictionaries(
    st.text(max_size=15).map(lambda k: f"{NAMESPACE}:{k}")
    | st.sampled_from(["aws:region", "eks-gpu-sharing", "kubernetes:context", ""]),
    anything | not_strings,
    max_size=2,
)
ours = st.lists(st.sampled_from(sorted(KEYS)), unique=True, max_size=5).flatmap(
    lambda keys: st.fixed_dictionaries({f"{NAMESPACE}:{k}": value_for(k) for k in keys})
)
configs = st.builds(lambda a, b: {**a, **b}, ours, st.one_of(*[st.just({})] * 4, junk))


@functools.cache
def eks_versions() -> list[str]:
    """The versions EKS lists in standard support, as the offline plan's EKS answers."""
    answer = AwsLikeMocks()._answer(
        "aws:eks/getClusterVersions:getClusterVersions",
        {"versionStatus": "STANDARD_SUPPORT"},
        "us-west-2",
    )
    return [v["clusterVersion"] for v in answer["clusterVersions"]]


def expected_slices(values: dict[str, Any]) -> int:
    """Slices for the verification pods, counted from the raw config and EC2's GPU counts."""
    raw = {k.partition(":")[2]: v for k, v in values.items() if k.startswith(f"{NAMESPACE}:")}
    autoscaler = raw.get("clusterAutoscaler", "true") == "true"
    if "nodeGroups" in raw:
        return slices(json.loads(raw["nodeGroups"]), autoscaler)
    replicas = int(raw.get("timeSlicingReplicas", "5"))
    group = {
        "instanceType": raw.get("gpuInstanceType", "g4dn.xlarge").strip(),
        "amiType": raw.get("gpuAmiType", "AL2023_x86_64_NVIDIA").strip(),
        **{size: int(raw.get(f"gpuNode{size.title()}", "1")) for size in ("desired", "min", "max")},
        "sharing": {"strategy": "time-slicing", "replicas": replicas},
    }
    return slices([group], autoscaler)


@settings(max_examples=examples(1000), deadline=None, database=None)
@given(configs)
def test_config_is_accepted_or_rejected_with_a_config_error(values):
    try:
        args = args_from_config(values, "fuzz", today=TODAY)
    except ConfigError as e:
        assert str(e)
        event("refused")
        return
    event("accepted")
    assert isinstance(args, GpuSharingArgs)
    if args.verification_pods:
        assert args.verification_pods <= expected_slices(values)
    version = args.cluster.kubernetes_version
    if version is not None and version not in eks_versions():
        # Newer than the calendar knows, so left to EKS's own list when the program runs
        # (components/kubernetes_versions.py): refused there, naming the key.
        event("refused by EKS's list")
        with pytest.raises(Exception) as error:
            built(args)
        assert str(config_error(error.value)).startswith(f"kubernetesVersion {version!r}")
        return
    admins = args.cluster.cluster_admins
    if admins is not None and DEPLOYER not in admins:
        # Who runs `pulumi up` is known only then (components/cluster_access.py,
        # deployer_among): refused there, naming the key.
        event("refused: clusterAdmins leaves out the deployer")
        with pytest.raises(Exception) as error:
            built(args)
        assert str(config_error(error.value)).startswith(
            f"clusterAdmins {list(admins)} leaves out {DEPLOYER}"
        )
        return
    objects = built(args)[1]
    pods = [o for o in objects if o["kind"] == "Deployment"
            and o["metadata"]["name"] == "gpu-sharing-verification"]
    assert [o["spec"]["replicas"] for o in pods] == (
        [args.verification_pods] if args.verification_pods else []
    )


argv_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=20,
)


@settings(max_examples=examples(12), deadline=None, database=None)
@given(
    st.sampled_from(sorted(KEYS)),
    st.sampled_from(sorted({v for values in PLAUSIBLE.values() for v in values}))
    | argv_text
    | st.lists(node_group, max_size=2).map(json.dumps),
)
def test_plan_cli_reports_bad_config_without_a_traceback(key, value):
    result = subprocess.run(
        [sys.executable, "-m", "components", "plan", f"--config={key}={value}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert "Traceback (most recent call last)" not in output, output
    assert result.returncode in (0, 1), output
    if result.returncode == 1:
        assert result.stderr.startswith("python -m components plan: error: "), output


def test_an_unknown_group_field_lists_the_fields():
    groups = [{"name": "a", "sharing": {"strategy": "none"}, "size": 2}]
    with pytest.raises(ConfigError) as error:
        args_from_config(config_of(groups, 1), "fuzz", today=TODAY)
    assert str(error.value).endswith(
        "nodeGroups[0] has unknown fields ['size']; use name, sharing, instanceType, amiType, "
        "capacityType, desired, min, max"
    )


def test_an_unknown_key_of_ours_is_refused_listing_the_keys():
    for key in ("gpuNodeMaxx", "gpuNodeMax:x"):  # a second colon stays part of our key
        with pytest.raises(ConfigError) as error:
            args_from_config({f"{NAMESPACE}:{key}": "2"}, "fuzz", today=TODAY)
        message = str(error.value)
        assert message.startswith(f"unknown config key '{NAMESPACE}:{key}'")
        assert message.endswith(f"the keys are {', '.join(sorted(KEYS))}")
