"""Pods that each take one GPU slice and report what they see: the proof of sharing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from . import conventions, manifest_files, validation
from .errors import ConfigError
from .options import child_options
from .sharing import config_hash

#: How the probe runs: ``nvidia-smi`` only, or also a matmul loop whose throughput
#: shows each pod's share of the GPU.
PROBE_MODES: tuple[str, ...] = ("nvidia-smi", "measure")
PROBE_PROGRAM = Path(__file__).resolve().parent / "gpu_probe.py"
#: How long ``pulumi up`` waits for the pods (the image is a few GB).
READY_TIMEOUT_SECONDS = 900


@dataclass(frozen=True, kw_only=True)
class VerificationWorkloadArgs:
    """Inputs of :class:`VerificationWorkload`."""

    #: Kubernetes provider of the target cluster (required), with
    #: ``enable_config_map_mutable=True`` so a new probe program updates its ConfigMap in place.
    provider: k8s.Provider
    #: Number of pods, each requesting one unit of ``resource_name``. Default 5.
    pods: int = 5
    #: Extended resource each pod requests: ``nvidia.com/gpu``, or the shared/renamed
    #: resource of the sharing config. Default ``"nvidia.com/gpu"``.
    resource_name: str = conventions.GPU_RESOURCE
    #: Device plugin config key of the nodes the pods run on (node label
    #: ``nvidia.com/device-plugin.config``). Default ``"default"``.
    plugin_config_key: str = conventions.DEFAULT_PLUGIN_CONFIG_KEY
    #: ``"nvidia-smi"`` (report only) or ``"measure"`` (also run a matmul loop and report
    #: its TFLOP/s). Default ``"nvidia-smi"``.
    mode: str = "nvidia-smi"
    #: Namespace created for the pods. Default ``"gpu-sharing-verification"``.
    namespace: str = conventions.VERIFICATION_NAMESPACE
    #: Seconds ``pulumi up`` waits for every pod to be Ready before failing. Default 900.
    ready_timeout_seconds: int = READY_TIMEOUT_SECONDS

    def validate(self) -> None:
        validate_probe(self.pods, self.mode)
        validation.matches(
            "resource_name",
            self.resource_name,
            validation.EXTENDED_RESOURCE,
            "an extended resource name like nvidia.com/gpu",
        )
        validation.matches(
            "namespace",
            self.namespace,
            validation.DNS_LABEL,
            "a valid namespace name",
        )
        validation.integer("ready_timeout_seconds", self.ready_timeout_seconds, 30)
        if not PROBE_PROGRAM.is_file():
            raise ConfigError(f"the probe program is missing: {PROBE_PROGRAM}")


def validate_probe(pods: int, mode: str) -> None:
    validation.integer("verificationPods", pods, 1, 1000)
    validation.one_of("verificationMode", mode, PROBE_MODES)


class VerificationWorkload(pulumi.ComponentResource):
    """A Deployment of N probe pods in their own namespace.

    ``pulumi up`` waits until all N are Ready, so it fails, naming the pods left Pending
    for lack of ``resource_name``, when the nodes advertise fewer slices than N. Create it
    with ``depends_on`` the device plugin and node groups.
    """

    namespace: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: VerificationWorkloadArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        args.validate()
        super().__init__("eks-gpu-sharing:index:VerificationWorkload", name, None, opts)
        child = child_options(self, opts, provider=args.provider)
        objects = manifest_files.load("verification-workload.yaml")

        namespace = objects["Namespace"]
        namespace["metadata"]["name"] = args.namespace
        ns = k8s.core.v1.Namespace(f"{name}-ns", metadata=namespace["metadata"], opts=child)
        self.namespace = ns.metadata.name

        program = objects["ConfigMap"]
        program["metadata"]["namespace"] = self.namespace
        program["data"] = {PROBE_PROGRAM.name: PROBE_PROGRAM.read_text(encoding="utf-8")}
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-program", metadata=program["metadata"], data=program["data"], opts=child
        )

        deployment = _deployment(objects["Deployment"], args)
        deployment["metadata"]["namespace"] = self.namespace
        # A new probe program rolls the pods: the running ones would keep the old one.
        deployment["spec"]["template"]["metadata"].setdefault("annotations", {})[
            "eks-gpu-sharing/program-hash"
        ] = config_hash(program["data"])
        k8s.apps.v1.Deployment(
            f"{name}-pods",
            metadata=deployment["metadata"],
            spec=deployment["spec"],
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[config_map])
            ),
        )
        self.register_outputs({"namespace": self.namespace})


def _deployment(deployment: dict, args: VerificationWorkloadArgs) -> dict:
    """The manifest's Deployment with our pod count, resource and mode."""
    deployment["spec"]["replicas"] = args.pods
    # pulumi-kubernetes waits this long for every replica to be Ready, then fails the
    # update naming the pods that are not (e.g. Pending: Insufficient nvidia.com/gpu).
    deployment["metadata"].setdefault("annotations", {})["pulumi.com/timeoutSeconds"] = str(
        args.ready_timeout_seconds
    )
    pod = deployment["spec"]["template"]["spec"]
    pod["nodeSelector"][conventions.PLUGIN_CONFIG_NODE_LABEL] = args.plugin_config_key
    container = pod["containers"][0]
    for env in container["env"]:
        if env["name"] == "PROBE_MODE":
            env["value"] = args.mode
    for amounts in (container["resources"]["requests"], container["resources"]["limits"]):
        del amounts[conventions.GPU_RESOURCE]
        amounts[args.resource_name] = "1"
    return deployment
