"""Every documented command given odd but plausible input: one line on stderr, never a trace.

Each case runs the real ``python -m components ...`` in a subprocess, as a user would, and
checks the exit code, that stderr is one line, and that the line names the key, path or
server and what is allowed.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from components.tools.cli import MANIFEST_MARK
from components.tools.plan import Plan, aws_config_keys, plan_warnings
from tests import fake_kube_api as fake
from tests.conftest import PLAN_CIDRS, ROOT

CIDR_KEYS = ("publicAccessCidrs", "endpointPublicAccess")


def cli(*args: str, cwd: Path = ROOT, **kwargs) -> subprocess.CompletedProcess:
    """``python -m components``; a plan of our stacks gets the CIDRs ``make plan`` gives."""
    if (
        args[:1] == ("plan",)
        and "--project-dir" not in args
        and not any(key in arg for arg in args for key in CIDR_KEYS)
    ):
        args = ("plan", "--config", PLAN_CIDRS, *args[1:])
    return subprocess.run(
        [sys.executable, "-m", "components", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def one_line(result: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """The single stderr line of a failed command, holding every one of ``words``."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    [line] = result.stderr.splitlines()
    for word in words:
        assert word in line
    return line


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's program, to give it stack files of our own."""
    shutil.copy(ROOT / "__main__.py", tmp_path)
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path)
    return tmp_path


def plan_stack(project: Path, text: str, *args: str) -> subprocess.CompletedProcess:
    """Plan this stack file, given the CIDRs ``make plan`` gives one that sets none."""
    (project / "Pulumi.t.yaml").write_text(text, encoding="utf-8")
    extra = [] if any(key in text for key in CIDR_KEYS) else ["--config", PLAN_CIDRS]
    return cli("plan", "--project-dir", str(project), "--stack", "t", *extra, *args)


NS = "eks-gpu-sharing"

ODD_STACK_FILES = [
    # Not the shape of a stack file.
    ("- config\n", ["Pulumi.t.yaml must be a map with a config: section"]),
    ("config: [1, 2]\n", ["Pulumi.t.yaml: config: must be a map of key: value"]),
    ("config: {a: [\n", ["Pulumi.t.yaml:2: not valid YAML"]),
    ("config:\n\tx: 1\n", ["Pulumi.t.yaml:2: not valid YAML"]),
    # Top-level keys: pulumi/pulumi sdk/go/common/workspace/project.go, ProjectStack.
    (
        f"Config:\n  {NS}:gpuNodeMax: 2\n",
        ["Pulumi.t.yaml: unknown top-level key 'Config'; did you mean 'config'?", "encryptionsalt"],
    ),
    ("confg: {}\n", ["unknown top-level key 'confg'; did you mean 'config'?"]),
    ("stacks: {}\n", ["unknown top-level key 'stacks' (a stack file has config, environment"]),
    # aws: keys the provider reads: pulumi_aws/config/vars.py.
    ("config:\n  aws:regoin: us-east-1\n", ["'aws:regoin'; did you mean 'aws:region'?"]),
    ("config:\n  aws:Profile: dev\n", ["'aws:Profile'; did you mean 'aws:profile'?"]),
    # A key twice in any map (go-yaml v3 decode.go, mapping: "mapping key ... already defined").
    (
        f"config:\n  {NS}:gpuNodeMax: 1\n  {NS}:gpuNodeMax: 2\n",
        ["Pulumi.t.yaml:3: key 'eks-gpu-sharing:gpuNodeMax' is given twice", "first on line 2"],
    ),
    ("config: {}\nconfig: {}\n", ["Pulumi.t.yaml:2: key 'config' is given twice"]),
    (
        f"config:\n  {NS}:nodeGroups:\n    - name: a\n      min: 1\n      min: 2\n",
        ["Pulumi.t.yaml:5: key 'min' is given twice", "first on line 4"],
    ),
    (
        f"config:\n  gpuNodeMax: 1\n  {NS}:gpuNodeMax: 2\n",
        ["'eks-gpu-sharing:gpuNodeMax' is eks-gpu-sharing:gpuNodeMax, which the file gives twice"],
    ),
    # YAML values that are not what they look like, read as the Pulumi CLI (yaml.v3) does.
    (f"config:\n  {NS}:kubernetesVersion: 1.30\n", ["kubernetesVersion", 'quote it ("1.30")']),
    (f"config:\n  {NS}:gpuNodeMax: 1.0\n", ["gpuNodeMax", "1.0 is the YAML number 1"]),
    (f"config:\n  {NS}:verificationPods: 1e1\n", ["verificationPods", "number 10"]),
    (f"config:\n  {NS}:gpuNodeMax: True\n", ["gpuNodeMax", "YAML boolean true"]),
    # yaml.v3 resolve.go: ParseInt(s, 0, 64) after dropping "_", so 010 is octal 8 and 0b11 is 3.
    (f"config:\n  {NS}:gpuNodeMax: 010\n", ["gpuNodeMax", 'number 8 to Pulumi; quote it ("010")']),
    (f"config:\n  {NS}:gpuNodeMax: 0b11\n", ["gpuNodeMax", "0b11 is the YAML number 3"]),
    (f"config:\n  {NS}:gpuNodeMax: 1_0\n", ["gpuNodeMax", "1_0 is the YAML number 10"]),
    # No value: pulumi/pulumi sdk/go/common/workspace/loaders.go checkForEmptyConfig warns.
    (f"config:\n  {NS}:gpuAmiType:\n", ["gpuAmiType", "has no value (YAML null)"]),
    (f"config:\n  {NS}:gpuNodeMax: null\n", ["gpuNodeMax", "has no value (YAML null)"]),
    (f"config:\n  {NS}:gpuNodeMax: ~\n", ["gpuNodeMax", "has no value (YAML null)"]),
    (f"config:\n  {NS}:gpuNodeMax: yes\n", ["gpuNodeMax must be an integer, got 'yes'"]),
    (f"config:\n  {NS}:gpuCapacityType: on\n", ["gpuCapacityType 'on'", "ON_DEMAND, SPOT"]),
    # An unquoted date is a time.Time to yaml.v3 (resolve.go parseTimestamp), which Pulumi
    # passes as v.String() (sdk/go/common/resource/config/object.go, unmarshalObject).
    (
        f"config:\n  {NS}:clusterName: 2024-01-01\n",
        [
            "Pulumi.t.yaml:2: key 'eks-gpu-sharing:clusterName': 2024-01-01 is a YAML timestamp",
            "'2024-01-01 00:00:00 +0000 UTC'",
            'quote it ("2024-01-01")',
        ],
    ),
    (
        f"config:\n  {NS}:nodeGroups: [{{name: 2024-01-01T10:00:00Z}}]\n",
        ["key 'name': 2024-01-01T10:00:00Z is a YAML timestamp", "quote it"],
    ),
    (f"config:\n  {NS}:gpuNodeMax: {{secure: v1:abc}}\n", ["is a secret", "--config"]),
    # Keys in the wrong namespace or case, or none.
    (f"config:\n  {NS}:GpuNodeMax: 2\n", ["'eks-gpu-sharing:GpuNodeMax'", "did you mean"]),
    ("config:\n  eks_gpu_sharing:gpuNodeMax: 2\n", ["write eks-gpu-sharing:gpuNodeMax"]),
    ("config:\n  GpuNodeMax: 2\n", ["'eks-gpu-sharing:GpuNodeMax'", "did you mean"]),
    ("config:\n  a:b:c: 2\n", ["'a:b:c' is not <namespace>:<name> or <name>"]),
    # Valid for us, refused by a provider later.
    (
        f"config:\n  {NS}:publicAccessCidrs: ['2001:db8::/32']\n",
        ["publicAccessCidrs[0] '2001:db8::/32' is IPv6"],
    ),
    (
        f"config:\n  {NS}:nodeGroups: [{{name: {'n' * 64}, sharing: {{strategy: none}}}}]\n",
        ["nodeGroups[0].name", "label value"],
    ),
    (
        f"config:\n  {NS}:nodeGroups: [{{name: a, instanceType: p3.2xlarge, "
        "sharing: {strategy: none}}]\n",
        ["nodeGroups[0].instanceType 'p3.2xlarge'"],
    ),
]


@pytest.mark.parametrize(("text", "words"), ODD_STACK_FILES)
def test_an_odd_stack_file_is_one_line_naming_the_key(project, text, words):
    one_line(plan_stack(project, text), 1, *words)


def test_every_top_level_key_pulumi_writes_is_read(project):
    """What `pulumi stack init` and `pulumi config env add` write beside config:."""
    text = (
        "secretsprovider: passphrase\nencryptionsalt: v1:abc\nencryptedkey: ''\n"
        "environment: [dev-env]\nconfig:\n  aws:region: us-west-2\n"
    )
    result = plan_stack(project, text)
    assert result.returncode == 0, result.stderr


def test_an_unknown_aws_key_given_with_config_is_refused():
    one_line(
        cli("plan", "--config", "aws:regoin=us-east-1"),
        1,
        "python -m components plan: error: unknown AWS provider config key 'aws:regoin'",
        "did you mean 'aws:region'?",
    )


def test_the_aws_keys_are_the_providers():
    keys = aws_config_keys()
    assert {"region", "profile", "defaultTags", "skipCredentialsValidation"} <= set(keys)
    assert "regoin" not in keys


def test_warnings_go_to_stderr_after_the_table(project):
    """`plan > file` still shows them: aws:region unset, and the program's public subnets."""
    result = plan_stack(project, "")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stdout
    lines = result.stderr.splitlines()
    assert all(line.startswith("python -m components plan: warning: ") for line in lines)
    assert any("the nodes run in the default VPC's default subnets" in line for line in lines)
    assert any(
        "aws:region is unset: the offline plan assumes us-west-2 (a real `pulumi up` takes "
        "AWS_REGION" in line
        for line in lines
    )


@pytest.mark.parametrize(
    ("cidrs", "warned"),
    [
        (["10.1.0.0/16"], [0]),
        (["203.0.113.7/32", "172.16.5.0/24", "192.168.0.0/16"], [1, 2]),
        (["172.32.0.0/16", "11.0.0.0/8", "8.0.0.0/4"], []),  # beside, or wider than, RFC 1918
    ],
)
def test_private_ranges_for_the_public_endpoint_are_warned(cidrs, warned):
    config = {"aws:region": "us-west-2", f"{NS}:publicAccessCidrs": json.dumps(cidrs)}
    found = plan_warnings(Plan(stack="t", config=config))
    assert [w.split(" ")[0] for w in found] == [f"{NS}:publicAccessCidrs[{i}]" for i in warned]
    assert all("private (RFC 1918) range" in w for w in found)


def test_a_stack_name_eks_refuses_for_the_cluster_is_named(project):
    (project / "Pulumi.a.b.yaml").write_text("config: {}\n")
    result = cli("plan", "--project-dir", str(project), "--stack", "a.b")
    one_line(result, 1, "stack 'a.b'", "eks-gpu-sharing-a.b", "EKS refuses")


USAGE_ERRORS = [
    (
        ["plan", "--stack", "prod"],
        ["--stack prod", "Pulumi.prod.yaml", "the stacks there: dev, multi"],
    ),
    (["plan", "--stack", "../dev"], ["--stack '../dev'", "letters, digits"]),
    (["plan", "--config", "gpuNodeMax"], ["--config takes KEY=VALUE, got 'gpuNodeMax'"]),
    (["plan", "--config", "=2"], ["--config takes KEY=VALUE, got '=2'"]),
    (
        ["plan", "--config", "gpuNodeMax=2", "--config", "gpuNodeMax=3"],
        ["--config eks-gpu-sharing:gpuNodeMax is given twice ('2', '3')"],
    ),
    (
        ["plan", "--config", "gpuNodeMax=2", "--config", f"{NS}:gpuNodeMax=3"],
        ["--config eks-gpu-sharing:gpuNodeMax is given twice"],
    ),
    (["plan", "--project-dir", "/nonexist"], ["--project-dir /nonexist: no such folder"]),
    (["plan", "--project-dir", "tests"], ["--project-dir tests has no __main__.py"]),
    (["plan", "--json", ""], ["argument --json: the path is empty"]),
    (["plan", "--manifests", ""], ["argument --manifests: the path is empty"]),
    (["plan", "--project-dir", ""], ["argument --project-dir: the path is empty"]),
    (["verify", "--json", ""], ["argument --json: the path is empty"]),
    (["verify", "--kubeconfig", ""], ["argument --kubeconfig: the path is empty"]),
    (["docs", "--readme", ""], ["argument --readme: the path is empty"]),
]


@pytest.mark.parametrize(("args", "words"), USAGE_ERRORS)
def test_a_usage_error_exits_2_with_one_line_in_the_common_form(args, words):
    line = one_line(cli(*args), 2, *words)
    assert line.startswith(f"python -m components {args[0]}: error: ")


def test_an_output_under_a_file_is_refused_before_the_plan_runs(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    one_line(
        cli("plan", "--json", str(blocker / "plan.json")),
        2,
        str(blocker / "plan.json"),
        "cannot write",
    )
    one_line(cli("plan", "--manifests", str(blocker / "k8s")), 2, str(blocker / "k8s"))
    one_line(cli("plan", "--json", str(tmp_path)), 2, str(tmp_path), "is a folder")


def test_a_bare_key_is_the_projects_as_pulumi_reads_it(project):
    """pulumi/pulumi sdk/go/common/workspace/loaders.go, stackConfigNamespacedWithProject."""
    result = plan_stack(project, "config:\n  gpuNodeMax: 1\n  gpuNodeDesired: 2\n")
    one_line(result, 1, "gpuNodeDesired <= gpuNodeMax", "got 1 <= 2 <= 1")


def test_outputs_get_their_folders_and_a_refused_config_writes_nothing(tmp_path):
    out = tmp_path / "new" / "deeper"
    one_line(
        cli(
            "plan",
            "--config",
            "gpuNodeMax=x",
            "--json",
            str(out / "plan.json"),
            "--manifests",
            str(out / "k8s"),
        ),
        1,
        "gpuNodeMax",
    )
    assert list(tmp_path.iterdir()) == []  # not even the folders it made
    assert (
        cli("plan", "--json", str(out / "plan.json"), "--manifests", str(out / "k8s")).returncode
        == 0
    )
    assert (out / "plan.json").stat().st_size > 0
    assert sorted(p.name for p in out.iterdir()) == ["k8s", "plan.json"]  # no temporaries


def test_a_failed_run_removes_only_the_folders_it_made(tmp_path):
    (tmp_path / "kept").mkdir()
    out = tmp_path / "kept" / "new" / "plan.json"
    one_line(cli("plan", "--config", "gpuNodeMax=x", "--json", str(out)), 1, "gpuNodeMax")
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]
    assert list((tmp_path / "kept").iterdir()) == []


def test_written_files_get_the_mode_a_plain_write_leaves(tmp_path):
    """mkstemp makes 0600 files; a new file gets 0666 less the umask, a file keeps its mode."""
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    old.write_text("{}")
    old.chmod(0o640)
    for path in (new, old):
        assert cli("plan", "--json", str(path)).returncode == 0
    umask = os.umask(0)
    os.umask(umask)
    assert new.stat().st_mode & 0o777 == 0o666 & ~umask
    assert old.stat().st_mode & 0o777 == 0o640


def test_manifests_replace_an_earlier_plan_and_never_touch_other_files(tmp_path):
    k8s = tmp_path / "k8s"
    k8s.mkdir()
    stale = k8s / "42-deployment-of-an-earlier-plan.yaml"
    stale.write_text(f"{MANIFEST_MARK}kind: Deployment\n")
    assert cli("plan", "--manifests", str(k8s)).returncode == 0
    names = sorted(p.name for p in k8s.iterdir())
    assert len(names) == 20 and stale.name not in names
    assert all(
        (k8s / name).read_text().startswith("# written by python -m components plan\n")
        for name in names
    )

    # Named like ours, but not written by plan (no mark): kept, and plan stops.
    for name, text in [("notes.txt", "mine"), ("99-foo-bar.yaml", "kind: ConfigMap\n")]:
        (k8s / name).write_text(text)
        one_line(cli("plan", "--manifests", str(k8s)), 2, str(k8s), repr(name), "did not write")
        assert (k8s / name).read_text() == text
        assert sorted(p.name for p in k8s.iterdir()) == sorted([*names, name])
        (k8s / name).unlink()


def test_a_pipe_closed_early_is_one_line():
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "components", "plan", "--config", PLAN_CIDRS],
            cwd=ROOT,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    assert result.returncode == 141
    assert result.stderr == "python -m components plan: error: output closed early\n"


@pytest.mark.parametrize(
    ("args", "problem"),
    [([], "no command given"), (["deploy"], "unknown command 'deploy'"), (["--verbose"], "")],
)
def test_an_unknown_command_is_a_usage_error(args, problem):
    line = one_line(cli(*args), 2, "usage: python -m components {plan,verify,docs,preflight}")
    assert line.startswith(f"python -m components: error: {problem or 'unknown command'}")


@pytest.mark.parametrize("command", ["plan", "verify", "docs", "preflight"])
def test_every_command_has_help_and_one_line_usage_errors(command):
    helped = cli(command, "--help")
    assert helped.returncode == 0 and helped.stderr == ""
    assert helped.stdout.startswith(f"usage: python -m components {command}")
    one_line(
        cli(command, "--no-such-option"),
        2,
        f"python -m components {command}: error: unrecognized arguments: --no-such-option",
    )


def test_help_of_the_dispatcher_is_plain_text():
    helped = cli("--help")
    assert helped.returncode == 0 and "- plan: run the stack program offline" in helped.stdout
    assert "docs" in helped.stdout and "``" not in helped.stdout


def test_docs_checks_by_default_and_writes_only_when_asked(tmp_path):
    readme = tmp_path / "README.md"
    current = (ROOT / "README.md").read_text(encoding="utf-8")
    stale = current.replace(
        "| `eks-gpu-sharing:gpuNodeMax` | most GPU nodes |",
        "| `eks-gpu-sharing:gpuNodeMax` | old text |",
    )
    assert stale != current
    readme.write_text(stale, encoding="utf-8")

    one_line(cli("docs", "--readme", str(readme)), 1, str(readme), "stale", "--write")
    assert readme.read_text(encoding="utf-8") == stale
    written = cli("docs", "--readme", str(readme), "--write")
    assert written.returncode == 0, written.stderr
    assert readme.read_text(encoding="utf-8") == current
    checked = cli("docs", "--readme", str(readme))
    assert checked.returncode == 0 and "current" in checked.stdout


def test_docs_with_a_readme_it_cannot_use(tmp_path):
    one_line(cli("docs", "--readme", str(tmp_path / "nope.md")), 2, "nope.md", "cannot read")
    (tmp_path / "other.md").write_text("no tables\n")
    one_line(
        cli("docs", "--readme", str(tmp_path / "other.md")), 2, "other.md", "<!-- BEGIN config -->"
    )


@contextmanager
def server(kind: str, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """A server that is not Kubernetes: one answering HTML (over ``tls`` if given), or one
    that never answers."""
    if kind == "html":

        class Html(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = b"<html>a login page</html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Html)
        if tls:
            httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            yield f"{'https' if tls else 'http'}://127.0.0.1:{httpd.server_address[1]}"
        finally:
            httpd.shutdown()
    else:
        with socket.socket() as silent:  # accepts connections (backlog), never answers
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            yield f"http://127.0.0.1:{silent.getsockname()[1]}"


def test_verify_against_a_server_that_is_not_kubernetes(tmp_path):
    with server("html") as url:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", url)
        result = cli("verify", "--kubeconfig", str(kubeconfig), "--timeout", "1")
    one_line(result, 2, f"the server at {url} is not a Kubernetes API")


def test_verify_with_a_kubeconfig_that_is_not_there(tmp_path):
    """Not the client's "Invalid kube-config file. No configuration found."."""
    missing = tmp_path / "nonexist"
    one_line(cli("verify", "--kubeconfig", str(missing)), 2, f"no such file: {missing}")
    env = {**os.environ, "KUBECONFIG": f"{missing}{os.pathsep}{tmp_path / 'other'}"}
    one_line(cli("verify", env=env), 2, f"no such file: {missing}, {tmp_path / 'other'}")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl for a certificate")
def test_verify_with_insecure_skip_tls_verify_says_so_once(tmp_path):
    """urllib3's InsecureRequestWarning per request is silenced; one warning line of ours."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key)]
        + ["-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True,
        capture_output=True,
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    with server("html", tls) as url:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", url)
        document = yaml.safe_load(kubeconfig.read_text())
        document["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = True
        kubeconfig.write_text(yaml.safe_dump(document))
        result = cli("verify", "--kubeconfig", str(kubeconfig), "--timeout", "1")
    assert result.returncode == 2
    warned, failed = result.stderr.splitlines()  # no InsecureRequestWarning lines
    assert warned == (
        f"python -m components verify: warning: the kubeconfig from {kubeconfig} sets "
        "insecure-skip-tls-verify: the API server's certificate is not checked"
    )
    assert failed.startswith(
        f"python -m components verify: error: the server at {url} is not a Kubernetes API"
    )


def test_verify_against_a_silent_server_ends_within_its_timeout(tmp_path):
    """One try per request, bounded by --timeout (at least 5 s): not urllib3's 3 retries."""
    with server("silent") as url:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", url)
        start = time.monotonic()
        result = cli("verify", "--kubeconfig", str(kubeconfig), "--timeout", "1")
        took = time.monotonic() - start
    one_line(result, 2, f"cannot reach the Kubernetes API at {url}", "timed out")
    assert took < 15


@pytest.mark.parametrize(("text", "kind"), [("- a\n", "list"), ("just text\n", "str")])
def test_verify_with_a_kubeconfig_that_is_not_a_map(tmp_path, text, kind):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(text)
    one_line(
        cli("verify", "--kubeconfig", str(kubeconfig)),
        2,
        str(kubeconfig),
        f"is not a map of clusters, users and contexts (it holds a {kind})",
    )


def test_verify_refuses_a_namespace_kubernetes_would_refuse():
    one_line(cli("verify", "--namespace", "GPU_Pods"), 2, "'GPU_Pods' is not a namespace name")


def test_a_failed_verify_leaves_no_folder_for_its_report(tmp_path):
    report = tmp_path / "new" / "r.json"
    result = cli("verify", "--kubeconfig", str(tmp_path / "none"), "--json", str(report))
    one_line(result, 2, str(tmp_path / "none"))
    assert list(tmp_path.iterdir()) == []


def test_verify_refuses_an_unwritable_report_before_asking_the_cluster(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = cli(
        "verify", "--kubeconfig", str(tmp_path / "none"), "--json", str(blocker / "r.json")
    )
    one_line(result, 2, f"cannot write --json {blocker / 'r.json'}")


@pytest.fixture
def fake_tools(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A PATH whose pulumi and aws record the passphrase each call saw, and a ready venv."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(
        "#!/bin/sh\n"
        f'echo "pulumi $* passphrase=${{PULUMI_CONFIG_PASSPHRASE-unset}}" >> {log}\n'
        "exit 3\n"
    )
    (bin_dir / "aws").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("pulumi", "aws"):
        (bin_dir / tool).chmod(0o755)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    (venv / ".installed").touch()  # newer than requirements.txt: make installs nothing
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG_PASSPHRASE")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(ROOT)
    return env, log


def make(target: str, env: dict[str, str], venv: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", target, f"VENV={venv}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize(
    ("passphrase", "seen", "warned"),
    [
        (None, "", True),
        ("", "", True),
        ("s3cret", "s3cret", False),
    ],
)
def test_every_state_target_passes_the_same_passphrase(fake_tools, passphrase, seen, warned):
    """pulumi/pulumi pkg/secrets/passphrase: unset and no file means a prompt, or a failure."""
    env, log = fake_tools
    if passphrase is not None:
        env["PULUMI_CONFIG_PASSPHRASE"] = passphrase
    venv = log.parent / "venv"
    for target in ("verify", "destroy"):
        result = make(target, env, venv)
        assert result.returncode != 0  # the fake pulumi fails every call
        # They read the secrets with an empty passphrase, if that is what the state has.
        warning = "empty: using an empty passphrase for stack dev's secrets"
        assert (warning in result.stderr) == warned
    up = make("up", env, venv)
    assert up.returncode == 2
    # `up` creates state: an empty passphrase is refused before pulumi is called.
    refused = "error: make up will not create stack dev's state with an empty passphrase"
    assert (refused in up.stderr) == warned
    calls = log.read_text().splitlines()
    expected = ["stack", "destroy"] if warned else ["stack", "destroy", "stack"]
    assert [c.split()[1] for c in calls] == expected
    assert {c.split("passphrase=", 1)[1] for c in calls} == {seen}


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_up_puts_the_secrets_in_kms_when_asked_without_a_passphrase(fake_tools):
    env, log = fake_tools
    provider = "awskms://alias/eks-gpu-sharing?region=us-west-2"
    result = make("up", env, log.parent / "venv", f"SECRETS_PROVIDER={provider}")
    assert "passphrase" not in result.stderr
    (call,) = log.read_text().splitlines()
    assert call.startswith(f"pulumi stack select dev --create --secrets-provider {provider} ")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_up_opens_the_endpoint_to_the_deployers_address_when_none_is_set(fake_tools):
    """checkip.amazonaws.com answers with the caller's public address."""
    env, log = fake_tools
    bin_dir = Path(env["PATH"].split(os.pathsep)[0])
    (bin_dir / "pulumi").write_text(
        "#!/bin/sh\n"
        f'echo "pulumi $*" >> {log}\n'
        'case "$1 $2" in "config get") exit 1 ;; esac\n'
        "exit 0\n"
    )
    (bin_dir / "curl").write_text("#!/bin/sh\nprintf '203.0.113.9\\n'\n")
    (bin_dir / "curl").chmod(0o755)
    env["PULUMI_CONFIG_PASSPHRASE"] = "s3cret"
    result = make("up", env, log.parent / "venv")
    calls = log.read_text().splitlines()
    assert calls[:4] == [
        "pulumi stack select dev --create",
        "pulumi config get eks-gpu-sharing:publicAccessCidrs --stack dev",
        "pulumi config get eks-gpu-sharing:endpointPublicAccess --stack dev",
        'pulumi config set --stack dev eks-gpu-sharing:publicAccessCidrs ["203.0.113.9/32"]',
    ]
    assert (
        "publicAccessCidrs was unset: the API endpoint of stack dev is open to this machine's "
        "address alone, 203.0.113.9/32"
    ) in result.stderr


def test_make_plan_gives_an_unset_stack_the_documentation_address(tmp_path):
    """The Makefile's PLAN_ADDRESS is the one the tests plan with (conftest.PLAN_CIDRS), and
    a stack that sets its CIDRs, or a private endpoint (endpointPublicAccess false, not any
    value), gets none."""
    makefile = (ROOT / "Makefile").read_text()
    assert f"PLAN_ADDRESS := {json.loads(PLAN_CIDRS.split('=', 1)[1])[0]}\n" in makefile
    (tmp_path / "Makefile").write_text(makefile)
    for name in ("requirements.txt", "pyproject.toml"):
        (tmp_path / name).write_text("")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / ".installed").touch()

    def plan_line(stack_file: str) -> str:
        (tmp_path / "Pulumi.dev.yaml").write_text(stack_file)
        dry = subprocess.run(
            ["make", "--no-print-directory", "-n", "plan"],  # also under make (CI)
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return dry.stdout.strip().splitlines()[-1]

    assert "--config 'publicAccessCidrs=[\"192.0.2.1/32\"]'" in plan_line("config: {}\n")
    assert "--config" not in plan_line(
        "config:\n  eks-gpu-sharing:publicAccessCidrs:\n    - 198.51.100.7/32\n"
    )
    for private in ("false", '"false"', "'false'", "false  # no public endpoint"):
        assert "--config" not in plan_line(
            f"config:\n  eks-gpu-sharing:endpointPublicAccess: {private}\n"
        )
    # A public endpoint set in so many words still needs CIDRs (pulumi config set writes "true").
    for public in ("true", '"true"'):
        assert "--config 'publicAccessCidrs=[\"192.0.2.1/32\"]'" in plan_line(
            f"config:\n  eks-gpu-sharing:endpointPublicAccess: {public}\n"
        )


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_a_passphrase_file_is_left_to_pulumi(fake_tools):
    env, log = fake_tools
    env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(log.parent / "phrase")
    result = make("destroy", env, log.parent / "venv")
    assert "warning" not in result.stderr
    assert log.read_text() == "pulumi destroy --stack dev --yes passphrase=unset\n"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_preflight_without_credentials_is_a_skip_not_an_error(fake_tools):
    """preflight's exit 3 (skipped, said why) is no failure to make, as in `make up`."""
    env, log = fake_tools
    env.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_SHARED_CREDENTIALS_FILE=str(log.parent / "none"),
        AWS_CONFIG_FILE=str(log.parent / "none"),
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(name, None)
    # A fresh clone's stack leaves the endpoint's CIDRs to `make up`: preflight says so.
    fresh = make("preflight", env, log.parent / "venv")
    assert fresh.returncode == 2
    assert fresh.stderr.startswith(
        "python -m components preflight: error: publicAccessCidrs is unset and the API endpoint "
        "is public"
    )
    # A copy of the project whose stack has them, as `make up` leaves it.
    copy = log.parent / "project"
    copy.mkdir()
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        shutil.copy(ROOT / name, copy)
    (log.parent / "venv" / ".installed").touch()  # newer than the copies
    (copy / "Pulumi.dev.yaml").write_text(
        (ROOT / "Pulumi.dev.yaml").read_text()
        + '  eks-gpu-sharing:publicAccessCidrs: ["100.20.30.40/32"]\n'
    )
    result = subprocess.run(
        ["make", "-s", "preflight", f"VENV={log.parent / 'venv'}"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    skipped = "skipped: the quota checks in us-west-2 (aws:region): no AWS credentials"
    assert skipped in result.stdout + result.stderr
    assert "Error" not in result.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_state_targets_without_the_pulumi_cli_say_so(fake_tools):
    env, log = fake_tools
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if not (Path(p) / "pulumi").exists()
    )
    result = make("destroy", env, log.parent / "venv")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "make destroy needs the Pulumi CLI: https://www.pulumi.com/docs/iac/download-install/"
    )


def test_an_unexpected_failure_of_the_program_is_one_line_unless_asked(project):
    (project / "__main__.py").write_text("raise RuntimeError('boom\\nsecond line')\n")
    (project / "Pulumi.t.yaml").write_text("config: {}\n")
    args = ("plan", "--project-dir", str(project), "--stack", "t")
    one_line(
        cli(*args), 1, "the stack program failed: RuntimeError: boom second line", "--traceback"
    )
    traced = cli(*args, "--traceback")
    assert traced.returncode == 1 and "Traceback" in traced.stderr
