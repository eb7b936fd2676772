"""`python -m components plan` as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.conftest import ROOT


def plan_cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "components", "plan", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )


def test_plan_prints_every_resource_and_writes_json_and_manifests(tmp_path):
    result = plan_cli("--stack", "dev", "--json", str(tmp_path / "plan.json"),
                      "--manifests", str(tmp_path / "k8s"))
    assert result.returncode == 0, result.stderr
    assert "aws:eks/nodeGroup:NodeGroup" in result.stdout
    assert "25 resources" in result.stdout
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert set(plan) == {"stack", "config", "resources", "outputs"}
    assert plan["stack"] == "dev"
    assert plan["config"]["eks-gpu-sharing:timeSlicingReplicas"] == "5"
    for resource in plan["resources"]:
        assert set(resource) == {"urn", "type", "name", "parent", "provider", "dependencies",
                                 "inputs"}
    assert plan["outputs"]["gpuSlicesPerNode"] == 5
    files = sorted((tmp_path / "k8s").glob("*.yaml"))
    assert len(files) == 9
    kinds = [yaml.safe_load(f.read_text())["kind"] for f in files]
    assert kinds[:2] == ["Namespace", "Namespace"]  # kubectl apply -f creates them first
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
    assert result.stderr.startswith("error: gpuAmiType 'AL2023_x86_64_STANDARD' has no NVIDIA")


def test_unknown_stack_is_a_clear_error():
    result = plan_cli("--stack", "nope")
    assert result.returncode == 1
    assert "Pulumi.nope.yaml" in result.stderr and "Traceback" not in result.stderr


def test_malformed_override_is_a_clear_error():
    result = plan_cli("--config", "timeSlicingReplicas")
    assert result.returncode == 1
    assert "KEY=VALUE" in result.stderr
