"""``verify --scale-test`` and ``--scale-to-zero`` against the fake API, with a fake Cluster
Autoscaler that adds nodes as the real one would from a node group's template, and removes
those left with DaemonSet pods only (tests/fake_kube_api.py)."""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

from components.tools import scale_to_zero, verify
from tests import fake_kube_api as fake
from tests.test_verify import (
    NO_SLICE_POD,
    NODE,
    POLL,
    add_no_slice_pod,
    add_pod,
    pod_name,
    run,
    shared_cluster,
)

SLICES = 5
CPU_NODE = "ip-10-0-0-9.us-west-2.compute.internal"  # shared_cluster's node without GPUs
PLUGIN = "nvidia-device-plugin"
SCALE = "PATCH /apis/apps/v1/namespaces/gpu-sharing-verification/deployments/{}/scale"


class FakeAutoscaler:
    """Plays the ReplicaSets, the scheduler and the autoscaler between polls.

    The ReplicaSets add Pending pods or delete the newest; the scheduler binds Pending probe
    pods to nodes with free slices and the pod without a slice to any GPU node; for those
    still Pending the autoscaler adds ceil(pending probes / template_slices) nodes (what it
    believes one node holds: our tag, else the instance type's 1 GPU), at least 1, up to
    ``max_nodes``; each new node advertises SLICES and runs a device plugin pod. At each
    node list it removes, down to ``min_nodes``, a GPU node on which only DaemonSet pods
    have been left for ``unneeded_seconds`` (by default never: 10 minutes on EKS)
    (kubernetes/autoscaler, cluster-autoscaler/simulator/drainability/rules/daemonset/
    rule.go; any other pod blocks it here, as one no controller owns does there:
    rules/replicated/rule.go).
    """

    def __init__(
        self,
        template_slices: int,
        max_nodes: int = 10,
        min_nodes: int = 0,
        unneeded_seconds: float = math.inf,
    ) -> None:
        self.template_slices = template_slices
        self.max_nodes = max_nodes
        self.min_nodes = min_nodes
        self.unneeded_seconds = unneeded_seconds
        self.unneeded_since: dict[str, float] = {}
        self.added = 0

    def on_scale(self, cluster: fake.Cluster, deployment: dict[str, Any]) -> None:
        want = deployment["spec"]["replicas"]
        if deployment["metadata"]["name"] == fake.NO_SLICE_APP:
            names = [NO_SLICE_POD] if want else []
        else:
            names = [pod_name(i) for i in range(want)]
        app = deployment["metadata"]["labels"][fake.APP_LABEL]
        cluster.pods = [
            p for p in cluster.pods
            if p["metadata"]["labels"][fake.APP_LABEL] != app or p["metadata"]["name"] in names
        ]  # fmt: skip
        present = {p["metadata"]["name"] for p in cluster.pods}
        for name in names:
            if name not in present:
                cluster.pods.append(
                    fake.probe_pod(name, None, resource=None, app=fake.NO_SLICE_APP)
                    if name == NO_SLICE_POD
                    else fake.probe_pod(name, None)
                )

    def on_pod_list(self, cluster: fake.Cluster, _: int) -> None:
        used = {n["metadata"]["name"]: 0 for n in cluster.nodes if _gpu(n)}
        for pod in cluster.pods:
            if pod["spec"].get("nodeName") and _slice(pod):
                used[pod["spec"]["nodeName"]] += 1
        pending = [p for p in cluster.pods if not p["spec"].get("nodeName")]
        for pod in pending:
            name = pod["metadata"]["name"]
            if not _slice(pod):
                if used:
                    cluster.pods.remove(pod)
                    add_no_slice_pod(cluster, node=next(iter(used)))
                continue
            free = next((n for n, count in used.items() if count < SLICES), None)
            if free is None:
                continue
            used[free] += 1
            cluster.pods.remove(pod)
            add_pod(cluster, int(name[-1]), node=free)  # pod_name(i)
        pending = [p for p in cluster.pods if not p["spec"].get("nodeName")]
        if pending:
            needed = max(1, math.ceil(sum(map(_slice, pending)) / self.template_slices))
            for _ in range(min(self.max_nodes - len(used), needed)):
                self.added += 1
                add_gpu_node(cluster, f"ip-10-0-3-{self.added}.us-west-2.compute.internal")

    def on_node_list(self, cluster: fake.Cluster) -> None:
        now = time.monotonic()
        gpu = [n["metadata"]["name"] for n in cluster.nodes if _gpu(n)]
        for node in gpu[self.min_nodes :]:
            on_it = [p for p in cluster.pods if p["spec"].get("nodeName") == node]
            if any(p["metadata"]["ownerReferences"][0]["kind"] != "DaemonSet" for p in on_it):
                self.unneeded_since.pop(node, None)
            elif now - self.unneeded_since.setdefault(node, now) >= self.unneeded_seconds:
                cluster.nodes = [n for n in cluster.nodes if n["metadata"]["name"] != node]
                cluster.pods = [p for p in cluster.pods if p not in on_it]


def _gpu(node: dict[str, Any]) -> bool:
    return node["metadata"]["labels"].get("nvidia.com/gpu.present") == "true"


def _slice(pod: dict[str, Any]) -> bool:
    return "nvidia.com/gpu" in pod["spec"]["containers"][0]["resources"]["requests"]


def add_gpu_node(cluster: fake.Cluster, name: str) -> None:
    """A g4dn.xlarge at SLICES, with the device plugin's DaemonSet pod on it."""
    cluster.nodes.append(fake.gpu_node(name, {"nvidia.com/gpu": SLICES}))
    cluster.pods.append(
        fake.probe_pod(
            f"{PLUGIN}-{name.split('.')[0]}-x", name, resource=None, namespace=PLUGIN, app=PLUGIN,
            owner="DaemonSet",
        )
    )  # fmt: skip


def add_autoscaler_pod(cluster: fake.Cluster, node: str) -> None:
    cluster.pods.append(
        fake.probe_pod(
            "cluster-autoscaler-7c9d5f8b6-q2w4e", node, resource=None,
            namespace="cluster-autoscaler", app="cluster-autoscaler",
        )
    )  # fmt: skip


def autoscaled_cluster(autoscaler: FakeAutoscaler) -> fake.Cluster:
    """The demo, nvidia-smi mode: one g4dn.xlarge at 5 slices, 5 Ready probe pods, the pod
    without a slice, the device plugin on the GPU node and the autoscaler on the other."""
    cluster = shared_cluster(tflops=(None,) * SLICES)
    cluster.nodes.pop(0)
    add_gpu_node(cluster, NODE)
    add_autoscaler_pod(cluster, CPU_NODE)
    cluster.on_scale = autoscaler.on_scale
    cluster.on_pod_list = autoscaler.on_pod_list
    cluster.on_node_list = autoscaler.on_node_list
    return cluster


def gpu_nodes(cluster: fake.Cluster) -> int:
    return sum(_gpu(n) for n in cluster.nodes)


def probe_pods(cluster: fake.Cluster) -> list[dict[str, Any]]:
    return [p for p in cluster.pods if p["metadata"]["labels"][fake.APP_LABEL] == fake.APP]


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
    assert len(probe_pods(cluster)) == 5
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
    assert len(probe_pods(cluster)) == 5


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


# --- --scale-to-zero ---------------------------------------------------------------------

UNNEEDED = 0.2


def all_ready(cluster: fake.Cluster) -> list[str]:
    """The nodes of the probe pods and the pod without a slice, when all of them are Ready."""
    ours = [p for p in cluster.pods if p["metadata"]["namespace"] == fake.NAMESPACE]
    assert len(ours) == SLICES + 1
    assert all(p["status"].get("phase") == "Running" for p in ours)
    return sorted({p["spec"]["nodeName"] for p in ours})


def test_to_zero_and_back_reports_both_times(tmp_path, capsys):
    autoscaler = FakeAutoscaler(template_slices=SLICES, unneeded_seconds=UNNEEDED)
    cluster = autoscaled_cluster(autoscaler)
    result = run(cluster, tmp_path, capsys, "--scale-to-zero", "5")

    assert result.rc == 0, result.out
    check = result.check("scale-to-zero")
    assert check["status"] == "pass"
    assert re.fullmatch(
        r"1 -> 0 GPU node\(s\) of config 'default' in \d+s \(to zero\); 5 probe pod\(s\) and "
        r"the pod without a slice Ready again in \d+s \(from zero\)",
        check["detail"],
    )
    zero = result.report["scale_to_zero"]
    assert {k: zero[k] for k in ("config_key", "probe_pods", "no_slice_pods", "nodes_before",
                                 "nodes_left")} == {
        "config_key": "default", "probe_pods": 5, "no_slice_pods": 1, "nodes_before": 1,
        "nodes_left": 0}  # fmt: skip
    # The node went only after the autoscaler's unneeded time; then a new one came.
    assert zero["to_zero_seconds"] >= UNNEEDED and zero["from_zero_seconds"] >= 0
    assert [r for r in cluster.requests if r.startswith("PATCH ")] == [
        SCALE.format("gpu-sharing-verification"), SCALE.format("gpu-sharing-no-slice")] * 2
    assert [d["spec"]["replicas"] for d in cluster.deployments] == [5, 1]
    assert NODE not in {n["metadata"]["name"] for n in cluster.nodes}
    assert all_ready(cluster) == ["ip-10-0-3-1.us-west-2.compute.internal"]
    assert "scale-to-zero" in result.out and "(from zero)" in result.out
    assert re.search(r"waiting for GPU nodes of config 'default' to go: 1 left", result.err)


def test_nodes_that_never_leave_fail_with_the_hint_and_are_scaled_back(tmp_path, capsys):
    cluster = autoscaled_cluster(
        FakeAutoscaler(template_slices=SLICES, min_nodes=1, unneeded_seconds=0)
    )
    result = run(cluster, tmp_path, capsys, "--scale-to-zero", "0.3")

    assert result.rc == 1
    check = result.check("scale-to-zero")
    assert check["status"] == "fail"
    assert check["detail"].startswith("1 GPU node(s) of config 'default' still up ")
    assert "is the node group's min 0 (gpuNodeMin, or nodeGroups[i].min)?" in check["detail"]
    assert "is the Cluster Autoscaler running (namespace cluster-autoscaler)?" in check["detail"]
    assert check["notes"] == [f"{NODE}: still up"]
    assert result.report["scale_to_zero"]["nodes_left"] == 1
    assert [d["spec"]["replicas"] for d in cluster.deployments] == [5, 1]
    assert all_ready(cluster) == [NODE]


def test_pods_that_do_not_come_back_from_zero_fail(tmp_path, capsys):
    """The group reached zero, but no node comes for the Pending pods (max 0 here)."""
    cluster = autoscaled_cluster(
        FakeAutoscaler(template_slices=SLICES, max_nodes=0, unneeded_seconds=0)
    )
    result = run(cluster, tmp_path, capsys, "--scale-to-zero", "0.5")

    assert result.rc == 1
    detail = result.check("scale-to-zero")["detail"]
    assert re.fullmatch(
        r"1 -> 0 GPU node\(s\) of config 'default' in \d+s; back from zero, 5 probe pod\(s\) "
        r"and the pod without a slice not all Ready after \ds: did the autoscaler add a node "
        r"\(the group's max >= 1\)\?",
        detail,
    )
    assert result.report["scale_to_zero"]["from_zero_seconds"] >= 0.5
    assert [d["spec"]["replicas"] for d in cluster.deployments] == [5, 1]
    assert gpu_nodes(cluster) == 0


def test_a_pod_without_a_slice_not_ready_again_fails(tmp_path, capsys):
    """On the new node it sees a GPU (a node that honours NVIDIA_VISIBLE_DEVICES), so it is
    not Ready: the way back from zero is not done."""
    autoscaler = FakeAutoscaler(template_slices=SLICES, unneeded_seconds=0)
    cluster = autoscaled_cluster(autoscaler)

    def on_pod_list(c: fake.Cluster, lists: int) -> None:
        autoscaler.on_pod_list(c, lists)
        for pod in c.pods:
            node = pod["spec"].get("nodeName")
            if pod["metadata"]["name"] == NO_SLICE_POD and node not in (None, NODE):
                c.pods.remove(pod)
                add_no_slice_pod(c, sees="/dev/nvidia0", node=node)

    cluster.on_pod_list = on_pod_list
    result = run(cluster, tmp_path, capsys, "--scale-to-zero", "0.5")

    assert result.rc == 1
    assert "and the pod without a slice not all Ready after" in (
        result.check("scale-to-zero")["detail"])
    assert len(probe_pods(cluster)) == 5


def test_skipped_while_the_autoscaler_runs_on_one_of_those_gpu_nodes(tmp_path, capsys):
    cluster = autoscaled_cluster(FakeAutoscaler(template_slices=SLICES, unneeded_seconds=0))
    cluster.pods = [p for p in cluster.pods if p["metadata"]["namespace"] != "cluster-autoscaler"]
    add_autoscaler_pod(cluster, NODE)
    result = run(cluster, tmp_path, capsys, "--scale-to-zero", "5")

    assert result.rc == 0
    assert result.check("scale-to-zero") == {
        "name": "scale-to-zero", "status": "skip",
        "detail": "the Cluster Autoscaler runs on a GPU node of config 'default' "
        f"(cluster-autoscaler-7c9d5f8b6-q2w4e on {NODE}), which stays while that pod has "
        "nowhere else to go: give the cluster a system node (eks-gpu-sharing:systemNodes, 1 "
        "by default), where it then runs",
        "notes": []}  # fmt: skip
    assert not [r for r in cluster.requests if r.startswith("PATCH ")]
    assert result.report["scale_to_zero"] is None


def test_scaled_back_even_when_the_wait_for_zero_fails(tmp_path, capsys):
    """The API server goes away while nodes are awaited: verify exits 2, the pods return."""
    autoscaler = FakeAutoscaler(template_slices=SLICES)
    cluster = autoscaled_cluster(autoscaler)
    patched = []

    def on_node_list(c: fake.Cluster) -> None:
        patched.append(sum(r.startswith("PATCH ") for r in c.requests))
        c.unavailable = patched[-1] == 2  # both scaled to 0

    cluster.on_node_list = on_node_list
    with fake.serve(cluster) as url:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", url)
        rc = verify.main(
            ["--kubeconfig", str(kubeconfig), "--timeout", "0", "--scale-to-zero", "5"],
            poll_seconds=POLL,
        )
    assert rc == 2
    assert "503 the server is currently unable to handle the request" in capsys.readouterr().err
    assert [r for r in cluster.requests if r.startswith("PATCH ")] == [
        SCALE.format("gpu-sharing-verification"), SCALE.format("gpu-sharing-no-slice")] * 2
    assert [d["spec"]["replicas"] for d in cluster.deployments] == [5, 1]


def test_runs_after_the_scale_test_when_both_are_asked(tmp_path, capsys):
    cluster = autoscaled_cluster(
        FakeAutoscaler(template_slices=SLICES, unneeded_seconds=UNNEEDED)
    )
    result = run(cluster, tmp_path, capsys, "--scale-to-zero", "5", "--scale-test", "5")

    assert result.rc == 0, result.out
    assert list(result.statuses())[-2:] == ["scale-test", "scale-to-zero"]
    assert result.statuses()["scale-to-zero"] == "pass"
    assert [r for r in cluster.requests if r.startswith("PATCH ")][:2] == [
        SCALE.format("gpu-sharing-verification")] * 2
    assert result.report["scale_test"] and result.report["scale_to_zero"]
    assert json.loads((tmp_path / "report.json").read_text())["scale_to_zero"]["nodes_left"] == 0


def test_not_run_to_zero_when_the_sharing_checks_fail(tmp_path, capsys):
    cluster = autoscaled_cluster(FakeAutoscaler(template_slices=SLICES, unneeded_seconds=0))
    cluster.nodes[-1]["status"]["allocatable"]["nvidia.com/gpu"] = "1"  # the config says 5
    result = run(cluster, tmp_path, capsys, "--scale-to-zero", "5")

    assert result.check("scale-to-zero")["detail"] == "not run: the checks above failed"
    assert not [r for r in cluster.requests if r.startswith("PATCH ")]


def test_scale_to_zero_waits_twenty_minutes_each_way_unless_told():
    """10 minutes unneeded (the autoscaler's default), then the instance's termination."""
    assert scale_to_zero.TIMEOUT_SECONDS == 1200.0
    assert verify.parser().parse_args(["--scale-to-zero"]).scale_to_zero == 1200.0
    assert verify.parser().parse_args(["--scale-to-zero", "60"]).scale_to_zero == 60.0
    assert verify.parser().parse_args([]).scale_to_zero is None
    both = verify.parser().parse_args(["--scale-to-zero", "--scale-test"])
    assert (both.scale_to_zero, both.scale_test) == (1200.0, 900.0)
