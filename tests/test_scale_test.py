"""``verify --scale-test`` against the fake API, with a fake Cluster Autoscaler that adds
nodes as the real one would from a node group's template (tests/fake_kube_api.py)."""

from __future__ import annotations

import math
from typing import Any

from tests import fake_kube_api as fake
from tests.test_verify import NODE, add_pending_pod, add_pod, pod_name, run, shared_cluster

SLICES = 5


class FakeAutoscaler:
    """Plays the ReplicaSet, the scheduler and the autoscaler between polls.

    The ReplicaSet adds Pending pods or deletes the newest; the scheduler binds Pending pods
    to nodes with free slices; for those still Pending the autoscaler adds
    ceil(pending / template_slices) nodes (what it believes one node holds: our tag, else
    the instance type's 1 GPU), up to ``max_nodes``; each new node advertises SLICES.
    """

    def __init__(self, template_slices: int, max_nodes: int = 10) -> None:
        self.template_slices = template_slices
        self.max_nodes = max_nodes

    def on_scale(self, cluster: fake.Cluster, deployment: dict[str, Any]) -> None:
        want = deployment["spec"]["replicas"]
        names = [pod_name(i) for i in range(want)]
        cluster.pods = [p for p in cluster.pods if p["metadata"]["name"] in names]
        present = {p["metadata"]["name"] for p in cluster.pods}
        for i in range(want):
            if pod_name(i) not in present:
                add_pending_pod(cluster, i, None)

    def on_pod_list(self, cluster: fake.Cluster, _: int) -> None:
        used = {n["metadata"]["name"]: 0 for n in cluster.nodes if _gpu(n)}
        for pod in cluster.pods:
            if pod["spec"].get("nodeName"):
                used[pod["spec"]["nodeName"]] += 1
        pending = [p for p in cluster.pods if not p["spec"].get("nodeName")]
        for pod in pending:
            free = next((n for n, count in used.items() if count < SLICES), None)
            if free is None:
                break
            used[free] += 1
            cluster.pods.remove(pod)
            add_pod(cluster, int(pod["metadata"]["name"][-1]), node=free)  # pod_name(i)
        pending = [p for p in cluster.pods if not p["spec"].get("nodeName")]
        if pending:
            room = self.max_nodes - len(used)
            for k in range(min(room, math.ceil(len(pending) / self.template_slices))):
                name = f"ip-10-0-3-{len(used) + k}.us-west-2.compute.internal"
                cluster.nodes.append(fake.gpu_node(name, {"nvidia.com/gpu": SLICES}))


def _gpu(node: dict[str, Any]) -> bool:
    return node["metadata"]["labels"].get("nvidia.com/gpu.present") == "true"


def autoscaled_cluster(autoscaler: FakeAutoscaler) -> fake.Cluster:
    """The demo, nvidia-smi mode: one g4dn.xlarge at 5 slices, 5 Ready probe pods."""
    cluster = shared_cluster(tflops=(None,) * SLICES)
    cluster.on_scale = autoscaler.on_scale
    cluster.on_pod_list = autoscaler.on_pod_list
    return cluster


def gpu_nodes(cluster: fake.Cluster) -> int:
    return sum(_gpu(n) for n in cluster.nodes)


def test_five_more_pods_bring_one_node_when_the_template_says_five(tmp_path, capsys):
    cluster = autoscaled_cluster(FakeAutoscaler(template_slices=SLICES))
    result = run(cluster, tmp_path, capsys, "--scale-test", "5")

    assert result.rc == 0, result.out
    check = result.check("scale-test")
    assert check["status"] == "pass"
    assert check["detail"].startswith("10 pods at 5 nvidia.com/gpu per node: 1 -> 2 node(s)")
    scale = result.report["scale_test"]
    assert {k: scale[k] for k in ("slices_per_node", "pods_before", "pods_asked",
                                  "nodes_before", "nodes_expected", "nodes_after")} == {
        "slices_per_node": 5, "pods_before": 5, "pods_asked": 10,
        "nodes_before": 1, "nodes_expected": 2, "nodes_after": 2}
    assert scale["scale_up_seconds"] >= 0 and scale["scale_back_seconds"] >= 0
    patches = [r for r in cluster.requests if r.startswith("PATCH ")]
    assert patches == [
        "PATCH /apis/apps/v1/namespaces/gpu-sharing-verification/deployments/"
        "gpu-sharing-verification/scale"] * 2
    assert cluster.deployments[0]["spec"]["replicas"] == 5  # scaled back
    assert len(cluster.pods) == 5
    assert "scale-test" in result.out


def test_one_node_per_pod_fails_and_names_the_tag(tmp_path, capsys):
    """kubernetes/autoscaler#3427: from the instance type alone it believes 1 GPU per node."""
    cluster = autoscaled_cluster(FakeAutoscaler(template_slices=1))
    result = run(cluster, tmp_path, capsys, "--scale-test", "5")

    assert result.rc == 1
    check = result.check("scale-test")
    assert check["status"] == "fail"
    assert "brought 6 node(s) of config 'default' for 10 pods" in check["detail"]
    assert "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu tag" in (
        check["detail"])
    assert gpu_nodes(cluster) == 6
    assert cluster.deployments[0]["spec"]["replicas"] == 5  # scaled back all the same


def test_no_room_to_grow_times_out_and_still_scales_back(tmp_path, capsys):
    cluster = autoscaled_cluster(FakeAutoscaler(template_slices=SLICES, max_nodes=1))
    result = run(cluster, tmp_path, capsys, "--scale-test", "0.3")

    assert result.rc == 1
    detail = result.check("scale-test")["detail"]
    assert detail.startswith("10 pods not all Ready after 0s; 1 node(s) of config 'default' "
                             "(2 expected)")
    assert cluster.deployments[0]["spec"]["replicas"] == 5
    assert len(cluster.pods) == 5


def test_not_run_when_the_sharing_checks_fail(tmp_path, capsys):
    cluster = autoscaled_cluster(FakeAutoscaler(template_slices=SLICES))
    cluster.nodes[0] = fake.gpu_node(NODE, {"nvidia.com/gpu": 1})  # the config says 5
    result = run(cluster, tmp_path, capsys, "--scale-test", "5")

    assert result.check("scale-test") == {
        "name": "scale-test", "status": "skip", "detail": "not run: the checks above failed",
        "notes": []}
    assert not [r for r in cluster.requests if r.startswith("PATCH ")]
    assert result.report["scale_test"] is None


def test_without_the_flag_nothing_is_scaled(tmp_path, capsys):
    cluster = autoscaled_cluster(FakeAutoscaler(template_slices=SLICES))
    result = run(cluster, tmp_path, capsys)
    assert "scale-test" not in result.statuses()
    assert not [r for r in cluster.requests if r.startswith("PATCH ")]


def test_the_flag_waits_900_seconds_unless_told():
    from components.tools import verify

    assert verify.parser().parse_args(["--scale-test"]).scale_test == 900.0
    assert verify.parser().parse_args(["--scale-test", "60"]).scale_test == 60.0
    assert verify.parser().parse_args([]).scale_test is None
