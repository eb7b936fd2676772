"""Time-slicing and MPS measured on a real GPU: N probe processes share one GPU as N pods would.

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
#: Time-slicing bounds: each of N gets (1 +- 0.2)/N of solo, as issue 3 asks, and the
#: fastest gets at most 10 % more than the slowest (measured: 0.3 % to 4 % on steady
#: machines, 7 % on one whose solo rate drifted).
FAIRNESS_TOLERANCE = 0.2
MAX_SPREAD = 0.1
#: Together at least this much of solo. Switching contexts costs throughput, and how much
#: depends on the GPU and on the work (docs/gpu-measurements.md). With this probe (fp16,
#: synchronised every 50 ms) seven H100s kept 0.8947 to 0.9015 of solo and two H200s 0.9180
#: to 0.9203; on one H100 in one run, fp16 synchronised every 10 products kept 0.925 and
#: bf16 0.964, so the probe is the worst case measured. The floor is the lowest run
#: (0.8947) less the whole spread over both GPUs (0.0256), rounded down: 0.86. Issue 3's
#: 0.9 came from another workload and fails on most H100s with this one.
MIN_AGGREGATE = 0.86
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
def results() -> dict[str, Any]:
    """Everything measured, written to ``$GPU_SHARING_RESULTS`` after each test."""
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
    return found


@pytest.fixture(autouse=True)
def _save_results(results: dict[str, Any]) -> Iterator[None]:
    """After every test, so a run cut off at its time limit keeps what it measured."""
    yield
    if target := os.environ.get("GPU_SHARING_RESULTS"):
        Path(target).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


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


def solo_tflops_per_mhz(measured: dict[str, Any]) -> float:
    """One process's rate per MHz of SM clock, over the solo runs before and after."""
    rates = []
    for phase in ("solo_before", "solo_after"):
        load = measured[phase]["gpu_under_load"]
        assert load, f"nvidia-smi never saw the GPU busy during {phase}: no clock to compare"
        rates.append(measured[phase]["tflops_aggregate"] / load["sm_clock_mhz_mean"])
    return statistics.fmean(rates)


@pytest.fixture(scope="module")
def time_sliced(results: dict[str, Any]) -> dict[str, Any]:
    """Measured once, before any MPS daemon: its solo runs are also the whole GPU's rate."""
    measured = results["time_slicing"] = measure_sharing({}, compute_apps)
    assert not measured["errors"], measured["errors"]
    return measured


@pytest.mark.timeout(600)
def test_time_slicing_gives_each_process_a_fair_share(time_sliced: dict[str, Any]) -> None:
    measured = time_sliced
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
    shared = measured["shared"]["tflops_per_process"]
    numbers = (
        f"solo {measured['solo_reference_tflops']} TFLOP/s; {PODS} processes "
        f"{shared} TFLOP/s, {measured['relative_to_solo']} of solo, together "
        f"{measured['aggregate_relative_to_solo']} (at least {MIN_AGGREGATE} asked)"
    )
    low, high = 1 - FAIRNESS_TOLERANCE, 1 + FAIRNESS_TOLERANCE
    assert low <= measured["min_of_fair_share"] <= measured["max_of_fair_share"] <= high, numbers
    assert max(shared) <= min(shared) * (1 + MAX_SPREAD), numbers
    assert measured["aggregate_relative_to_solo"] >= MIN_AGGREGATE, numbers


#: The MPS daemons measured. ``none``: the daemon's own defaults, no per-client limits.
#: ``device-plugin``: the limits the device plugin's MPS control daemon sets for N replicas
#: of a GPU (cmd/mps-control-daemon/mps/daemon.go, v0.20.0, ``Start``): 100/N % of the SMs
#: (``set_default_active_thread_percentage``) and 1/N of the memory in MiB, rounded down
#: (``set_default_device_pinned_mem_limit``), per client. The plugin also sets the compute
#: mode to EXCLUSIVE_PROCESS; that is a GPU setting, left alone here, and it decides who may
#: open a context, not speed.
MPS_LIMITS = ("none", "device-plugin")
THREAD_PERCENTAGE = 100 // PODS
#: How far a limited client's rate per MHz may stray from its thread share of the whole GPU's
#: (measured: 0.95 and 0.99 of it on an H100 and an H200, docs/gpu-measurements.md runs 11, 12).
THREAD_SHARE_TOLERANCE = 0.25
#: Memory a test client takes per allocation, MiB.
CHUNK_MIB = 256

#: An MPS client that allocates CHUNK_MIB at a time until CUDA refuses or it holds argv[1]
#: MiB, then prints what it got as one JSON line.
ALLOCATE_UNTIL_REFUSED = f"""
import json, sys, torch
most, held, refused = int(sys.argv[1]), [], None
free, total = torch.cuda.mem_get_info()
while len(held) * {CHUNK_MIB} < most:
    try:
        held.append(torch.empty({CHUNK_MIB} << 20, dtype=torch.uint8, device="cuda"))
    except torch.cuda.OutOfMemoryError as err:
        refused = str(err).splitlines()[0]
        break
print(json.dumps({{"allocated_mib": len(held) * {CHUNK_MIB}, "refused": refused,
                  "mem_get_info_mib": [free >> 20, total >> 20]}}))
"""


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


def plugin_memory_limit_mib() -> int:
    """The plugin's pinned memory limit for PODS replicas of GPU 0."""
    total_mib = int(_smi("--id=0", "--query-gpu=memory.total", "--format=csv,noheader,nounits"))
    return total_mib // PODS


def device_plugin_limits() -> list[str]:
    """The plugin's two commands for PODS replicas of GPU 0."""
    return [
        f"set_default_device_pinned_mem_limit 0 {plugin_memory_limit_mib()}M",
        f"set_default_active_thread_percentage {THREAD_PERCENTAGE}",
    ]


@pytest.fixture(params=MPS_LIMITS)
def mps_env(
    request: pytest.FixtureRequest, results: dict[str, Any]
) -> Iterator[tuple[str, dict[str, str]]]:
    """A running MPS control daemon with the given limits; a daemon that fails is a failure."""
    limits = request.param
    daemon = results.setdefault("mps_daemon", {}).setdefault(limits, [])
    record: dict[str, Any] = {"test": request.node.name, "started": False}
    daemon.append(record)
    if shutil.which("nvidia-cuda-mps-control") is None:
        pytest.skip("nvidia-cuda-mps-control is not on PATH: this driver install has no MPS")
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
    assert started.returncode == 0, (
        f"nvidia-cuda-mps-control -d exited {started.returncode}: {started.stderr.strip()}"
    )
    record["started"] = True
    try:
        commands = device_plugin_limits() if limits == "device-plugin" else []
        for command in commands:
            done = mps_control(command, env)
            assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
        record["commands"] = commands
        for query in (
            "get_default_active_thread_percentage",
            "get_default_device_pinned_mem_limit 0",
        ):
            record[query] = mps_control(query, env).stdout.strip()
        yield limits, env
    finally:
        record["quit_exit_status"] = mps_control("quit", env).returncode
        record["logs"] = {
            f.name: f.read_text(errors="replace")[-3000:]
            for f in sorted((root / "log").glob("*.log"))
        }
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.timeout(600)
def test_mps_holds_each_client_to_its_thread_share(
    results: dict[str, Any],
    time_sliced: dict[str, Any],
    mps_env: tuple[str, dict[str, str]],
) -> None:
    """Without limits a lone MPS client gets the whole GPU; with the plugin's it gets its share.

    The share is compared per MHz of SM clock: a client held to a fifth of the SMs draws far
    less power, so the GPU clocks it up to its top speed (1980 against ~1300-1500 MHz at the
    power cap), and its raw rate is more than a fifth. How five busy clients share the GPU is
    recorded, not asserted: MPS runs their kernels side by side.
    """
    limits, env = mps_env

    def servers_and_apps() -> str:
        servers = mps_control("get_server_list", env).stdout.strip()
        return f"MPS servers: {servers}\n{compute_apps()}"

    measured = results[f"mps_{limits}"] = measure_sharing(env, servers_and_apps)
    assert not measured["errors"], f"the MPS clients failed: {measured['errors']}"
    whole_gpu = time_sliced["solo_reference_tflops"]
    alone = measured["solo_reference_tflops"] / whole_gpu
    per_mhz = solo_tflops_per_mhz(measured) / solo_tflops_per_mhz(time_sliced)
    measured["of_whole_gpu"] = {
        "one_alone": round(alone, 4),
        "one_alone_per_mhz": round(per_mhz, 4),
        "each_of_shared": [
            round(t / whole_gpu, 4) for t in measured["shared"]["tflops_per_process"]
        ],
        "shared_together": round(measured["shared"]["tflops_aggregate"] / whole_gpu, 4),
    }
    numbers = f"{limits}: {measured['of_whole_gpu']} of the whole GPU ({whole_gpu} TFLOP/s)"
    if limits == "none":
        assert alone >= 0.9, numbers
        return
    reported = results["mps_daemon"][limits][-1]["get_default_active_thread_percentage"]
    assert float(reported) == THREAD_PERCENTAGE, f"the daemon reports {reported}"
    share = THREAD_PERCENTAGE / 100
    low, high = share * (1 - THREAD_SHARE_TOLERANCE), share * (1 + THREAD_SHARE_TOLERANCE)
    assert low <= per_mhz <= high, numbers
    assert alone <= 2 * share, numbers


@pytest.mark.timeout(120)
def test_mps_holds_each_client_to_its_memory_share(
    results: dict[str, Any], mps_env: tuple[str, dict[str, str]]
) -> None:
    """A client allocates until refused: with the plugin's limit it gets nearly all of 1/N of
    the GPU's memory and no more; without it the same client passes that mark."""
    limits, env = mps_env
    limit = plugin_memory_limit_mib()
    done = subprocess.run(
        [sys.executable, "-c", ALLOCATE_UNTIL_REFUSED, str(2 * limit)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, f"the MPS client failed: {done.stderr[-2000:]}"
    got = results.setdefault("mps_memory", {})[limits] = {
        "plugin_limit_mib": limit,
        **json.loads(done.stdout.splitlines()[-1]),
    }
    if limits == "none":
        assert got["allocated_mib"] >= 2 * limit and got["refused"] is None, got
        return
    # Within two chunks of the limit: the client's context takes ~120 MiB of it (measured
    # on an H100 and an H200: 16128 of 16311 MiB, 28416 of 28754 MiB allocated).
    assert got["refused"], got
    assert limit - 2 * CHUNK_MIB <= got["allocated_mib"] <= limit, got
