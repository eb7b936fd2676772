"""VerificationWorkload under mocks: N pods, one slice each, restricted, awaited by `up`."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from components import ConfigError, VerificationWorkload, VerificationWorkloadArgs, verification
from components.tools.plan import kubernetes_objects
from components.tools.verify_checks import latest_sample
from components.verification import PROBE_PROGRAM
from tests.conftest import run_program

MANIFESTS = Path(__file__).resolve().parent.parent / "manifests"


def build(**kwargs):
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        VerificationWorkload("v", VerificationWorkloadArgs(provider=provider, **kwargs))

    return run_program(program)


def deployment(plan, name: str = "gpu-sharing-verification"):
    (found,) = [
        o
        for o in kubernetes_objects(plan)
        if o["kind"] == "Deployment" and o["metadata"]["name"] == name
    ]
    return found


def test_five_pods_each_requesting_one_gpu_slice():
    obj = deployment(build())
    assert obj["spec"]["replicas"] == 5
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["readinessProbe"]["exec"]["command"] == ["test", "-f", "/tmp/ready"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PROBE_MODE"] == "nvidia-smi" and env["PROBE_INTERVAL_SECONDS"] == "5"


def test_pods_run_the_shipped_probe_program():
    plan = build()
    program = next(o for o in kubernetes_objects(plan) if o["kind"] == "ConfigMap")
    assert program["data"] == {"gpu_probe.py": PROBE_PROGRAM.read_text()}
    spec = deployment(plan)["spec"]["template"]["spec"]
    assert spec["containers"][0]["command"] == ["python3", "/opt/gpu-probe/gpu_probe.py"]
    assert spec["volumes"][0]["configMap"]["name"] == program["metadata"]["name"]


def test_pulumi_up_waits_for_every_pod_and_fails_after_the_timeout():
    plan = build(ready_timeout_seconds=600)
    (resource,) = [r for r in plan.by_type("kubernetes:apps/v1:Deployment")
                   if r["name"] == "v-pods"]
    # The provider's await logic fails the update (naming Pending pods) after the timeout.
    assert resource["inputs"]["metadata"].get("annotations", {}).get("pulumi.com/skipAwait") is None
    assert "pulumi.com/timeoutSeconds" in resource["inputs"]["metadata"]["annotations"]
    assert resource["inputs"]["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == "600"


def test_restricted_pod_security():
    plan = build()
    namespace = next(o for o in kubernetes_objects(plan) if o["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    spec = deployment(plan)["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = spec["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def test_renamed_resource_measure_mode_and_config_key():
    plan = build(
        pods=2, resource_name="nvidia.com/gpu.shared", mode="measure", plugin_config_key="mps-x2"
    )
    spec = deployment(plan)["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["resources"]["limits"] == {"memory": "2Gi", "nvidia.com/gpu.shared": "1"}
    assert "nvidia.com/gpu" not in container["resources"]["requests"]
    assert {"name": "PROBE_MODE", "value": "measure"} in container["env"]
    assert spec["nodeSelector"]["nvidia.com/device-plugin.config"] == "mps-x2"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pods": 0}, "verificationPods must be between 1 and 1000, got 0"),
        ({"mode": "fast"}, "verificationMode 'fast'; use one of nvidia-smi, measure"),
        (
            {"resource_name": "gpu"},
            "resource_name 'gpu' is not an extended resource name like nvidia.com/gpu",
        ),
        ({"namespace": "UPPER"}, "namespace 'UPPER' is not a valid namespace name"),
        ({"ready_timeout_seconds": 29}, "ready_timeout_seconds must be >= 30, got 29"),
    ],
)
def test_bad_args_are_rejected(kwargs, message):
    with pytest.raises(ConfigError) as error:
        VerificationWorkloadArgs(provider=None, **kwargs).validate()
    assert str(error.value) == message


def test_the_edges_of_what_is_accepted():
    VerificationWorkloadArgs(
        provider=None, resource_name="example.com/Shared_GPU.x-1", ready_timeout_seconds=30
    ).validate()


def test_a_missing_probe_program_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(verification, "PROBE_PROGRAM", tmp_path / "gone.py")
    with pytest.raises(ConfigError) as error:
        VerificationWorkloadArgs(provider=None).validate()
    assert str(error.value) == f"the probe program is missing: {tmp_path / 'gone.py'}"


def test_a_new_probe_program_and_only_that_rolls_the_pods(monkeypatch, tmp_path):
    """Pods read the program once, at start: a new one must change the pod template."""
    template = deployment(build())["spec"]["template"]
    assert deployment(build())["spec"]["template"] == template
    edited = tmp_path / PROBE_PROGRAM.name
    edited.write_text(PROBE_PROGRAM.read_text() + "\n# edited\n")
    monkeypatch.setattr(verification, "PROBE_PROGRAM", edited)
    assert deployment(build())["spec"]["template"] != template
    assert "eks-gpu-sharing/program-hash" in template["metadata"]["annotations"]


def test_what_the_workload_is_given_to_wait_for_every_object_waits_for():
    """``depends_on`` on the component reaches each of its objects (options.child_options)."""

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        first = k8s.core.v1.Namespace("first", opts=pulumi.ResourceOptions(provider=provider))
        VerificationWorkload(
            "v",
            VerificationWorkloadArgs(provider=provider),
            opts=pulumi.ResourceOptions(depends_on=[first]),
        )

    plan = run_program(program)
    first = next(r["urn"] for r in plan.resources if r["name"] == "first")
    objects = [r for r in plan.resources if r["type"].startswith("kubernetes:") and
               r["name"].startswith("v-")]
    assert len(objects) == 5
    assert all(first in r["dependencies"] for r in objects)


def test_an_image_that_is_not_a_string_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match="verificationImage 123 is not an image reference"):
        VerificationWorkloadArgs(provider=None, image=123).validate()  # type: ignore[arg-type]


def test_each_mode_runs_in_its_own_pinned_image():
    """nvidia-smi mode needs Python's standard library only: the small official image."""
    for mode, image in verification.PROBE_IMAGES.items():
        container = deployment(build(mode=mode))["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == image.reference
    assert verification.PROBE_IMAGES["nvidia-smi"].reference == "python:3.14.7-slim-trixie"
    assert verification.PROBE_IMAGES["measure"].reference.startswith("pytorch/pytorch:")


def test_the_small_image_is_a_fraction_of_the_pytorch_one():
    small, large = (verification.PROBE_IMAGES[m].compressed_gb for m in ("nvidia-smi", "measure"))
    assert small < 0.05 < 1 < large


@pytest.mark.parametrize(
    ("mode", "image"),
    [
        ("nvidia-smi", "123456789012.dkr.ecr.us-west-2.amazonaws.com/mirror/python:3.14.7-slim"),
        ("nvidia-smi", "python@sha256:" + "a" * 64),
        ("measure", "nvcr.io/nvidia/pytorch:25.01-py3"),
        ("measure", "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-training:2.5.1-gpu"),
        ("measure", "localhost:5000/pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"),
    ],
)
def test_an_image_override_reaches_the_pods(mode, image):
    container = deployment(build(mode=mode, image=image))["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["image"] == image


@pytest.mark.parametrize(
    ("mode", "image", "message"),
    [
        ("nvidia-smi", "python", "verificationImage 'python' is not pinned; name a release tag "
         "(not latest) or a digest"),
        ("nvidia-smi", "python:latest", "verificationImage 'python:latest' is not pinned; name "
         "a release tag (not latest) or a digest"),
        ("nvidia-smi", "Python:3.14", "verificationImage 'Python:3.14' is not an image "
         "reference ([registry/]repository:tag or @digest)"),
        ("nvidia-smi", "python:3.14 ", "verificationImage 'python:3.14 ' is not an image "
         "reference ([registry/]repository:tag or @digest)"),
        ("measure", "python:3.14.7-slim-trixie", "verificationImage "
         "'python:3.14.7-slim-trixie' cannot run verificationMode measure, which imports torch "
         "with CUDA: use a PyTorch image (its repository's name contains pytorch), e.g. "
         "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"),
        ("measure", "pytorch/python:3.14", "verificationImage 'pytorch/python:3.14' cannot run "
         "verificationMode measure"),
    ],
)  # fmt: skip
def test_a_bad_image_override_is_refused_naming_the_key(mode, image, message):
    with pytest.raises(ConfigError) as error:
        VerificationWorkloadArgs(provider=None, mode=mode, image=image).validate()
    assert str(error.value).startswith(message)


def test_the_pods_wait_for_the_device_plugin_and_nothing_else_does():
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        plugin = k8s.core.v1.Namespace("plugin-stand-in", opts=pulumi.ResourceOptions(
            provider=provider))
        VerificationWorkload("v", VerificationWorkloadArgs(provider=provider, pods_after=[plugin]))

    plan = run_program(program)
    (plugin,) = [r for r in plan.resources if r["name"] == "plugin-stand-in"]
    waits = {r["name"]: r["dependencies"] for r in plan.resources if r["name"].startswith("v-")}
    pods = ("v-pods", "v-no-slice")
    assert all(plugin["urn"] in waits[name] for name in pods)
    assert not any(plugin["urn"] in deps for name, deps in waits.items() if name not in pods)


def no_slice_pod(plan) -> dict:
    """The pod the no-slice Deployment creates, as its template gives it."""
    return deployment(plan, "gpu-sharing-no-slice")["spec"]["template"]


def test_the_pod_without_a_slice_has_a_controller_so_it_never_pins_a_gpu_node():
    """The Cluster Autoscaler blocks a node's removal on a pod no controller owns
    (kubernetes/autoscaler, cluster-autoscaler/simulator/drainability/rules/replicated/
    rule.go: NotReplicated, "is not replicated"); a Deployment's pods are owned by its
    ReplicaSet, so the node can go and the pod comes back on the next one."""
    plan = build()
    objects = kubernetes_objects(plan)
    assert not [o for o in objects if o["kind"] == "Pod"]
    no_slice = deployment(plan, "gpu-sharing-no-slice")
    spec = no_slice["spec"]
    assert spec["replicas"] == 1
    labels = {"app.kubernetes.io/name": "gpu-sharing-no-slice"}
    assert spec["selector"] == {"matchLabels": labels}
    assert labels.items() <= spec["template"]["metadata"]["labels"].items()
    # Not made evictable by annotation: a bare pod evicted would be gone for good.
    annotations = no_slice["metadata"]["annotations"]
    assert annotations == {"pulumi.com/skipAwait": "true"}
    assert "annotations" not in spec["template"]["metadata"]


def test_a_pod_without_a_slice_runs_an_image_that_asks_for_every_gpu():
    """Same nodes, tolerations and security as the probes, no GPU request, and an image whose
    config sets NVIDIA_VISIBLE_DEVICES=all (gitlab.com/nvidia/container-images/cuda,
    dist/12.6.3/ubuntu2404/base/Dockerfile), which no pod spec shows."""
    plan = build(resource_name="nvidia.com/gpu.shared", plugin_config_key="big")
    pod = no_slice_pod(plan)
    probe = deployment(plan)["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "gpu-sharing-no-slice"
    no_slice = deployment(plan, "gpu-sharing-no-slice")
    assert no_slice["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    assert "pulumi.com/skipAwait" not in deployment(plan)["metadata"].get("annotations", {})
    (container,) = pod["spec"]["containers"]
    assert container["image"] == verification.NO_SLICE_IMAGE.reference
    assert container["image"] == "nvidia/cuda:12.6.3-base-ubuntu24.04"
    # kubectl users of the manifest get the same image.
    manifest = yaml.safe_load_all((MANIFESTS / "verification-workload.yaml").read_text())
    (raw,) = [doc for doc in manifest if doc["metadata"]["name"] == "gpu-sharing-no-slice"]
    assert raw["spec"]["template"]["spec"]["containers"][0]["image"] == container["image"]
    assert container["resources"] == {
        "requests": {"cpu": "10m", "memory": "16Mi"},
        "limits": {"memory": "64Mi"},
    }
    for key in ("nodeSelector", "tolerations", "securityContext"):
        assert pod["spec"][key] == probe["spec"][key]
    assert pod["spec"]["nodeSelector"]["nvidia.com/device-plugin.config"] == "big"
    assert not any(e["name"].startswith("NVIDIA_") for e in container["env"])
    assert {"name": "GPU_DEVICE_NODES", "value": "/dev/nvidia[0-9]*"} in container["env"]


def run_no_slice_check(tmp_path: Path, devices: list[str]) -> tuple[str, bool]:
    """The pod's own command, over a fake /dev holding ``devices``: its first line, and
    whether it marked itself Ready."""
    (container,) = no_slice_pod(build())["spec"]["containers"]
    dev = tmp_path / "dev"
    dev.mkdir()
    for device in devices:
        (dev / device).touch()
    ready = tmp_path / "ready"
    env = {
        "PATH": os.environ["PATH"],
        "POD_NAME": "gpu-sharing-no-slice",
        "NODE_NAME": "node-1",
        "GPU_DEVICE_NODES": f"{dev}/nvidia[0-9]*",
        "PROBE_INTERVAL_SECONDS": "60",
        "PROBE_READY_FILE": str(ready),
    }
    command = [*container["command"], *container["args"]]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as proc:
        try:
            line = proc.stdout.readline()
        finally:
            proc.kill()
    return line, ready.exists()


def test_the_pod_without_a_slice_is_ready_while_it_has_no_gpu_device_node(tmp_path):
    line, ready = run_no_slice_check(tmp_path, ["nvidiactl", "nvidia-uvm"])
    assert ready
    sample = latest_sample(line)  # as verify reads it
    assert sample is not None
    assert {k: sample[k] for k in ("pod", "node", "mode", "gpus", "error")} == {
        "pod": "gpu-sharing-no-slice", "node": "node-1", "mode": "no-slice", "gpus": [],
        "error": None,
    }
    assert datetime.fromisoformat(sample["ts"]).tzinfo is not None


def test_the_pod_without_a_slice_reports_each_gpu_the_toolkit_gave_it_and_is_not_ready(
    tmp_path,
):
    line, ready = run_no_slice_check(tmp_path, ["nvidia0", "nvidia1", "nvidiactl"])
    assert not ready
    sample = latest_sample(line)
    assert sample is not None
    dev = tmp_path / "dev"
    assert sample["gpus"] == [{"device": f"{dev}/nvidia0"}, {"device": f"{dev}/nvidia1"}]


def test_the_namespace_denies_all_traffic():
    plan = build()
    (policy,) = [o for o in kubernetes_objects(plan) if o["kind"] == "NetworkPolicy"]
    assert policy["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
