"""The program each verification pod runs: report the GPU it sees, one JSON line an interval.

It runs from a ConfigMap in the mode's image (components/verification.py, PROBE_IMAGES):
the default mode in a plain Python image, so it imports the standard library only and
nothing from ``components``; ``torch`` is imported in ``measure`` mode alone, which runs in
a PyTorch image. ``nvidia-smi`` comes from the host, mounted by the NVIDIA container toolkit.

Environment (invalid values exit 2 with a message naming the variable):

* ``POD_NAME``, ``NODE_NAME``: from the downward API; default the hostname / ``unknown``.
* ``PROBE_MODE``: ``nvidia-smi`` (default, report only), ``measure`` (also run a fixed
  fp16 matmul loop on ``cuda:0`` for the whole interval and report its TFLOP/s, which shows
  this pod's share of a time-sliced GPU).
* ``PROBE_INTERVAL_SECONDS``: seconds between lines, may be fractional. Default 5.
* ``PROBE_READY_FILE``: written after each good sample, removed after a failed one; the
  readinessProbe tests for it. Default ``/tmp/ready``.
* ``PROBE_MATMUL_SIZE``: side of the square matrices in ``measure`` mode. Default 4096.
* ``PROBE_SAMPLES``: exit 0 after this many lines; 0 (default) runs until SIGTERM.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

MODES = ("nvidia-smi", "measure")
NVIDIA_SMI_QUERY = [
    "nvidia-smi",
    "--query-gpu=uuid,name,utilization.gpu,memory.used,memory.total",
    "--format=csv,noheader,nounits",
]
#: A hung driver must not stall the loop forever; the next interval tries again.
NVIDIA_SMI_TIMEOUT_SECONDS = 30
#: Matmuls are queued in batches this long between synchronisations, so the host clock
#: measures finished GPU work while launch gaps stay negligible.
BATCH_SECONDS = 0.05


N = TypeVar("N", int, float)


class UsageError(Exception):
    """An environment variable with a value the probe cannot use."""


@dataclass(frozen=True)
class Settings:
    pod: str
    node: str
    mode: str
    interval: float
    ready_file: Path
    matmul_size: int
    samples: int


def _number(env: dict[str, str], name: str, default: str, kind: Callable[[str], N], low: N) -> N:
    raw = env.get(name, default)
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < low:
        rule = "an integer" if kind is int else "a number"
        raise UsageError(f'{name}="{raw}" is invalid; use {rule} >= {low}')
    return value


def settings_from(env: dict[str, str]) -> Settings:
    """Validate the whole environment once, before any GPU work starts."""
    mode = env.get("PROBE_MODE", "nvidia-smi")
    if mode not in MODES:
        raise UsageError(f'PROBE_MODE="{mode}" is invalid; use one of {", ".join(MODES)}')
    ready_file = env.get("PROBE_READY_FILE", "/tmp/ready")
    if not ready_file:
        raise UsageError('PROBE_READY_FILE="" is invalid; use a file path')
    return Settings(
        pod=env.get("POD_NAME") or socket.gethostname(),
        node=env.get("NODE_NAME") or "unknown",
        mode=mode,
        interval=_number(env, "PROBE_INTERVAL_SECONDS", "5", float, 0.01),
        ready_file=Path(ready_file),
        matmul_size=_number(env, "PROBE_MATMUL_SIZE", "4096", int, 1),
        samples=_number(env, "PROBE_SAMPLES", "0", int, 0),
    )


def _int_or_none(field: str) -> int | None:
    """nvidia-smi prints ``[N/A]`` or ``[Not Supported]`` where it has no number (MIG, vGPU)."""
    try:
        return int(float(field))
    except ValueError:
        return None


def query_gpus() -> list[dict[str, Any]]:
    """The GPUs nvidia-smi sees; raises RuntimeError with a message for the JSON line."""
    try:
        done = subprocess.run(
            NVIDIA_SMI_QUERY,
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError as err:
        raise RuntimeError("nvidia-smi not found on PATH (is the NVIDIA runtime in use?)") from err
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"nvidia-smi gave no answer in {NVIDIA_SMI_TIMEOUT_SECONDS}s") from err
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip() or "no output"
        raise RuntimeError(f"nvidia-smi exited {done.returncode}: {detail}")
    gpus = []
    for row in csv.reader(done.stdout.splitlines(), skipinitialspace=True):
        if not row:
            continue
        if len(row) != 5:
            raise RuntimeError(f"nvidia-smi printed an unexpected line: {', '.join(row)}")
        uuid, name, utilization, used, total = row
        gpus.append(
            {
                "uuid": uuid,
                "name": name,
                "utilization_gpu_pct": _int_or_none(utilization),
                "memory_used_mib": _int_or_none(used),
                "memory_total_mib": _int_or_none(total),
            }
        )
    if not gpus:
        raise RuntimeError("nvidia-smi listed no GPUs")
    return gpus


class MatmulLoop:
    """The fixed GPU work: back-to-back fp16 ``n x n`` matmuls on ``cuda:0``."""

    def __init__(self, size: int) -> None:
        import torch  # only here: the nvidia-smi mode must run without it

        if not torch.cuda.is_available():
            raise RuntimeError("CUDA is not available to PyTorch (no GPU in this container?)")
        self._torch = torch
        self.size = size
        device = torch.device("cuda:0")
        self._a = torch.randn(size, size, device=device, dtype=torch.float16)
        self._b = torch.randn(size, size, device=device, dtype=torch.float16)
        self._out = torch.empty(size, size, device=device, dtype=torch.float16)
        # The first product loads cuBLAS kernels; keep it out of every measurement.
        torch.mm(self._a, self._b, out=self._out)
        torch.cuda.synchronize()

    def run(self, seconds: float, stop: threading.Event) -> tuple[float, int]:
        """Run for about ``seconds``; return (TFLOP/s, matmuls completed)."""
        mm, synchronize = self._torch.mm, self._torch.cuda.synchronize
        synchronize()
        start = time.perf_counter()
        iterations, batch = 0, 1
        while True:
            batch_start = time.perf_counter()
            for _ in range(batch):
                mm(self._a, self._b, out=self._out)
            synchronize()
            iterations += batch
            now = time.perf_counter()
            if now - start >= seconds or stop.is_set():
                break
            if now - batch_start < BATCH_SECONDS:
                batch *= 2
        elapsed = now - start
        return 2 * self.size**3 * iterations / elapsed / 1e12, iterations


def mark_ready(path: Path, ready: bool) -> None:
    """Write the readiness file atomically (the kubelet may test it at any moment)."""
    if not ready:
        path.unlink(missing_ok=True)
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(datetime.now(timezone.utc).isoformat() + "\n", encoding="utf-8")
    os.replace(partial, path)


def run(settings: Settings, stop: threading.Event) -> None:
    """Print one JSON line per interval until ``stop`` or ``settings.samples`` lines."""
    loop: MatmulLoop | None = None
    printed = 0
    while not stop.is_set():
        errors: list[str] = []
        tflops: float | None = None
        iterations: int | None = None
        if settings.mode == "measure":
            try:
                loop = loop or MatmulLoop(settings.matmul_size)
                tflops, iterations = loop.run(settings.interval, stop)
            except Exception as err:  # reported and retried, never fatal
                loop = None
                errors.append(f"GPU work failed: {type(err).__name__}: {err}")
                stop.wait(settings.interval)
        gpus: list[dict[str, Any]] = []
        try:
            gpus = query_gpus()
        except RuntimeError as err:
            errors.append(str(err))
        try:
            mark_ready(settings.ready_file, ready=not errors)
        except OSError as err:
            errors.append(f"readiness file {settings.ready_file}: {err}")
        sample = {
            "ts": datetime.now(timezone.utc).isoformat(),
            "pod": settings.pod,
            "node": settings.node,
            "mode": settings.mode,
            "gpus": gpus,
            "tflops": None if tflops is None else round(tflops, 3),
            "iterations": iterations,
            "error": "; ".join(errors) or None,
        }
        print(json.dumps(sample), flush=True)
        printed += 1
        if printed == settings.samples:
            return
        if settings.mode != "measure":
            stop.wait(settings.interval)


def main() -> int:
    try:
        settings = settings_from(dict(os.environ))
    except UsageError as err:
        print(f"gpu_probe: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()
    # As PID 1 in a container, Python has no default SIGTERM action: without this handler
    # the pod would wait out its whole grace period on every delete.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run(settings, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
