"""Write the part the charts' values.schema.json share from one place, or check it (--check).

Helm validates each chart's values against that chart's own values.schema.json only, so every
chart keeps a whole schema; the properties listed here are copied into them:
``all.json`` into every chart, ``batch.json`` into the batch jobs.
The chart's own properties follow, in their order. Run from anywhere:

    .venv/bin/python charts/common/schema/sync.py [--check]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHARTS = HERE.parents[1]
PARTS = {
    "preprocess": ["all", "batch"],
    "train": ["all", "batch"],
    "score": ["all", "batch"],
    "predict": ["all"],
}


def shared(part: str) -> dict:
    return json.loads((HERE / f"{part}.json").read_text())["properties"]


def synced(chart: str) -> str:
    """The chart's schema text with the shared properties replaced by the current ones."""
    schema = json.loads((CHARTS / chart / "values.schema.json").read_text())
    properties: dict = {}
    for part in PARTS[chart]:
        properties.update(shared(part))
    own = {k: v for k, v in schema["properties"].items() if k not in properties}
    schema["properties"] = {**properties, **own}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for chart in PARTS:
        path = CHARTS / chart / "values.schema.json"
        text = synced(chart)
        if path.read_text() != text:
            stale.append(str(path.relative_to(CHARTS.parent)))
            if "--check" not in argv:
                path.write_text(text)
    if stale and "--check" in argv:
        print(f"not in sync with charts/common/schema: {', '.join(stale)}", file=sys.stderr)
        print("run: .venv/bin/python charts/common/schema/sync.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
