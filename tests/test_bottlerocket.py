"""One sharing model, rendered as Bottlerocket's host device plugin settings.

The settings, their values and ranges: bottlerocket.dev/en/os/1.54.x/api/settings/
kubelet-device-plugins and bottlerocket-os/bottlerocket-settings-sdk,
bottlerocket-settings-models/modeled-types/src/kubernetes.rs. How Bottlerocket turns them into
the plugin's file (and its defaults): bottlerocket-os/bottlerocket-core-kit,
packages/nvidia-k8s-device-plugin/nvidia-k8s-device-plugin-conf. User data: awsdocs
amazon-eks-user-guide doc_source/launch-templates.md ("Bottlerocket user data") and
botocore's ec2 model (RequestLaunchTemplateData.UserData).
"""

from __future__ import annotations

import base64
import re

import botocore.session
import pytest
import tomllib

from components import (
    ConfigError,
    GpuNodeGroupArgs,
    GpuSharing,
    GpuSharingArgs,
    bottlerocket,
    conventions,
    mps,
    time_slicing,
    unshared,
)
from components.plugin_config import Flags, Mps, PluginConfig, ReplicatedResource, TimeSlicing
from components.tools.plan import kubernetes_objects
from tests.conftest import cluster_args, run_program

BOTTLEROCKET = "BOTTLEROCKET_x86_64_NVIDIA"
MODELS = {
    "whole GPUs": unshared(),
    "time-slicing": time_slicing(5),
    "time-slicing renamed, strict": time_slicing(
        3, rename_by_default=True, fail_requests_greater_than_one=True
    ),
    "mps": mps(4),
    "flags": PluginConfig(
        sharing=TimeSlicing((ReplicatedResource(replicas=2),)),
        flags=Flags(
            pass_device_specs=False, device_id_strategy="uuid", device_list_strategy="envvar"
        ),
    ),
}


def nvidia(config: PluginConfig) -> dict:
    return bottlerocket.settings(config)["settings"]["kubelet-device-plugins"]["nvidia"]


def leaves(data: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        out += leaves(value, f"{path}.") if isinstance(value, dict) else [path]
    return out


# --- each setting against the documented key and values ----------------------------------


def test_whole_gpus_set_the_sharing_strategy_none():
    """device-sharing-strategy: none | time-slicing | mps; Bottlerocket's default is none
    (sources/shared-defaults/nvidia-k8s-device-plugin.toml)."""
    assert nvidia(unshared()) == {"device-sharing-strategy": "none"}


def test_time_slicing_writes_every_option_because_bottlerocket_defaults_differ_from_ours():
    """Bottlerocket's template defaults rename-by-default and fail-requests-greater-than-one
    to true; the plugin's own file (what AL2023 nodes read) to false."""
    assert nvidia(time_slicing(5)) == {
        "device-sharing-strategy": "time-slicing",
        "time-slicing": {
            "replicas": 5,
            "rename-by-default": False,
            "fail-requests-greater-than-one": False,
        },
    }
    strict = nvidia(MODELS["time-slicing renamed, strict"])["time-slicing"]
    assert strict == {
        "replicas": 3,
        "rename-by-default": True,
        "fail-requests-greater-than-one": True,
    }


def test_time_slicing_replicas_is_a_32_bit_integer_from_2():
    """BoundedI32<TIME_SLICING_REPLICAS_MIN = 2, i32::MAX>; below 2 our model refuses first."""
    assert nvidia(time_slicing(2**31 - 1))["time-slicing"]["replicas"] == 2**31 - 1
    with pytest.raises(ConfigError) as error:
        bottlerocket.settings(time_slicing(2**31))
    assert str(error.value) == (
        "config.sharing.timeSlicing.resources[0].replicas must be <= 2147483647 on Bottlerocket "
        "(settings.kubelet-device-plugins.nvidia.time-slicing.replicas is a 32-bit integer), "
        "got 2147483648"
    )


def test_mps_has_replicas_and_rename_by_default_only():
    """mps.replicas and mps.rename-by-default (bottlerocket.dev 1.54.x); MPS fails requests
    for more than one replica in the plugin itself, which is also our model's default."""
    assert nvidia(mps(4)) == {
        "device-sharing-strategy": "mps",
        "mps": {"replicas": 4, "rename-by-default": False},
    }
    with pytest.raises(ConfigError) as error:
        bottlerocket.settings(
            PluginConfig(
                sharing=Mps((ReplicatedResource(replicas=4),), fail_requests_greater_than_one=False)
            )
        )
    assert (
        "config.sharing.mps.failRequestsGreaterThanOne False cannot be set on Bottlerocket"
        in str(error.value)
    )
    assert "no mps.fail-requests-greater-than-one" in str(error.value)


def test_plugin_flags_map_to_their_settings():
    assert nvidia(MODELS["flags"]) == {
        "pass-device-specs": False,
        "device-id-strategy": "uuid",
        "device-list-strategy": "envvar",
        "device-sharing-strategy": "time-slicing",
        "time-slicing": {
            "replicas": 2,
            "rename-by-default": False,
            "fail-requests-greater-than-one": False,
        },
    }
    for strategy in bottlerocket.DEVICE_LIST_STRATEGIES:
        flags = Flags(device_list_strategy=strategy)
        assert nvidia(PluginConfig(flags=flags))["device-list-strategy"] == strategy
    for strategy in bottlerocket.DEVICE_ID_STRATEGIES:
        flags = Flags(device_id_strategy=strategy)
        assert nvidia(PluginConfig(flags=flags))["device-id-strategy"] == strategy


def test_a_device_list_strategy_bottlerocket_lacks_is_refused_with_the_values_it_takes():
    """bottlerocket.dev/en/os/1.23.x/api/settings/kubelet-device-plugins, the release that
    added device-list-strategy: envvar and volume-mounts. No cdi-annotations, and no cdi-cri
    (in the settings model and the 1.54.x docs; the release that added it is not known)."""
    for strategy in ("cdi-annotations", "cdi-cri"):
        with pytest.raises(ConfigError) as error:
            bottlerocket.settings(PluginConfig(flags=Flags(device_list_strategy=strategy)))
        assert str(error.value) == (
            f"config.flags.plugin.deviceListStrategy {strategy!r} cannot be set on "
            "Bottlerocket: settings.kubelet-device-plugins.nvidia.device-list-strategy takes "
            "envvar, volume-mounts"
        )
    with pytest.raises(ConfigError, match="for Bottlerocket give one strategy"):
        bottlerocket.settings(
            PluginConfig(flags=Flags(device_list_strategy=("envvar", "volume-mounts")))
        )


@pytest.mark.parametrize(
    ("flags", "option"),
    [
        (Flags(mig_strategy="single"), "flags.migStrategy 'single'"),
        (Flags(fail_on_init_error=False), "flags.failOnInitError False"),
        (Flags(nvidia_driver_root="/run/nvidia/driver"), "flags.nvidiaDriverRoot"),
        (Flags(mps_root="/run/nvidia/mps"), "flags.mpsRoot"),
        (Flags(device_discovery_strategy="nvml"), "flags.deviceDiscoveryStrategy"),
        (
            Flags(shared_devices_allocation_policy="packed"),
            "flags.plugin.sharedDevicesAllocationPolicy",
        ),
    ],
)
def test_options_bottlerocket_has_no_setting_for_are_refused_naming_both(flags, option):
    with pytest.raises(ConfigError) as error:
        bottlerocket.settings(PluginConfig(flags=flags), "plugin_configs['x']")
    message = str(error.value)
    assert message.startswith(f"plugin_configs['x'].{option}")
    assert (
        "cannot be set on Bottlerocket: settings.kubelet-device-plugins.nvidia has no "
        f"{option.split()[0].rpartition('.')[2]} setting" in message
    )


def test_every_setting_written_names_the_release_that_added_it():
    """Release.toml: kubelet-device-plugins from 1.23.0, time-slicing from 1.25.0; MPS is
    first in the 1.54.x settings docs."""
    written = {path for config in MODELS.values() for path in leaves(nvidia(config))}
    assert written == set(bottlerocket.RELEASES)


# --- TOML, user data ---------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_user_data_is_base64_toml_that_parses_back_to_the_settings(name):
    config = MODELS[name]
    text = base64.b64decode(bottlerocket.user_data(config), validate=True).decode()
    assert tomllib.loads(text) == bottlerocket.settings(config)
    # EKS's merge reads no quoted keys and no escaped quotes (launch-templates.md).
    assert not re.search(r'^\s*\[?[^=\]]*"', text, re.MULTILINE)
    assert "\\" not in text


def test_user_data_fits_ec2():
    """RequestLaunchTemplateData.UserData: base64-encoded text, at most 16 KB."""
    member = (
        botocore.session.get_session()
        .get_service_model("ec2")
        .shape_for("RequestLaunchTemplateData")
        .members["UserData"]
    )
    assert member.type_name == "string"
    assert "base64-encoded" in member.documentation and "16 KB" in member.documentation
    assert max(len(bottlerocket.user_data(c)) for c in MODELS.values()) < 16 * 1024


# --- the stack: refusals name the group; a Bottlerocket-only cluster runs none of ours -----


def test_a_bottlerocket_group_refuses_a_config_it_cannot_say_naming_group_and_key():
    args = GpuSharingArgs(
        cluster=cluster_args(),
        node_groups={"br": GpuNodeGroupArgs(ami_type=BOTTLEROCKET, plugin_config_key="x")},
        plugin_configs={
            "default": unshared(),
            "x": PluginConfig(flags=Flags(device_discovery_strategy="nvml")),
        },
        verification_pods=0,
    )
    with pytest.raises(ConfigError) as error:
        args.validate()
    assert str(error.value).startswith(
        "node group 'br' runs Bottlerocket: plugin_configs['x'].flags.deviceDiscoveryStrategy"
    )


def test_the_plugin_rules_come_first_for_a_bottlerocket_group_too():
    args = GpuSharingArgs(
        cluster=cluster_args(),
        node_groups={"br": GpuNodeGroupArgs(ami_type=BOTTLEROCKET)},
        plugin_configs={"default": PluginConfig(sharing=TimeSlicing(()))},
        verification_pods=0,
    )
    with pytest.raises(ConfigError, match=r"configs\['default'\].sharing.timeSlicing.resources"):
        args.validate()


def test_a_cluster_of_only_bottlerocket_gpu_groups_runs_no_plugin_of_ours():
    """No privileged namespace, no hostPath DaemonSet, no ConfigMap: the hosts share."""
    plan = run_program(
        lambda: GpuSharing(
            "g",
            GpuSharingArgs(
                cluster=cluster_args(),
                node_groups={"br": GpuNodeGroupArgs(ami_type=BOTTLEROCKET)},
                plugin_configs={"default": mps(3)},
                verification_pods=3,
            ),
        )
    )
    objects = kubernetes_objects(plan)
    assert not [o for o in objects if o["kind"] == "DaemonSet"]
    assert conventions.PLUGIN_CONFIGMAP_NAME not in {o["metadata"]["name"] for o in objects}
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == [conventions.VERIFICATION_NAMESPACE]
    assert namespaces[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] != (
        "privileged"
    )
    pod_specs = [o["spec"] for o in objects if o["kind"] == "Pod"] + [
        o["spec"]["template"]["spec"] for o in objects if o["kind"] in ("Deployment", "DaemonSet")
    ]
    assert pod_specs and not [v for s in pod_specs for v in s.get("volumes", []) if "hostPath" in v]
    # The verification pods still run, on the Bottlerocket nodes' own shares.
    (workload,) = [
        o
        for o in objects
        if o["kind"] in ("Deployment", "Job")
        and o["metadata"]["name"] == conventions.VERIFICATION_APP
    ]
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert not [w for w in plan.warnings if "Bottlerocket" in w]
