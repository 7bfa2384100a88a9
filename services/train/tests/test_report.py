"""``report.html`` rendered by a real headless Chromium: it loads with no network request at
all, its numbers are the metadata's, and its charts are the PNGs written in the bundle."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from regpipe_train.report import CHARTS, main

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (scripts/install-system-deps.sh)"
)


class Counted:
    """Every request line a proxy received."""

    def __init__(self) -> None:
        self.requests: list[str] = []


@contextmanager
def counting_proxy() -> Iterator[tuple[int, Counted]]:
    """An HTTP proxy on 127.0.0.1 that records each request and answers 502."""
    seen = Counted()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    seen.requests.append(conn.recv(4096).split(b"\r\n", 1)[0].decode())
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], seen
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


# Chromium's own background traffic (component updater, network time, sign-in), which no flag
# turns off in --headless=new here; anything else the page asked for.
BROWSER_OWN_HOSTS = {
    "update.googleapis.com",
    "redirector.gvt1.com",
    "accounts.google.com",
    "clients2.google.com",
}


def host(request_line: str) -> str:
    """The host of a proxy request line (``CONNECT h:443`` or ``GET http://h/...``)."""
    target = request_line.split(" ")[1] if " " in request_line else request_line
    return target.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]


def page_requests(seen: Counted) -> list[str]:
    return [r for r in seen.requests if host(r) not in BROWSER_OWN_HOSTS]


def chromium(
    url: str, proxy_port: int, profile: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """Headless Chromium (a fresh profile) with every request, loopback included, proxied."""
    cmd = [
        str(CHROMIUM),
        "--headless=new",
        f"--user-data-dir={profile}",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-pings",
        f"--proxy-server=http://127.0.0.1:{proxy_port}",
        "--proxy-bypass-list=<-loopback>",
        "--window-size=1400,2200",
        "--virtual-time-budget=5000",
        *args,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


class Page(HTMLParser):
    """The ``data-key`` cells' text and every URL-bearing attribute of a DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.urls: list[str] = []
        self._key: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "action", "srcset")]
        self._key = a.get("data-key")

    def handle_data(self, data: str) -> None:
        if self._key:
            self.values[self._key] = self.values.get(self._key, "") + data

    def handle_endtag(self, tag: str) -> None:
        self._key = None


def expected(meta: dict[str, Any], key: str) -> Any:
    """The metadata value a ``data-key`` shows."""
    head, _, rest = key.partition(".")
    if head == "coef":
        coef = meta["coefficients"]
        if rest == "intercept":
            return coef["intercept"]
        return next(r["per_unit"] for r in coef["features"] if r["feature"] == rest)
    if head == "data":
        return meta["dataset_counts"][rest]
    value: Any = meta
    for part in key.split("."):
        value = value[part]
    return value


def as_number(text: str) -> float:
    return float(text.replace(",", ""))


@pytest.fixture(scope="module")
def two_versions(make_dataset, tmp_path_factory) -> Path:
    """A good version (LATEST), then a worse one that the gate did not promote."""
    from regpipe_train.cli import main as train_main

    data, models = make_dataset(20_000), tmp_path_factory.mktemp("report") / "models"
    base = ["--data", str(data), "--models", str(models), "--name", "m"]
    assert train_main([*base, "--epochs", "3"]) == 0
    assert train_main([*base, "--epochs", "1", "--eta0", "0.00001"]) == 3
    return models / "m"


def test_report_renders_offline_with_the_metadata_numbers(two_versions: Path, tmp_path: Path):
    version_dir = sorted(p for p in two_versions.iterdir() if p.name[:1].isdigit())[-1]
    meta = json.loads((version_dir / "metadata.json").read_text())
    page_url = (version_dir / "report.html").as_uri()
    shot = tmp_path / "report.png"
    with counting_proxy() as (port, seen):
        dom = chromium(page_url, port, tmp_path / "p1", "--dump-dom").stdout
        chromium(page_url, port, tmp_path / "p2", f"--screenshot={shot}")
        if os.environ.get("REPORT_SHOT"):  # keep a copy to look at
            shutil.copy(shot, os.environ["REPORT_SHOT"])
        assert page_requests(seen) == [], f"the report made requests: {seen.requests}"
        # The detector works: the same browser sends a page's external image to the proxy.
        control = tmp_path / "control.html"
        control.write_text('<img src="http://report-test.invalid/x.png">')
        chromium(control.as_uri(), port, tmp_path / "p3", "--dump-dom")
        assert [host(r) for r in page_requests(seen)] == ["report-test.invalid"], seen.requests
    page = Page()
    page.feed(dom)
    assert page.urls and all(u.startswith("data:image/png;base64,") for u in page.urls)
    # Every chart is embedded, byte for byte the PNG written beside the page.
    embedded = {base64.b64decode(u.split(",", 1)[1]) for u in page.urls}
    assert embedded == {(version_dir / name).read_bytes() for name in CHARTS}
    # The numbers on the page are the metadata's.
    assert page.values["name"] == "m" and page.values["version"] == meta["version"]
    assert page.values["promotion.promoted"] == "NOT promoted"
    numeric = {k: v for k, v in page.values.items() if k not in ("name", "version")}
    numeric.pop("promotion.promoted")
    required = {"metrics.r2", "metrics.rmse", "metrics.mae", "optimum.r2", "optimum.gap_r2"}
    required |= {"promotion.current_metrics.r2", "data.read", "data.train", "data.test"}
    required |= {"coef.intercept"} | {f"coef.{f}" for f in meta["features"]}
    assert required <= set(numeric)
    for key, text in numeric.items():
        value = expected(meta, key)
        assert as_number(text) == pytest.approx(value, rel=1e-3 if abs(value) < 1e-3 else 1e-5)
    assert as_number(numeric["data.test"]) == meta["metrics"]["rows"]
    # The coefficients in original units are the model's: they predict what it predicts.
    from regpipe_common.bundle import load_bundle

    coef = meta["coefficients"]
    rows = np.array([[meta["feature_stats"][f]["max"] for f in meta["features"]]])
    per_unit = {r["feature"]: r["per_unit"] for r in coef["features"]}
    linear = rows[0] @ [per_unit[f] for f in meta["features"]] + coef["intercept"]
    assert load_bundle(str(version_dir)).model.predict(rows)[0] == pytest.approx(linear)
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one


def test_summary_markdown_for_the_ci_job(two_versions: Path, capsys):
    assert main([str(two_versions)]) == 0
    out = capsys.readouterr().out
    newest = sorted(p.name for p in two_versions.iterdir() if p.name[:1].isdigit())[-1]
    meta = json.loads((two_versions / newest / "metadata.json").read_text())
    assert out.startswith(f"### model m {newest}\n")
    assert "**NOT promoted**" in out
    assert f"| r2 | {meta['metrics']['r2']:.6g} |" in out
    assert out.count('src="data:image/png;base64,') == len(CHARTS)
