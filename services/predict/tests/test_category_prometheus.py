"""The category panels and the category drift alert on a real Prometheus (Debian's 2.42) that
scraped a real ``regpipe-predict`` (gunicorn, 2 workers, multiprocess metrics) serving a model
with category features. tests/test_observability.py does the same for every panel with the
flights model; its category queries are checked here while that model is numeric-only."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from category_helpers import category_rows, publish_categories, records
from net import free_port, wait_for
from predict_helpers import NAME, Server, serve

pytestmark = [pytest.mark.prometheus]

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "predict"
DASHBOARD = CHART / "dashboards" / "regpipe-predict.json"
NAMESPACE, JOB = "regpipe", "regpipe-predict"
CATEGORY = "regpipe_unknown_category"
RULE = "RegpipePredictCategoryDrift"


def rendered_rules() -> dict:
    helm_python = pytest.importorskip("helm_python")
    out = helm_python.Chart.load(CHART).render(
        {"metrics": {"prometheusRule": {"enabled": True}}}, name=JOB, namespace=NAMESPACE
    )
    [doc] = [d for d in yaml.safe_load_all(out["predict/templates/prometheusrule.yaml"]) if d]
    return doc["spec"]


@pytest.fixture(scope="module")
def cat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    models = tmp_path_factory.mktemp("cat-prom-models")
    version = publish_categories(models)
    env = {"DRIFT_UPDATE_INTERVAL": "0", "DRIFT_WINDOW_ROWS": "200"}
    with serve(models / NAME, tmp_path_factory.mktemp("cat-prom-srv"), **env) as srv:
        srv.wait_loaded(version)
        yield srv


@pytest.fixture(scope="module")
def prometheus(cat_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if not binary:
        pytest.fail("prometheus is not installed (apt-get install -y prometheus)")
    work = tmp_path_factory.mktemp("cat-prometheus")
    (work / "rules.yaml").write_text(yaml.safe_dump(rendered_rules(), sort_keys=False))
    target = {"targets": [f"127.0.0.1:{cat_server.port}"], "labels": {"namespace": NAMESPACE}}
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(work / "rules.yaml")],
        "scrape_configs": [{"job_name": JOB, "static_configs": [target]}],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with (work / "prometheus.log").open("w") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        wait_for(
            lambda: requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).ok,
            "prometheus /-/ready",
            60,
        )
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def query(api: str, expr: str) -> list[dict]:
    doc = requests.get(f"{api}/query", params={"query": expr}, timeout=10).json()
    assert doc["status"] == "success", f"{expr}\n{doc}"
    return doc["data"]["result"]


def has_data(result: list[dict]) -> bool:
    return any(math.isfinite(float(s["value"][1])) for s in result)


@pytest.fixture(scope="module")
def scraped(cat_server: Server, prometheus: str) -> str:
    """Bounded traffic (at most 400 requests of 50 rows, 60% unseen carriers, 90 s) until
    Prometheus has seen the unseen-level counter rise between two scrapes."""
    rising = f'rate({CATEGORY}_total{{job="{JOB}", feature="carrier"}}[20s]) > 0'
    deadline = time.monotonic() + 90
    for i in range(400):
        rows, _ = category_rows(50, seed=100 + i)
        rows[:30, 1], rows[30:, 1] = "ZZ", "UA"  # 60% unseen, the rest kept
        response = cat_server.post("/predict", json={"instances": records(rows)})
        assert response.status_code == 200, response.text
        if i % 10 == 9 and has_data(query(prometheus, rising)):
            break
        assert time.monotonic() < deadline, "Prometheus never saw the counter rise"
        time.sleep(0.05)
    else:
        pytest.fail("Prometheus never saw the counter rise")
    return prometheus


def substitute(expr: str) -> str:
    return (
        expr.replace("$namespace", NAMESPACE)
        .replace("$job", JOB)
        .replace("$__rate_interval", "20s")
    )


def category_targets() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [
        (f"{p['title']} [{t['refId']}]", t["expr"])
        for p in panels
        for t in p.get("targets", [])
        if CATEGORY in t["expr"]
    ]


def test_the_dashboard_has_category_panels() -> None:
    exprs = " ".join(e for _, e in category_targets())
    for name in (f"{CATEGORY}_share", f"{CATEGORY}_training_share", f"{CATEGORY}_total"):
        assert name + "{" in exprs


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("panel", "expr"), category_targets(), ids=[p for p, _ in category_targets()]
)
def test_category_panels_return_data(scraped: str, panel: str, expr: str) -> None:
    result = query(scraped, substitute(expr))
    assert has_data(result), f"panel {panel!r} would be empty in Grafana:\n{substitute(expr)}"


@pytest.mark.timeout(300)
def test_recent_share_beside_the_training_share(scraped: str) -> None:
    recent = query(scraped, f'{CATEGORY}_share{{job="{JOB}", feature="carrier"}}')
    training = query(scraped, f'{CATEGORY}_training_share{{job="{JOB}", feature="carrier"}}')
    assert float(recent[0]["value"][1]) == pytest.approx(0.6)
    assert 0 < float(training[0]["value"][1]) < 0.1


@pytest.mark.timeout(300)
def test_category_drift_alert_evaluates_and_its_condition_holds(scraped: str) -> None:
    [rule] = [r for g in rendered_rules()["groups"] for r in g["rules"] if r.get("alert") == RULE]
    firing = query(scraped, rule["expr"])  # the condition without `for`
    assert {s["metric"]["feature"] for s in firing} == {"carrier"}  # origin: no unseen level

    def evaluated() -> bool:
        groups = requests.get(f"{scraped}/rules", timeout=10).json()["data"]["groups"]
        found = [r for g in groups for r in g["rules"] if r["name"] == RULE]
        return bool(found) and not found[0].get("lastEvaluation", "0001").startswith("0001")

    wait_for(evaluated, f"{RULE} evaluated once", 30)
    groups = requests.get(f"{scraped}/rules", timeout=10).json()["data"]["groups"]
    [state] = [r for g in groups for r in g["rules"] if r["name"] == RULE]
    assert state["health"] == "ok" and not state.get("lastError"), state
    assert state["state"] == "pending"  # for: 30m
