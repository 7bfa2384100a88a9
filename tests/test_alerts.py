"""The predict chart's PrometheusRule through Prometheus' own promtool.

The rules' single source is the chart (templates/prometheusrule.yaml, thresholds in values);
these tests render it with Helm, write ``spec.groups`` as a Prometheus rule file, and run
``promtool check rules`` and ``promtool test rules`` (charts/predict/alerts/tests.yaml: each
alert fires when it should and stays quiet when it should not).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from prom import predict_rules, promtool, promtool_test, write_rules

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


def rendered_rules(
    values: dict | None = None, *, release: str = "regpipe-predict", namespace: str = "regpipe"
) -> dict:
    """The PrometheusRule's spec: a Prometheus rule file's content."""
    return predict_rules("prometheusrule.yaml", values, release=release, namespace=namespace)


def check_rules(directory: Path, spec: dict) -> subprocess.CompletedProcess:
    """``promtool check rules`` of ``spec`` written as a rule file."""
    return promtool("check", "rules", str(write_rules(directory / "rules.yaml", spec)), timeout=60)


def test_promtool_check_rules(tmp_path: Path) -> None:
    spec = rendered_rules()
    names = {r["alert"] for g in spec["groups"] for r in g["rules"]}
    assert names == ALERTS
    result = check_rules(tmp_path, spec)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def test_promtool_check_rules_refuses_a_broken_rule(tmp_path: Path) -> None:
    """promtool really parses the PromQL: a broken expression fails."""
    spec = rendered_rules()
    spec["groups"][0]["rules"][0]["expr"] = "sum by (job) (rate(x[5m])"
    result = check_rules(tmp_path, spec)
    assert result.returncode != 0


def test_promtool_test_rules(tmp_path: Path) -> None:
    covered = promtool_test(rendered_rules(), TESTS, tmp_path)
    assert covered == ALERTS, "every alert has a promtool test"


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
    result = check_rules(tmp_path, spec)
    assert result.returncode == 0, result.stdout + result.stderr
