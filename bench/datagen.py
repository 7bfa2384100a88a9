"""Synthetic regression data: 20 float features on very different scales, a linear target with
noise and about 2% missing cells, written as CSV in chunks (memory stays flat).

The true weights and intercept are saved beside the CSV as ``<name>.weights.json`` and the
matching dataset spec as ``<name>.spec.yaml``.

    python -m bench.datagen OUT.csv --rows 1000000 [--seed 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import yaml

N_FEATURES = 20
CHUNK_ROWS = 500_000
MISSING_FRACTION = 0.02
NOISE_SD = 1.0


def feature_names() -> list[str]:
    return [f"f{i:02d}" for i in range(N_FEATURES)]


def true_model(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per-feature location and scale (1e-3 .. 1e4) and the true weights / intercept."""
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-3, 4, N_FEATURES)
    locs = rng.normal(0, 3, N_FEATURES) * scales
    # Weights chosen so that every feature contributes on the standardized scale.
    weights = rng.normal(0, 1, N_FEATURES) / scales
    return locs, scales, weights, float(rng.normal(0, 5))


def spec_doc() -> dict:
    columns = [{"name": "id", "type": "int"}]
    columns += [{"name": f, "type": "float"} for f in feature_names()]
    columns.append({"name": "y", "type": "float"})
    return {
        "name": "synthetic",
        "columns": columns,
        "target": "y",
        "features": feature_names(),
        "key": "id",
    }


def generate_csv(path: str | Path, rows: int, seed: int = 0) -> Path:
    """Write ``rows`` rows to ``path``; return the path of the weights file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    locs, scales, weights, intercept = true_model(seed)
    rng = np.random.default_rng(seed + 1)
    names = ["id", *feature_names(), "y"]
    with pacsv.CSVWriter(
        str(path), pa.schema([(n, pa.int64() if n == "id" else pa.float64()) for n in names])
    ) as writer:
        for start in range(0, rows, CHUNK_ROWS):
            n = min(CHUNK_ROWS, rows - start)
            x = rng.normal(size=(n, N_FEATURES)) * scales + locs
            y = x @ weights + intercept + rng.normal(0, NOISE_SD, n)
            x = np.round(x, 6)
            y = np.round(y, 6)
            columns = [pa.array(np.arange(start, start + n, dtype=np.int64))]
            for j in range(N_FEATURES):
                missing = rng.random(n) < MISSING_FRACTION
                columns.append(pa.array(x[:, j], mask=missing))
            columns.append(pa.array(y, mask=rng.random(n) < MISSING_FRACTION))
            writer.write_table(pa.Table.from_arrays(columns, names=names))
    stem = path.name.split(".")[0]
    weights_path = path.with_name(stem + ".weights.json")
    weights_path.write_text(
        json.dumps(
            {
                "features": feature_names(),
                "weights": weights.tolist(),
                "intercept": intercept,
                "noise_sd": NOISE_SD,
            },
            indent=2,
        )
    )
    path.with_name(stem + ".spec.yaml").write_text(yaml.safe_dump(spec_doc(), sort_keys=False))
    return weights_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(generate_csv(args.out, args.rows, args.seed))


if __name__ == "__main__":
    main()
