"""``python -m components verify``: show on a live cluster that pods really share its GPUs.

``pulumi up`` proves that objects exist; this reads back what the cluster made of them: what
each GPU node advertises, whether every probe pod got a unit, which physical GPU each pod sees
and, in measure mode, how evenly the GPU's time is split between them.
Exit 0: every check passes; 1: a check fails; 2: bad usage, or the cluster could not be asked.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO, TypeVar

import yaml

from .. import conventions, validation
from . import scale_test, scale_to_zero
from .cli import (
    Parser,
    UsageError,
    error,
    path_arg,
    remove_folders,
    warning,
    writable,
    write_text,
)
from .verify_checks import (
    CONFIGMAP,
    GPU_NODE_SELECTOR,
    NO_SLICE_SELECTOR,
    POD_SELECTOR,
    Check,
    GpuReport,
    Kube,
    NodeReport,
    PodReport,
    Report,
    check_capacity,
    check_fair_shares,
    check_no_slice,
    check_ready,
    check_shared_gpu,
    gpu_reports,
    is_ready,
    latest_sample,
    node_reports,
    one_line,
    why_not_ready,
)

#: Seconds between pod polls while waiting for them to be Ready.
POLL_SECONDS = 3.0
#: Connect and read timeouts of each API request, so an unreachable endpoint fails fast;
#: never longer than ``--timeout`` (but at least MIN_REQUEST_SECONDS), and never retried.
REQUEST_TIMEOUT = (5.0, 30.0)
MIN_REQUEST_SECONDS = 5.0
#: Log lines read per pod; the latest JSON line among them counts (torch may log warnings).
LOG_TAIL_LINES = 20
#: Lowest slowest/fastest TFLOP/s ratio between pods on one GPU that passes.
MIN_FAIRNESS = 0.8
#: Without a terminal, an unchanged progress line is repeated this often to show we are alive.
PROGRESS_EVERY_SECONDS = 30.0

T = TypeVar("T")


class VerifyError(Exception):
    """The cluster could not be asked (kubeconfig, network, credentials): exit 2, no report."""


class _Refused(Exception):
    """An error status the caller expects, e.g. 404 for a missing ConfigMap."""


class Api:
    """The reads verify makes; any failure but an expected status becomes VerifyError."""

    def __init__(self, core: Kube, apps: Kube, timeout: float = REQUEST_TIMEOUT[1]) -> None:
        self.core = core
        self.apps = apps
        self.host = core.api_client.configuration.host
        bound = max(timeout, MIN_REQUEST_SECONDS)
        self.request_timeout = tuple(min(limit, bound) for limit in REQUEST_TIMEOUT)

    def _ask(self, what: str, call: Callable[[], T], expected: tuple[int, ...] = ()) -> T:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return call()
        except ApiException as err:
            message = _api_message(err)
            if err.status in expected:
                raise _Refused(message) from None
            raise VerifyError(
                f"the Kubernetes API at {self.host} refused to {what}: {err.status} {message}"
            ) from None
        except (HTTPError, OSError) as err:
            raise VerifyError(
                f"cannot reach the Kubernetes API at {self.host}: {_reason(err)}"
            ) from None
        except (ValueError, TypeError, AttributeError) as err:
            # An answer the client cannot read as a Kubernetes object: an HTML page, a proxy.
            raise VerifyError(
                f"the server at {self.host} is not a Kubernetes API: its answer when asked to "
                f"{what} is not a Kubernetes object ({type(err).__name__})"
            ) from None

    def gpu_nodes(self) -> list[Kube]:
        nodes = self._ask(
            "list nodes",
            lambda: self.core.list_node(
                label_selector=GPU_NODE_SELECTOR, _request_timeout=self.request_timeout
            ),
        ).items
        return sorted(nodes, key=lambda node: node.metadata.name)

    def desired_pods(self, namespace: str) -> int | None:
        """Replicas the probe Deployments ask for; None when there is no Deployment."""
        deployments = self._ask(
            f"list deployments in namespace {namespace}",
            lambda: self.apps.list_namespaced_deployment(
                namespace, label_selector=POD_SELECTOR, _request_timeout=self.request_timeout
            ),
        ).items
        if not deployments:
            return None
        return sum(d.spec.replicas or 0 for d in deployments)

    def deployment(self, namespace: str, selector: str = POD_SELECTOR) -> tuple[str, int] | None:
        """The probe (or ``selector``'s) Deployment's name and replicas; None unless there
        is exactly one."""
        deployments = self._ask(
            f"list deployments in namespace {namespace}",
            lambda: self.apps.list_namespaced_deployment(
                namespace, label_selector=selector, _request_timeout=self.request_timeout
            ),
        ).items
        if len(deployments) != 1:
            return None
        return deployments[0].metadata.name, deployments[0].spec.replicas or 0

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        """Set the Deployment's replicas through its scale subresource."""
        self._ask(
            f"scale deployment {namespace}/{name}",
            lambda: self.apps.patch_namespaced_deployment_scale(
                name,
                namespace,
                {"spec": {"replicas": replicas}},
                _request_timeout=self.request_timeout,
            ),
        )

    def node_reports(self) -> list[NodeReport]:
        """What each GPU node advertises, against its config key."""
        configs = self.plugin_configs()
        return [report for node in self.gpu_nodes() for report in node_reports(node, configs)]

    def pods(self, namespace: str, selector: str = POD_SELECTOR) -> list[Kube]:
        """The probe pods, less those being deleted (a rollout's old ones)."""
        pods = self._ask(
            f"list pods in namespace {namespace}",
            lambda: self.core.list_namespaced_pod(
                namespace, label_selector=selector, _request_timeout=self.request_timeout
            ),
        ).items
        live = (pod for pod in pods if pod.metadata.deletion_timestamp is None)
        return sorted(live, key=lambda pod: pod.metadata.name)

    def events(self, pod: Kube) -> list[Kube]:
        """The pod's events, newest first."""
        meta = pod.metadata
        selector = (
            f"involvedObject.kind=Pod,involvedObject.name={meta.name},involvedObject.uid={meta.uid}"
        )
        events = self._ask(
            f"list events in namespace {meta.namespace}",
            lambda: self.core.list_namespaced_event(
                meta.namespace, field_selector=selector, _request_timeout=self.request_timeout
            ),
        ).items
        return sorted(events, key=_event_time, reverse=True)

    def plugin_configs(self) -> dict[str, str] | None:
        """The device plugin's config files by key; None when the ConfigMap is missing."""
        try:
            config_map = self._ask(
                f"read ConfigMap {CONFIGMAP}",
                lambda: self.core.read_namespaced_config_map(
                    conventions.PLUGIN_CONFIGMAP_NAME,
                    conventions.DEVICE_PLUGIN_NAMESPACE,
                    _request_timeout=self.request_timeout,
                ),
                expected=(404,),
            )
        except _Refused:
            return None
        return dict(config_map.data or {})

    def log_tail(self, pod: Kube) -> str:
        """The end of the pod's log; raises _Refused while its container has not started."""
        # Raw bytes: some client versions turn a log that is one JSON line into a dict's repr.
        response = self._ask(
            f"read the log of pod {pod.metadata.name}",
            lambda: self.core.read_namespaced_pod_log(
                pod.metadata.name,
                pod.metadata.namespace,
                tail_lines=LOG_TAIL_LINES,
                _preload_content=False,
                _request_timeout=self.request_timeout,
            ),
            expected=(400, 404),
        )
        return str(response.data.decode("utf-8", "replace"))


def _api_message(err: Any) -> str:
    """The Status message the API server sent, else the HTTP reason."""
    try:
        return str(json.loads(err.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(err.reason)


def _reason(err: BaseException) -> str:
    """The innermost cause, without urllib3's object reprs and retry wrapping."""
    cause = getattr(err, "reason", None)
    text = str(cause if isinstance(cause, BaseException) else err)
    text = re.sub(r"^(<[^>]*>|\w+\([^)]*\)): ", "", text)
    return text.removeprefix("Failed to establish a new connection: ")


def _event_time(event: Kube) -> datetime:
    """Scheduler events carry only eventTime; kubelet ones only lastTimestamp."""
    return (
        event.last_timestamp
        or event.event_time
        or event.metadata.creation_timestamp
        or datetime.min.replace(tzinfo=timezone.utc)
    )


class Progress:
    """'waiting for pods: 3/5 ready (12s)', redrawn in place on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.terminal = stream.isatty()
        self.last: tuple[str, float] | None = None

    def show(self, ready: int, expected: int, elapsed: float) -> None:
        self.say(f"waiting for pods: {ready}/{expected} ready", elapsed)

    def say(self, text: str, elapsed: float) -> None:
        if self.terminal:
            self.stream.write(f"\r\x1b[K{text} ({elapsed:.0f}s)")
        elif (
            self.last is None
            or self.last[0] != text
            or elapsed - self.last[1] >= PROGRESS_EVERY_SECONDS
        ):
            self.stream.write(f"{text} ({elapsed:.0f}s)\n")
        else:
            return
        self.stream.flush()
        self.last = (text, elapsed)

    def done(self) -> None:
        if self.terminal and self.last is not None:
            self.stream.write("\n")


def wait_for_pods(
    api: Api,
    namespace: str,
    expect: int | None,
    timeout: float,
    poll_seconds: float,
    progress: Progress,
    selector: str = POD_SELECTOR,
) -> tuple[list[Kube], float, bool]:
    """Poll until ``expect`` probe (or ``selector``'s) pods (default: all found) are Ready:
    (pods, seconds, timed out)."""
    start = time.monotonic()
    try:
        while True:
            pods = api.pods(namespace, selector)
            ready = sum(is_ready(pod) for pod in pods)
            elapsed = time.monotonic() - start
            progress.show(ready, expect or max(1, len(pods)), elapsed)
            if ready >= (expect or 1) and ready == len(pods):
                return pods, elapsed, False
            if elapsed >= timeout:
                return pods, elapsed, True
            time.sleep(min(poll_seconds, timeout - elapsed))
    finally:
        progress.done()


def pod_report(api: Api, pod: Kube) -> PodReport:
    report = PodReport(
        pod.metadata.name, pod.spec.node_name, pod.status.phase or "Unknown", is_ready(pod)
    )
    if not report.ready:
        report.why, report.missing = why_not_ready(pod, api.events(pod))
    if report.phase == "Running":
        _read_sample(api, pod, report)
    return report


def _read_sample(api: Api, pod: Kube, report: PodReport) -> None:
    """Fill in the probe's latest report (components/gpu_probe.py)."""
    try:
        text = api.log_tail(pod)
    except _Refused as err:
        report.error = f"log unreadable: {err}"
        return
    sample = latest_sample(text)
    if sample is None:
        report.error = f"no JSON report in the last {LOG_TAIL_LINES} log lines"
        return
    # The pod without a slice names device nodes, having no nvidia-smi to ask for UUIDs.
    names = (gpu.get("uuid") or gpu.get("device") for gpu in sample.get("gpus") or [])
    report.gpu_uuids = [name for name in names if name]
    report.mode = sample.get("mode")
    tflops = sample.get("tflops")
    report.tflops = float(tflops) if isinstance(tflops, (int, float)) else None
    report.reported_at = sample.get("ts")
    report.error = sample.get("error")


def verify(
    api: Api,
    *,
    namespace: str,
    timeout: float,
    expect_pods: int | None,
    min_fairness: float,
    progress: TextIO,
    poll_seconds: float = POLL_SECONDS,
    scale_timeout: float | None = None,
    zero_timeout: float | None = None,
) -> Report:
    """Wait for the probe pods, then read the cluster once and run every check.

    Without ``expect_pods`` the Deployment's replicas are expected, so a wait does not end
    before the Deployment has created all its pods. With ``scale_timeout``, then run the
    scale test (components/tools/scale_test.py), waiting that long for each scaling; with
    ``zero_timeout``, then scale to zero GPU nodes and back
    (components/tools/scale_to_zero.py). Neither runs once a check has failed.
    """
    expect_pods = expect_pods or api.desired_pods(namespace)
    pods, waited, timed_out = wait_for_pods(
        api, namespace, expect_pods, timeout, poll_seconds, Progress(progress)
    )
    gpu_nodes = api.gpu_nodes()
    nodes = api.node_reports()
    pod_reports = [pod_report(api, pod) for pod in pods]
    gpus = gpu_reports(pod_reports)
    expected = expect_pods or max(1, len(pods))
    checks = [
        check_capacity(nodes),
        check_ready(
            pod_reports,
            expected,
            {n.metadata.name for n in gpu_nodes},
            namespace,
            waited,
            timed_out,
        ),
        check_shared_gpu(pod_reports, nodes),
        check_fair_shares(pod_reports, gpus, min_fairness),
        check_no_slice(
            [pod_report(api, pod) for pod in api.pods(namespace, NO_SLICE_SELECTOR)],
            {n.metadata.name for n in gpu_nodes},
            namespace,
        ),
    ]
    flows: dict[str, tuple[Callable[..., Any], float | None]] = {
        "scale-test": (scale_test.run, scale_timeout),
        "scale-to-zero": (scale_to_zero.run, zero_timeout),
    }
    measured: dict[str, dict[str, Any]] = {}
    for name, (flow, flow_timeout) in flows.items():
        if flow_timeout is None:
            continue
        if any(check.status == "fail" for check in checks):
            checks.append(Check(name, "skip", "not run: the checks above failed"))
            continue
        found = flow(
            api,
            namespace=namespace,
            pods=pods,
            nodes=nodes,
            timeout=flow_timeout,
            poll_seconds=poll_seconds,
            progress=Progress(progress),
            wait=wait_for_pods,
        )
        if isinstance(found, Check):  # it could not run
            checks.append(found)
        else:
            checks.append(found.check)
            measured[name] = asdict(found)
    return Report(
        namespace,
        expected,
        round(waited, 1),
        timed_out,
        nodes,
        pod_reports,
        gpus,
        checks,
        measured.get("scale-test"),
        measured.get("scale-to-zero"),
    )


def _cell(value: object) -> str:
    return "-" if value is None or value == [] else str(value)


_NODE_COLUMNS: dict[str, Callable[[NodeReport], object]] = {
    "NODE": lambda n: n.name,
    "INSTANCE": lambda n: n.instance_type,
    "GPUS": lambda n: n.gpus,
    "CONFIG": lambda n: n.config_key,
    "RESOURCE": lambda n: n.resource,
    "PER GPU": lambda n: n.units_per_gpu,
    "CAPACITY": lambda n: n.capacity,
    "ALLOCATABLE": lambda n: n.allocatable,
}
_POD_COLUMNS: dict[str, Callable[[PodReport], object]] = {
    "POD": lambda p: p.name,
    "NODE": lambda p: p.node,
    "STATE": lambda p: "Ready" if p.ready else p.phase,
    "GPU": lambda p: ", ".join(p.gpu_uuids) or None,
    "TFLOP/S": lambda p: None if p.tflops is None else f"{p.tflops:.2f}",
    "SHARE": lambda p: None if p.share is None else f"{p.share:.1%}",
}
_GPU_COLUMNS: dict[str, Callable[[GpuReport], object]] = {
    "GPU": lambda g: g.uuid,
    "NODE": lambda g: g.node,
    "PODS": lambda g: len(g.pods),
    "TFLOP/S": lambda g: f"{g.tflops:.2f}",
    "FAIRNESS": lambda g: f"{g.fairness:.2f}",
}


def _table(title: str, columns: dict[str, Callable[[T], object]], items: list[T]) -> list[str]:
    rows = [list(columns), *([_cell(get(item)) for get in columns.values()] for item in items)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return ["", title, *(line.rstrip() for line in lines)]


def render(report: Report) -> str:
    """The report as tables for a terminal."""
    ready = sum(p.ready for p in report.pods)
    lines = [
        f"GPU sharing verification: namespace {report.namespace}, "
        f"{len({n.name for n in report.nodes})} GPU node(s), {ready}/{report.expected_pods} "
        f"pods ready (waited {report.waited_seconds:.0f}s)",
        *_table("GPU nodes", _NODE_COLUMNS, report.nodes),
        *_table("Pods", _POD_COLUMNS, report.pods),
    ]
    if report.gpus:
        lines += _table("GPUs (measure mode)", _GPU_COLUMNS, report.gpus)
    lines += ["", "Checks"]
    width = max(len(check.name) for check in report.checks)
    for check in report.checks:
        lines.append(f"{check.status.upper():4}  {check.name.ljust(width)}  {check.detail}")
        lines += [f"{'':6}{'':{width}}  - {note}" for note in check.notes]
    failed = [check.name for check in report.checks if check.status == "fail"]
    lines.append("")
    if failed:
        lines.append(
            f"FAIL: {len(failed)} of {len(report.checks)} checks failed ({', '.join(failed)})"
        )
    else:
        passed = sum(check.status == "pass" for check in report.checks)
        lines.append(
            f"PASS: {passed} checks passed"
            + (f", {len(report.checks) - passed} skipped" if passed < len(report.checks) else "")
        )
    return "\n".join(lines)


def connect(kubeconfig: str | None, stack: str | None, timeout: float) -> Api:
    """The cluster's API from a kubeconfig file, or from a Pulumi stack's output."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise VerifyError(
            "verify needs the kubernetes package: pip install 'eks-gpu-sharing[verify]'"
        ) from None
    # Read now, not when the client was imported; may be a list of files, as for kubectl.
    files = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    source = f"stack {stack}'s output kubeconfig" if stack is not None else files
    # One try per request: a dead endpoint fails once, within the request timeout.
    configuration = client.Configuration()
    configuration.retries = 0
    try:
        if stack is not None:
            config.load_kube_config_from_dict(
                _stack_kubeconfig(stack), client_configuration=configuration
            )
        else:
            paths = [os.path.expanduser(path) for path in files.split(os.pathsep) if path]
            if not any(os.path.exists(path) for path in paths):
                # The client's own words: "Invalid kube-config file. No configuration found."
                raise VerifyError(f"no such file: {', '.join(paths) or repr(files)} (kubeconfig)")
            for path in paths:
                _check_kubeconfig_file(path)
            config.load_kube_config(config_file=files, client_configuration=configuration)
    except (config.ConfigException, yaml.YAMLError, OSError) as err:
        raise VerifyError(
            f"cannot use the kubeconfig from {source}: {one_line(str(err))}"
        ) from None
    if not configuration.verify_ssl:
        # urllib3 would warn once per request; one line of ours says it.
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        warning(
            "verify",
            f"the kubeconfig from {source} sets insecure-skip-tls-verify: the API server's "
            "certificate is not checked",
        )
    api_client = client.ApiClient(configuration)
    return Api(client.CoreV1Api(api_client), client.AppsV1Api(api_client), timeout)


def _check_kubeconfig_file(path: str) -> None:
    """A kubeconfig file that exists is a map; the client fails obscurely on anything else."""
    try:
        with open(path, encoding="utf-8") as f:
            document = yaml.safe_load(f)
    except FileNotFoundError:
        return  # the client merges the files that exist
    except UnicodeDecodeError:
        document = "binary"
    if document is not None and not isinstance(document, dict):
        raise VerifyError(
            f"kubeconfig {path} is not a map of clusters, users and contexts "
            f"(it holds a {type(document).__name__})"
        )


def _stack_kubeconfig(stack: str) -> dict[str, Any]:
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise VerifyError(
            "--stack needs the pulumi CLI on PATH (https://www.pulumi.com/docs/iac/download-"
            "install/); or pass --kubeconfig FILE"
        )
    command = [pulumi, "stack", "output", "kubeconfig", "--show-secrets", "--stack", stack]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise VerifyError(f"{' '.join(command[1:])} failed ({done.returncode}): {said}")
    try:
        kubeconfig = yaml.safe_load(done.stdout)
    except yaml.YAMLError:
        kubeconfig = None
    if not isinstance(kubeconfig, dict):
        raise VerifyError(f"stack {stack}'s output kubeconfig is not a kubeconfig")
    return kubeconfig


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def _namespace(text: str) -> str:
    if not re.fullmatch(validation.DNS_LABEL, text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a namespace name (lower-case letters, digits and -, at most 63)"
        )
    return text


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a ratio in (0, 1]")
    return value


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m components verify",
        description="Check on a live cluster that pods share its GPUs as configured. Exit 0: "
        "every check passes; 1: a check fails; 2: usage or connection error.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--kubeconfig",
        type=lambda text: str(path_arg(text)),
        metavar="PATH",
        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)",
    )
    source.add_argument(
        "--stack",
        metavar="NAME",
        help="take the kubeconfig from this Pulumi stack's output "
        "(runs `pulumi stack output kubeconfig --show-secrets`)",
    )
    p.add_argument(
        "--namespace",
        type=_namespace,
        default=conventions.VERIFICATION_NAMESPACE,
        help="namespace of the verification pods (default: %(default)s)",
    )
    p.add_argument(
        "--timeout",
        type=_non_negative,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for the pods to be Ready (default: %(default).0f)",
    )
    p.add_argument(
        "--json",
        type=lambda text: str(path_arg(text)) if text != "-" else text,
        metavar="FILE",
        help="also write the report as JSON to FILE; '-' writes it to stdout and the table "
        "to stderr",
    )
    p.add_argument(
        "--expect-pods",
        type=_positive,
        metavar="N",
        help="pods that must be Ready (default: the Deployment's replicas, else as many as "
        "are found, at least 1)",
    )
    p.add_argument(
        "--scale-test",
        type=_non_negative,
        nargs="?",
        const=900.0,
        metavar="SECONDS",
        help="after the checks, scale the probe pods to one more than the running GPU nodes' "
        "slices, check that the Cluster Autoscaler adds exactly the nodes they need, then "
        "scale back; waits up to SECONDS for each (default: 900). Changes the cluster",
    )
    p.add_argument(
        "--scale-to-zero",
        type=_non_negative,
        nargs="?",
        const=scale_to_zero.TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="after the checks (and --scale-test), scale the probe pods and the pod without a "
        "slice to 0, wait until the Cluster Autoscaler has removed their GPU nodes, scale "
        "them back and wait until all are Ready again; reports both times; waits up to "
        f"SECONDS for each (default: {scale_to_zero.TIMEOUT_SECONDS:.0f}). Changes the cluster",
    )
    p.add_argument(
        "--min-fairness",
        type=_fraction,
        default=MIN_FAIRNESS,
        metavar="RATIO",
        help="in measure mode, the lowest slowest/fastest TFLOP/s ratio of pods on one GPU "
        "(default: %(default)s)",
    )
    return p


def main(argv: list[str], *, poll_seconds: float = POLL_SECONDS) -> int:
    args = parser().parse_args(argv)
    made: list[Path] = []
    code = 2
    try:
        code = _verify(args, made, poll_seconds)
    finally:
        if code:  # a failed run leaves none of the folders it made (a written report stays)
            remove_folders(made)
    return code


def _verify(args: argparse.Namespace, made: list[Path], poll_seconds: float) -> int:
    """verify's work, once its arguments are parsed; the exit code."""
    try:
        if args.json and args.json != "-":
            writable(Path(args.json), "--json", made)
        report = verify(
            connect(args.kubeconfig, args.stack, args.timeout),
            namespace=args.namespace,
            timeout=args.timeout,
            expect_pods=args.expect_pods,
            min_fairness=args.min_fairness,
            progress=sys.stderr,
            poll_seconds=poll_seconds,
            scale_timeout=args.scale_test,
            zero_timeout=args.scale_to_zero,
        )
    except (VerifyError, UsageError) as err:
        error("verify", err)
        return 2
    except KeyboardInterrupt:
        error("verify", "interrupted")
        return 130
    document = json.dumps(report.to_json(), indent=2) + "\n"
    if args.json == "-":
        print(render(report), file=sys.stderr)
        sys.stdout.write(document)
    else:
        print(render(report))
        if args.json:
            try:
                write_text(Path(args.json), document)
            except UsageError as err:
                error("verify", err)
                return 2
    return 0 if report.ok else 1
