"""The pods' probe program, run for real as a subprocess against a fake ``nvidia-smi``."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

#: By path, not through ``components``: the program must work as the lone file it is in a pod.
PROBE_PROGRAM = Path(__file__).resolve().parent.parent / "components" / "gpu_probe.py"
KEYS = {"ts", "pod", "node", "mode", "gpus", "tflops", "iterations", "error"}
GPU_KEYS = {"uuid", "name", "utilization_gpu_pct", "memory_used_mib", "memory_total_mib"}

# Plays nvidia-smi: answers the probe's exact query with $FAKE_SMI_ROWS, or fails as
# $FAKE_SMI_PLAN says for the n-th call ("ok,fail,ok"; the last entry repeats), and logs
# whether the readiness file existed at each call, which shows when the probe changed it.
FAKE_NVIDIA_SMI = """\
import os, pathlib, sys

state = pathlib.Path(os.environ["FAKE_SMI_STATE"])
calls = state / "calls"
calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
plan = os.environ.get("FAKE_SMI_PLAN", "ok").split(",")
outcome = plan[min(len(calls.read_text()), len(plan)) - 1]
ready = pathlib.Path(os.environ["PROBE_READY_FILE"]).exists()
with open(state / "seen", "a") as seen:
    seen.write("ready\\n" if ready else "absent\\n")
expected = [
    "--query-gpu=uuid,name,utilization.gpu,memory.used,memory.total",
    "--format=csv,noheader,nounits",
]
if sys.argv[1:] != expected:
    sys.exit(f"unexpected arguments {sys.argv[1:]}")
if outcome == "fail":
    sys.exit("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
print(os.environ["FAKE_SMI_ROWS"])
"""
ONE_T4 = "GPU-2b0c6f3a-0000-4000-8000-000000000001, Tesla T4, 37, 1234, 15360"
TWO_A10G = (
    "GPU-aaaaaaaa-0000-4000-8000-000000000001, NVIDIA A10G, 100, 20480, 23028\n"
    "GPU-aaaaaaaa-0000-4000-8000-000000000002, NVIDIA A10G, [N/A], 0, 23028"
)


@pytest.fixture
def probe_env(tmp_path: Path) -> dict[str, str]:
    """Environment with the fake nvidia-smi first on PATH and fast intervals."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text(f"#!{sys.executable}\n{FAKE_NVIDIA_SMI}")
    fake.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "POD_NAME": "gpu-sharing-verification-abc12",
        "NODE_NAME": "ip-10-0-1-23.us-west-2.compute.internal",
        "PROBE_INTERVAL_SECONDS": "0.2",
        "PROBE_READY_FILE": str(tmp_path / "ready"),
        "PROBE_SAMPLES": "2",
        "FAKE_SMI_STATE": str(state),
        "FAKE_SMI_ROWS": ONE_T4,
    }


def run_probe(env: dict[str, str]) -> tuple[list[dict[str, Any]], subprocess.CompletedProcess]:
    done = subprocess.run(
        [sys.executable, str(PROBE_PROGRAM)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return [json.loads(line) for line in done.stdout.splitlines()], done


def seen_by_fake(env: dict[str, str]) -> list[str]:
    return (Path(env["FAKE_SMI_STATE"]) / "seen").read_text().split()


def test_each_sample_is_one_json_line_with_every_gpu(probe_env: dict[str, str]) -> None:
    lines, done = run_probe({**probe_env, "FAKE_SMI_ROWS": TWO_A10G})

    assert done.returncode == 0, done.stderr
    assert len(lines) == 2
    for line in lines:
        assert set(line) == KEYS
        assert line["pod"] == "gpu-sharing-verification-abc12"
        assert line["node"] == "ip-10-0-1-23.us-west-2.compute.internal"
        assert line["mode"] == "nvidia-smi"
        assert (line["tflops"], line["iterations"], line["error"]) == (None, None, None)
        ts = datetime.fromisoformat(line["ts"])
        assert ts.utcoffset() == timedelta(0)
        assert abs(datetime.now(timezone.utc) - ts) < timedelta(minutes=1)
    assert lines[0]["gpus"] == [
        {
            "uuid": "GPU-aaaaaaaa-0000-4000-8000-000000000001",
            "name": "NVIDIA A10G",
            "utilization_gpu_pct": 100,
            "memory_used_mib": 20480,
            "memory_total_mib": 23028,
        },
        {
            "uuid": "GPU-aaaaaaaa-0000-4000-8000-000000000002",
            "name": "NVIDIA A10G",
            "utilization_gpu_pct": None,
            "memory_used_mib": 0,
            "memory_total_mib": 23028,
        },
    ]
    assert all(set(gpu) == GPU_KEYS for gpu in lines[1]["gpus"])


def test_samples_come_one_interval_apart(probe_env: dict[str, str]) -> None:
    lines, _ = run_probe({**probe_env, "PROBE_SAMPLES": "3", "PROBE_INTERVAL_SECONDS": "0.3"})

    stamps = [datetime.fromisoformat(line["ts"]) for line in lines]
    gaps = [
        (later - earlier).total_seconds()
        for earlier, later in zip(stamps, stamps[1:], strict=False)
    ]
    assert len(gaps) == 2
    assert all(0.25 < gap < 2 for gap in gaps), gaps


def test_good_sample_writes_a_timestamp_to_the_ready_file(probe_env: dict[str, str]) -> None:
    ready = Path(probe_env["PROBE_READY_FILE"])

    lines, _ = run_probe(probe_env)

    assert datetime.fromisoformat(ready.read_text().strip()) >= datetime.fromisoformat(
        lines[0]["ts"]
    ) - timedelta(seconds=1)
    assert seen_by_fake(probe_env) == ["absent", "ready"]
    assert not list(ready.parent.glob(".ready.*")), "temporary file left behind"


def test_pod_defaults_to_hostname_and_node_to_unknown(probe_env: dict[str, str]) -> None:
    env = {k: v for k, v in probe_env.items() if k not in ("POD_NAME", "NODE_NAME")}

    lines, _ = run_probe({**env, "PROBE_SAMPLES": "1"})

    assert lines[0]["pod"] == os.uname().nodename
    assert lines[0]["node"] == "unknown"


def test_missing_nvidia_smi_is_reported_and_not_ready(
    probe_env: dict[str, str], tmp_path: Path
) -> None:
    ready = Path(probe_env["PROBE_READY_FILE"])
    ready.write_text("stale\n")
    empty = tmp_path / "empty"
    empty.mkdir()

    lines, done = run_probe({**probe_env, "PATH": str(empty)})

    assert done.returncode == 0, done.stderr
    assert len(lines) == 2, "the probe must keep sampling after a failure"
    assert all("nvidia-smi not found" in line["error"] for line in lines)
    assert all(line["gpus"] == [] for line in lines)
    assert not ready.exists()


def test_failing_nvidia_smi_removes_readiness_until_it_recovers(
    probe_env: dict[str, str],
) -> None:
    ready = Path(probe_env["PROBE_READY_FILE"])

    lines, done = run_probe({**probe_env, "FAKE_SMI_PLAN": "ok,fail,ok", "PROBE_SAMPLES": "3"})

    assert done.returncode == 0, done.stderr
    assert [line["error"] is None for line in lines] == [True, False, True]
    assert "couldn't communicate with the NVIDIA driver" in lines[1]["error"]
    assert lines[1]["gpus"] == []
    # Ready after the first sample, removed after the failed second, back after the third.
    assert seen_by_fake(probe_env) == ["absent", "ready", "absent"]
    assert ready.exists()


def test_measure_mode_without_cuda_reports_error_and_keeps_going(
    probe_env: dict[str, str], tmp_path: Path
) -> None:
    stub = tmp_path / "stub" / "torch"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(
        "class cuda:\n    @staticmethod\n    def is_available():\n        return False\n"
    )

    lines, done = run_probe({**probe_env, "PROBE_MODE": "measure", "PYTHONPATH": str(stub.parent)})

    assert done.returncode == 0, done.stderr
    assert len(lines) == 2
    for line in lines:
        assert line["mode"] == "measure"
        assert (line["tflops"], line["iterations"]) == (None, None)
        assert "CUDA is not available" in line["error"]
        assert line["gpus"][0]["name"] == "Tesla T4", "nvidia-smi is still reported"
    assert not Path(probe_env["PROBE_READY_FILE"]).exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PROBE_MODE", "benchmark"),
        ("PROBE_INTERVAL_SECONDS", "0"),
        ("PROBE_INTERVAL_SECONDS", "five"),
        ("PROBE_INTERVAL_SECONDS", "nan"),
        ("PROBE_SAMPLES", "-1"),
        ("PROBE_SAMPLES", "2.5"),
        ("PROBE_MATMUL_SIZE", "0"),
        ("PROBE_READY_FILE", ""),
    ],
)
def test_invalid_environment_exits_2_naming_the_variable(
    probe_env: dict[str, str], variable: str, value: str
) -> None:
    lines, done = run_probe({**probe_env, variable: value})

    assert done.returncode == 2
    assert lines == []
    assert variable in done.stderr
    assert f'"{value}"' in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_sigterm_stops_the_probe_promptly_with_status_0(probe_env: dict[str, str]) -> None:
    env = {**probe_env, "PROBE_SAMPLES": "0", "PROBE_INTERVAL_SECONDS": "60"}
    with subprocess.Popen(
        [sys.executable, str(PROBE_PROGRAM)], env=env, stdout=subprocess.PIPE, text=True
    ) as probe:
        assert probe.stdout is not None
        assert json.loads(probe.stdout.readline())["error"] is None
        sent = time.monotonic()
        probe.send_signal(signal.SIGTERM)
        assert probe.wait(timeout=10) == 0
    assert time.monotonic() - sent < 3


def imported_modules(nodes: Iterable[ast.AST]) -> set[str]:
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." if node.level else (node.module or "").split(".")[0])
    return names


def test_program_needs_only_the_standard_library_until_it_measures() -> None:
    """The ConfigMap carries this one file into a plain Python image (torch in measure mode)."""
    tree = ast.parse(PROBE_PROGRAM.read_text(encoding="utf-8"))
    stdlib = set(sys.stdlib_module_names)

    assert imported_modules(tree.body) <= stdlib
    assert imported_modules(ast.walk(tree)) <= stdlib | {"torch"}


#: Runs the probe as its pod does and then names every module it loaded that is not in the
#: standard library (on stderr, after the probe's own output).
LOADED_MODULES = """\
import runpy, sys
try:
    runpy.run_path(sys.argv[1], run_name="__main__")
except SystemExit as done:
    status = done.code
others = {name.partition(".")[0] for name in sys.modules} - set(sys.stdlib_module_names)
print("loaded:", ",".join(sorted(others - {"__main__"})), file=sys.stderr)
sys.exit(status)
"""


def as_in_the_small_image(program: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """``python3 -I -S``: no site-packages (no torch, no pip packages), no PYTHON* variables,
    no current folder on the path: what Python's official image has, and only that."""
    return subprocess.run(
        [sys.executable, "-I", "-S", *program],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_default_mode_imports_nothing_outside_the_standard_library(
    probe_env: dict[str, str],
) -> None:
    done = as_in_the_small_image(["-c", LOADED_MODULES, str(PROBE_PROGRAM)], probe_env)

    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["error"] for line in lines] == [None, None]
    assert lines[0]["gpus"][0]["name"] == "Tesla T4"
    assert done.stderr.splitlines()[-1] == "loaded: "


def test_measure_mode_is_what_needs_torch(probe_env: dict[str, str]) -> None:
    """The contrast: without site-packages, measure mode reports that torch is missing."""
    done = as_in_the_small_image([str(PROBE_PROGRAM)], {**probe_env, "PROBE_MODE": "measure"})

    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines and all("No module named 'torch'" in line["error"] for line in lines)


def _no_nvidia_smi() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return "no nvidia-smi on PATH: needs an NVIDIA GPU and driver"
    return None


@pytest.mark.gpu
@pytest.mark.skipif(_no_nvidia_smi() is not None, reason=str(_no_nvidia_smi()))
def test_default_mode_reports_the_real_gpu_with_only_the_standard_library(
    tmp_path: Path,
) -> None:
    """The probe as the small image runs it: Python's standard library and the driver's
    nvidia-smi, nothing else (no PyTorch, no pip packages)."""
    env = {
        "PATH": os.environ["PATH"],
        "PROBE_SAMPLES": "2",
        "PROBE_INTERVAL_SECONDS": "0.5",
        "PROBE_READY_FILE": str(tmp_path / "ready"),
    }
    done = as_in_the_small_image(["-c", LOADED_MODULES, str(PROBE_PROGRAM)], env)

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1] == "loaded: "
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 2 and [line["error"] for line in lines] == [None, None]
    listed = subprocess.run(
        ["nvidia-smi", "--query-gpu=uuid,name", "--format=csv,noheader"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    expected = [[f.strip() for f in row.split(",")] for row in listed.splitlines() if row]
    for line in lines:
        assert [[gpu["uuid"], gpu["name"]] for gpu in line["gpus"]] == expected
        assert all(gpu["memory_total_mib"] > 0 for gpu in line["gpus"])
    assert (tmp_path / "ready").is_file()
