"""The device plugin's config model against the rules of the plugin (v0.20.0) it is pinned to."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from components.errors import ConfigError
from components.plugin_config import (
    Flags,
    Mps,
    PluginConfig,
    ReplicatedResource,
    TimeSlicing,
    advertised_units,
    mps,
    time_slicing,
    unshared,
)

DATA = Path(__file__).parent / "data" / "plugin_configs"
ROOT = Path(__file__).resolve().parent.parent
UUID = "4cf8db2d-06c0-7d70-1a51-e59b25b2c16c"
TS = "config.sharing.timeSlicing"
R0 = f"{TS}.resources[0]"
#: The ends of messages several rules share.
NOT_A_NAME = (
    "after 'nvidia.com/' a resource name must be a lowercase DNS-1123 subdomain "
    "(a-z, 0-9, '-', '.'), e.g. 'nvidia.com/gpu'"
)
NOT_A_DEVICE = (
    "is not a GPU index (0), MIG index (0:1), GPU UUID (GPU-<uuid>) or MIG UUID "
    "(MIG-<uuid> or MIG-GPU-<uuid>/<gi>/<ci>)"
)
NO_RENAME = (
    "device plugin v0.20.0 does not rename resources; set renameByDefault: true to "
    "advertise 'nvidia.com/gpu.shared', or leave rename out"
)
WHOLE_GPU = "for one unit per GPU leave the GPU unshared"


def shared(resource: Any, strategy: str = "timeSlicing", **options: Any) -> dict:
    """A config sharing one resource, as a user would write it."""
    return {"version": "v1", "sharing": {strategy: {**options, "resources": [resource]}}}


GPU5 = {"name": "nvidia.com/gpu", "replicas": 5}


def with_flags(config: dict[str, Any], **flags: Any) -> dict[str, Any]:
    return {**config, "flags": flags}


# One row per rule: (id, config, the whole message, which names the field path).
BAD: list[tuple[str, Any, str]] = [
    # The file's shape (config.go parseConfigFrom; unknown keys: stricter than the plugin).
    ("not-a-mapping", ["version", "v1"], "config must be a mapping, got ['version', 'v1']"),
    (
        "unknown-top-level-key",
        {"version": "v1", "sharng": {}},
        "config has unknown key(s) 'sharng'; allowed: version, flags, sharing",
    ),
    (
        "resources-section-is-ignored",
        {"resources": {"gpus": []}},
        "config has unknown key(s) 'resources'; allowed: version, flags, sharing",
    ),
    (
        "version-not-v1",
        {"version": "v2"},
        "config.version 'v2' is not supported; the plugin reads 'v1'",
    ),
    (
        "version-not-a-string",
        {"version": 1},
        "config.version 1 is not supported; the plugin reads 'v1'",
    ),
    (
        "sharing-not-a-mapping",
        {"sharing": ["timeSlicing"]},
        "config.sharing must be a mapping, got ['timeSlicing']",
    ),
    (
        "unknown-sharing-key",
        {"sharing": {"vgpu": {}}},
        "config.sharing has unknown key(s) 'vgpu'; allowed: timeSlicing, mps",
    ),
    (
        "time-slicing-and-mps",
        {"sharing": {"timeSlicing": shared(GPU5)["sharing"]["timeSlicing"], "mps": {}}},
        (
            "config.sharing sets both timeSlicing and mps, which are mutually exclusive "
            "(the plugin would use mps and ignore timeSlicing); keep one"
        ),
    ),
    # ReplicatedResources (replicas.go).
    ("time-slicing-null", {"sharing": {"timeSlicing": None}}, f"{TS} must be a mapping, got None"),
    (
        "unknown-option",
        shared(GPU5, renameByDefualt=True),
        (
            f"{TS} has unknown key(s) 'renameByDefualt'; allowed: renameByDefault, "
            "failRequestsGreaterThanOne, resources"
        ),
    ),
    (
        "no-resources",
        {"sharing": {"timeSlicing": {}}},
        f"{TS}.resources must be a list of resources, got None",
    ),
    (
        "empty-resources",
        {"sharing": {"timeSlicing": {"resources": []}}},
        f"{TS}.resources must list at least one resource, got []",
    ),
    (
        "rename-by-default-not-bool",
        shared(GPU5, renameByDefault="yes"),
        f"{TS}.renameByDefault must be true or false, got 'yes'",
    ),
    (
        "fail-requests-not-bool",
        shared(GPU5, failRequestsGreaterThanOne="true"),
        f"{TS}.failRequestsGreaterThanOne must be true or false, got 'true'",
    ),
    # ReplicatedResource (replicas.go).
    (
        "resource-not-a-mapping",
        shared("nvidia.com/gpu"),
        f"{R0} must be a mapping, got 'nvidia.com/gpu'",
    ),
    (
        "unknown-resource-key",
        shared({**GPU5, "replica": 2}),
        f"{R0} has unknown key(s) 'replica'; allowed: name, replicas, rename, devices",
    ),
    ("no-name", shared({"replicas": 5}), f"{R0}.name is required"),
    ("no-replicas", shared({"name": "nvidia.com/gpu"}), f"{R0}.replicas is required"),
    (
        "replicas-one",
        shared({**GPU5, "replicas": 1}),
        f"{R0}.replicas must be >= 2, got 1; {WHOLE_GPU}",
    ),
    (
        "replicas-zero",
        shared({**GPU5, "replicas": 0}),
        f"{R0}.replicas must be >= 2, got 0; {WHOLE_GPU}",
    ),
    (
        "replicas-negative",
        shared({**GPU5, "replicas": -1}),
        f"{R0}.replicas must be >= 2, got -1; {WHOLE_GPU}",
    ),
    (
        "replicas-string",
        shared({**GPU5, "replicas": "5"}),
        f"{R0}.replicas must be an integer >= 2, got '5'",
    ),
    (
        "replicas-bool",
        shared({**GPU5, "replicas": True}),
        f"{R0}.replicas must be an integer >= 2, got True",
    ),
    (
        "replicas-float",
        shared({**GPU5, "replicas": 2.0}),
        f"{R0}.replicas must be an integer >= 2, got 2.0",
    ),
    (
        "replicas-null",
        shared({**GPU5, "replicas": None}),
        f"{R0}.replicas must be an integer >= 2, got None",
    ),
    # Resource names (resources.go NewResourceName).
    (
        "name-not-a-string",
        shared({**GPU5, "name": 5}),
        f"{R0}.name must be a resource name such as 'nvidia.com/gpu', got 5",
    ),
    ("name-empty", shared({**GPU5, "name": ""}), f"{R0}.name '': {NOT_A_NAME}"),
    (
        "name-uppercase",
        shared({**GPU5, "name": "nvidia.com/GPU"}),
        f"{R0}.name 'nvidia.com/GPU': {NOT_A_NAME}",
    ),
    (
        "name-other-domain",
        shared({**GPU5, "name": "amd.com/gpu"}),
        f"{R0}.name 'amd.com/gpu': {NOT_A_NAME}",
    ),
    ("name-symbols", shared({**GPU5, "name": "$invalid$"}), f"{R0}.name '$invalid$': {NOT_A_NAME}"),
    (
        # 63 characters are allowed: this one fails only for naming no device.
        "name-of-63-characters",
        shared({**GPU5, "name": "g" * 52}),
        (
            f"{R0}.name '{'g' * 52}' names no device the plugin has, so it would skip it; "
            "time-slicing shares nvidia.com/gpu, or nvidia.com/mig-<profile> with "
            "migStrategy mixed (migStrategy is 'none')"
        ),
    ),
    (
        "name-two-slashes",
        shared({**GPU5, "name": "nvidia.com/a/b"}),
        f"{R0}.name 'nvidia.com/a/b': {NOT_A_NAME}",
    ),
    (
        "name-too-long",
        shared({**GPU5, "name": "g" * 53}),
        (
            f"{R0}.name '{'g' * 53}' is 64 characters as 'nvidia.com/{'g' * 53}'; "
            "at most 63 are allowed"
        ),
    ),
    (
        "rename-invalid",
        shared({**GPU5, "rename": "$invalid$"}),
        f"{R0}.rename '$invalid$': {NOT_A_NAME}",
    ),
    (
        "rename-null",
        shared({**GPU5, "rename": None}),
        f"{R0}.rename is null; give a value or leave the key out",
    ),
    # ReplicatedDevices (replicas.go).
    (
        "devices-null",
        shared({**GPU5, "devices": None}),
        f"{R0}.devices is null; give a value or leave the key out",
    ),
    (
        "devices-other-string",
        shared({**GPU5, "devices": "not-all"}),
        (
            f"{R0}.devices must be 'all', a count > 0 or a list of device indices or UUIDs, "
            "got 'not-all'"
        ),
    ),
    ("devices-zero", shared({**GPU5, "devices": 0}), f"{R0}.devices must be a count > 0, got 0"),
    (
        "devices-negative",
        shared({**GPU5, "devices": -2}),
        f"{R0}.devices must be a count > 0, got -2",
    ),
    (
        "devices-float",
        shared({**GPU5, "devices": 2.0}),
        (f"{R0}.devices must be 'all', a count > 0 or a list of device indices or UUIDs, got 2.0"),
    ),
    (
        "devices-bool",
        shared({**GPU5, "devices": True}),
        (f"{R0}.devices must be 'all', a count > 0 or a list of device indices or UUIDs, got True"),
    ),
    (
        "devices-negative-index",
        shared({**GPU5, "devices": [-1]}),
        f"{R0}.devices[0] -1 {NOT_A_DEVICE}",
    ),
    (
        "devices-negative-string",
        shared({**GPU5, "devices": ["-1"]}),
        f"{R0}.devices[0] '-1' {NOT_A_DEVICE}",
    ),
    (
        "devices-bad-uuid",
        shared({**GPU5, "devices": [0, "GPU-UUID"]}),
        f"{R0}.devices[1] 'GPU-UUID' {NOT_A_DEVICE}",
    ),
    (
        "devices-bad-mig-uuid",
        shared({**GPU5, "devices": ["MIG-UUID"]}),
        f"{R0}.devices[0] 'MIG-UUID' {NOT_A_DEVICE}",
    ),
    (
        "devices-mig-uuid-without-indices",
        shared({**GPU5, "devices": [f"MIG-GPU-{UUID}"]}),
        f"{R0}.devices[0] 'MIG-GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c' {NOT_A_DEVICE}",
    ),
    (
        "devices-three-part-index",
        shared({**GPU5, "devices": ["0:0:0"]}),
        f"{R0}.devices[0] '0:0:0' {NOT_A_DEVICE}",
    ),
    (
        "devices-float-index",
        shared({**GPU5, "devices": [1.5]}),
        f"{R0}.devices[0] 1.5 {NOT_A_DEVICE}",
    ),
    # Ignored or merged by the plugin; refused here (stricter).
    (
        "duplicate-name",
        {"sharing": {"timeSlicing": {"resources": [GPU5, {"name": "gpu", "replicas": 2}]}}},
        (
            f"{TS}.resources[1].name 'gpu' repeats resources[0]; the plugin would merge "
            "their replicas; list each resource once"
        ),
    ),
    (
        "no-such-resource",
        shared({**GPU5, "name": "nvidia.com/gpus"}),
        (
            f"{R0}.name 'nvidia.com/gpus' names no device the plugin has, so it would skip "
            "it; time-slicing shares nvidia.com/gpu, or nvidia.com/mig-<profile> with "
            "migStrategy mixed (migStrategy is 'none')"
        ),
    ),
    (
        "mig-resource-without-mixed",
        shared({**GPU5, "name": "nvidia.com/mig-1g.5gb"}),
        (
            f"{R0}.name 'nvidia.com/mig-1g.5gb' names no device the plugin has, so it would "
            "skip it; time-slicing shares nvidia.com/gpu, or nvidia.com/mig-<profile> with "
            "migStrategy mixed (migStrategy is 'none')"
        ),
    ),
    (
        "rename-ignored",
        shared({**GPU5, "rename": "gpu-shared"}),
        f"{R0}.rename 'gpu-shared' would be ignored: {NO_RENAME}",
    ),
    (
        "default-rename-without-rename-by-default",
        shared({**GPU5, "rename": "nvidia.com/gpu.shared"}),
        f"{R0}.rename 'nvidia.com/gpu.shared' would be ignored: {NO_RENAME}",
    ),
    (
        "other-rename-with-rename-by-default",
        shared({**GPU5, "rename": "nvidia.com/shared"}, renameByDefault=True),
        f"{R0}.rename 'nvidia.com/shared' would be ignored: {NO_RENAME}",
    ),
    (
        "devices-count-ignored",
        shared({**GPU5, "devices": 1}),  # the smallest count the file may hold
        (
            f"{R0}.devices 1 would be ignored: device plugin v0.20.0 replicates every "
            "device; use 'all' or leave devices out"
        ),
    ),
    (
        "devices-list-ignored",
        shared({**GPU5, "devices": [0]}),
        (
            f"{R0}.devices [0] would be ignored: device plugin v0.20.0 replicates every "
            "device; use 'all' or leave devices out"
        ),
    ),
    # MPS (cmd/nvidia-device-plugin/main.go, cmd/mps-control-daemon/mps/device.go, README).
    (
        "mps-with-mixed-mig",
        with_flags(shared(GPU5, "mps"), migStrategy="mixed"),
        (
            "config.sharing.mps cannot be used with flags.migStrategy 'mixed' (the plugin "
            "refuses to start); use migStrategy none or single, or time-slicing"
        ),
    ),
    (
        "mps-mig-resource",
        shared({**GPU5, "name": "nvidia.com/mig-1g.5gb"}, "mps"),
        (
            "config.sharing.mps.resources[0].name 'nvidia.com/mig-1g.5gb': MPS shares only "
            "full GPUs, as nvidia.com/gpu"
        ),
    ),
    (
        "mps-too-many-replicas",
        shared({**GPU5, "replicas": 49}, "mps"),
        (
            "config.sharing.mps.resources[0].replicas must be <= 48 with MPS (the most "
            "clients an MPS server takes), got 49"
        ),
    ),
    (
        "mps-one-replica",
        shared({**GPU5, "replicas": 1}, "mps"),
        f"config.sharing.mps.resources[0].replicas must be >= 2, got 1; {WHOLE_GPU}",
    ),
    # Flags (main.go validateFlags, flags.go, strategy.go, consts.go).
    ("flags-not-a-mapping", {"flags": "none"}, "config.flags must be a mapping, got 'none'"),
    (
        "unknown-flag",
        {"flags": {"migstrategy": "none"}},
        (
            "config.flags has unknown key(s) 'migstrategy'; allowed: migStrategy, "
            "failOnInitError, nvidiaDriverRoot, mpsRoot, deviceDiscoveryStrategy, plugin"
        ),
    ),
    (
        "gfd-flags",
        {"flags": {"gfd": {"oneshot": True}}},
        (
            "config.flags has unknown key(s) 'gfd'; allowed: migStrategy, failOnInitError, "
            "nvidiaDriverRoot, mpsRoot, deviceDiscoveryStrategy, plugin"
        ),
    ),
    (
        "unknown-plugin-flag",
        {"flags": {"plugin": {"passDeviceSpec": True}}},
        (
            "config.flags.plugin has unknown key(s) 'passDeviceSpec'; allowed: "
            "passDeviceSpecs, deviceListStrategy, deviceIDStrategy, "
            "sharedDevicesAllocationPolicy"
        ),
    ),
    (
        "mig-strategy",
        {"flags": {"migStrategy": "auto"}},
        "config.flags.migStrategy 'auto' is not allowed; use one of none, single, mixed",
    ),
    (
        "fail-on-init-error-not-bool",
        {"flags": {"failOnInitError": "true"}},
        "config.flags.failOnInitError must be true or false, got 'true'",
    ),
    (
        "driver-root-not-a-string",
        {"flags": {"nvidiaDriverRoot": 1}},
        "config.flags.nvidiaDriverRoot must be a string, got 1",
    ),
    (
        "mps-root-not-a-string",
        {"flags": {"mpsRoot": 5}},
        "config.flags.mpsRoot must be a string, got 5",
    ),
    (
        "mps-root-empty",
        {"flags": {"mpsRoot": ""}},
        "config.flags.mpsRoot must be a path such as /run/nvidia/mps, got ''",
    ),
    (
        "device-discovery-strategy",
        {"flags": {"deviceDiscoveryStrategy": "cuda"}},
        (
            "config.flags.deviceDiscoveryStrategy 'cuda' is not allowed; use one of auto, "
            "nvml, tegra"
        ),
    ),
    (
        "pass-device-specs-not-bool",
        {"flags": {"plugin": {"passDeviceSpecs": "no"}}},
        "config.flags.plugin.passDeviceSpecs must be true or false, got 'no'",
    ),
    (
        "device-list-strategy",
        {"flags": {"plugin": {"deviceListStrategy": "env"}}},
        (
            "config.flags.plugin.deviceListStrategy[0] 'env' is not allowed; use one of "
            "envvar, volume-mounts, cdi-annotations, cdi-cri"
        ),
    ),
    (
        "device-list-strategy-in-a-list",
        {"flags": {"plugin": {"deviceListStrategy": ["envvar", "cdi"]}}},
        (
            "config.flags.plugin.deviceListStrategy[1] 'cdi' is not allowed; use one of "
            "envvar, volume-mounts, cdi-annotations, cdi-cri"
        ),
    ),
    (
        "device-list-strategy-type",
        {"flags": {"plugin": {"deviceListStrategy": 5}}},
        "config.flags.plugin.deviceListStrategy must be a strategy or a list of them, got 5",
    ),
    (
        "device-id-strategy",
        {"flags": {"plugin": {"deviceIDStrategy": "serial"}}},
        ("config.flags.plugin.deviceIDStrategy 'serial' is not allowed; use one of uuid, index"),
    ),
    (
        "allocation-policy",
        {"flags": {"plugin": {"sharedDevicesAllocationPolicy": "spread"}}},
        (
            "config.flags.plugin.sharedDevicesAllocationPolicy 'spread' is not allowed; "
            "use one of distributed, packed"
        ),
    ),
]


@pytest.mark.parametrize(("config", "message"), [row[1:] for row in BAD], ids=[r[0] for r in BAD])
def test_each_rule_refuses_with_a_message_naming_the_field(config: Any, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        PluginConfig.from_dict(config)
    assert str(raised.value) == message


def test_the_bad_table_has_one_row_per_rule() -> None:
    ids = [row[0] for row in BAD]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("config", "names"),
    [
        (PluginConfig(sharing="time-slicing"), "sharing must be TimeSlicing, Mps or None"),  # type: ignore[arg-type]
        (PluginConfig(flags=None), "flags must be a Flags"),  # type: ignore[arg-type]
        (PluginConfig(TimeSlicing((5,))), "sharing.timeSlicing.resources[0] must be a Replicated"),  # type: ignore[arg-type]
        (PluginConfig(TimeSlicing(())), "sharing.timeSlicing.resources must list"),
        (
            PluginConfig(TimeSlicing((ReplicatedResource(replicas=5),), None)),  # type: ignore[arg-type]
            "sharing.timeSlicing.renameByDefault must be true or false, got None",
        ),
        (PluginConfig(flags=Flags(mig_strategy=None)), "flags.migStrategy None"),  # type: ignore[arg-type]
        (
            PluginConfig(flags=Flags(device_list_strategy=("envvar", "cdi-cri", "nvml"))),
            "flags.plugin.deviceListStrategy[2] 'nvml'",
        ),
        (time_slicing(1), "sharing.timeSlicing.resources[0].replicas must be >= 2, got 1"),
        (mps(1), "sharing.mps.resources[0].replicas must be >= 2, got 1"),
        (mps(100), "sharing.mps.resources[0].replicas must be <= 48"),
    ],
)
def test_validate_checks_configs_built_in_python(config: PluginConfig, names: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config.validate()
    assert str(raised.value).startswith(names)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (time_slicing(0), "configs['a'].sharing.timeSlicing.resources[0].replicas must be >= 2"),
        (
            PluginConfig(sharing="time-slicing"),  # type: ignore[arg-type]
            "configs['a'].sharing must be TimeSlicing, Mps or None, got 'time-slicing'",
        ),
        (PluginConfig(flags=None), "configs['a'].flags must be a Flags, got None"),  # type: ignore[arg-type]
    ],
)
def test_validate_prefixes_the_field_it_is_given(config: PluginConfig, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config.validate("configs['a']")
    assert str(raised.value).startswith(message)


def test_a_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        time_slicing(-1).validate()


# Device references the plugin parses (replicas.go ReplicatedDeviceRef): they pass the format
# rules, then are refused only because v0.20.0 ignores devices.
@pytest.mark.parametrize(
    "ref",
    [
        0,
        "0",
        "7",
        "0:0",
        "3:12",
        f"GPU-{UUID}",
        f"GPU-{UUID.upper()}",
        f"GPU-{UUID.replace('-', '')}",
        f"GPU-urn:uuid:{UUID}",
        f"GPU-{{{UUID}}}",
        f"MIG-{UUID}",
        f"MIG-GPU-{UUID}/10/0",
        # Bounds of Go's strconv.ParseUint(s, 10, 64) and google/uuid.Parse's forms.
        2**64 - 1,
        str(2**64 - 1),
        "128",
        f"GPU-{UUID.replace('-', '').upper()}",
    ],
)
def test_device_references_the_plugin_parses(ref: int | str) -> None:
    with pytest.raises(ConfigError, match="would be ignored"):
        PluginConfig.from_dict(shared({**GPU5, "devices": [ref]}))


@pytest.mark.parametrize(
    "ref",
    [
        -1,
        2**64,
        "",
        "-1",
        "+1",
        "0x1",
        "0:",
        ":0",
        "0:0:0",
        "GPU-UUID",
        f"GPU-{UUID}0",
        f"GPU-{UUID[:-1]}g",
        f"gpu-{UUID}",
        f"MIG-GPU-{UUID}",
        f"MIG-GPU-{UUID}/1",
        f"MIG-GPU-{UUID}/1/2/3",
        f"MIG-{UUID}/1/2",
        f"NVLINK-{UUID}",
        None,
        True,
        str(2**64),
        f"0:{2**64}",
        f"MIG-GPU-{UUID}/x/0",
        f"GPU-urn:uuix:{UUID}",
        f"GPU-{UUID[:-1]}\u00e9",
    ],
)
def test_device_references_the_plugin_refuses(ref: Any) -> None:
    with pytest.raises(ConfigError, match=r"devices\[0\] .* is not a GPU index"):
        PluginConfig.from_dict(shared({**GPU5, "devices": [ref]}))


GOOD: list[tuple[str, dict[str, Any], str, int, str]] = [
    # (id, config, resource_name(), units_per_gpu(), strategy)
    ("empty", {}, "nvidia.com/gpu", 1, "none"),
    ("version-empty", {"version": ""}, "nvidia.com/gpu", 1, "none"),
    ("null-sections", {"flags": None, "sharing": None}, "nvidia.com/gpu", 1, "none"),
    ("empty-sharing", {"sharing": {}}, "nvidia.com/gpu", 1, "none"),
    ("short-name", shared({"name": "gpu", "replicas": 3}), "nvidia.com/gpu", 3, "time-slicing"),
    ("devices-all", shared({**GPU5, "devices": "all"}), "nvidia.com/gpu", 5, "time-slicing"),
    (
        "rename-by-default",
        shared(GPU5, renameByDefault=True),
        "nvidia.com/gpu.shared",
        5,
        "time-slicing",
    ),
    (
        "explicit-default-rename",
        shared({**GPU5, "rename": "gpu.shared"}, renameByDefault=True),
        "nvidia.com/gpu.shared",
        5,
        "time-slicing",
    ),
    (
        "fail-requests-greater-than-one",
        shared(GPU5, failRequestsGreaterThanOne=True),
        "nvidia.com/gpu",
        5,
        "time-slicing",
    ),
    (
        "mixed-mig-resources",
        with_flags(
            {
                "sharing": {
                    "timeSlicing": {
                        "resources": [
                            {"name": "nvidia.com/mig-1g.5gb", "replicas": 2},
                            {"name": "nvidia.com/mig-2g.10gb", "replicas": 2},
                            {"name": "nvidia.com/mig-1g.10gb.me", "replicas": 3},
                            {"name": "nvidia.com/gpu", "replicas": 4},
                        ]
                    }
                }
            },
            migStrategy="mixed",
        ),
        "nvidia.com/gpu",
        4,
        "time-slicing",
    ),
    (
        "only-mig-shared",
        with_flags(shared({"name": "nvidia.com/mig-3g.20gb", "replicas": 2}), migStrategy="mixed"),
        "nvidia.com/gpu",
        1,
        "time-slicing",
    ),
    ("mps-48", shared({**GPU5, "replicas": 48}, "mps"), "nvidia.com/gpu", 48, "mps"),
    (
        "mps-single-mig-strategy",
        with_flags(shared(GPU5, "mps"), migStrategy="single", mpsRoot="/run/nvidia/mps"),
        "nvidia.com/gpu",
        5,
        "mps",
    ),
    (
        "mps-renamed-allowing-larger-requests",
        shared(GPU5, "mps", renameByDefault=True, failRequestsGreaterThanOne=False),
        "nvidia.com/gpu.shared",
        5,
        "mps",
    ),
    (
        "mps-null-beside-time-slicing",
        {"sharing": {**shared(GPU5)["sharing"], "mps": None}},
        "nvidia.com/gpu",
        5,
        "time-slicing",
    ),
    (
        "every-flag",
        with_flags(
            shared(GPU5),
            migStrategy="single",
            failOnInitError=False,
            nvidiaDriverRoot="/run/nvidia/driver",
            mpsRoot="/run/nvidia/mps",
            deviceDiscoveryStrategy="nvml",
            plugin={
                "passDeviceSpecs": True,
                "deviceListStrategy": ["envvar", "volume-mounts", "cdi-annotations", "cdi-cri"],
                "deviceIDStrategy": "index",
                "sharedDevicesAllocationPolicy": "packed",
            },
        ),
        "nvidia.com/gpu",
        5,
        "time-slicing",
    ),
    (
        "null-flags",
        with_flags({}, migStrategy=None, failOnInitError=None, plugin=None),
        "nvidia.com/gpu",
        1,
        "none",
    ),
]


@pytest.mark.parametrize(
    ("config", "resource", "units", "strategy"), [g[1:] for g in GOOD], ids=[g[0] for g in GOOD]
)
def test_accepted_configs_and_what_they_advertise(
    config: dict[str, Any], resource: str, units: int, strategy: str
) -> None:
    parsed = PluginConfig.from_dict(config)
    assert (parsed.resource_name(), parsed.units_per_gpu(), parsed.strategy) == (
        resource,
        units,
        strategy,
    )
    assert advertised_units(config) == {resource: units}


def test_from_dict_leaves_its_input_alone() -> None:
    config = shared({**GPU5, "devices": "all"}, renameByDefault=True)
    before = copy.deepcopy(config)
    PluginConfig.from_dict(config)
    assert config == before


@pytest.mark.parametrize(
    ("config", "resource", "units", "strategy"),
    [
        (time_slicing(5), "nvidia.com/gpu", 5, "time-slicing"),
        (time_slicing(4, rename_by_default=True), "nvidia.com/gpu.shared", 4, "time-slicing"),
        (time_slicing(2, fail_requests_greater_than_one=True), "nvidia.com/gpu", 2, "time-slicing"),
        (mps(2), "nvidia.com/gpu", 2, "mps"),
        (unshared(), "nvidia.com/gpu", 1, "none"),
        (
            PluginConfig(
                Mps((ReplicatedResource(name="gpu", replicas=3),), rename_by_default=True)
            ),
            "nvidia.com/gpu.shared",
            3,
            "mps",
        ),
    ],
)
def test_constructors(config: PluginConfig, resource: str, units: int, strategy: str) -> None:
    config.validate()
    assert (config.resource_name(), config.units_per_gpu(), config.strategy) == (
        resource,
        units,
        strategy,
    )


def test_to_dict_is_the_file_the_plugin_reads_with_nothing_left_at_a_default() -> None:
    assert time_slicing(5).to_dict() == {
        "version": "v1",
        "sharing": {"timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": 5}]}},
    }
    assert time_slicing(3, rename_by_default=True, fail_requests_greater_than_one=True).to_dict()[
        "sharing"
    ] == {
        "timeSlicing": {
            "renameByDefault": True,
            "failRequestsGreaterThanOne": True,
            "resources": [{"name": "nvidia.com/gpu", "replicas": 3}],
        }
    }
    # MPS fails requests for more than one replica unless told not to (config.go NewConfig).
    assert mps(2).to_dict()["sharing"] == {
        "mps": {"resources": [{"name": "nvidia.com/gpu", "replicas": 2}]}
    }
    relaxed = PluginConfig(
        Mps((ReplicatedResource(replicas=2),), fail_requests_greater_than_one=False)
    )
    assert relaxed.to_dict()["sharing"]["mps"]["failRequestsGreaterThanOne"] is False
    assert unshared().to_dict() == {"version": "v1"}
    assert PluginConfig(flags=Flags(mig_strategy="none")).to_dict() == {"version": "v1"}
    flags = Flags(
        mig_strategy="mixed", device_list_strategy=("envvar",), device_id_strategy="index"
    )
    assert PluginConfig(flags=flags).to_dict()["flags"] == {
        "migStrategy": "mixed",
        "plugin": {"deviceListStrategy": ["envvar"], "deviceIDStrategy": "index"},
    }


ROUND_TRIP = [
    time_slicing(5),
    time_slicing(4, rename_by_default=True, fail_requests_greater_than_one=True),
    mps(2),
    unshared(),
    PluginConfig(Mps((ReplicatedResource(replicas=2),), fail_requests_greater_than_one=False)),
    PluginConfig(
        TimeSlicing(
            (
                ReplicatedResource(replicas=3, devices="all"),
                ReplicatedResource(name="nvidia.com/mig-1g.5gb", replicas=2),
            ),
            rename_by_default=True,
        ),
        Flags(
            mig_strategy="mixed",
            fail_on_init_error=True,
            nvidia_driver_root="/",
            pass_device_specs=False,
            device_list_strategy="envvar",
            device_id_strategy="uuid",
            shared_devices_allocation_policy="distributed",
        ),
    ),
]


@pytest.mark.parametrize("config", ROUND_TRIP)
def test_round_trip_through_the_file(config: PluginConfig) -> None:
    as_dict = config.to_dict()
    assert PluginConfig.from_dict(as_dict) == config
    assert PluginConfig.from_dict(as_dict).to_dict() == as_dict
    # ...and through YAML, as the ConfigMap holds it.
    assert PluginConfig.from_dict(yaml.safe_load(yaml.safe_dump(as_dict))) == config


@given(
    replicas=st.integers(min_value=2, max_value=48),
    strategy=st.sampled_from(["time-slicing", "mps"]),
    rename=st.booleans(),
)
def test_round_trip_for_any_valid_sharing(replicas: int, strategy: str, rename: bool) -> None:
    kind = TimeSlicing if strategy == "time-slicing" else Mps
    config = PluginConfig(kind((ReplicatedResource(replicas=replicas),), rename_by_default=rename))
    config.validate()
    assert PluginConfig.from_dict(config.to_dict()) == config
    assert advertised_units(config.to_dict()) == {
        "nvidia.com/gpu.shared" if rename else "nvidia.com/gpu": replicas
    }


# Every example config in the upstream README for v0.20.0 (docs/ has none), kept as our own YAML.
# Expected: (resource_name(), units_per_gpu(), strategy).
EXAMPLES = {
    "readme-config-file.yaml": ("nvidia.com/gpu", 1, "none"),
    "readme-helm-config0.yaml": ("nvidia.com/gpu", 1, "none"),
    "readme-helm-config1.yaml": ("nvidia.com/gpu", 1, "none"),
    "readme-time-slicing.yaml": ("nvidia.com/gpu", 10, "time-slicing"),
    "readme-time-slicing-renamed.yaml": ("nvidia.com/gpu.shared", 10, "time-slicing"),
    "readme-time-slicing-options.yaml": ("nvidia.com/gpu", 4, "time-slicing"),
    "readme-mps.yaml": ("nvidia.com/gpu", 10, "mps"),
    "readme-mps-renamed.yaml": ("nvidia.com/gpu.shared", 10, "mps"),
    "readme-mps-options.yaml": ("nvidia.com/gpu", 2, "mps"),
}


def test_every_example_file_is_checked() -> None:
    assert sorted(path.name for path in DATA.glob("*.yaml")) == sorted(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_upstream_examples_are_accepted(name: str) -> None:
    text = (DATA / name).read_text(encoding="utf-8")
    assert "tag v0.20.0" in text, "each example says where upstream it comes from"
    config = PluginConfig.from_dict(yaml.safe_load(text), field=name)
    assert (config.resource_name(), config.units_per_gpu(), config.strategy) == EXAMPLES[name]
    assert PluginConfig.from_dict(config.to_dict()) == config


def test_the_configmap_manifest_holds_valid_configs() -> None:
    (config_map,) = [
        doc
        for doc in yaml.safe_load_all((ROOT / "manifests" / "sharing-config.yaml").read_text())
        if doc and doc.get("kind") == "ConfigMap"
    ]
    for key, text in config_map["data"].items():
        PluginConfig.from_dict(yaml.safe_load(text), field=f"data[{key!r}]")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (time_slicing(5).to_dict(), {"nvidia.com/gpu": 5}),
        (time_slicing(5, rename_by_default=True).to_dict(), {"nvidia.com/gpu.shared": 5}),
        (mps(3).to_dict(), {"nvidia.com/gpu": 3}),
        (unshared().to_dict(), {"nvidia.com/gpu": 1}),
        ({"version": "v1"}, {"nvidia.com/gpu": 1}),
        (
            {"sharing": {"timeSlicing": {"resources": [{"name": "gpu", "replicas": 4}]}}},
            {"nvidia.com/gpu": 4},
        ),
    ],
)
def test_advertised_units(config: dict[str, Any], expected: dict[str, int]) -> None:
    assert advertised_units(config) == expected


def test_advertised_units_refuses_a_config_the_plugin_would_refuse() -> None:
    bad = {"version": "v1", "sharing": {"timeSlicing": {"resources": [{"replicas": 4}]}}}
    with pytest.raises(ConfigError, match=r"config\.sharing\.timeSlicing\.resources\[0\]\.name"):
        advertised_units(bad)


def test_unknown_keys_are_listed_with_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as error:
        PluginConfig.from_dict({"version": "v1", "sharng": {}, "flag": {}})
    assert str(error.value) == (
        "config has unknown key(s) 'sharng', 'flag'; allowed: version, flags, sharing"
    )


def test_plugin_flags_are_read_only_under_plugin() -> None:
    message = r"config.flags has unknown key\(s\) 'plugin.deviceIDStrategy'"
    with pytest.raises(ConfigError, match=message):
        PluginConfig.from_dict({"version": "v1", "flags": {"plugin.deviceIDStrategy": "uuid"}})


def test_a_list_of_strategies_is_read_as_the_tuple_python_builds() -> None:
    read = PluginConfig.from_dict(
        with_flags(shared(GPU5), plugin={"deviceListStrategy": ["envvar", "cdi-cri"]})
    )
    assert read.flags == Flags(device_list_strategy=("envvar", "cdi-cri"))


def test_mps_with_mixed_mig_says_what_to_use_instead() -> None:
    with pytest.raises(ConfigError) as error:
        PluginConfig(flags=Flags(mig_strategy="mixed"), sharing=mps(4).sharing).validate()
    assert str(error.value).endswith("to start); use migStrategy none or single, or time-slicing")


def test_both_sharing_modes_is_refused_saying_which_the_plugin_would_use() -> None:
    both = {"version": "v1", "sharing": {"timeSlicing": {"resources": [GPU5]}, "mps": {}}}
    both["sharing"]["mps"] = both["sharing"]["timeSlicing"]
    with pytest.raises(ConfigError) as error:
        PluginConfig.from_dict(both)
    assert str(error.value).endswith("(the plugin would use mps and ignore timeSlicing); keep one")


def test_an_mps_section_is_read_under_its_own_name() -> None:
    with pytest.raises(ConfigError, match=r"^config\.sharing\.mps\.resources must be a list"):
        PluginConfig.from_dict({"version": "v1", "sharing": {"mps": {"resources": None}}})


def test_a_resource_writes_the_rename_it_was_given() -> None:
    resource = ReplicatedResource(name="nvidia.com/gpu", replicas=2, rename="gpu-shared")
    assert resource.to_dict()["rename"] == "gpu-shared"


def test_the_configmap_files_read_like_upstream_examples_version_first() -> None:
    from components.sharing import render_data

    (text,) = render_data({"default": time_slicing(4)}).values()
    assert list(yaml.safe_load(text)) == ["version", "flags", "sharing"]
    assert text.startswith("version: v1\n")


def test_served_configs_list_devices_as_volume_mounts_unless_they_say_otherwise() -> None:
    """AL2023 nodes' toolkit takes no env var from unprivileged pods (components/al2023.py):
    the plugin must hand devices as mounts (NVIDIA/k8s-device-plugin v0.20.0
    internal/plugin/server.go, updateResponseForDeviceMounts)."""
    from components.sharing import render_data

    chosen = PluginConfig(flags=Flags(device_list_strategy=("volume-mounts", "cdi-cri")))
    data = render_data({"default": time_slicing(4), "cdi": chosen})
    assert yaml.safe_load(data["default"])["flags"] == {
        "plugin": {"deviceListStrategy": "volume-mounts"}
    }
    assert yaml.safe_load(data["cdi"])["flags"]["plugin"]["deviceListStrategy"] == [
        "volume-mounts", "cdi-cri"]


@pytest.mark.parametrize("strategy", ["envvar", ("envvar",)])
def test_the_env_var_alone_as_device_list_is_refused(strategy) -> None:
    from components.sharing import validate_configs

    config = PluginConfig(flags=Flags(device_list_strategy=strategy))
    with pytest.raises(ConfigError) as error:
        validate_configs({"default": config}, "default")
    assert str(error.value).startswith(
        "configs['default'].flags.plugin.deviceListStrategy 'envvar' alone gives pods no GPU: "
        "the GPU nodes' NVIDIA toolkit ignores NVIDIA_VISIBLE_DEVICES"
    )
    validate_configs(
        {"default": PluginConfig(flags=Flags(device_list_strategy=("envvar", "volume-mounts")))},
        "default",
    )
