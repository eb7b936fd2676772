"""The admission policy's CEL, evaluated offline with cel-python against real and hostile pods.

The API server evaluates a ValidatingAdmissionPolicy with cel-go and the Kubernetes CEL
libraries; ``celpy`` (cel-python) implements the CEL language spec, and the policy uses
only the spec's standard functions (``has``, ``all``, ``in``, ``startsWith``, ``contains``,
``matches`` with RE2, which both use), so both give the same answers. Variables are
evaluated in order and handed over as ``variables``, as Kubernetes does
(kubernetes/kubernetes staging/src/k8s.io/apiserver/pkg/admission/plugin/policy/validating).
Kubernetes compiles ``object`` as a dynamic type (staging/src/k8s.io/apiserver/pkg/
admission/plugin/cel/compile.go, ``createEnvForOpts``), as celpy reads the JSON here, so
joining containers, init and ephemeral containers into one list compiles on both.
"""

from __future__ import annotations

import copy
from typing import Any

import celpy
import kubernetes_validate
import pulumi_kubernetes as k8s
import pytest

from components import ConfigError, GpuAdmissionPolicy, GpuAdmissionPolicyArgs, conventions
from components.catalog import EKS_STANDARD_SUPPORT_ENDS
from components.tools.plan import kubernetes_objects
from tests.conftest import run_program, run_stack

POD_SPEC = {
    "DaemonSet": ("spec", "template"),
    "Deployment": ("spec", "template"),
}


def build(**kwargs: Any) -> dict[str, dict[str, Any]]:
    def program() -> None:
        provider = k8s.Provider("k8s", kubeconfig="{}")
        GpuAdmissionPolicy("gpu", GpuAdmissionPolicyArgs(provider=provider, **kwargs))

    return {o["kind"]: o for o in kubernetes_objects(run_program(program))}


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, Any]]:
    return build()


class Policy:
    """A ValidatingAdmissionPolicy's CEL, compiled once, and its binding's namespace rule."""

    def __init__(self, policy: dict[str, Any], binding: dict[str, Any]) -> None:
        env = celpy.Environment()
        spec = policy["spec"]
        self.variables = [
            (v["name"], env.program(env.compile(v["expression"]))) for v in spec["variables"]
        ]
        self.validations = [
            (env.program(env.compile(v["expression"])), " ".join(v["message"].split()))
            for v in spec["validations"]
        ]
        (self.selector,) = binding["spec"]["matchResources"]["namespaceSelector"][
            "matchExpressions"
        ]

    def refusals(self, pod: dict[str, Any]) -> list[str]:
        """The messages of every validation the pod fails, as the CEL alone decides."""
        activation: dict[str, Any] = {"object": celpy.json_to_cel(pod)}
        variables: dict[str, Any] = {}
        for name, program in self.variables:
            variables[name] = program.evaluate({**activation, "variables": variables})
        activation["variables"] = celpy.celtypes.MapType(
            {celpy.celtypes.StringType(k): v for k, v in variables.items()}
        )
        refused = []
        for program, message in self.validations:
            result = program.evaluate(activation)
            assert isinstance(result, celpy.celtypes.BoolType), (message, result)
            if not result:
                refused.append(message)
        return refused

    def binds(self, namespace: str) -> bool:
        """Whether the binding applies in ``namespace`` (its kubernetes.io/metadata.name)."""
        assert self.selector["key"] == "kubernetes.io/metadata.name"
        assert self.selector["operator"] == "NotIn"
        return namespace not in self.selector["values"]

    def admits(self, pod: dict[str, Any]) -> bool:
        return not self.binds(pod["metadata"]["namespace"]) or not self.refusals(pod)


@pytest.fixture(scope="module")
def policy(objects) -> Policy:
    return Policy(objects["ValidatingAdmissionPolicy"], objects["ValidatingAdmissionPolicyBinding"])


def pod_of(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod a Deployment or DaemonSet creates from its template."""
    template = copy.deepcopy(workload["spec"]["template"])
    metadata = {**template["metadata"], "name": "p", "namespace": workload["metadata"]["namespace"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


@pytest.fixture(scope="module")
def stack_pods() -> dict[str, dict[str, Any]]:
    """Every pod the multi stack (time-slicing and MPS) creates, by workload name."""
    return {
        obj["metadata"]["name"]: pod_of(obj)
        for obj in kubernetes_objects(run_stack("multi"))
        if obj["kind"] in POD_SPEC
    }


def hostile(**spec: Any) -> dict[str, Any]:
    """A pod in ``default`` that tolerates the GPU taint and requests no GPU."""
    container = {"name": "x", "image": "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x", "namespace": "default", **spec.pop("metadata", {})},
        "spec": {
            "containers": [container],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            **spec,
        },
    }


# --- Our own pods pass, the plugin's pass only because their namespace is left out -----------


def test_our_verification_pods_are_admitted(policy, stack_pods):
    for name in (conventions.VERIFICATION_APP, conventions.NO_SLICE_APP):
        pod = stack_pods[name]
        assert policy.binds(pod["metadata"]["namespace"])
        assert policy.refusals(pod) == [], name


def test_the_plugin_pods_are_admitted_only_because_their_namespace_is_left_out(policy, stack_pods):
    """They set NVIDIA_VISIBLE_DEVICES, mount /run/nvidia and (MPS) run privileged."""
    plugin = stack_pods["nvidia-device-plugin"]
    mps = stack_pods["nvidia-device-plugin-mps-control-daemon"]
    for pod in (plugin, mps):
        assert pod["metadata"]["namespace"] == conventions.DEVICE_PLUGIN_NAMESPACE
        assert policy.admits(pod)
        assert not policy.binds(pod["metadata"]["namespace"])
    assert any("NVIDIA device selection" in m for m in policy.refusals(plugin))
    assert any("privileged" in m for m in policy.refusals(mps))
    elsewhere = copy.deepcopy(plugin)
    elsewhere["metadata"]["namespace"] = "default"
    assert not policy.admits(elsewhere)


def test_the_binding_leaves_out_the_plugin_namespace_given_and_kube_system():
    binding = build(device_plugin_namespace="gpu-plugin")["ValidatingAdmissionPolicyBinding"]
    (selector,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert selector["values"] == ["gpu-plugin", "kube-system"]
    assert binding["spec"]["policyName"] == "gpu-slices-only"
    assert binding["spec"]["validationActions"] == ["Deny"]


def test_a_pod_without_anything_gpu_is_admitted(policy):
    fine = hostile(
        container={
            "env": [
                {"name": "NVIDIA_REQUIRE_CUDA", "value": "cuda>=12"},
                {"name": "A", "value": ""},
            ],
            "envFrom": [{"prefix": "APP_", "configMapRef": {"name": "settings"}}],
            "volumeMounts": [{"name": "logs", "mountPath": "/var/log/app"}],
            "securityContext": {"privileged": False},
        },
        metadata={"annotations": {"example.com/owner": "team-a"}},
        volumes=[
            {"name": "logs", "hostPath": {"path": "/var/log"}},
            {"name": "d", "hostPath": {"path": "/devices-not"}},
        ],
    )
    assert policy.refusals(fine) == []


# --- Hostile pods are refused, each by the rule it breaks -------------------------------------

DEVICE_ENV = (
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "NVIDIA_MIG_CONFIG_DEVICES",
    "NVIDIA_MIG_MONITOR_DEVICES",
    "NVIDIA_IMEX_CHANNELS",
    "NVIDIA_GDS",
    "NVIDIA_MOFED",
    "NVIDIA_GDRCOPY",
    "NVIDIA_NVSWITCH",
)


@pytest.mark.parametrize("name", DEVICE_ENV)
def test_every_device_env_var_the_toolkit_reads_is_refused(policy, name):
    """NVIDIA/nvidia-container-toolkit internal/config/image/envvars.go (selection) and
    internal/modifier/cdi.go (NVIDIA_GDS, _MOFED, _GDRCOPY, _NVSWITCH add device nodes)."""
    pod = hostile(container={"env": [{"name": name, "value": "all"}]})
    (message,) = policy.refusals(pod)
    assert "NVIDIA device selection env var" in message


@pytest.mark.parametrize("where", ["initContainers", "ephemeralContainers"])
def test_init_and_ephemeral_containers_are_checked_too(policy, where):
    pod = hostile()
    pod["spec"][where] = [
        {
            "name": "y",
            "image": "busybox:1.37",
            "env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}],
        }
    ]
    assert len(policy.refusals(pod)) == 1


def test_ephemeral_containers_are_checked_on_their_own_subresource(objects):
    (rule,) = objects["ValidatingAdmissionPolicy"]["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["pods", "pods/ephemeralcontainers"]
    assert rule["operations"] == ["CREATE", "UPDATE"]


@pytest.mark.parametrize("prefix", [None, "", "NVIDIA_", "NVI", "NVIDIA_X_"])
def test_env_from_must_keep_its_keys_out_of_nvidia(policy, prefix):
    source: dict[str, Any] = {"configMapRef": {"name": "gpu"}}
    if prefix is not None:
        source["prefix"] = prefix
    (message,) = policy.refusals(hostile(container={"envFrom": [source]}))
    assert "envFrom needs a prefix" in message


@pytest.mark.parametrize(
    "path",
    [
        "/var/run/nvidia-container-devices/all",
        "/var/run/nvidia-container-devices/GPU-1",
        "/run/nvidia-container-devices",
    ],
)
def test_the_toolkits_volume_mount_device_list_is_refused(policy, path):
    """cuda_image.go: DeviceListAsVolumeMountsRoot, read when volume-mounts are accepted."""
    pod = hostile(
        container={"volumeMounts": [{"name": "e", "mountPath": path}]},
        volumes=[{"name": "e", "emptyDir": {}}],
    )
    (message,) = policy.refusals(pod)
    assert "nvidia-container-devices" in message


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/dev",
        "/dev/",
        "/dev/nvidia0",
        "/dev/nvidiactl",
        "//dev/nvidia-uvm",
        "/dev/dri",
        "/run/nvidia/mps",
        "/var/run/nvidia",
        "/run",
        "/var",
        "/var/",
        "/var/run",
        "/var/lib",
        "/var/lib/kubelet",
        "/var/lib/kubelet/device-plugins",
        "/var/lib/kubelet/device-plugins/kubelet.sock",
    ],
)
def test_host_paths_to_device_nodes_and_their_parents_are_refused(policy, path):
    pod = hostile(volumes=[{"name": "h", "hostPath": {"path": path}}])
    (message,) = policy.refusals(pod)
    assert "hostPath" in message


def test_privileged_containers_are_refused(policy):
    """The toolkit honours the image's NVIDIA_VISIBLE_DEVICES for them whatever its settings."""
    (message,) = policy.refusals(hostile(container={"securityContext": {"privileged": True}}))
    assert "privileged" in message


def test_cdi_annotations_are_refused(policy):
    pod = hostile(metadata={"annotations": {"cdi.k8s.io/gpu": "nvidia.com/gpu=all"}})
    (message,) = policy.refusals(pod)
    assert "cdi.k8s.io/" in message


def test_a_hostile_pod_is_refused_in_any_tenant_namespace(policy):
    pod = hostile(container={"env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]})
    for namespace in ("default", conventions.VERIFICATION_NAMESPACE, "team-a"):
        pod["metadata"]["namespace"] = namespace
        assert not policy.admits(pod)


# --- The objects themselves --------------------------------------------------------------------


@pytest.mark.parametrize("version", sorted(EKS_STANDARD_SUPPORT_ENDS))
def test_policy_and_binding_are_schema_valid_for_every_supported_version(objects, version):
    """admissionregistration.k8s.io/v1 is GA since Kubernetes 1.30; we support only newer."""
    assert min(EKS_STANDARD_SUPPORT_ENDS, key=lambda v: tuple(map(int, v.split(".")))) >= "1.30"
    for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
        kubernetes_validate.validate(objects[kind], f"{version}.0", strict=True)


def test_an_invalid_plugin_namespace_is_refused_naming_the_field():
    with pytest.raises(ConfigError, match="device_plugin_namespace 'Not_A_Name'"):
        GpuAdmissionPolicyArgs(provider=None, device_plugin_namespace="Not_A_Name").validate()  # type: ignore[arg-type]


def test_the_demo_stack_creates_the_policy_before_the_verification_pods(demo_plan):
    policies = demo_plan.by_type(
        "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
    )
    assert len(policies) == 1
    (policy,) = policies
    (binding,) = demo_plan.by_type(
        "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
    )
    # The verification pods; the Cluster Autoscaler's Deployment reaches no GPU, so the
    # policy admits it whenever it comes, and it does not wait for it.
    pods = [
        r
        for r in demo_plan.by_type("kubernetes:apps/v1:Deployment")
        if r["parent"].endswith("::gpu-sharing-verification")
    ]
    assert len(pods) == 2
    for pod in pods:
        assert {policy["urn"], binding["urn"]} <= set(pod["dependencies"])
