"""Time-slicing measured on a real GPU: N probe processes share one GPU as N pods would.

Each process is the pods' own program (``components/gpu_probe.py`` in ``measure`` mode), so
the numbers are what the verification pods would report, without Kubernetes. The first
and last sample of every process are dropped: the first covers start-up and clock ramp, the
last may overlap processes that already finished. The GPU's clocks, power and temperature
are sampled alongside. Set ``GPU_SHARING_RESULTS`` to a path to get every number as JSON.
Runs only where ``nvidia-smi`` and CUDA through PyTorch exist:
``python -m pytest -m gpu tests/test_gpu_sharing.py`` (the conftest imports Pulumi only
when a fixture needs it, so a GPU box without Pulumi runs this file).
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

PROBE_PROGRAM = Path(__file__).resolve().parent.parent / "components" / "gpu_probe.py"
PODS = 5


def _pods_matmul_size() -> int:
    """The size the pods use: the probe's own default, which the manifest leaves alone."""
    probe = runpy.run_path(str(PROBE_PROGRAM), run_name="gpu_probe")
    return int(probe["settings_from"]({}).matmul_size)


#: As the pods run it unless ``GPU_SHARING_MATMUL_SIZE`` says otherwise (to study the cost
#: of switching against the length of each product).
MATMUL_SIZE = int(os.environ.get("GPU_SHARING_MATMUL_SIZE") or _pods_matmul_size())
INTERVAL_SECONDS = 5.0
SAMPLES = 8
#: Time-slicing bounds, as issue 3 sets them: each of N gets (1 +- 0.2)/N of solo, together
#: at least 0.9 of it. Switching contexts costs throughput, and how much depends on the GPU
#: (docs/gpu-measurements.md): two H200s kept 0.918 to 0.920 of solo, seven H100s 0.8947
#: to 0.9015, so on an H100 this test usually fails, and says by how much.
FAIRNESS_TOLERANCE = 0.2
MIN_AGGREGATE = 0.9
#: Sampled every second while probes run: power capping and heat explain drifting numbers.
GPU_STATE = ("utilization.gpu", "clocks.sm", "power.draw", "temperature.gpu")


def _why_no_gpu() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return "no nvidia-smi on PATH: needs an NVIDIA GPU and driver"
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False"
    return None


NO_GPU = _why_no_gpu()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(NO_GPU is not None, reason=str(NO_GPU))]


def _smi(*args: str) -> str:
    done = subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=60)
    return (done.stdout + done.stderr).strip()


@pytest.fixture(scope="module")
def results() -> Iterator[dict[str, Any]]:
    """Everything measured, written to ``$GPU_SHARING_RESULTS`` when the module is done."""
    import torch

    found: dict[str, Any] = {
        "gpu": _smi("--query-gpu=name,uuid,driver_version,compute_mode", "--format=csv"),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "python": sys.version.split()[0],
        "matmul_size": MATMUL_SIZE,
        "dtype": "float16",
        "interval_seconds": INTERVAL_SECONDS,
        "samples_per_process": SAMPLES,
        "samples_kept_per_process": SAMPLES - 2,
        "started": datetime.now().astimezone().isoformat(),
    }
    yield found
    if target := os.environ.get("GPU_SHARING_RESULTS"):
        Path(target).write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")


def run_probes(count: int, env: dict[str, str], observe: Callable[[], str]) -> dict[str, Any]:
    """Run ``count`` probes at once; ``observe`` is called once while all of them work."""
    monitor = subprocess.Popen(
        ["nvidia-smi", f"--query-gpu={','.join(GPU_STATE)}", "--format=csv,noheader,nounits"]
        + ["--loop=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    with tempfile.TemporaryDirectory() as scratch:
        procs = [
            subprocess.Popen(
                [sys.executable, str(PROBE_PROGRAM)],
                env={
                    **os.environ,
                    **env,
                    "POD_NAME": f"probe-{i}",
                    "PROBE_MODE": "measure",
                    "PROBE_MATMUL_SIZE": str(MATMUL_SIZE),
                    "PROBE_INTERVAL_SECONDS": str(INTERVAL_SECONDS),
                    "PROBE_SAMPLES": str(SAMPLES),
                    "PROBE_READY_FILE": f"{scratch}/ready-{i}",
                },
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(count)
        ]
        try:
            time.sleep(3 * INTERVAL_SECONDS)
            observed = observe()
            outputs = [p.communicate(timeout=SAMPLES * INTERVAL_SECONDS + 60) for p in procs]
        finally:
            for p in [*procs, monitor]:
                p.kill()
    runs = []
    for p, (out, err) in zip(procs, outputs, strict=True):
        lines = [json.loads(line) for line in out.splitlines()]
        assert p.returncode == 0 and len(lines) == SAMPLES, f"probe failed: {err[-2000:]}"
        runs.append(lines)
    gpu_state = monitor.communicate()[0].splitlines()
    return {
        **summarise(runs),
        "observed_while_running": observed,
        "gpu_under_load": under_load(gpu_state),
        "gpu_state": gpu_state,
    }


def under_load(gpu_state: list[str]) -> dict[str, float] | None:
    """SM clock, power and temperature over the seconds the GPU was busy (not starting up)."""
    rows = [[float(v) for v in line.split(",")] for line in gpu_state if "N/A" not in line]
    busy = [row for row in rows if row[0] >= 90]
    if not busy:
        return None
    return {
        "seconds": len(busy),
        "sm_clock_mhz_mean": round(statistics.fmean(row[1] for row in busy)),
        "sm_clock_mhz_min": min(row[1] for row in busy),
        "power_w_mean": round(statistics.fmean(row[2] for row in busy), 1),
        "temperature_c_max": max(row[3] for row in busy),
    }


def summarise(runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    errors = sorted({s["error"] for run in runs for s in run if s["error"]})
    kept = [run[1:-1] for run in runs]
    if errors or any(s["tflops"] is None for run in kept for s in run):
        return {"processes": len(runs), "errors": errors}
    per_process = [statistics.fmean(s["tflops"] for s in run) for run in kept]
    starts = [datetime.fromisoformat(run[0]["ts"]) for run in runs]
    return {
        "processes": len(runs),
        "errors": [],
        "gpu_uuids": sorted({tuple(g["uuid"] for g in s["gpus"]) for run in runs for s in run}),
        "first_sample_skew_seconds": (max(starts) - min(starts)).total_seconds(),
        "tflops_per_process": [round(t, 2) for t in per_process],
        "tflops_aggregate": round(sum(per_process), 2),
        "tflops_samples": [[s["tflops"] for s in run] for run in runs],
        "utilization_pct_samples": [
            [s["gpus"][0]["utilization_gpu_pct"] for s in run] for run in runs
        ],
    }


def measure_sharing(env: dict[str, str], observe: Callable[[], str]) -> dict[str, Any]:
    """One probe alone, then PODS at once, then one alone again.

    The solo reference is the mean of the runs before and after, because a sustained fp16
    loop heats the GPU and its clocks drift within a minute; a solo run only before the
    shared one would compare a cool GPU with a hot one.
    """
    phases: dict[str, Any] = {}
    for phase, count in (("solo_before", 1), ("shared", PODS), ("solo_after", 1)):
        phases[phase] = run_probes(count, env, observe)
        if phases[phase]["errors"]:
            return {**phases, "errors": phases[phase]["errors"]}
    shared = phases["shared"]["tflops_per_process"]
    reference = statistics.fmean(
        phases[p]["tflops_aggregate"] for p in ("solo_before", "solo_after")
    )
    fair_share = reference / PODS
    return {
        **phases,
        "errors": [],
        "solo_reference_tflops": round(reference, 2),
        "relative_to_solo": [round(t / reference, 4) for t in shared],
        "aggregate_relative_to_solo": round(sum(shared) / reference, 4),
        "min_of_fair_share": round(min(shared) / fair_share, 4),
        "max_of_fair_share": round(max(shared) / fair_share, 4),
    }


def compute_apps() -> str:
    return _smi("--query-compute-apps=pid,process_name,used_memory", "--format=csv")


@pytest.mark.timeout(600)
def test_time_slicing_gives_each_process_a_fair_share(results: dict[str, Any]) -> None:
    measured = results["time_slicing"] = measure_sharing({}, compute_apps)
    assert not measured["errors"], measured["errors"]

    seen = {
        uuids
        for phase in ("solo_before", "shared", "solo_after")
        for uuids in measured[phase]["gpu_uuids"]
    }
    assert len(seen) == 1, f"the processes saw different GPUs: {seen}"
    skew = measured["shared"]["first_sample_skew_seconds"]
    assert skew < INTERVAL_SECONDS, (
        f"processes started {skew}s apart: kept samples overlap too little"
    )
    numbers = (
        f"solo {measured['solo_reference_tflops']} TFLOP/s; {PODS} processes "
        f"{measured['shared']['tflops_per_process']} TFLOP/s, "
        f"{measured['relative_to_solo']} of solo, together "
        f"{measured['aggregate_relative_to_solo']} (at least {MIN_AGGREGATE} asked)"
    )
    low, high = 1 - FAIRNESS_TOLERANCE, 1 + FAIRNESS_TOLERANCE
    assert low <= measured["min_of_fair_share"] <= measured["max_of_fair_share"] <= high, numbers
    assert measured["aggregate_relative_to_solo"] >= MIN_AGGREGATE, numbers


#: The MPS daemons measured. ``none``: the daemon's own defaults, no per-client limits.
#: ``device-plugin``: the limits the device plugin's MPS control daemon sets for N replicas
#: of a GPU (cmd/mps-control-daemon/mps/daemon.go, v0.20.0): 100/N % of the SMs and 1/N of
#: the memory per client. The plugin also sets the compute mode to EXCLUSIVE_PROCESS; that
#: is a GPU setting, left alone here, and it decides who may open a context, not speed.
MPS_LIMITS = ("none", "device-plugin")


def mps_control(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One command to the MPS control daemon, through its pipe, as the plugin sends them."""
    return subprocess.run(
        ["nvidia-cuda-mps-control"],
        input=f"{command}\n",
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def device_plugin_limits() -> list[str]:
    """The plugin's commands for PODS replicas of GPU 0 (memory in MiB, rounded down)."""
    total_mib = int(_smi("--id=0", "--query-gpu=memory.total", "--format=csv,noheader,nounits"))
    return [
        f"set_default_device_pinned_mem_limit 0 {total_mib // PODS}M",
        f"set_default_active_thread_percentage {100 // PODS}",
    ]


@pytest.fixture(params=MPS_LIMITS)
def mps_env(
    request: pytest.FixtureRequest, results: dict[str, Any]
) -> Iterator[tuple[str, dict[str, str]]]:
    """A running MPS control daemon with the given limits, or a skip that records why not."""
    limits = request.param
    daemon = results.setdefault("mps_daemon", {})[limits] = {"started": False}
    if shutil.which("nvidia-cuda-mps-control") is None:
        daemon["why"] = "nvidia-cuda-mps-control is not on PATH"
        pytest.skip(daemon["why"])
    root = Path(tempfile.mkdtemp(prefix="mps-", dir="/tmp"))
    env = {
        "CUDA_MPS_PIPE_DIRECTORY": str(root / "pipe"),
        "CUDA_MPS_LOG_DIRECTORY": str(root / "log"),
    }
    started = subprocess.run(
        ["nvidia-cuda-mps-control", "-d"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if started.returncode != 0:
        daemon["why"] = (
            f"nvidia-cuda-mps-control -d exited {started.returncode}: {started.stderr.strip()}"
        )
        pytest.skip(daemon["why"])
    daemon["started"] = True
    try:
        commands = device_plugin_limits() if limits == "device-plugin" else []
        for command in commands:
            done = mps_control(command, env)
            assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
        daemon["commands"] = commands
        daemon["active_thread_percentage"] = mps_control(
            "get_default_active_thread_percentage", env
        ).stdout.strip()
        yield limits, env
    finally:
        daemon["quit_exit_status"] = mps_control("quit", env).returncode
        daemon["logs"] = {
            f.name: f.read_text(errors="replace")[-3000:]
            for f in sorted((root / "log").glob("*.log"))
        }
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.timeout(600)
def test_mps_throughput_is_recorded(
    results: dict[str, Any], mps_env: tuple[str, dict[str, str]]
) -> None:
    """Recorded, not asserted: MPS runs kernels of several processes at once, so its shares
    need not stay within the time-slicing bounds. Only the limits are checked to hold."""
    limits, env = mps_env
    if limits == "device-plugin":
        percentage = results["mps_daemon"][limits]["active_thread_percentage"]
        assert float(percentage) == 100 // PODS, f"the daemon reports {percentage}"

    def servers_and_apps() -> str:
        servers = mps_control("get_server_list", env).stdout.strip()
        return f"MPS servers: {servers}\n{compute_apps()}"

    measured = results[f"mps_{limits}"] = measure_sharing(env, servers_and_apps)
    if measured["errors"]:
        pytest.skip(f"the MPS daemon started but CUDA clients failed: {measured['errors'][0]}")
