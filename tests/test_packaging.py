"""The wheel other stacks install: what it holds, and a consumer using it from a clean venv.

Slow (about a minute): it builds the wheel from a copy of the sources, installs it with its
dependencies into a fresh virtualenv from the package index pip is configured with, and runs
a consumer program outside the repository. Without a reachable index it is skipped, saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

import components
from tests.conftest import ROOT

#: What pip prints when it cannot reach an index (as opposed to a dependency that is wrong).
OFFLINE_MARKERS = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "No route to host",
)
#: Not part of a build of the library.
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "__pycache__",
    ".*cache*",
    ".hypothesis",
    "*.egg-info",
    "build",
    "dist",
    "out",
    "node_modules",
)

CONSUMER = textwrap.dedent(
    """
    import json
    from pathlib import Path

    import components
    from components import GpuClusterArgs, GpuSharing, GpuSharingArgs, manifest_files
    from components.tools.plan import record

    plan = record(lambda: GpuSharing("gpu", GpuSharingArgs(
        cluster=GpuClusterArgs(public_access_cidrs=["198.51.100.7/32"]))), "consumer", {})
    package = Path(components.__file__).parent
    daemonset = next(r for r in plan.resources if r["type"] == "kubernetes:apps/v1:DaemonSet")
    probe = next(r for r in plan.resources if r["name"] == "gpu-verification-program")
    print(json.dumps({
        "package": str(package),
        "py_typed": (package / "py.typed").is_file(),
        "manifest_dir": str(manifest_files.manifest_dir()),
        "types": sorted({r["type"] for r in plan.resources}),
        "image": daemonset["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"],
        "probe": probe["inputs"]["data"]["gpu_probe.py"],
    }))
    """
)


def pip(python: Path | str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run pip; skip the test when no index can be reached, fail on any other error."""
    result = subprocess.run(
        [str(python), "-m", "pip", *args], cwd=cwd, capture_output=True, text=True, timeout=540
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        if any(marker in output for marker in OFFLINE_MARKERS):
            pytest.skip(f"no package index reachable for `pip {args[0]}`: {output[-300:]}")
        pytest.fail(f"pip {' '.join(args)} failed:\n{output[-3000:]}")
    return result


def dist_info(wheel: Path) -> str:
    """``eks_gpu_sharing-0.1.0.dist-info`` for ``eks_gpu_sharing-0.1.0-py3-none-any.whl``."""
    name, version = wheel.name.split("-")[:2]
    return f"{name}-{version}.dist-info"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy, so the build leaves nothing (build/, *.egg-info) in the checkout."""
    work = tmp_path_factory.mktemp("build")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    pip(
        sys.executable,
        "wheel",
        "--no-deps",
        "--wheel-dir",
        str(work / "dist"),
        str(source),
        cwd=work,
    )
    (built,) = (work / "dist").glob("eks_gpu_sharing-*.whl")
    return built


@pytest.fixture(scope="module")
def consumer_report(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("consumer")
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True, timeout=120)
    python = work / "venv" / "bin" / "python"
    pip(python, "install", str(wheel), cwd=work)
    (work / "consumer.py").write_text(CONSUMER)
    # -I: no PYTHONPATH, no user site, no script directory; only what the venv holds.
    result = subprocess.run(
        [str(python), "-I", "consumer.py"], cwd=work, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.timeout(600)
def test_wheel_holds_the_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "components/py.typed" in names
    assert "components/gpu_probe.py" in names
    assert "components/tools/plan.py" in names
    manifests = sorted(p.name for p in (ROOT / "manifests").glob("*.yaml"))
    assert manifests
    assert {f"components/manifests/{name}" for name in manifests} <= names
    # Only the library: no tests, examples, provider or stack program.
    assert {name.split("/")[0] for name in names} == {"components", dist_info(wheel)}


@pytest.mark.timeout(600)
def test_wheel_declares_the_runtime_dependencies(wheel):
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info(wheel)}/METADATA")
    requires = {
        Requirement(line.split(":", 1)[1])
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    wanted = {
        Requirement(line)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {(r.name, r.specifier) for r in requires} == {(r.name, r.specifier) for r in wanted}


@pytest.mark.timeout(600)
def test_consumer_imports_the_installed_package_not_the_checkout(consumer_report):
    package = Path(consumer_report["package"])
    assert ROOT not in package.parents
    assert package.parent.name == "site-packages"
    assert consumer_report["py_typed"]


@pytest.mark.timeout(600)
def test_consumer_loads_the_manifests_from_the_installed_package(consumer_report):
    package = Path(consumer_report["package"])
    assert Path(consumer_report["manifest_dir"]) == package / "manifests"
    assert consumer_report["image"] == "nvcr.io/nvidia/k8s-device-plugin:v0.20.0"
    assert consumer_report["probe"] == (ROOT / "components" / "gpu_probe.py").read_text()


@pytest.mark.timeout(600)
def test_consumer_builds_the_whole_stack_under_the_mocks(consumer_report):
    assert {
        "eks-gpu-sharing:index:GpuSharing",
        "eks:index:Cluster",
        "aws:eks/nodeGroup:NodeGroup",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:apps/v1:Deployment",
    } <= set(consumer_report["types"])


def test_docs_list_the_public_api():
    """docs/library.md tells consumers what they may import: all of it, and only that."""
    text = (ROOT / "docs" / "library.md").read_text()
    section = text.split("## Public API", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    listed = {name for row in rows for name in re.findall(r"`(\w+)`", row)}
    assert listed == set(components.__all__)


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module a file of ``components/`` imports, as an absolute dotted name."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative to the package ``components``
                base = ".".join(["components", *filter(None, [base])])
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def test_the_library_never_imports_its_tools():
    """Imports go one way: ``components.tools`` uses the library, the library never the tools."""
    package = ROOT / "components"
    offenders = [
        f"{path.name}:{line} imports {module}"
        for path in sorted(package.glob("*.py"))
        if path.name != "__main__.py"  # the entry point dispatches to the tools
        for line, module in _imported_modules(path)
        if module == "components.tools" or module.startswith("components.tools.")
    ]
    assert offenders == []
    assert (package / "tools" / "__init__.py").is_file()
