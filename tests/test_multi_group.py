"""Several GPU node groups, each with its own sharing, from the second example stack."""

from __future__ import annotations

import datetime as dt

import kubernetes_validate
import pytest
import yaml

from components import ConfigError, args_from_config, conventions
from components.tools.plan import kubernetes_objects
from tests.conftest import plan_scope, run_stack


@pytest.fixture(scope=plan_scope)
def multi_plan():
    return run_stack("multi")


def labels_by_group(plan):
    return {r["name"].removeprefix("gpu-sharing-").removesuffix("-ng"): r["inputs"]["labels"]
            for r in plan.by_type("aws:eks/nodeGroup:NodeGroup")}


def test_one_configmap_with_a_key_per_group_and_a_default(multi_plan):
    (config_map,) = [o for o in kubernetes_objects(multi_plan)
                     if o["metadata"]["name"] == conventions.PLUGIN_CONFIGMAP_NAME]
    configs = {k: yaml.safe_load(v) for k, v in config_map["data"].items()}
    assert set(configs) == {"timesliced", "mps", "exclusive", "default"}
    assert "timeSlicing" in configs["timesliced"]["sharing"]
    assert "mps" in configs["mps"]["sharing"]
    assert "sharing" not in configs["exclusive"] or not configs["exclusive"]["sharing"]
    assert configs["default"] == configs["exclusive"]  # unlabelled nodes get whole GPUs


def test_each_group_is_labelled_with_its_config_key(multi_plan):
    labels = labels_by_group(multi_plan)
    assert set(labels) == {"timesliced", "mps", "exclusive"}
    for group, group_labels in labels.items():
        assert group_labels[conventions.PLUGIN_CONFIG_NODE_LABEL] == group
        mps_capable = group_labels.get(conventions.MPS_CAPABLE_NODE_LABEL)
        assert mps_capable == ("true" if group == "mps" else None)


def test_mps_control_daemon_runs_only_where_mps_is_configured(multi_plan):
    daemonsets = {o["metadata"]["name"]: o for o in kubernetes_objects(multi_plan)
                  if o["kind"] == "DaemonSet"}
    mps = daemonsets["nvidia-device-plugin-mps-control-daemon"]
    assert mps["spec"]["template"]["spec"]["nodeSelector"] == {
        conventions.MPS_CAPABLE_NODE_LABEL: "true"}
    demo = run_stack("dev")
    assert [o["metadata"]["name"] for o in kubernetes_objects(demo)
            if o["kind"] == "DaemonSet"] == ["nvidia-device-plugin"]


def test_verification_pods_target_the_first_group(multi_plan):
    (deployment,) = [o for o in kubernetes_objects(multi_plan) if o["kind"] == "Deployment"]
    selector = deployment["spec"]["template"]["spec"]["nodeSelector"]
    assert selector[conventions.PLUGIN_CONFIG_NODE_LABEL] == "timesliced"


def test_outputs_per_group(multi_plan):
    assert multi_plan.outputs["gpuSlicesPerNodeByGroup"] == {
        "timesliced": 5, "mps": 2, "exclusive": 1}


def test_every_object_is_schema_valid(multi_plan):
    for obj in kubernetes_objects(multi_plan):
        kubernetes_validate.validate(obj, "1.35.0", strict=True)


BAD = [
    ('[]', "non-empty list"),
    ('[{"sharing": {"strategy": "none"}}]', "nodeGroups[0] must be a map with a name"),
    ('[{"name": "a", "sharing": {"strategy": "none"}}, {"name": "a", "sharing": '
     '{"strategy": "none"}}]', "nodeGroups[1].name 'a' is used twice"),
    ('[{"name": "a", "sharing": {"strategy": "vgpu"}}]', "nodeGroups[0].sharing.strategy"),
    ('[{"name": "a", "sharing": {"strategy": "mps", "replicas": 0}}]',
     "nodeGroups[0].sharing.replicas must be an integer >= 1"),
    ('[{"name": "a", "sharing": {"strategy": "none", "replicas": 2}}]', "strategy none"),
    ('[{"name": "a", "size": 3, "sharing": {"strategy": "none"}}]', "unknown fields ['size']"),
    ('[{"name": "a"}]', "nodeGroups[0].sharing must be a map"),
    ('[{"name": "a", "instanceType": "m5.large", "sharing": {"strategy": "none"}}]',
     "gpuInstanceType 'm5.large'"),
]


@pytest.mark.parametrize(("raw", "message"), BAD)
def test_bad_node_groups_are_rejected(raw, message):
    with pytest.raises(ConfigError) as error:
        args_from_config({"eks-gpu-sharing:nodeGroups": raw}, "x", today=dt.date(2026, 11, 22))
    assert message in str(error.value)


def test_node_groups_and_single_group_keys_do_not_mix():
    with pytest.raises(ConfigError, match="nodeGroups replaces gpuNodeMax"):
        args_from_config(
            {"eks-gpu-sharing:nodeGroups": '[{"name": "a", "sharing": {"strategy": "none"}}]',
             "eks-gpu-sharing:gpuNodeMax": "2"}, "x", today=dt.date(2026, 11, 22))
