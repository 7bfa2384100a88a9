"""Every command of the README's "Deploy" section is checked.

- `helm upgrade --install RELEASE CHART ...`: the flags are parsed with Helm's own --set,
  --set-file and --set-string parsers (helm-python-sdk; --wait, --wait-for-jobs and --timeout
  only change how Helm waits), the chart is rendered with those values
  (values.schema.json applies), linted strictly, and every manifest validated (kubernetes-validate
  strict for 1.29 and 1.33; the Prometheus Operator's CRDs against their generated models);
- `docker build -f ...`: the Dockerfile exists (tests/test_images.py builds it for real);
- `skaffold ...`: the subcommand exists and every profile it names is in skaffold.yaml;
- `.venv/bin/python charts/predict/dashboards/build.py`: the script exists and its output is the
  checked-in dashboard (tests/test_charts.py).
A command of any other kind fails the test: the section may only say what the tests prove.
The walkthrough's three commands also run for real, in order, on an empty volume under
`podman kube play` (tests/test_images.py::test_readme_walkthrough_on_an_empty_volume).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import helm_python
import kubernetes_validate
import pytest
import yaml
from values import container_env, merge_values

ROOT = Path(__file__).resolve().parents[1]


def deploy_section() -> str:
    m = re.search(r"^## Deploy\n(.*?)(?=^## |\Z)", (ROOT / "README.md").read_text(), re.M | re.S)
    assert m, "README.md has no '## Deploy' section"
    return m.group(1)


def commands() -> list[str]:
    blocks = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", deploy_section(), re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def validate(doc: dict) -> None:
    if doc["apiVersion"].startswith("monitoring.coreos.com/"):
        from cloudcoil.models.prometheus_operator import v1

        getattr(v1, doc["kind"]).model_validate(doc)
        return
    for version in ("1.29.0", "1.33.0"):
        kubernetes_validate.validate(doc, version, strict=True)


# Flags of `helm upgrade --install` that change how Helm waits, not what it renders.
WAIT_FLAGS = {"--create-namespace", "--wait", "--wait-for-jobs", "--atomic"}


def helm_release(args: list[str]) -> tuple[str, str, str, dict]:
    """(release, chart, namespace, values) of `helm upgrade --install ...`, flags parsed by Helm."""
    assert args[:3] == ["helm", "upgrade", "--install"], args
    release, chart, rest = args[3], args[4], args[5:]
    assert (ROOT / chart / "Chart.yaml").exists(), chart
    values: dict = {}
    namespace = "default"
    i = 0
    while i < len(rest):
        flag = rest[i]
        if flag in WAIT_FLAGS:
            i += 1
            continue
        value = rest[i + 1]
        if flag in ("-n", "--namespace"):
            namespace = value
        elif flag == "--timeout":
            assert re.fullmatch(r"(\d+[hms])+", value), f"--timeout {value} is not a duration"
        elif flag == "--set":
            values = merge_values(values, helm_python.parse_set_string(value))
        elif flag == "--set-string":
            values = merge_values(values, helm_python.parse_set_string_values(value))
        elif flag == "--set-file":
            values = merge_values(values, helm_python.parse_set_file(value))
        elif flag in ("-f", "--values"):
            values = merge_values(values, yaml.safe_load((ROOT / value).read_text()))
        else:
            pytest.fail(f"flag {flag} is not checked by this test")
        i += 2
    return release, chart, namespace, values


def check_helm(args: list[str]) -> None:
    release, chart, namespace, values = helm_release(args)
    out = helm_python.Chart.load(ROOT / chart).render(values, name=release, namespace=namespace)
    docs = [
        d for p, t in out.items() if not p.endswith("NOTES.txt") for d in yaml.safe_load_all(t) if d
    ]
    assert docs
    for doc in docs:
        validate(doc)
    report = helm_python.lint(ROOT / chart, values, strict=True, namespace=namespace)
    assert not [m for m in report["messages"] if m["severity"] >= 2] + report["errors"], report


def check_skaffold(args: list[str]) -> None:
    assert args[1] in {"dev", "run", "build", "deploy", "render", "debug", "delete"}, args
    profiles = {p["name"] for p in yaml.safe_load((ROOT / "skaffold.yaml").read_text())["profiles"]}
    for i, arg in enumerate(args):
        if arg in ("-p", "--profile"):
            for name in args[i + 1].split(","):
                assert name in profiles, f"no profile {name} in skaffold.yaml"


def check_docker(args: list[str]) -> None:
    assert args[:2] == ["docker", "build"] and args[-1] == "."
    dockerfile = args[args.index("-f") + 1]
    assert (ROOT / dockerfile).is_file(), dockerfile


def walkthrough(charts: tuple[str, ...] = ("preprocess", "train", "predict")) -> list[list[str]]:
    """The README's first `helm upgrade --install` of each of ``charts``, in the order written."""
    first: dict[str, list[str]] = {}
    for command in commands():
        args = shlex.split(command)
        if args[:3] == ["helm", "upgrade", "--install"] and Path(args[4]).name in charts:
            first.setdefault(Path(args[4]).name, args)
    return list(first.values())


def render_docs(args: list[str]) -> list[dict]:
    release, chart, namespace, values = helm_release(args)
    out = helm_python.Chart.load(ROOT / chart).render(values, name=release, namespace=namespace)
    return [
        d for p, t in out.items() if not p.endswith("NOTES.txt") for d in yaml.safe_load_all(t) if d
    ]


def claims(docs: list[dict]) -> set[str]:
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Job", "Deployment")]
    return {
        v["persistentVolumeClaim"]["claimName"]
        for pod in pods
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }


def test_the_walkthrough_works_on_an_empty_cluster() -> None:
    """preprocess loads the sample onto the volume it creates; train and predict mount that claim.

    Each batch command waits for its Job (`--wait --wait-for-jobs`), so the next one starts on
    its output. tests/test_images.py runs the three for real under podman kube play.
    """
    steps = walkthrough()
    assert [Path(args[4]).name for args in steps] == ["preprocess", "train", "predict"]
    for args in steps[:2]:
        assert "--wait" in args and "--wait-for-jobs" in args, args
    preprocess = render_docs(steps[0])
    [claim] = [d["metadata"]["name"] for d in preprocess if d["kind"] == "PersistentVolumeClaim"]
    [job] = [d for d in preprocess if d["kind"] == "Job"]
    [init] = job["spec"]["template"]["spec"]["initContainers"]
    assert init["name"] == "load-sample"
    env = container_env(job["spec"]["template"]["spec"]["containers"][0])
    assert init["command"][-1] == env["PREPROCESS_INPUT"], "the sample is written to the input"
    for args in steps:
        assert claims(render_docs(args)) == {claim}, args
    [score] = walkthrough(("score",))  # then scoring the test split, on the same claim
    assert "--wait-for-jobs" in score and claims(render_docs(score)) == {claim}


def test_the_section_has_the_commands_the_issue_asks_for() -> None:
    cmds = commands()
    for chart in ("preprocess", "train", "predict"):
        assert any(c.startswith("helm upgrade --install") and f"charts/{chart}" in c for c in cmds)
    assert any(c.startswith("skaffold dev") for c in cmds)
    assert any("dask.schedulerAddress" in c for c in cmds)
    assert "grafana_dashboard" in deploy_section()
    assert (ROOT / "charts/predict/dashboards/regpipe-predict.json").exists()


@pytest.mark.parametrize("command", commands())
def test_command(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # --set-file paths are relative to the repository root
    args = shlex.split(command)
    if args[0] == "helm":
        check_helm(args)
    elif args[0] == "skaffold":
        check_skaffold(args)
    elif args[0] == "docker":
        check_docker(args)
    elif args == [".venv/bin/python", "charts/predict/dashboards/build.py"]:
        assert (ROOT / args[1]).is_file()
    else:
        pytest.fail(f"no test checks this command: {command}")
