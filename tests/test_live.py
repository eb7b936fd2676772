"""The demo stack for real: `pulumi up`, `verify`, `pulumi destroy`, then ask AWS what is left.

It creates billable resources, so it runs only when asked: ``EKS_GPU_SHARING_LIVE=1``, with the
Pulumi CLI, the AWS CLI (the kubeconfig runs ``aws eks get-token``), botocore and AWS
credentials. Anywhere else it is skipped with what is missing. Cost and duration: see
docs/library.md, whose figures ``test_docs_state_the_live_run_cost`` keeps to the catalog.

    EKS_GPU_SHARING_LIVE=1 .venv/bin/python -m pytest -m live -s
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components import catalog
from components.config import args_from_config
from components.tools import plan as planner
from tests.conftest import PLAN_CIDRS, ROOT

LIVE = "EKS_GPU_SHARING_LIVE"
#: What a run takes, roughly: up ~15-20 min, verify ~2 min, destroy ~8-12 min.
RUN_MINUTES = 25
#: Worst case before the test gives up: slow up, verify timeout, slow destroy, the sweep.
TIMEOUT_SECONDS = 90 * 60
#: EKS deletes the control plane's ENIs a little after the cluster; wait this long for them.
SWEEP_SECONDS = 10 * 60
ALIVE = ["pending", "running", "shutting-down", "stopping", "stopped"]
DOCS = ROOT / "docs" / "library.md"


def hourly_cost() -> float:
    """The demo's GPU and system nodes, each with its public IPv4 address (default VPC), plus
    the EKS control plane; gp3 and KMS add under $0.01/hour."""
    args = args_from_config(planner.stack_config(ROOT, "dev", [PLAN_CIDRS]), "dev")
    nodes = [(g.desired_size, g.instance_type) for g in args.node_groups.values()]
    if args.system_nodes is not None:
        nodes.append((args.system_nodes.nodes, args.system_nodes.instance_type))
    return catalog.EKS_CONTROL_PLANE_USD_PER_HOUR + sum(
        count * (catalog.on_demand_usd_per_hour(name) + catalog.PUBLIC_IPV4_USD_PER_HOUR)
        for count, name in nodes
    )


def own_address() -> str:
    """This machine's public address, as `make up` asks for it (checkip.amazonaws.com)."""
    with urllib.request.urlopen("https://checkip.amazonaws.com", timeout=10) as answer:
        return str(ipaddress.IPv4Address(answer.read().decode().strip()))


def run_cost(minutes: float = RUN_MINUTES) -> float:
    return hourly_cost() * minutes / 60


def missing() -> list[str]:
    """What this machine lacks for the live run, each said as what to do about it."""
    reasons = []
    if os.environ.get(LIVE) != "1":
        reasons.append(f"{LIVE}=1 is not set (the run creates billable AWS resources)")
    if shutil.which("pulumi") is None:
        reasons.append("the pulumi CLI is not on PATH")
    aws = shutil.which("aws")
    if aws is None or subprocess.run([aws, "--version"], capture_output=True).returncode:
        reasons.append("the aws CLI does not run (the kubeconfig calls `aws eks get-token`)")
    try:
        import botocore.session
    except ImportError:
        reasons.append("botocore is not installed (pip install -e '.[test]')")
        return reasons
    # Asked last: without credentials in the environment or files, botocore asks the instance
    # metadata service, which takes a moment off EC2.
    if not reasons and botocore.session.get_session().get_credentials() is None:
        reasons.append("no AWS credentials (environment, ~/.aws or an instance role)")
    return reasons


@dataclass
class Footprint:
    """What EKS made outside Pulumi's state for one cluster, found while it runs."""

    instances: list[str]
    volumes: list[str]
    network_interfaces: list[str]


class Aws:
    """The few read-only questions asked of AWS, through botocore."""

    def __init__(self, region: str) -> None:
        import botocore.session

        session = botocore.session.get_session()
        self.eks = session.create_client("eks", region_name=region)
        self.ec2 = session.create_client("ec2", region_name=region)
        self.logs = session.create_client("logs", region_name=region)

    def _all(self, client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
        pages = client.get_paginator(operation).paginate(**kwargs)
        return [item for page in pages for item in page[key]]

    def instances(self, cluster: str) -> list[dict[str, Any]]:
        """EKS tags every managed node group instance with the cluster's name."""
        reservations = self._all(
            self.ec2,
            "describe_instances",
            "Reservations",
            Filters=[
                {"Name": "tag:eks:cluster-name", "Values": [cluster]},
                {"Name": "instance-state-name", "Values": ALIVE},
            ],
        )
        return [i for r in reservations for i in r["Instances"]]

    def network_interfaces(self, filters: list[dict[str, Any]]) -> list[str]:
        found = self._all(
            self.ec2, "describe_network_interfaces", "NetworkInterfaces", Filters=filters
        )
        return [eni["NetworkInterfaceId"] for eni in found]

    def cluster_network_interfaces(self, cluster: str, instances: list[str]) -> list[str]:
        """The control plane's (by EKS's description), the nodes' and the VPC CNI's (by tag)."""
        sets = [
            [{"Name": "description", "Values": [f"Amazon EKS {cluster}"]}],
            [{"Name": "tag:cluster.k8s.amazonaws.com/name", "Values": [cluster]}],
        ]
        if instances:
            sets.append([{"Name": "attachment.instance-id", "Values": instances}])
        return sorted({eni for filters in sets for eni in self.network_interfaces(filters)})

    def footprint(self, cluster: str) -> Footprint:
        instances = self.instances(cluster)
        ids = [i["InstanceId"] for i in instances]
        return Footprint(
            instances=ids,
            volumes=[
                m["Ebs"]["VolumeId"]
                for i in instances
                for m in i.get("BlockDeviceMappings", [])
                if "Ebs" in m
            ],
            network_interfaces=self.cluster_network_interfaces(cluster, ids),
        )

    def leftovers(self, cluster: str, seen: Footprint) -> list[str]:
        """Everything of the cluster still in AWS: what was seen while up, and a tag sweep."""
        left = []
        try:
            self.eks.describe_cluster(name=cluster)
            left.append(f"EKS cluster {cluster}")
            groups = self.eks.list_nodegroups(clusterName=cluster)["nodegroups"]
            left += [f"node group {g}" for g in groups]
        except self.eks.exceptions.ResourceNotFoundException:
            pass  # node groups go with their cluster: EKS refuses to delete it before them
        left += [f"instance {i}" for i in (i["InstanceId"] for i in self.instances(cluster))]
        if seen.volumes:
            volumes = self._all(
                self.ec2,
                "describe_volumes",
                "Volumes",
                Filters=[{"Name": "volume-id", "Values": seen.volumes}],
            )
            left += [f"volume {v['VolumeId']} ({v['State']})" for v in volumes]
        enis = set(self.cluster_network_interfaces(cluster, []))
        if seen.network_interfaces:
            filters = [{"Name": "network-interface-id", "Values": seen.network_interfaces}]
            enis |= set(self.network_interfaces(filters))
        left += [f"network interface {eni}" for eni in sorted(enis)]
        # Ours (deleted after the cluster, logging off first); one EKS re-created after the
        # destroy would show here and break the next `up` of the same stack.
        log_groups = self.logs.describe_log_groups(logGroupNamePrefix=f"/aws/eks/{cluster}/")
        left += [f"log group {g['logGroupName']}" for g in log_groups["logGroups"]]
        return left


def verify(kubeconfig: Path, pods: int, report: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "components",
            "verify",
            "--kubeconfig",
            str(kubeconfig),
            "--expect-pods",
            str(pods),
            "--json",
            str(report),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20 * 60,
    )


@pytest.mark.live
@pytest.mark.timeout(TIMEOUT_SECONDS)
def test_up_verify_destroy_leaves_nothing_behind(tmp_path):
    reasons = missing()
    if reasons:
        pytest.skip("live run needs: " + "; ".join(reasons))
    from pulumi import automation as auto

    stack_name = f"live-{uuid.uuid4().hex[:8]}"
    config = planner.stack_config(ROOT, "dev", [f'publicAccessCidrs=["{own_address()}/32"]'])
    args = args_from_config(config, stack_name)
    cluster = args.cluster.cluster_name
    assert cluster is not None
    aws = Aws(config["aws:region"])
    passphrase = os.environ.get("PULUMI_CONFIG_PASSPHRASE", "")
    stack = auto.create_or_select_stack(
        stack_name=stack_name,
        work_dir=str(ROOT),
        opts=auto.LocalWorkspaceOptions(env_vars={"PULUMI_CONFIG_PASSPHRASE": passphrase}),
    )
    print(f"\nstack {stack_name}, EKS cluster {cluster}; if this run dies, clean up with:")
    print(f"  pulumi destroy --stack {stack_name} --yes && pulumi stack rm {stack_name} --yes")
    try:
        stack.set_all_config({key: auto.ConfigValue(value) for key, value in config.items()})
        up = stack.up(on_output=print, color="never")
        seen = aws.footprint(cluster)
        assert seen.instances, f"no running instance tagged eks:cluster-name={cluster}"
        assert seen.network_interfaces, f"no network interface of {cluster}"
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(up.outputs["kubeconfig"].value)
        kubeconfig.chmod(0o600)
        checked = verify(kubeconfig, args.verification_pods, tmp_path / "verify.json")
        print(checked.stdout, checked.stderr)
        assert checked.returncode == 0, f"verify exited {checked.returncode}"
    finally:
        stack.destroy(on_output=print, color="never")
        # Only after a clean destroy: a failed one leaves the stack for a person to finish.
        stack.workspace.remove_stack(stack_name)

    deadline = time.monotonic() + SWEEP_SECONDS
    while (left := aws.leftovers(cluster, seen)) and time.monotonic() < deadline:
        time.sleep(30)
    assert left == [], f"left in AWS after destroy: {left}"


def test_docs_state_the_live_run_cost():
    """The estimate in docs/library.md is the catalog's prices, not a number typed once."""
    text = DOCS.read_text()
    g4dn = catalog.G4DN["g4dn.xlarge"].on_demand_usd_per_hour
    assert f"${g4dn:.3f}" in text
    assert f"${catalog.EKS_CONTROL_PLANE_USD_PER_HOUR:.2f}" in text
    assert f"${hourly_cost():.3f}/hour" in text
    assert re.search(rf"~?{RUN_MINUTES}[- ]minute", text)
    assert f"${run_cost():.2f}" in text


def test_skip_reason_names_what_is_missing(monkeypatch):
    monkeypatch.delenv(LIVE, raising=False)
    monkeypatch.setenv("PATH", "")
    reasons = missing()
    assert f"{LIVE}=1 is not set (the run creates billable AWS resources)" in reasons
    assert "the pulumi CLI is not on PATH" in reasons
    assert any(r.startswith("the aws CLI does not run") for r in reasons)
