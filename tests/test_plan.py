"""`python -m components plan` as a user runs it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pulumi
import pytest
import yaml

from tests.conftest import PLAN_CIDRS, ROOT, run_program


def plan_cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    """``python -m components plan``, given our stack's CIDRs as ``make plan`` gives them."""
    ours = "--project-dir" not in args and not any(
        key in arg for arg in args for key in ("publicAccessCidrs", "endpointPublicAccess")
    )
    extra = ["--config", PLAN_CIDRS] if ours else []
    return subprocess.run(
        [sys.executable, "-m", "components", "plan", *extra, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_plan_prints_every_resource_and_writes_json_and_manifests(tmp_path):
    result = plan_cli(
        "--stack",
        "dev",
        "--json",
        str(tmp_path / "plan.json"),
        "--manifests",
        str(tmp_path / "k8s"),
    )
    assert result.returncode == 0, result.stderr
    assert "aws:eks/nodeGroup:NodeGroup" in result.stdout
    # 36 of the GPU sharing; the autoscaler (min < max) adds its component, 7 Kubernetes
    # objects, role, policy, association and 7 ASG tags (the Pod Identity agent is the
    # cluster's); the system node group its component, role, 2 policy attachments, launch
    # template and node group.
    assert "60 resources" in result.stdout
    assert ("gpu-sharing-gpu: 5 nvidia.com/gpu per node; min/desired/max 0/1/2; 10 "
            "nvidia.com/gpu at the most the autoscaler can reach") in result.stdout
    # Idle: the control plane, the system node and the key; no GPU node.
    assert ("With the Cluster Autoscaler: $0.13/hour idle (every group at its min), "
            "$1.20/hour full") in result.stdout
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert set(plan) == {"stack", "config", "resources", "outputs", "criticalPath"}
    assert [(step["name"], step["wait"]) for step in plan["criticalPath"][1:]] == [
        ("gpu-sharing-cluster-eks", "AWS create"),
        ("gpu-sharing-cluster-pod-identity-agent", "API call"),
        ("gpu-sharing-gpu-ng", "node join"),
        ("gpu-sharing-device-plugin-ds", "image pull, pod ready"),
        ("gpu-sharing-verification-pods", "image pull, pod ready"),
    ]
    assert "Critical path of `pulumi up`: ~15 min" in result.stdout
    assert plan["stack"] == "dev"
    assert plan["config"]["eks-gpu-sharing:timeSlicingReplicas"] == "5"
    for resource in plan["resources"]:
        assert set(resource) == {
            "urn",
            "type",
            "name",
            "parent",
            "provider",
            "dependencies",
            "inputs",
        }
    assert plan["outputs"]["gpuSlicesPerNode"] == 5
    files = sorted((tmp_path / "k8s").glob("*.yaml"))
    assert len(files) == 20
    kinds = [yaml.safe_load(f.read_text())["kind"] for f in files]
    assert kinds[:3] == ["Namespace"] * 3  # kubectl apply -f creates them first
    probe = yaml.safe_load(next(f for f in files if "gpu-probe" in f.name).read_text())
    assert "def main" in probe["data"]["gpu_probe.py"]


def test_config_override_reaches_the_program(tmp_path):
    result = plan_cli("--config", "timeSlicingReplicas=7", "--json", str(tmp_path / "p.json"))
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "p.json").read_text())["outputs"]["gpuSlicesPerNode"] == 7


def test_bad_config_exits_1_with_the_message_and_no_traceback():
    result = plan_cli("--config", "gpuAmiType=AL2023_x86_64_STANDARD")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith(
        "python -m components plan: error: gpuAmiType 'AL2023_x86_64_STANDARD' has no NVIDIA"
    )


def test_unknown_stack_is_a_usage_error_listing_the_stacks():
    result = plan_cli("--stack", "nope")
    assert result.returncode == 2
    assert "Pulumi.nope.yaml" in result.stderr and "Traceback" not in result.stderr
    assert "the stacks there: dev, multi" in result.stderr


def test_malformed_override_is_a_usage_error():
    result = plan_cli("--config", "timeSlicingReplicas")
    assert result.returncode == 2
    assert "KEY=VALUE" in result.stderr


def test_a_failed_program_leaves_nothing_that_breaks_the_next():
    """An output still in flight when a program fails must not reach the next program."""

    def fails_with_an_output_in_flight():
        loop = asyncio.get_running_loop()
        # While the SDK waits for the failing output, another output starts, and is
        # still in flight when the failure ends the program.
        loop.call_later(0.05, lambda: pulumi.Output.from_input(asyncio.sleep(3600)))
        pulumi.Output.from_input(asyncio.sleep(0.2)).apply(lambda _: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        run_program(fails_with_an_output_in_flight)
    plan = run_program(lambda: pulumi.export("answer", 42))
    assert plan.outputs == {"answer": 42}


def test_stack_values_reach_the_program_as_the_pulumi_cli_passes_them(tmp_path):
    """yaml.v3 types, then pulumi/pulumi sdk/go/common/resource/config/object.go
    MarshalString: text as written, other scalars and objects as (compact) JSON. A bare key
    gets the project's name (sdk/go/common/workspace/loaders.go,
    stackConfigNamespacedWithProject)."""
    from components.tools import stack_file

    path = tmp_path / "Pulumi.t.yaml"
    path.write_text(
        "encryptionsalt: v1:abc\n"
        "config:\n"
        "  aws:region: us-west-2\n"
        '  ns:quoted: "5"\n'
        "  ns:number: 5\n"
        "  ns:yes: yes\n"
        "  ns:on: on\n"
        "  ns:bool: true\n"
        '  ns:date: "2026-01-01"\n'
        "  bare: 7\n"
        "  ns:list: ['198.51.100.0/24']\n"
        "  ns:groups: [{name: a, max: 2, sharing: {strategy: none}}]\n"
        "  ns:config:old: kept\n",
        encoding="utf-8",
    )
    assert stack_file.read(path, "ns") == {
        "aws:region": "us-west-2",
        "ns:quoted": "5",
        "ns:number": "5",
        "ns:yes": "yes",
        "ns:on": "on",
        "ns:bool": "true",
        "ns:date": "2026-01-01",
        "ns:bare": "7",
        "ns:list": '["198.51.100.0/24"]',
        "ns:groups": '[{"max":2,"name":"a","sharing":{"strategy":"none"}}]',
        "ns:old": "kept",
    }


@pytest.mark.parametrize("text", ["", "# nothing\n", "config:\n", "secretsprovider: passphrase\n"])
def test_a_stack_file_without_config_means_the_defaults(tmp_path, text):
    from components.tools import stack_file

    (tmp_path / "Pulumi.t.yaml").write_text(text)
    assert stack_file.read(tmp_path / "Pulumi.t.yaml", "ns") == {}


def test_without_the_autoscaler_the_plan_counts_the_nodes_that_run(tmp_path):
    result = plan_cli("--stack", "dev", "--config", "gpuNodeMin=1", "--config", "gpuNodeMax=1")
    assert result.returncode == 0, result.stderr
    assert ("gpu-sharing-gpu: 5 nvidia.com/gpu per node; min/desired/max 1/1/1; 5 "
            "nvidia.com/gpu at the most it runs (no autoscaler)") in result.stdout
    assert "With the Cluster Autoscaler" not in result.stdout
