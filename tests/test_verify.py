"""``python -m components verify`` against a fake Kubernetes API (tests/fake_kube_api.py).

The official client talks HTTP to a local server that answers like a real cluster, so these
cover the whole path: kubeconfig, requests and selectors, deserialization, checks, report.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components import conventions
from components.tools import verify
from tests import fake_kube_api as fake

ROOT = Path(__file__).resolve().parent.parent
NODE = "ip-10-0-1-23.us-west-2.compute.internal"
OTHER_NODE = "ip-10-0-2-41.us-west-2.compute.internal"
GPU = "GPU-8f3c2a71-1e4b-4c5d-9a6e-0b1c2d3e4f50"
OTHER_GPU = "GPU-1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
#: TFLOP/s of five fp16 matmul loops time-sliced on one T4.
FAIR = (1.312, 1.298, 1.305, 1.287, 1.301)
CHECKS = ("node-capacity", "pods-ready", "shared-gpu", "fair-shares", "no-slice-no-gpu")
NO_SLICE_POD = "gpu-sharing-no-slice"
POLL = 0.02


@dataclass
class Result:
    rc: int
    out: str
    err: str
    report: dict[str, Any]

    def check(self, name: str) -> dict[str, Any]:
        return next(c for c in self.report["checks"] if c["name"] == name)

    def statuses(self) -> dict[str, str]:
        return {c["name"]: c["status"] for c in self.report["checks"]}

    def pod(self, i: int) -> dict[str, Any]:
        return next(p for p in self.report["pods"] if p["name"] == pod_name(i))


def pod_name(i: int) -> str:
    return f"gpu-sharing-verification-6d4f8b7c9-{'abcdefghij'[i]}x2k{i}"


def add_pod(
    cluster: fake.Cluster,
    i: int,
    *,
    node: str = NODE,
    gpu: str = GPU,
    tflops: float | None = None,
    resource: str = "nvidia.com/gpu",
    ready: bool = True,
) -> None:
    """A Running probe pod whose log has run a while: two reports, torch noise in between."""
    name = pod_name(i)
    cluster.pods.append(fake.probe_pod(name, node, resource=resource, ready=ready))
    earlier = fake.probe_line(name, node, gpu, tflops=None if tflops is None else 9.9)
    latest = fake.probe_line(name, node, gpu, tflops=tflops)
    cluster.logs[(fake.NAMESPACE, name)] = f"{earlier}\nUserWarning: TF32 is off\n{latest}\n"


def add_pending_pod(cluster: fake.Cluster, i: int, event: str | None) -> None:
    pod = fake.probe_pod(pod_name(i), None)
    cluster.pods.append(pod)
    if event is not None:
        cluster.events.append(fake.scheduling_event(pod, event))


def shared_cluster(
    units: int = 5,
    tflops: tuple[float | None, ...] = FAIR,
    config: dict[str, Any] | None = None,
    resource: str = "nvidia.com/gpu",
) -> fake.Cluster:
    """The demo: a g4dn.xlarge advertising ``units`` of ``resource``, and a probe pod per rate."""
    cluster = fake.Cluster(
        nodes=[
            fake.gpu_node(NODE, {resource: units}),
            fake.cpu_node("ip-10-0-0-9.us-west-2.compute.internal"),
        ],
        configmaps=[fake.plugin_configmap({"default": config or fake.time_slicing(5)})],
        deployments=[
            fake.probe_deployment(len(tflops)),
            fake.probe_deployment(1, app=fake.NO_SLICE_APP),
        ],
    )
    for i, rate in enumerate(tflops):
        add_pod(cluster, i, tflops=rate, resource=resource)
    add_no_slice_pod(cluster)
    return cluster


def add_no_slice_pod(
    cluster: fake.Cluster, *, sees: str | None = None, node: str = NODE
) -> None:
    """The pod without a GPU request, Ready while it sees no GPU device node."""
    pod = fake.probe_pod(
        NO_SLICE_POD, node, resource=None, ready=sees is None, app=fake.NO_SLICE_APP
    )
    cluster.pods.append(pod)
    cluster.logs[(fake.NAMESPACE, NO_SLICE_POD)] = fake.no_slice_line(NO_SLICE_POD, node, sees)


def run(
    cluster: fake.Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> Result:
    """verify's main against ``cluster``; waits not at all unless ``args`` give a --timeout."""
    report = tmp_path / "report.json"
    with fake.serve(cluster) as url:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", url)
        rc = verify.main(
            ["--kubeconfig", str(kubeconfig), "--json", str(report), "--timeout", "0", *args],
            poll_seconds=POLL,
        )
    captured = capsys.readouterr()
    return Result(rc, captured.out, captured.err, json.loads(report.read_text()))


def test_five_pods_sharing_one_gpu_fairly_pass(tmp_path, capsys):
    cluster = shared_cluster()
    result = run(cluster, tmp_path, capsys)

    assert result.rc == 0, result.out
    assert result.statuses() == dict.fromkeys(CHECKS, "pass")
    assert result.out.rstrip().endswith("PASS: 5 checks passed")
    # The seconds waited depend on the machine's load, not on verify.
    assert re.search(r"waiting for pods: 5/5 ready \(\d+s\)\n", result.err)
    report = result.report
    assert report["ok"] is True
    # Only the GPU node: the label selector went to the server, which applied it.
    assert "/api/v1/nodes?labelSelector=nvidia.com/gpu.present%3Dtrue" in cluster.requests
    assert report["nodes"] == [
        {
            "name": NODE,
            "instance_type": "g4dn.xlarge",
            "gpus": 1,
            "config_key": "default",
            "resource": "nvidia.com/gpu",
            "units_per_gpu": 5,
            "expected": 5,
            "capacity": 5,
            "allocatable": 5,
            "problem": None,
        }
    ]
    pods = report["pods"]
    assert [p["gpu_uuids"] for p in pods] == [[GPU]] * 5
    assert [p["tflops"] for p in pods] == list(FAIR)  # each log's latest line, not an earlier one
    assert sum(p["share"] for p in pods) == pytest.approx(1.0)
    [gpu] = report["gpus"]
    assert gpu["pods"] == [pod_name(i) for i in range(5)]
    assert gpu["tflops"] == pytest.approx(sum(FAIR))
    assert gpu["fairness"] == pytest.approx(min(FAIR) / max(FAIR))
    assert "nvidia.com/gpu capacity 5, allocatable 5; expected 5 per GPU (config 'default')" in (
        result.out
    )
    assert f"{NODE}: 5 pod(s) see {GPU}" in result.out


def test_pods_the_deployment_has_not_created_yet_are_expected(tmp_path, capsys):
    cluster = shared_cluster(tflops=(None,) * 3)
    cluster.deployments = [fake.probe_deployment(5)]
    result = run(cluster, tmp_path, capsys)

    assert result.rc == 1
    assert result.statuses()["pods-ready"] == "fail"
    assert "waiting for pods: 3/5 ready" in result.err
    assert any(
        "/apis/apps/v1/namespaces/gpu-sharing-verification/deployments" in r
        for r in cluster.requests
    )


def test_node_advertising_one_unit_instead_of_five_fails_capacity(tmp_path, capsys):
    # What a node shows when the plugin never read the sharing config.
    result = run(shared_cluster(units=1, tflops=(FAIR[0],)), tmp_path, capsys)

    assert result.rc == 1
    assert result.statuses()["node-capacity"] == "fail"
    check = result.check("node-capacity")
    assert check["detail"] == f"1 of 1 GPU nodes advertise other than their config says: {NODE}"
    assert check["notes"] == [
        f"{NODE}: nvidia.com/gpu capacity 1, allocatable 1; expected 5 per GPU (config "
        "'default') x 1 GPU (g4dn.xlarge) = 5"
    ]
    assert "FAIL: 1 of 5 checks failed (node-capacity)" in result.out


def test_allocatable_below_capacity_fails(tmp_path, capsys):
    cluster = shared_cluster()
    cluster.nodes[0]["status"]["allocatable"]["nvidia.com/gpu"] = "0"  # an unhealthy GPU

    result = run(cluster, tmp_path, capsys)

    assert result.check("node-capacity")["status"] == "fail"
    assert "capacity 5, allocatable 0" in result.check("node-capacity")["notes"][0]


def test_pending_pods_are_explained_by_their_scheduling_events(tmp_path, capsys):
    cluster = shared_cluster(units=3, tflops=FAIR[:3])
    cluster.configmaps = [fake.plugin_configmap({"default": fake.time_slicing(3)})]
    event = (
        "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are "
        "available: 1 No preemption victims found for incoming pod."
    )
    add_pending_pod(cluster, 3, event)
    add_pending_pod(cluster, 4, event)
    cluster.deployments = [fake.probe_deployment(5)]

    result = run(cluster, tmp_path, capsys, "--timeout", "0.1")

    assert result.rc == 1
    assert result.statuses() == {
        "node-capacity": "pass",
        "pods-ready": "fail",
        "shared-gpu": "pass",
        "fair-shares": "pass",
        "no-slice-no-gpu": "pass",
    }
    check = result.check("pods-ready")
    assert re.fullmatch(
        r"3/5 pods Running and Ready on GPU nodes; gave up waiting after \ds \(--timeout\)",
        check["detail"],
    )
    assert check["notes"] == [
        f'{pod_name(i)}: Pending: event FailedScheduling: "{event}"; missing resource: '
        "nvidia.com/gpu"
        for i in (3, 4)
    ]
    assert result.pod(3)["missing"] == ["nvidia.com/gpu"]
    assert result.pod(3)["why"] in result.out
    # Each pod's own events, asked for by kind, name and uid.
    assert any("fieldSelector=involvedObject.kind%3DPod" in r for r in cluster.requests)


def test_pending_pod_without_events_is_explained_by_its_condition(tmp_path, capsys):
    cluster = shared_cluster(tflops=FAIR[:4])
    add_pending_pod(cluster, 4, event=None)  # events expire after an hour

    result = run(cluster, tmp_path, capsys)

    assert result.pod(4)["why"] == (
        f"Pending: PodScheduled Unschedulable: {fake.INSUFFICIENT_GPU}; "
        "missing resource: nvidia.com/gpu"
    )


def test_pods_on_one_gpu_node_seeing_different_gpus_fail(tmp_path, capsys):
    cluster = shared_cluster(tflops=FAIR[:4])
    add_pod(cluster, 4, gpu=OTHER_GPU, tflops=FAIR[4])

    result = run(cluster, tmp_path, capsys)

    assert result.rc == 1
    check = result.check("shared-gpu")
    assert check["status"] == "fail"
    assert check["detail"] == (
        f"{NODE}: 5 pod(s) see {OTHER_GPU}, {GPU}: 2 different GPUs on a node with 1"
    )


def test_pods_on_a_four_gpu_node_may_see_several_gpus(tmp_path, capsys):
    cluster = shared_cluster(tflops=())
    cluster.nodes[0] = fake.gpu_node(NODE, {"nvidia.com/gpu": 20}, instance_type="g4dn.12xlarge")
    for i, gpu in enumerate([GPU, GPU, GPU, OTHER_GPU, OTHER_GPU]):
        add_pod(cluster, i, gpu=gpu)

    result = run(cluster, tmp_path, capsys)

    assert result.rc == 0, result.out
    assert result.report["nodes"][0]["expected"] == 20
    assert result.check("shared-gpu")["detail"] == ("5 pod(s) on 1 node(s) see 2 physical GPU(s)")


def test_unfair_shares_fail_below_the_threshold(tmp_path, capsys):
    unfair = (2.9, 0.9, 0.8, 0.8, 0.8)
    result = run(shared_cluster(tflops=unfair), tmp_path, capsys)

    assert result.rc == 1
    check = result.check("fair-shares")
    assert check["status"] == "fail"
    assert check["detail"] == (
        f"{GPU}: 5 pod(s), 6.20 TFLOP/s in all, fairness 0.28 (slowest/fastest) < 0.8"
    )
    assert result.pod(0)["share"] == pytest.approx(2.9 / 6.2)
    assert "46.8%" in result.out

    lenient = run(shared_cluster(tflops=unfair), tmp_path, capsys, "--min-fairness", "0.25")
    assert lenient.rc == 0
    assert lenient.check("fair-shares")["detail"] == "1 GPU(s) split evenly: fairness >= 0.28"


def test_measure_pod_with_gpu_work_error_fails_fair_shares(tmp_path, capsys):
    cluster = shared_cluster(tflops=FAIR[:4])
    cluster.pods.append(fake.probe_pod(pod_name(4), NODE))
    line = json.loads(fake.probe_line(pod_name(4), NODE, GPU, tflops=1.0))
    line.update(tflops=None, error="GPU work failed: OutOfMemoryError: CUDA out of memory")
    cluster.logs[(fake.NAMESPACE, pod_name(4))] = json.dumps(line) + "\n"

    result = run(cluster, tmp_path, capsys)

    assert result.check("fair-shares")["detail"] == (
        f"{pod_name(4)}: no TFLOP/s in its latest report: GPU work failed: OutOfMemoryError: "
        "CUDA out of memory"
    )


def test_nvidia_smi_mode_skips_fair_shares(tmp_path, capsys):
    result = run(shared_cluster(tflops=(None,) * 5), tmp_path, capsys)

    assert result.rc == 0
    assert result.check("fair-shares") == {
        "name": "fair-shares",
        "status": "skip",
        "detail": "no pod runs in measure mode (verificationMode: measure)",
        "notes": [],
    }
    assert result.out.rstrip().endswith("PASS: 4 checks passed, 1 skipped")


def test_probe_reporting_no_gpu_fails_shared_gpu(tmp_path, capsys):
    cluster = shared_cluster(tflops=FAIR[:4])
    cluster.pods.append(fake.probe_pod(pod_name(4), NODE, ready=False))
    line = json.loads(fake.probe_line(pod_name(4), NODE, GPU))
    line.update(gpus=[], error="nvidia-smi not found on PATH (is the NVIDIA runtime in use?)")
    # A log of exactly one JSON line: some client versions would hand that back as a dict.
    cluster.logs[(fake.NAMESPACE, pod_name(4))] = json.dumps(line)

    result = run(cluster, tmp_path, capsys)

    assert result.check("shared-gpu")["detail"] == (
        f"{pod_name(4)}: reports no GPU: nvidia-smi not found on PATH (is the NVIDIA runtime "
        "in use?)"
    )
    assert result.pod(4)["why"] == (
        "Running, not Ready: Ready ContainersNotReady: containers with unready status: [gpu-probe]"
    )


def test_renamed_shared_resource(tmp_path, capsys):
    renamed = fake.time_slicing(5, rename_by_default=True)
    cluster = shared_cluster(config=renamed, resource="nvidia.com/gpu.shared")

    result = run(cluster, tmp_path, capsys)

    assert result.rc == 0, result.out
    node = result.report["nodes"][0]
    assert (node["resource"], node["capacity"], node["expected"]) == (
        "nvidia.com/gpu.shared",
        5,
        5,
    )

    # The plugin still advertising the old name is caught.
    stale = shared_cluster(config=renamed)
    result = run(stale, tmp_path, capsys)
    assert result.check("node-capacity")["notes"] == [
        f"{NODE}: nvidia.com/gpu.shared capacity none, allocatable none; expected 5 per GPU "
        "(config 'default') x 1 GPU (g4dn.xlarge) = 5"
    ]


def test_node_label_picks_the_config_key(tmp_path, capsys):
    cluster = shared_cluster(tflops=(FAIR[0],))
    cluster.nodes.append(fake.gpu_node(OTHER_NODE, {"nvidia.com/gpu": 2}, config_key="mps"))
    cluster.nodes.append(fake.gpu_node("ip-10-0-3-7", {"nvidia.com/gpu": 1}, config_key="typo"))
    mps = {
        "version": "v1",
        "sharing": {"mps": {"resources": [{"name": "nvidia.com/gpu", "replicas": 2}]}},
    }
    cluster.configmaps = [fake.plugin_configmap({"default": fake.time_slicing(5), "mps": mps})]

    result = run(cluster, tmp_path, capsys)

    nodes = {n["name"]: n for n in result.report["nodes"]}
    assert (nodes[OTHER_NODE]["config_key"], nodes[OTHER_NODE]["expected"]) == ("mps", 2)
    assert nodes["ip-10-0-3-7"]["problem"] == (
        "config key 'typo' (node label nvidia.com/device-plugin.config) is not in ConfigMap "
        "nvidia-device-plugin/nvidia-device-plugin-configs, which has: default, mps"
    )
    assert result.check("node-capacity")["detail"] == (
        "1 of 3 GPU nodes advertise other than their config says: ip-10-0-3-7"
    )


def test_missing_configmap_fails_capacity(tmp_path, capsys):
    cluster = shared_cluster()
    cluster.configmaps = []

    result = run(cluster, tmp_path, capsys)

    assert result.check("node-capacity")["notes"] == [
        f"{NODE}: ConfigMap nvidia-device-plugin/nvidia-device-plugin-configs is missing, so the "
        "device plugin shares nothing"
    ]


def test_invalid_config_in_configmap_fails_capacity(tmp_path, capsys):
    bad = {
        "version": "v1",
        "sharing": {"timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": 1}]}},
    }
    result = run(shared_cluster(config=bad), tmp_path, capsys)

    assert result.check("node-capacity")["notes"][0].startswith(
        f"{NODE}: ConfigMap nvidia-device-plugin/nvidia-device-plugin-configs key 'default': "
        "config.sharing.timeSlicing.resources[0].replicas must be >= 2"
    )


def test_no_gpu_nodes_and_no_pods(tmp_path, capsys):
    cluster = shared_cluster(tflops=())
    cluster.nodes = [fake.cpu_node("ip-10-0-0-9.us-west-2.compute.internal")]

    result = run(cluster, tmp_path, capsys)

    assert result.rc == 1
    assert result.statuses() == {
        "node-capacity": "fail",
        "pods-ready": "fail",
        "shared-gpu": "fail",
        "fair-shares": "skip",
        "no-slice-no-gpu": "fail",  # its node is no GPU node
    }
    assert result.check("node-capacity")["detail"] == (
        "no GPU nodes: no node has label nvidia.com/gpu.present=true (node group not up yet, or "
        "scaled to 0?)"
    )
    assert result.check("pods-ready")["detail"] == (
        "no pods labelled app.kubernetes.io/name=gpu-sharing-verification in namespace "
        "gpu-sharing-verification; gave up waiting after 0s (--timeout)"
    )
    assert re.search(r"waiting for pods: 0/1 ready \(\d+s\)\n", result.err)


def test_timeout_waiting_for_ready_fails_with_progress(tmp_path, capsys):
    cluster = shared_cluster(tflops=())
    for i in range(5):
        add_pod(cluster, i, ready=i < 2)

    result = run(cluster, tmp_path, capsys, "--timeout", "0.2")

    assert result.rc == 1
    assert re.match(r"waiting for pods: 2/5 ready \(\d+s\)\n", result.err)
    assert cluster.pod_lists > 3  # it polled
    check = result.check("pods-ready")
    assert re.fullmatch(
        r"2/5 pods Running and Ready on GPU nodes; gave up waiting after \ds \(--timeout\)",
        check["detail"],
    )
    assert len(check["notes"]) == 3
    assert result.report["timed_out"] is True


def test_waits_until_pods_are_ready(tmp_path, capsys):
    cluster = shared_cluster()
    held, no_slice = cluster.pods[:5], cluster.pods[5:]
    cluster.pods = held[:3] + no_slice

    def roll_out(cluster: fake.Cluster, lists: int) -> None:
        cluster.pods = held[: min(5, 3 + lists // 3)] + no_slice

    cluster.on_pod_list = roll_out
    result = run(cluster, tmp_path, capsys, "--timeout", "30", "--expect-pods", "5")

    assert result.rc == 0, result.out
    progress = result.err.splitlines()
    assert re.fullmatch(r"waiting for pods: 3/5 ready \(\d+s\)", progress[0])
    assert progress[-1].startswith("waiting for pods: 5/5 ready (")
    assert len(progress) == 3  # a line per change, not per poll
    assert result.report["timed_out"] is False


def test_progress_redraws_one_line_on_a_terminal():
    class Terminal:
        def __init__(self) -> None:
            self.text = ""

        def write(self, text: str) -> None:
            self.text += text

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    progress = verify.Progress(terminal)  # type: ignore[arg-type]
    progress.show(3, 5, 1.2)
    progress.show(3, 5, 4.4)
    progress.done()
    assert terminal.text == (
        "\r\x1b[Kwaiting for pods: 3/5 ready (1s)\r\x1b[Kwaiting for pods: 3/5 ready (4s)\n"
    )


def test_json_to_stdout_moves_the_table_to_stderr(tmp_path, capsys):
    with fake.serve(shared_cluster()) as url:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", url)
        rc = verify.main(["--kubeconfig", str(kubeconfig), "--json", "-"], poll_seconds=POLL)
    captured = capsys.readouterr()

    assert rc == 0
    assert json.loads(captured.out)["ok"] is True
    assert "PASS: 5 checks passed" in captured.err


def test_unreachable_api_exits_2_with_one_line(tmp_path):
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", fake.closed_port_url())

    done = subprocess.run(
        [sys.executable, "-m", "components", "verify", "--kubeconfig", str(kubeconfig)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(
        "python -m components verify: error: cannot reach the Kubernetes API at http://127.0.0.1:"
    )
    assert line.endswith("Connection refused")


def test_refused_credentials_exit_2(tmp_path, capsys):
    with fake.serve(shared_cluster()) as url:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", url, token="expired")
        rc = verify.main(["--kubeconfig", str(kubeconfig)], poll_seconds=POLL)

    assert rc == 2
    assert capsys.readouterr().err == (
        f"python -m components verify: error: the Kubernetes API at {url} refused to list "
        "deployments in namespace gpu-sharing-verification: 401 Unauthorized\n"
    )


def test_missing_kubeconfig_exits_2(tmp_path, capsys):
    rc = verify.main(["--kubeconfig", str(tmp_path / "nope")], poll_seconds=POLL)

    assert rc == 2
    err = capsys.readouterr().err
    assert err == (
        f"python -m components verify: error: no such file: {tmp_path / 'nope'} (kubeconfig)\n"
    )


def fake_pulumi(bin_dir: Path, script: str) -> str:
    """A directory for PATH holding a ``pulumi`` that runs ``script``."""
    bin_dir.mkdir()
    pulumi = bin_dir / "pulumi"
    pulumi.write_text(f"#!{sys.executable}\n{script}")
    pulumi.chmod(0o755)
    return str(bin_dir)


def test_stack_reads_the_kubeconfig_output(tmp_path, capsys, monkeypatch):
    with fake.serve(shared_cluster()) as url:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", url)
        # As pulumi-eks exports it: the kubeconfig as a JSON string.
        as_json = json.dumps(fake.yaml.safe_load(kubeconfig.read_text()))
        script = (
            "import sys\n"
            "assert sys.argv[1:] == ['stack', 'output', 'kubeconfig', '--show-secrets', "
            "'--stack', 'dev'], sys.argv\n"
            f"print({as_json!r})\n"
        )
        monkeypatch.setenv("PATH", fake_pulumi(tmp_path / "bin", script))
        rc = verify.main(["--stack", "dev"], poll_seconds=POLL)

    assert rc == 0, capsys.readouterr()


def test_stack_without_pulumi_cli_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    rc = verify.main(["--stack", "dev"], poll_seconds=POLL)

    assert rc == 2
    assert capsys.readouterr().err.startswith(
        "python -m components verify: error: --stack needs the pulumi CLI on PATH"
    )


def test_stack_output_failure_exits_2(tmp_path, capsys, monkeypatch):
    script = "import sys\nprint('error: no stack named \\'dev\\' found', file=sys.stderr)\n"
    script += "sys.exit(255)\n"
    monkeypatch.setenv("PATH", fake_pulumi(tmp_path / "bin", script))
    rc = verify.main(["--stack", "dev"], poll_seconds=POLL)

    assert rc == 2
    assert capsys.readouterr().err == (
        "python -m components verify: error: stack output kubeconfig --show-secrets --stack dev "
        "failed (255): error: no stack named 'dev' found\n"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--timeout", "-1"],
        ["--timeout", "soon"],
        ["--expect-pods", "0"],
        ["--min-fairness", "1.5"],
        ["--stack", "dev", "--kubeconfig", "x"],
    ],
)
def test_usage_errors_exit_2(args, capsys):
    with pytest.raises(SystemExit) as exited:
        verify.main(args)
    assert exited.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("python -m components verify: error: argument ")
    assert line.endswith("(see --help)")


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exited:
        verify.main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--kubeconfig",
        "--stack",
        "--namespace",
        "--timeout",
        "--json",
        "--expect-pods",
        "--min-fairness",
    ):
        assert option in out


def test_kubeconfig_defaults_to_the_environment(monkeypatch, tmp_path, capsys):
    with fake.serve(shared_cluster()) as url:
        monkeypatch.setenv("KUBECONFIG", str(fake.write_kubeconfig(tmp_path / "kc", url)))
        rc = verify.main([], poll_seconds=POLL)
    assert rc == 0, capsys.readouterr().out


def bottlerocket(cluster: fake.Cluster, labels: dict[str, str]) -> fake.Cluster:
    """The node as a Bottlerocket group labels it (components/node_group.py); no ConfigMap
    speaks for it: its host plugin shares as the launch template's user data says."""
    cluster.nodes[0]["metadata"]["labels"].update(
        {"eks-gpu-sharing/ami-type": "BOTTLEROCKET_x86_64_NVIDIA", **labels})
    cluster.configmaps.clear()
    return cluster


def test_bottlerocket_node_is_checked_against_the_sharing_its_host_was_given(tmp_path, capsys):
    cluster = bottlerocket(shared_cluster(units=5, resource="nvidia.com/gpu.shared"), {
        conventions.HOST_PLUGIN_RESOURCE_LABEL: "gpu.shared",
        conventions.HOST_PLUGIN_UNITS_LABEL: "5",
    })

    result = run(cluster, tmp_path, capsys)

    check = result.check("node-capacity")
    assert check["status"] == "pass", check
    assert "BOTTLEROCKET_x86_64_NVIDIA's host plugin" in json.dumps(result.report)
    assert result.report["ok"], result.report["checks"]  # no ConfigMap needed


def test_bottlerocket_node_advertising_other_than_its_settings_fails(tmp_path, capsys):
    cluster = bottlerocket(shared_cluster(units=5), {
        conventions.HOST_PLUGIN_RESOURCE_LABEL: "gpu",
        conventions.HOST_PLUGIN_UNITS_LABEL: "4",
    })

    result = run(cluster, tmp_path, capsys)

    assert result.check("node-capacity")["status"] == "fail"
    assert "expected 4 per GPU" in result.check("node-capacity")["notes"][0]


def test_bottlerocket_node_without_our_labels_is_unknown_not_guessed(tmp_path, capsys):
    result = run(bottlerocket(shared_cluster(), {}), tmp_path, capsys)

    assert result.check("node-capacity")["status"] == "fail"
    assert "so the sharing its host plugin was given is unknown" in (
        result.check("node-capacity")["notes"][0])


def test_a_pod_without_a_slice_that_sees_no_gpu_passes(tmp_path, capsys):
    cluster = shared_cluster()
    result = run(cluster, tmp_path, capsys)

    check = result.check("no-slice-no-gpu")
    assert check["status"] == "pass"
    assert check["notes"] == [f"{NO_SLICE_POD} on {NODE}: no GPU listed"]
    assert any(
        "labelSelector=app.kubernetes.io/name%3Dgpu-sharing-no-slice" in r for r in cluster.requests
    )


def test_a_pod_without_a_slice_that_sees_a_gpu_fails(tmp_path, capsys):
    """What AL2023's default toolkit does with an image that sets NVIDIA_VISIBLE_DEVICES."""
    cluster = shared_cluster()
    cluster.pods.pop()
    add_no_slice_pod(cluster, sees="/dev/nvidia0")
    result = run(cluster, tmp_path, capsys)

    assert result.rc == 1
    assert result.statuses() == {**dict.fromkeys(CHECKS, "pass"), "no-slice-no-gpu": "fail"}
    check = result.check("no-slice-no-gpu")
    assert "accepts NVIDIA_VISIBLE_DEVICES from the image" in check["detail"]
    assert check["notes"] == [f"{NO_SLICE_POD} on {NODE}: sees /dev/nvidia0"]


def test_a_missing_or_pending_pod_without_a_slice_fails(tmp_path, capsys):
    cluster = shared_cluster()
    cluster.pods.pop()
    result = run(cluster, tmp_path, capsys)
    assert result.check("no-slice-no-gpu")["status"] == "fail"
    assert "no pod labelled app.kubernetes.io/name=gpu-sharing-no-slice" in result.out

    pending = fake.probe_pod(NO_SLICE_POD, None, app=fake.NO_SLICE_APP)
    cluster.pods.append(pending)
    result = run(cluster, tmp_path, capsys)
    assert f"({NO_SLICE_POD}: Pending" in result.check("no-slice-no-gpu")["detail"]
