"""Several GPU node groups, each with its own sharing, from the second example stack."""

from __future__ import annotations

import base64
import datetime as dt

import kubernetes_validate
import pytest
import tomllib
import yaml

from components import ConfigError, al2023, args_from_config, conventions
from components.tools.plan import kubernetes_objects
from tests.conftest import cluster_args, plan_scope, run_stack


@pytest.fixture(scope=plan_scope)
def multi_plan():
    return run_stack("multi")


def labels_by_group(plan):
    return {
        r["name"].removeprefix("gpu-sharing-").removesuffix("-ng"): r["inputs"]["labels"]
        for r in plan.by_type("aws:eks/nodeGroup:NodeGroup", under="GpuNodeGroup")
    }


def test_one_configmap_with_a_key_per_group_and_a_default(multi_plan):
    (config_map,) = [
        o
        for o in kubernetes_objects(multi_plan)
        if o["metadata"]["name"] == conventions.PLUGIN_CONFIGMAP_NAME
    ]
    configs = {k: yaml.safe_load(v) for k, v in config_map["data"].items()}
    assert set(configs) == {"timesliced", "mps", "exclusive", "default"}
    assert "timeSlicing" in configs["timesliced"]["sharing"]
    assert "mps" in configs["mps"]["sharing"]
    assert "sharing" not in configs["exclusive"] or not configs["exclusive"]["sharing"]
    assert configs["default"] == configs["exclusive"]  # unlabelled nodes get whole GPUs


def test_each_group_is_labelled_with_its_config_key(multi_plan):
    labels = labels_by_group(multi_plan)
    assert set(labels) == {"timesliced", "bottlerocket", "mps", "exclusive"}
    for group, group_labels in labels.items():
        assert group_labels[conventions.PLUGIN_CONFIG_NODE_LABEL] == group
        mps_capable = group_labels.get(conventions.MPS_CAPABLE_NODE_LABEL)
        assert mps_capable == ("true" if group == "mps" else None)


def test_mps_control_daemon_runs_only_where_mps_is_configured(multi_plan):
    daemonsets = {
        o["metadata"]["name"]: o for o in kubernetes_objects(multi_plan) if o["kind"] == "DaemonSet"
    }
    mps = daemonsets["nvidia-device-plugin-mps-control-daemon"]
    assert mps["spec"]["template"]["spec"]["nodeSelector"] == {
        conventions.MPS_CAPABLE_NODE_LABEL: "true"
    }
    demo = run_stack("dev")
    assert [
        o["metadata"]["name"] for o in kubernetes_objects(demo) if o["kind"] == "DaemonSet"
    ] == ["nvidia-device-plugin"]


def test_verification_pods_target_the_first_group(multi_plan):
    (deployment,) = [o for o in kubernetes_objects(multi_plan) if o["kind"] == "Deployment"
                     and o["metadata"]["name"] == conventions.VERIFICATION_APP]
    selector = deployment["spec"]["template"]["spec"]["nodeSelector"]
    assert selector[conventions.PLUGIN_CONFIG_NODE_LABEL] == "timesliced"


def test_outputs_per_group(multi_plan):
    assert multi_plan.outputs["gpuSlicesPerNodeByGroup"] == {
        "timesliced": 5, "bottlerocket": 5, "mps": 2, "exclusive": 1}


def test_the_al2023_and_bottlerocket_groups_advertise_the_same_slices_two_ways(multi_plan):
    """One sharing model, two deliveries: a ConfigMap key for AL2023, user data for
    Bottlerocket; the ConfigMap carries no key for the Bottlerocket group."""
    (config_map,) = [o for o in kubernetes_objects(multi_plan)
                     if o["metadata"]["name"] == conventions.PLUGIN_CONFIGMAP_NAME]
    served = yaml.safe_load(config_map["data"]["timesliced"])["sharing"]["timeSlicing"]
    assert "bottlerocket" not in config_map["data"]
    templates = {r["name"]: r["inputs"] for r in multi_plan.by_type(
        "aws:ec2/launchTemplate:LaunchTemplate")}
    host = tomllib.loads(base64.b64decode(templates["gpu-sharing-bottlerocket-lt"]["userData"])
                         .decode())["settings"]["kubelet-device-plugins"]["nvidia"]
    assert host["device-sharing-strategy"] == "time-slicing"
    assert host["time-slicing"]["replicas"] == served["resources"][0]["replicas"] == 5
    assert host["time-slicing"]["rename-by-default"] is served.get("renameByDefault", False)
    assert templates["gpu-sharing-timesliced-lt"]["userData"] == al2023.user_data()
    assert not [w for w in multi_plan.warnings if "Bottlerocket" in w]


def test_every_object_is_schema_valid(multi_plan):
    for obj in kubernetes_objects(multi_plan):
        kubernetes_validate.validate(obj, "1.35.0", strict=True)


BAD = [
    ("[]", "non-empty list"),
    ('[{"sharing": {"strategy": "none"}}]', "nodeGroups[0] must be a map with a name"),
    (
        '[{"name": "a", "sharing": {"strategy": "none"}}, {"name": "a", "sharing": '
        '{"strategy": "none"}}]',
        "nodeGroups[1].name 'a' is used twice",
    ),
    ('[{"name": "a", "sharing": {"strategy": "vgpu"}}]', "nodeGroups[0].sharing.strategy"),
    (
        '[{"name": "a", "sharing": {"strategy": "mps", "replicas": 0}}]',
        "nodeGroups[0].sharing.replicas must be an integer >= 1",
    ),
    ('[{"name": "a", "sharing": {"strategy": "none", "replicas": 2}}]', "strategy none"),
    ('[{"name": "a", "size": 3, "sharing": {"strategy": "none"}}]', "unknown fields ['size']"),
    ('[{"name": "a"}]', "nodeGroups[0].sharing must be a map"),
    (
        '[{"name": "a", "instanceType": "m5.large", "sharing": {"strategy": "none"}}]',
        "nodeGroups[0].instanceType 'm5.large'",
    ),
]


@pytest.mark.parametrize(("raw", "message"), BAD)
def test_bad_node_groups_are_rejected(raw, message):
    with pytest.raises(ConfigError) as error:
        args_from_config({"eks-gpu-sharing:nodeGroups": raw}, "x", today=dt.date(2026, 11, 22))
    assert message in str(error.value)


def test_node_groups_and_single_group_keys_do_not_mix():
    with pytest.raises(ConfigError) as error:
        args_from_config(
            {
                "eks-gpu-sharing:nodeGroups": '[{"name": "a", "sharing": {"strategy": "none"}}]',
                "eks-gpu-sharing:gpuNodeMax": "2",
                "eks-gpu-sharing:gpuNodeMin": "0",
            },
            "x",
            today=dt.date(2026, 11, 22),
        )
    assert str(error.value) == (
        "eks-gpu-sharing:nodeGroups replaces gpuNodeMin, gpuNodeMax; set those per group"
    )


# --- Bottlerocket groups: the host's plugin, never ours, sharing as the config says -------


def selects(pod_spec: dict, node_labels: dict[str, str]) -> bool:
    """Whether the scheduler may place the pod on a node with these labels (taints aside).

    nodeSelector must match exactly; the required node affinity's terms are ORed and each
    term's expressions ANDed; NotIn matches a node without the label
    (kubernetes/kubernetes staging/src/k8s.io/apimachinery/pkg/labels/selector.go,
    Requirement.Matches; k8s.io/component-helpers/scheduling/corev1/nodeaffinity).
    """
    if any(node_labels.get(k) != v for k, v in pod_spec.get("nodeSelector", {}).items()):
        return False
    required = (
        pod_spec.get("affinity", {})
        .get("nodeAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution")
    )
    if required is None:
        return True

    def matches(expression: dict) -> bool:
        key, op, values = expression["key"], expression["operator"], expression.get("values", [])
        if op == "In":
            return key in node_labels and node_labels[key] in values
        if op == "NotIn":
            return key not in node_labels or node_labels[key] not in values
        if op == "Exists":
            return key in node_labels
        assert op == "DoesNotExist", op
        return key not in node_labels

    return any(
        all(matches(e) for e in term.get("matchExpressions", []))
        for term in required["nodeSelectorTerms"]
    )


@pytest.fixture(scope="module")
def mixed_plan():
    """One AL2023 and one Bottlerocket group, both asking for MPS."""
    import pulumi

    from components import GpuNodeGroupArgs, GpuSharing, GpuSharingArgs, mps, unshared
    from tests.conftest import run_program

    def program():
        gpu = GpuSharing("g", GpuSharingArgs(
            cluster=cluster_args(),
            node_groups={
                "al": GpuNodeGroupArgs(plugin_config_key="shared"),
                "br": GpuNodeGroupArgs(ami_type="BOTTLEROCKET_x86_64_NVIDIA",
                                       plugin_config_key="shared"),
            },
            plugin_configs={"default": unshared(), "shared": mps(2)},
            verification_config_key="shared",
            verification_pods=4,
        ))
        pulumi.export("slices", gpu.gpu_slices_per_node)

    return run_program(program)


def test_our_daemonsets_never_land_beside_the_bottlerocket_host_plugin(mixed_plan):
    labels = {
        r["name"]: r["inputs"]["labels"] for r in mixed_plan.by_type("aws:eks/nodeGroup:NodeGroup")
    }
    al, br = labels["g-al-ng"], labels["g-br-ng"]
    assert al[conventions.AMI_TYPE_NODE_LABEL] == "AL2023_x86_64_NVIDIA"
    assert br[conventions.AMI_TYPE_NODE_LABEL] == "BOTTLEROCKET_x86_64_NVIDIA"
    specs = {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]
        for o in kubernetes_objects(mixed_plan)
        if o["kind"] == "DaemonSet"
    }
    plugin, daemon = specs["nvidia-device-plugin"], specs["nvidia-device-plugin-mps-control-daemon"]
    assert selects(plugin, al) and selects(daemon, al)
    assert not selects(plugin, br) and not selects(daemon, br)
    # A GPU node added outside this stack, without our label, still gets the plugin.
    assert selects(plugin, {conventions.GPU_NODE_LABEL: conventions.GPU_NODE_LABEL_VALUE})
    # Nor is our MPS label put on Bottlerocket nodes: their host runs its own MPS daemon.
    assert conventions.MPS_CAPABLE_NODE_LABEL not in br


def test_bottlerocket_nodes_share_as_their_config_says_with_no_warning(mixed_plan):
    assert mixed_plan.outputs["slices"] == {"al": 2, "br": 2}
    assert not [w for w in mixed_plan.warnings if "Bottlerocket" in w]
    templates = {r["name"]: r["inputs"] for r in mixed_plan.by_type(
        "aws:ec2/launchTemplate:LaunchTemplate")}
    assert templates["g-al-lt"]["userData"] == al2023.user_data()
    assert tomllib.loads(base64.b64decode(templates["g-br-lt"]["userData"]).decode()) == {
        "settings": {"kubelet-device-plugins": {"nvidia": {
            "device-sharing-strategy": "mps",
            "mps": {"replicas": 2, "rename-by-default": False},
        }}}}


def test_the_verification_pods_count_bottlerocket_slices():
    from components import GpuNodeGroupArgs, GpuSharingArgs, time_slicing

    def args(pods):
        return GpuSharingArgs(
            cluster=cluster_args(),
            node_groups={"br": GpuNodeGroupArgs(ami_type="BOTTLEROCKET_x86_64_NVIDIA")},
            plugin_configs={"default": time_slicing(5)},
            verification_pods=pods,
        )

    args(5).validate()
    with pytest.raises(ConfigError) as error:
        args(6).validate()
    assert "verificationPods 6 is more than the 5 GPU slices" in str(error.value)


def test_bottlerocket_gpus_count_for_a_renamed_resource_too():
    """Their host plugin is told rename-by-default, so it advertises nvidia.com/gpu.shared."""
    from components import GpuNodeGroupArgs, GpuSharingArgs, time_slicing

    args = GpuSharingArgs(
        cluster=cluster_args(),
        node_groups={
            "al": GpuNodeGroupArgs(),
            "br": GpuNodeGroupArgs(ami_type="BOTTLEROCKET_x86_64_NVIDIA"),
        },
        plugin_configs={"default": time_slicing(4, rename_by_default=True)},
        verification_pods=8,
    )
    assert args.advertised_slices("default") == 8
    args.validate()


def test_the_plan_says_where_bottlerocket_sharing_lives_and_that_a_change_rolls_the_nodes(
    multi_plan,
):
    import io

    from components.tools.plan import print_table

    out = io.StringIO()
    print_table(multi_plan, out)
    groups = {row.split()[1]: row for row in out.getvalue().splitlines()
              if row.startswith("aws:eks/nodeGroup:NodeGroup")}
    line = groups["gpu-sharing-bottlerocket-ng"]
    assert line.endswith(
        "host plugin: 5 x nvidia.com/gpu per GPU, from launch template version 1's user data "
        "(a change is a new version: EKS replaces the nodes)")
    assert "host plugin" not in groups["gpu-sharing-timesliced-ng"]
    assert "'bottlerocket': 5" in out.getvalue() and "'timesliced': 5" in out.getvalue()
