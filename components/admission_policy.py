"""The admission policy that makes a GPU slice the only way a pod reaches a GPU."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from . import conventions, manifest_files, validation
from .options import child_options

#: Namespaces the binding leaves out besides the plugin's: the cluster's own agents.
SYSTEM_NAMESPACES: tuple[str, ...] = ("kube-system",)


@dataclass(frozen=True, kw_only=True)
class GpuAdmissionPolicyArgs:
    """Inputs of :class:`GpuAdmissionPolicy`."""

    #: Kubernetes provider of the target cluster (required); Kubernetes 1.30 or newer
    #: (admissionregistration.k8s.io/v1).
    provider: k8s.Provider
    #: Namespace of the device plugin, whose pods select GPUs themselves and are left out.
    #: Default ``"nvidia-device-plugin"``.
    device_plugin_namespace: str = conventions.DEVICE_PLUGIN_NAMESPACE

    def validate(self) -> None:
        validation.matches(
            "device_plugin_namespace",
            self.device_plugin_namespace,
            validation.DNS_LABEL,
            "a valid namespace name",
        )


def render(device_plugin_namespace: str) -> dict[str, dict]:
    """The policy and its binding, by kind, with the namespaces the binding leaves out."""
    objects = manifest_files.load("admission-policy.yaml")
    (selector,) = objects["ValidatingAdmissionPolicyBinding"]["spec"]["matchResources"][
        "namespaceSelector"
    ]["matchExpressions"]
    selector["values"] = [device_plugin_namespace, *SYSTEM_NAMESPACES]
    return objects


class GpuAdmissionPolicy(pulumi.ComponentResource):
    """A ValidatingAdmissionPolicy and its binding: the API server refuses pods that select
    GPUs by env var, device list mount, device node or privilege instead of a slice."""

    def __init__(
        self, name: str, args: GpuAdmissionPolicyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args.validate()
        super().__init__("eks-gpu-sharing:index:GpuAdmissionPolicy", name, None, opts)
        child = child_options(self, opts, provider=args.provider)
        objects = render(args.device_plugin_namespace)
        policy = objects["ValidatingAdmissionPolicy"]
        created = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            f"{name}-policy", metadata=policy["metadata"], spec=policy["spec"], opts=child
        )
        binding = objects["ValidatingAdmissionPolicyBinding"]
        k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            f"{name}-binding",
            metadata=binding["metadata"],
            spec=binding["spec"],
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[created])),
        )
        self.register_outputs({})
