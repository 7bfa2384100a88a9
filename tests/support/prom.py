"""Prometheus for the tests: the tools, a real server on 127.0.0.1, queries, the chart's rules."""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import yaml
from net import answers, free_port, run, running

PREDICT_CHART = Path(__file__).resolve().parents[2] / "charts" / "predict"


def tool(name: str, package: str) -> str:
    """The path of a system tool; the test fails with the install command when it is missing."""
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: scripts/install-system-deps.sh ({package})")
    return found


def promtool(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``promtool ARGS`` run to the end (output captured as text)."""
    binary = tool("promtool", "apt-get install -y prometheus")
    return run([binary, *args], cwd=cwd, timeout=timeout)


def predict_rules(
    template: str,
    rule_values: dict | None = None,
    *,
    release: str = "regpipe-predict",
    namespace: str = "regpipe",
) -> dict:
    """The spec (a Prometheus rule file's content) of one PrometheusRule of the predict chart,
    rendered by Helm with ``metrics.prometheusRule`` enabled and updated by ``rule_values``."""
    helm_python = pytest.importorskip("helm_python")
    values = {"metrics": {"prometheusRule": {"enabled": True, **(rule_values or {})}}}
    out = helm_python.Chart.load(PREDICT_CHART).render(values, name=release, namespace=namespace)
    [doc] = [d for d in yaml.safe_load_all(out[f"predict/templates/{template}"]) if d]
    assert doc["kind"] == "PrometheusRule"
    return doc["spec"]


def promtool_test(spec: dict, tests: Path, work: Path) -> set[str]:
    """``promtool test rules`` of the unit tests in ``tests`` against the rules ``spec``
    (written as the rule file the tests name); returns the alerts the tests cover."""
    doc = yaml.safe_load(tests.read_text())
    [rule_file] = doc["rule_files"]
    write_rules(work / rule_file, spec)
    shutil.copy(tests, work / "tests.yaml")
    result = promtool("test", "rules", "tests.yaml", cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    return {t["alertname"] for case in doc["tests"] for t in case.get("alert_rule_test", [])}


def write_rules(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@contextmanager
def prometheus(work: Path, scrape_configs: list[dict], rules: dict) -> Iterator[str]:
    """Debian's prometheus on 127.0.0.1 (1 s scrape and evaluation interval) with ``rules``
    loaded; yields its API URL (``.../api/v1``) once ready, stopped on exit."""
    binary = tool("prometheus", "apt-get install -y prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(write_rules(work / "rules.yaml", rules))],
        "scrape_configs": scrape_configs,
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    cmd = [
        binary,
        f"--config.file={work / 'prometheus.yml'}",
        f"--storage.tsdb.path={work / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    ready = answers(f"http://127.0.0.1:{port}/-/ready")
    with running(cmd, ready, "prometheus", log=work / "prometheus.log", seconds=60, every=0.5):
        yield f"http://127.0.0.1:{port}/api/v1"


def query(api: str, expr: str) -> list[dict]:
    """The result of an instant query (the query must succeed)."""
    doc = requests.get(f"{api}/query", params={"query": expr}, timeout=10).json()
    assert doc["status"] == "success", f"{expr}\n{doc}"
    return doc["data"]["result"]


def has_data(result: list[dict]) -> bool:
    return any(math.isfinite(float(s["value"][1])) for s in result)
