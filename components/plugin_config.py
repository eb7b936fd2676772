"""The NVIDIA device plugin's config file, typed and held to the plugin's own rules.

We pin the plugin at v0.20.0. A config it refuses leaves the plugin pod crash-looping on every
GPU node; one it half-ignores advertises something other than what our pods request. Both are
cheaper to catch here, before anything is deployed.
"""

# Where each rule comes from; files of NVIDIA/k8s-device-plugin at tag v0.20.0.
#
# Rules the plugin enforces (it refuses the config and does not start):
# - version is "v1" (absent or "" means v1): api/config/v1/config.go, parseConfigFrom.
# - timeSlicing / mps list at least one resource: api/config/v1/replicas.go,
#   ReplicatedResources.UnmarshalJSON ("no resources specified").
# - each resource has a name and replicas, replicas >= 2: replicas.go,
#   ReplicatedResource.UnmarshalJSON.
# - name and rename are resource names: "nvidia.com/" is prepended when missing, the result is at
#   most 63 characters, and the part after the first "/" is a lowercase DNS-1123 subdomain:
#   api/config/v1/resources.go NewResourceName, api/config/v1/consts.go MaxResourceNameLength.
# - devices is "all", a count > 0, or a list of GPU indices, MIG indices ("0:1"), GPU UUIDs or
#   MIG UUIDs: replicas.go, ReplicatedDevices.UnmarshalJSON and ReplicatedDeviceRef.Is*.
# - migStrategy none|single|mixed, deviceIDStrategy uuid|index, sharedDevicesAllocationPolicy
#   distributed|packed, deviceDiscoveryStrategy auto|nvml|tegra: cmd/nvidia-device-plugin/main.go
#   validateFlags, consts.go.
# - deviceListStrategy is one name or a list of envvar|volume-mounts|cdi-annotations|cdi-cri:
#   api/config/v1/flags.go deviceListStrategyFlag, api/config/v1/strategy.go.
# - MPS cannot be used with migStrategy mixed: main.go validateFlags.
# - mpsRoot is not empty: main.go validateFlags refuses an empty one with MPS (here refused
#   always; our DaemonSet sets MPS_ROOT, which overrides the file).
# - MPS replicas <= 48: cmd/mps-control-daemon/mps/device.go maxClients (16 on GPUs older than
#   compute capability 7.5, which this file cannot know).
# Semantics mirrored, not rules:
# - renameByDefault advertises <name>.shared: replicas.go, resources.go DefaultSharedRename.
# - MPS fails requests greater than one unless failRequestsGreaterThanOne is false; time-slicing
#   only when it is true: config.go NewConfig, internal/rm/rm.go ValidateRequest.
#
# Rules stricter than the plugin, which accepts these but silently ignores or merges them:
# - unknown keys: sigs.k8s.io/yaml drops them (config.go parseConfigFrom), so a typo would leave
#   GPUs unshared.
# - rename other than renameByDefault's, and devices other than "all": config.go
#   DisableResourceNamingInConfig (called by cmd/nvidia-device-plugin/main.go startPlugins)
#   resets both with a warning.
# - timeSlicing and mps both set: api/config/v1/sharing.go lets mps win; README.md "Shared Access
#   to GPUs" calls them mutually exclusive.
# - one resource name twice: internal/rm/device_map.go updateDeviceMapWithReplicas merges the
#   entries' replicas by device ID.
# - a resource the plugin has no devices for: device_map.go skips it. Time-slicing shares
#   nvidia.com/gpu and, with migStrategy mixed, nvidia.com/mig-*; MPS only full GPUs as
#   nvidia.com/gpu (README.md "With CUDA Time-Slicing", "With CUDA MPS";
#   internal/plugin/mps.go refuses MIG devices).

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias

from .errors import ConfigError

VERSION = "v1"
GPU_RESOURCE = "nvidia.com/gpu"
SHARED_SUFFIX = ".shared"
MAX_RESOURCE_NAME_LENGTH = 63
MPS_MAX_REPLICAS = 48

MIG_STRATEGIES = ("none", "single", "mixed")
DEVICE_DISCOVERY_STRATEGIES = ("auto", "nvml", "tegra")
DEVICE_LIST_STRATEGIES = ("envvar", "volume-mounts", "cdi-annotations", "cdi-cri")
DEVICE_ID_STRATEGIES = ("uuid", "index")
ALLOCATION_POLICIES = ("distributed", "packed")

Strategy: TypeAlias = Literal["time-slicing", "mps", "none"]
#: ``devices`` of a resource: "all", a count, or GPU/MIG indices and UUIDs.
ReplicatedDevices: TypeAlias = str | int | tuple[int | str, ...]

_PREFIX = "nvidia.com/"
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
# Mixed-strategy MIG resources: "mig-" + profile, with "+" (attributes) written as ".".
_MIG_RESOURCE = re.compile(r"nvidia\.com/mig-[0-9]+g\.[0-9]+gb([.-][a-z.]+)?")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UINT = re.compile(r"[0-9]+")

#: Flags attribute -> key in the file; "plugin." keys sit under ``flags.plugin``.
_FLAG_KEYS = {
    "mig_strategy": "migStrategy",
    "fail_on_init_error": "failOnInitError",
    "nvidia_driver_root": "nvidiaDriverRoot",
    "mps_root": "mpsRoot",
    "device_discovery_strategy": "deviceDiscoveryStrategy",
    "pass_device_specs": "plugin.passDeviceSpecs",
    "device_list_strategy": "plugin.deviceListStrategy",
    "device_id_strategy": "plugin.deviceIDStrategy",
    "shared_devices_allocation_policy": "plugin.sharedDevicesAllocationPolicy",
}


@dataclass(frozen=True, kw_only=True)
class ReplicatedResource:
    """One resource the plugin advertises ``replicas`` times per device."""

    name: str = GPU_RESOURCE
    replicas: int
    #: The plugin (v0.20.0) only honours the ``<name>.shared`` that renameByDefault implies.
    rename: str | None = None
    #: None (or "all") replicates every device; v0.20.0 ignores anything else.
    devices: ReplicatedDevices | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "replicas": self.replicas}
        if self.rename is not None:
            out["rename"] = self.rename
        if self.devices is not None:
            out["devices"] = _shown(self.devices)
        return out

    def validate(self, path: str) -> str:
        """The rules the plugin parses a resource with; returns the full resource name."""
        name = _resource_name(f"{path}.name", self.name)
        _devices(f"{path}.devices", self.devices)
        if isinstance(self.replicas, bool) or not isinstance(self.replicas, int):
            raise ConfigError(f"{path}.replicas must be an integer >= 2, got {self.replicas!r}")
        if self.replicas < 2:
            raise ConfigError(
                f"{path}.replicas must be >= 2, got {self.replicas}; "
                "for one unit per GPU leave the GPU unshared"
            )
        if self.rename is not None:
            _resource_name(f"{path}.rename", self.rename)
        return name


@dataclass(frozen=True)
class _Replicated:
    """What time-slicing and MPS share: resources to replicate and how requests are treated."""

    resources: tuple[ReplicatedResource, ...]
    rename_by_default: bool = False
    fail_requests_greater_than_one: bool = False

    KEY: ClassVar[str]
    STRATEGY: ClassVar[Strategy]
    FAILS_BY_DEFAULT: ClassVar[bool] = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.rename_by_default:
            out["renameByDefault"] = True
        if self.fail_requests_greater_than_one != self.FAILS_BY_DEFAULT:
            out["failRequestsGreaterThanOne"] = self.fail_requests_greater_than_one
        out["resources"] = [resource.to_dict() for resource in self.resources]
        return out

    def validate(self, path: str, mig_strategy: str) -> None:
        where = f"{path}.{self.KEY}"
        _boolean(f"{where}.renameByDefault", self.rename_by_default)
        _boolean(f"{where}.failRequestsGreaterThanOne", self.fail_requests_greater_than_one)
        if not isinstance(self.resources, (tuple, list)) or not self.resources:
            raise ConfigError(
                f"{where}.resources must list at least one resource, got {_shown(self.resources)!r}"
            )
        seen: dict[str, int] = {}
        for i, resource in enumerate(self.resources):
            at = f"{where}.resources[{i}]"
            if not isinstance(resource, ReplicatedResource):
                raise ConfigError(f"{at} must be a ReplicatedResource, got {resource!r}")
            name = resource.validate(at)
            if name in seen:
                raise ConfigError(
                    f"{at}.name {resource.name!r} repeats resources[{seen[name]}]; the plugin "
                    "would merge their replicas; list each resource once"
                )
            seen[name] = i
            self._check_supported(at, name, resource, mig_strategy)
            self._check_not_ignored(at, name, resource)

    def _check_supported(
        self, at: str, name: str, resource: ReplicatedResource, mig_strategy: str
    ) -> None:
        if name != GPU_RESOURCE and not (mig_strategy == "mixed" and _MIG_RESOURCE.fullmatch(name)):
            raise ConfigError(
                f"{at}.name {resource.name!r} names no device the plugin has, so it would skip "
                f"it; time-slicing shares {GPU_RESOURCE}, or nvidia.com/mig-<profile> "
                f"with migStrategy mixed (migStrategy is {mig_strategy!r})"
            )

    def _check_not_ignored(self, at: str, name: str, resource: ReplicatedResource) -> None:
        shared = name + SHARED_SUFFIX
        if resource.rename is not None and not (
            self.rename_by_default and _qualified(resource.rename) == shared
        ):
            raise ConfigError(
                f"{at}.rename {resource.rename!r} would be ignored: device plugin v0.20.0 does "
                f"not rename resources; set renameByDefault: true to advertise {shared!r}, "
                "or leave rename out"
            )
        if resource.devices is not None and resource.devices != "all":
            raise ConfigError(
                f"{at}.devices {_shown(resource.devices)!r} would be ignored: device plugin "
                "v0.20.0 replicates every device; use 'all' or leave devices out"
            )


@dataclass(frozen=True)
class TimeSlicing(_Replicated):
    """CUDA time-slicing: pods on one GPU take turns, with no memory or fault isolation."""

    KEY: ClassVar[str] = "timeSlicing"
    STRATEGY: ClassVar[Strategy] = "time-slicing"


@dataclass(frozen=True)
class Mps(_Replicated):
    """CUDA MPS: each of ``replicas`` clients gets an equal share of memory and compute."""

    KEY: ClassVar[str] = "mps"
    STRATEGY: ClassVar[Strategy] = "mps"
    #: The plugin fails requests for more than one MPS replica unless told otherwise.
    FAILS_BY_DEFAULT: ClassVar[bool] = True
    fail_requests_greater_than_one: bool = FAILS_BY_DEFAULT

    def validate(self, path: str, mig_strategy: str) -> None:
        if mig_strategy == "mixed":
            raise ConfigError(
                f"{path}.mps cannot be used with flags.migStrategy 'mixed' (the plugin refuses "
                "to start); use migStrategy none or single, or time-slicing"
            )
        super().validate(path, mig_strategy)

    def _check_supported(
        self, at: str, name: str, resource: ReplicatedResource, mig_strategy: str
    ) -> None:
        if name != GPU_RESOURCE:
            raise ConfigError(
                f"{at}.name {resource.name!r}: MPS shares only full GPUs, as {GPU_RESOURCE}"
            )
        if resource.replicas > MPS_MAX_REPLICAS:
            raise ConfigError(
                f"{at}.replicas must be <= {MPS_MAX_REPLICAS} with MPS (the most clients an MPS "
                f"server takes), got {resource.replicas}"
            )


@dataclass(frozen=True, kw_only=True)
class Flags:
    """The ``flags`` the plugin validates; unset ones keep the plugin's CLI/env value."""

    #: How MIG devices are advertised; the plugin's default is "none".
    mig_strategy: str = "none"
    fail_on_init_error: bool | None = None
    nvidia_driver_root: str | None = None
    mps_root: str | None = None
    device_discovery_strategy: str | None = None
    pass_device_specs: bool | None = None
    #: One strategy, or several.
    device_list_strategy: str | tuple[str, ...] | None = None
    device_id_strategy: str | None = None
    shared_devices_allocation_policy: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attr, key in _FLAG_KEYS.items():
            value = getattr(self, attr)
            if value is None or (attr == "mig_strategy" and value == "none"):
                continue
            section, _, leaf = key.rpartition(".")
            target = out.setdefault(section, {}) if section else out
            target[leaf] = _shown(value)
        return out

    def validate(self, path: str) -> None:
        def at(attr: str) -> str:
            return _at(path, _FLAG_KEYS[attr])

        _one_of(at("mig_strategy"), self.mig_strategy, MIG_STRATEGIES)
        _boolean(at("fail_on_init_error"), self.fail_on_init_error, optional=True)
        if self.nvidia_driver_root is not None:
            _string(at("nvidia_driver_root"), self.nvidia_driver_root)
        if self.mps_root is not None:
            _string(at("mps_root"), self.mps_root)
            if not self.mps_root:
                raise ConfigError(
                    f"{at('mps_root')} must be a path such as /run/nvidia/mps, got ''"
                )
        if self.device_discovery_strategy is not None:
            _one_of(
                at("device_discovery_strategy"),
                self.device_discovery_strategy,
                DEVICE_DISCOVERY_STRATEGIES,
            )
        _boolean(at("pass_device_specs"), self.pass_device_specs, optional=True)
        strategies = self.device_list_strategy
        if isinstance(strategies, str):
            strategies = (strategies,)
        if strategies is not None:
            if not isinstance(strategies, (tuple, list)):
                raise ConfigError(
                    f"{at('device_list_strategy')} must be a strategy or a list of them, "
                    f"got {strategies!r}"
                )
            for i, strategy in enumerate(strategies):
                _one_of(f"{at('device_list_strategy')}[{i}]", strategy, DEVICE_LIST_STRATEGIES)
        if self.device_id_strategy is not None:
            _one_of(at("device_id_strategy"), self.device_id_strategy, DEVICE_ID_STRATEGIES)
        if self.shared_devices_allocation_policy is not None:
            _one_of(
                at("shared_devices_allocation_policy"),
                self.shared_devices_allocation_policy,
                ALLOCATION_POLICIES,
            )


@dataclass(frozen=True)
class PluginConfig:
    """One config file of the device plugin (one key of its ConfigMap)."""

    #: How full GPUs are shared; None advertises each GPU once.
    sharing: TimeSlicing | Mps | None = None
    flags: Flags = field(default_factory=Flags)

    @property
    def strategy(self) -> Strategy:
        return "none" if self.sharing is None else self.sharing.STRATEGY

    def to_dict(self) -> dict[str, Any]:
        """The file as the plugin reads it; settings left at the plugin's default are omitted."""
        out: dict[str, Any] = {"version": VERSION}
        flags = self.flags.to_dict()
        if flags:
            out["flags"] = flags
        if self.sharing is not None:
            out["sharing"] = {self.sharing.KEY: self.sharing.to_dict()}
        return out

    def validate(self, field: str = "") -> None:
        """Raise ConfigError on the first rule the plugin (v0.20.0) would break on.

        Messages name the key in the file, prefixed with ``field`` when given.
        """
        if not isinstance(self.flags, Flags):
            raise ConfigError(f"{_at(field, 'flags')} must be a Flags, got {self.flags!r}")
        self.flags.validate(_at(field, "flags"))
        if self.sharing is None:
            return
        if not isinstance(self.sharing, (TimeSlicing, Mps)):
            raise ConfigError(
                f"{_at(field, 'sharing')} must be TimeSlicing, Mps or None, got {self.sharing!r}"
            )
        self.sharing.validate(_at(field, "sharing"), self.flags.mig_strategy)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], field: str = "config") -> PluginConfig:
        """A config as users and the upstream docs write it (parsed YAML), validated."""
        top = _section(data, field, ("version", "flags", "sharing"))
        version = top.get("version")
        if version not in (None, "", VERSION):
            raise ConfigError(
                f"{_at(field, 'version')} {version!r} is not supported; "
                f"the plugin reads {VERSION!r}"
            )
        config = cls(
            sharing=_sharing_from(top.get("sharing"), _at(field, "sharing")),
            flags=_flags_from(top.get("flags"), _at(field, "flags")),
        )
        config.validate(field)
        return config

    def resource_name(self) -> str:
        """The extended resource a pod requests for one share of a full GPU."""
        resource = self._full_gpu()
        if resource is None or self.sharing is None:
            return GPU_RESOURCE
        if resource.rename is not None:
            return _qualified(resource.rename)
        return GPU_RESOURCE + SHARED_SUFFIX if self.sharing.rename_by_default else GPU_RESOURCE

    def units_per_gpu(self) -> int:
        """How many of :meth:`resource_name` one physical GPU is advertised as."""
        resource = self._full_gpu()
        return 1 if resource is None else resource.replicas

    def _full_gpu(self) -> ReplicatedResource | None:
        if self.sharing is None:
            return None
        return next((r for r in self.sharing.resources if _qualified(r.name) == GPU_RESOURCE), None)


def time_slicing(
    replicas: int, *, rename_by_default: bool = False, fail_requests_greater_than_one: bool = False
) -> PluginConfig:
    """Every full GPU advertised as ``replicas`` units that pods share by time-slicing."""
    return PluginConfig(
        sharing=TimeSlicing(
            (ReplicatedResource(replicas=replicas),),
            rename_by_default=rename_by_default,
            fail_requests_greater_than_one=fail_requests_greater_than_one,
        )
    )


def mps(replicas: int) -> PluginConfig:
    """Every full GPU split by MPS into ``replicas`` equal shares of memory and compute."""
    return PluginConfig(sharing=Mps((ReplicatedResource(replicas=replicas),)))


def unshared() -> PluginConfig:
    """Each GPU advertised once, as the plugin does without sharing."""
    return PluginConfig()


def advertised_units(config: Mapping[str, Any]) -> dict[str, int]:
    """{resource: units per physical GPU} for full GPUs, from a config read back as YAML."""
    parsed = PluginConfig.from_dict(config)
    return {parsed.resource_name(): parsed.units_per_gpu()}


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _qualified(name: str) -> str:
    return name if name.startswith(_PREFIX) else _PREFIX + name


def _shown(value: Any) -> Any:
    """Values as the file has them: our tuples are its lists."""
    return list(value) if isinstance(value, tuple) else value


def _string(where: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")


def _boolean(where: str, value: Any, *, optional: bool = False) -> None:
    if not isinstance(value, bool) and not (optional and value is None):
        raise ConfigError(f"{where} must be true or false, got {value!r}")


def _one_of(where: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{where} {value!r} is not allowed; use one of {', '.join(allowed)}")


def _resource_name(where: str, value: Any) -> str:
    """The plugin's NewResourceName: the full name, or ConfigError."""
    if not isinstance(value, str):
        raise ConfigError(
            f"{where} must be a resource name such as {GPU_RESOURCE!r}, got {value!r}"
        )
    full = _qualified(value)
    if len(full) > MAX_RESOURCE_NAME_LENGTH:
        raise ConfigError(
            f"{where} {value!r} is {len(full)} characters as {full!r}; "
            f"at most {MAX_RESOURCE_NAME_LENGTH} are allowed"
        )
    if not _DNS_SUBDOMAIN.fullmatch(full.partition("/")[2]):
        raise ConfigError(
            f"{where} {value!r}: after {_PREFIX!r} a resource name must be a lowercase DNS-1123 "
            f"subdomain (a-z, 0-9, '-', '.'), e.g. {GPU_RESOURCE!r}"
        )
    return full


def _devices(where: str, devices: Any) -> None:
    """The plugin's ReplicatedDevices: "all", a count > 0, or a list of device references."""
    if devices is None or devices == "all":
        return
    if isinstance(devices, int) and not isinstance(devices, bool):
        if devices <= 0:
            raise ConfigError(f"{where} must be a count > 0, got {devices}")
        return
    if not isinstance(devices, (tuple, list)):
        raise ConfigError(
            f"{where} must be 'all', a count > 0 or a list of device indices or UUIDs, "
            f"got {_shown(devices)!r}"
        )
    for i, ref in enumerate(devices):
        if not _is_device_ref(ref):
            raise ConfigError(
                f"{where}[{i}] {ref!r} is not a GPU index (0), MIG index (0:1), GPU UUID "
                "(GPU-<uuid>) or MIG UUID (MIG-<uuid> or MIG-GPU-<uuid>/<gi>/<ci>)"
            )


def _is_device_ref(ref: Any) -> bool:
    if isinstance(ref, bool):
        return False
    if isinstance(ref, int):
        return 0 <= ref < 2**64
    if not isinstance(ref, str):
        return False
    indices = ref.split(":")
    if len(indices) <= 2 and all(_is_uint(part) for part in indices):
        return True
    if ref.startswith("GPU-"):
        return _is_uuid(ref[4:])
    if not ref.startswith("MIG-"):
        return False
    if _is_uuid(ref[4:]):
        return True
    parts = ref[4:].split("/")
    return (
        len(parts) == 3
        and parts[0].startswith("GPU-")
        and _is_uuid(parts[0][4:])
        and all(_is_uint(part) for part in parts[1:])
    )


def _is_uint(text: str) -> bool:
    return _UINT.fullmatch(text) is not None and int(text) < 2**64


def _is_uuid(text: str) -> bool:
    """google/uuid.Parse, as the plugin uses it: 32 hex digits, or the hyphenated form bare,
    after "urn:uuid:", or between any two characters."""
    if not text.isascii():
        return False
    if len(text) == 32:
        return re.fullmatch(r"[0-9a-fA-F]{32}", text) is not None
    if len(text) == 45 and text[:9].lower() == "urn:uuid:":
        text = text[9:]
    elif len(text) == 38:
        text = text[1:37]
    return _UUID.fullmatch(text) is not None


def _section(value: Any, where: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    """A mapping with only ``keys``: the plugin drops unknown keys silently, so typos would too."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {value!r}")
    unknown = [repr(key) for key in value if key not in keys]
    if unknown:
        raise ConfigError(
            f"{where} has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(keys)}"
        )
    return value


def _absent_if_null(value: Any) -> Any:
    """Sections the plugin holds by pointer or plain struct read ``null`` as not set."""
    return {} if value is None else value


def _sharing_from(value: Any, where: str) -> TimeSlicing | Mps | None:
    sharing = _section(_absent_if_null(value), where, ("timeSlicing", "mps"))
    if "timeSlicing" in sharing and sharing.get("mps") is not None:
        raise ConfigError(
            f"{where} sets both timeSlicing and mps, which are mutually exclusive (the plugin "
            "would use mps and ignore timeSlicing); keep one"
        )
    if "timeSlicing" in sharing:
        return TimeSlicing(**_replicated_from(sharing["timeSlicing"], f"{where}.timeSlicing"))
    if sharing.get("mps") is not None:
        return Mps(**_replicated_from(sharing["mps"], f"{where}.mps"))
    return None


def _replicated_from(value: Any, where: str) -> dict[str, Any]:
    options = {
        "renameByDefault": "rename_by_default",
        "failRequestsGreaterThanOne": "fail_requests_greater_than_one",
    }
    section = _section(value, where, (*options, "resources"))
    resources = section.get("resources")
    if not isinstance(resources, list):
        raise ConfigError(f"{where}.resources must be a list of resources, got {resources!r}")
    kwargs: dict[str, Any] = {
        "resources": tuple(
            _resource_from(item, f"{where}.resources[{i}]") for i, item in enumerate(resources)
        )
    }
    for key, attr in options.items():
        if section.get(key) is not None:
            kwargs[attr] = section[key]
    return kwargs


def _resource_from(value: Any, where: str) -> ReplicatedResource:
    item = _section(value, where, ("name", "replicas", "rename", "devices"))
    for key in ("name", "replicas"):
        if key not in item:
            raise ConfigError(f"{where}.{key} is required")
    for key in ("rename", "devices"):
        if key in item and item[key] is None:
            raise ConfigError(f"{where}.{key} is null; give a value or leave the key out")
    devices = item.get("devices")
    return ReplicatedResource(
        name=item["name"],
        replicas=item["replicas"],
        rename=item.get("rename"),
        devices=tuple(devices) if isinstance(devices, list) else devices,
    )


def _flags_from(value: Any, where: str) -> Flags:
    top_keys = tuple(key for key in _FLAG_KEYS.values() if "." not in key)
    plugin_keys = tuple(key.partition(".")[2] for key in _FLAG_KEYS.values() if "." in key)
    flags = _section(_absent_if_null(value), where, (*top_keys, "plugin"))
    plugin = _section(_absent_if_null(flags.get("plugin")), f"{where}.plugin", plugin_keys)
    kwargs: dict[str, Any] = {}
    for attr, key in _FLAG_KEYS.items():
        section, _, leaf = key.rpartition(".")
        raw = (plugin if section else flags).get(leaf)
        if raw is not None:
            kwargs[attr] = tuple(raw) if isinstance(raw, list) else raw
    return Flags(**kwargs)
