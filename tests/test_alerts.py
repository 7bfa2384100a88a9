"""The predict chart's PrometheusRule through Prometheus' own promtool.

The rules' single source is the chart (templates/prometheusrule.yaml, thresholds in values);
these tests render it with Helm, write ``spec.groups`` as a Prometheus rule file, and run
``promtool check rules`` and ``promtool test rules`` (charts/predict/alerts/tests.yaml: each
alert fires when it should and stays quiet when it should not).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import helm_python
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "predict"
TESTS = CHART / "alerts" / "tests.yaml"
ALERTS = {
    "RegpipePredictHighErrorRate",
    "RegpipePredictHighLatencyP99",
    "RegpipePredictNoReadyReplicas",
    "RegpipePredictFeatureDrift",
    "RegpipePredictCategoryDrift",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail(
            "promtool is not installed: scripts/install-system-deps.sh "
            "(apt-get install -y prometheus)"
        )
    return found


def rendered_rules(
    values: dict | None = None, *, release: str = "regpipe-predict", namespace: str = "regpipe"
) -> dict:
    """The PrometheusRule's spec: a Prometheus rule file's content."""
    chart = helm_python.Chart.load(CHART)
    vals = {"metrics": {"prometheusRule": {"enabled": True}}}
    if values:
        vals["metrics"]["prometheusRule"].update(values)
    out = chart.render(vals, name=release, namespace=namespace)
    [doc] = [d for d in yaml.safe_load_all(out["predict/templates/prometheusrule.yaml"]) if d]
    assert doc["kind"] == "PrometheusRule"
    return doc["spec"]


def write_rules(directory: Path, spec: dict) -> Path:
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_promtool_check_rules(tmp_path: Path) -> None:
    spec = rendered_rules()
    names = {r["alert"] for g in spec["groups"] for r in g["rules"]}
    assert names == ALERTS
    result = subprocess.run(
        [promtool(), "check", "rules", str(write_rules(tmp_path, spec))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def test_promtool_check_rules_refuses_a_broken_rule(tmp_path: Path) -> None:
    """promtool really parses the PromQL: a broken expression fails."""
    spec = rendered_rules()
    spec["groups"][0]["rules"][0]["expr"] = "sum by (job) (rate(x[5m])"
    result = subprocess.run(
        [promtool(), "check", "rules", str(write_rules(tmp_path, spec))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0


def test_promtool_test_rules(tmp_path: Path) -> None:
    write_rules(tmp_path, rendered_rules())
    shutil.copy(TESTS, tmp_path / "tests.yaml")
    result = subprocess.run(
        [promtool(), "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        t["alertname"]
        for case in yaml.safe_load(TESTS.read_text())["tests"]
        for t in case.get("alert_rule_test", [])
    }
    assert tested == ALERTS, "every alert has a promtool test"


def test_thresholds_and_switches_come_from_values(tmp_path: Path) -> None:
    spec = rendered_rules(
        {
            "rules": {
                "highErrorRate": {"threshold": 0.2, "for": "1m"},
                "featureDrift": {"enabled": False},
            }
        },
        release="r1",
        namespace="ml",
    )
    rules = {r["alert"]: r for g in spec["groups"] for r in g["rules"]}
    assert "RegpipePredictFeatureDrift" not in rules
    assert "RegpipePredictCategoryDrift" not in rules
    assert rules["RegpipePredictHighErrorRate"]["expr"].rstrip().endswith(") > 0.2")
    assert rules["RegpipePredictHighErrorRate"]["for"] == "1m"
    assert 'namespace="ml", job="r1-predict"' in rules["RegpipePredictHighErrorRate"]["expr"]
    result = subprocess.run(
        [promtool(), "check", "rules", str(write_rules(tmp_path, spec))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
