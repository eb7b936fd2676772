"""Pods that each take one GPU slice and report what they see: the proof of sharing."""

from __future__ import annotations

import re
from collections.abc import Sequence
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
#: How long ``pulumi up`` waits for the pods, from when the device plugin is ready: room to
#: pull the measure image (a few GB) and start five pods.
READY_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class ProbeImage:
    """An official image the probe runs in, pinned to an exact tag."""

    reference: str
    #: Compressed (pulled) size for linux/amd64, GB.
    compressed_gb: float


#: The image each probe mode runs in. ``nvidia-smi`` needs only Python's standard library:
#: the NVIDIA container toolkit mounts the host's ``nvidia-smi`` and NVML into the container
#: (NVIDIA_DRIVER_CAPABILITIES=utility), and those are glibc binaries, so a Debian image, not
#: Alpine. ``measure`` imports torch with CUDA.
PROBE_IMAGES: dict[str, ProbeImage] = {
    # 43.4 MB: docker-library/repo-info, repos/python/remote/3.14.7-slim-trixie.md.
    "nvidia-smi": ProbeImage("python:3.14.7-slim-trixie", 0.043),
    # An estimate: CUDA 12.4 runtime libraries, cuDNN 9 and torch, about 3.3 GB.
    "measure": ProbeImage("pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime", 3.3),
}
#: The image of the pod without a slice. Its config sets NVIDIA_VISIBLE_DEVICES=all
#: (gitlab.com/nvidia/container-images/cuda, dist/12.6.3/ubuntu2404/base/Dockerfile), so it
#: asks for every GPU as any CUDA image does; it has no Python, so that pod's check is shell.
#: Size an estimate: Ubuntu 24.04 (about 30 MB) with cuda-cudart and cuda-compat, 0.1 GB.
NO_SLICE_IMAGE = ProbeImage("nvidia/cuda:12.6.3-base-ubuntu24.04", 0.1)
#: Measure mode needs torch with CUDA, which only an image can tell; the rule we can check
#: offline is the name: its repository's last part names PyTorch (pytorch/pytorch,
#: nvcr.io/nvidia/pytorch, AWS's .../pytorch-training, a mirror's .../pytorch).
MEASURE_IMAGE_REPOSITORY = r"(?:.*/)?[^/]*pytorch[^/]*"


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
    #: Image the pods run, pinned (a tag other than latest, or a digest); in measure mode a
    #: PyTorch image. Default ``None``: the mode's image in ``PROBE_IMAGES``.
    image: str | None = None
    #: Namespace created for the pods. Default ``"gpu-sharing-verification"``.
    namespace: str = conventions.VERIFICATION_NAMESPACE
    #: Seconds ``pulumi up`` waits for every pod to be Ready before failing. Default 900.
    ready_timeout_seconds: int = READY_TIMEOUT_SECONDS
    #: What the pods are created after, so ``ready_timeout_seconds`` counts from when the
    #: GPU nodes advertise slices: the device plugin (an ``NvidiaDevicePlugin``, whose
    #: DaemonSets wait for the nodes) or the node groups whose hosts run their own plugin
    #: (Bottlerocket); and the admission policy that must judge them. The namespace and
    #: ConfigMap need only the API server. Default ``()``.
    pods_after: Sequence[pulumi.Resource] = ()

    def validate(self) -> None:
        validate_probe(self.pods, self.mode, self.image)
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

    @property
    def image_reference(self) -> str:
        return self.image or PROBE_IMAGES[self.mode].reference


def probe_image_gb(image: str) -> float:
    """Compressed size of a probe image: the table's, or for another image, whose size is
    unknown here, the largest in the table."""
    known = {probe.reference: probe.compressed_gb for probe in PROBE_IMAGES.values()}
    return known.get(image, max(known.values()))


def validate_probe(pods: int, mode: str, image: str | None) -> None:
    validation.integer("verificationPods", pods, 1, 1000)
    validation.one_of("verificationMode", mode, PROBE_MODES)
    if image is None:
        return
    repository = validation.pinned_image("verificationImage", image)["repository"]
    if mode == "measure" and not re.fullmatch(MEASURE_IMAGE_REPOSITORY, repository):
        raise ConfigError(
            f"verificationImage {image!r} cannot run verificationMode measure, which imports "
            "torch with CUDA: use a PyTorch image (its repository's name contains pytorch), "
            f"e.g. {PROBE_IMAGES['measure'].reference}"
        )


class VerificationWorkload(pulumi.ComponentResource):
    """A Deployment of N probe pods in their own namespace, and one of a pod without a slice.

    ``pulumi up`` waits until all N are Ready, so it fails, naming the pods left Pending
    for lack of ``resource_name``, when the nodes advertise fewer slices than N. Give it
    ``pods_after`` so that wait starts once the GPU nodes advertise slices. The pod without
    a slice runs an image that asks for every GPU and must see none; ``verify`` reports
    whether it does. Both are Deployments so that the Cluster Autoscaler may move them and
    take their GPU nodes down to zero.
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
        deny = objects["NetworkPolicy"]
        deny["metadata"]["namespace"] = self.namespace
        k8s.networking.v1.NetworkPolicy(
            f"{name}-deny-all", metadata=deny["metadata"], spec=deny["spec"], opts=child
        )

        program = objects["ConfigMap"]
        program["metadata"]["namespace"] = self.namespace
        program["data"] = {PROBE_PROGRAM.name: PROBE_PROGRAM.read_text(encoding="utf-8")}
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-program", metadata=program["metadata"], data=program["data"], opts=child
        )

        deployment = _deployment(objects[f"Deployment/{conventions.VERIFICATION_APP}"], args)
        deployment["metadata"]["namespace"] = self.namespace
        # A new probe program rolls the pods: the running ones would keep the old one.
        deployment["spec"]["template"]["metadata"].setdefault("annotations", {})[
            "eks-gpu-sharing/program-hash"
        ] = config_hash(program["data"])
        pods_opts = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[config_map, *args.pods_after])
        )
        k8s.apps.v1.Deployment(
            f"{name}-pods",
            metadata=deployment["metadata"],
            spec=deployment["spec"],
            opts=pods_opts,
        )
        no_slice = objects[f"Deployment/{conventions.NO_SLICE_APP}"]
        no_slice["metadata"]["namespace"] = self.namespace
        pod = no_slice["spec"]["template"]["spec"]
        pod["containers"][0]["image"] = NO_SLICE_IMAGE.reference
        pod["nodeSelector"][conventions.PLUGIN_CONFIG_NODE_LABEL] = args.plugin_config_key
        k8s.apps.v1.Deployment(
            f"{name}-no-slice",
            metadata=no_slice["metadata"],
            spec=no_slice["spec"],
            opts=pods_opts,
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
    container["image"] = args.image_reference
    for env in container["env"]:
        if env["name"] == "PROBE_MODE":
            env["value"] = args.mode
    for amounts in (container["resources"]["requests"], container["resources"]["limits"]):
        del amounts[conventions.GPU_RESOURCE]
        amounts[args.resource_name] = "1"
    return deployment
