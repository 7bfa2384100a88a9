"""Build the "regpipe pipeline" Grafana dashboard as code (grafana-foundation-sdk).

    .venv/bin/python charts/predict/dashboards/pipeline.py   # rewrites regpipe-pipeline.json

It watches the batch jobs through the run metrics they push to a Pushgateway
(``regpipe_common.pushgateway``: ``regpipe_job_*``, ``job`` = the pushing job, kept by a scrape
with ``honor_labels``). The chart ships the JSON in the same ConfigMap as the predict dashboard;
tests/test_pipeline_metrics.py checks that it is up to date and runs every panel's query on a
real Prometheus that scraped a real Pushgateway after the real jobs ran.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from build import DATASOURCE, query, ts
from grafana_foundation_sdk.builders import dashboard, stat
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models

OUTPUT = Path(__file__).with_name("regpipe-pipeline.json")
UID = "regpipe-pipeline"
JOBS = 'job=~"regpipe-preprocess|regpipe-train"'
PRE = 'job="regpipe-preprocess"'
TRAIN = 'job="regpipe-train"'


def status(title: str, unit: str, description: str, expr: str) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .with_target(query(expr, "{{job}}", instant=True))
        .graph_mode(common_models.BigValueGraphMode.NONE)
    )


def build() -> dashboard_models.Dashboard:
    succeeded = status(
        "Last run succeeded",
        "bool_yes_no",
        "regpipe_job_succeeded: 1 if the last run succeeded (the JobFailed alert fires on 0).",
        f"max by (job) (regpipe_job_succeeded{{{JOBS}}})",
    )
    since = status(
        "Since the last successful run",
        "s",
        "Seconds since each job's last successful run ended.",
        f"time() - max by (job) (regpipe_job_last_success_timestamp_seconds{{{JOBS}}})",
    )
    duration = ts(
        "Run duration",
        "s",
        "regpipe_job_duration_seconds of each job's last run.",
        query(f"max by (job) (regpipe_job_duration_seconds{{{JOBS}}})", "{{job}}"),
    )
    speed = ts(
        "Rows per second",
        "short",
        "Preprocess: rows read per second; train: train rows × epochs per second.",
        query(f"max by (job) (regpipe_job_rows_per_second{{{JOBS}}})", "{{job}}"),
    )
    rows = ts(
        "Preprocess rows",
        "short",
        "Rows read, rejected as malformed, dropped for missing values, and the two splits.",
        *(
            query(f"max(regpipe_job_rows_{name}{{{PRE}}})", name, ref)
            for ref, name in zip(
                "ABCDE", ("read", "rejected", "dropped", "train", "test"), strict=True
            )
        ),
    )
    rejected = ts(
        "Rejected share",
        "percentunit",
        "Rows rejected / rows read of the last preprocess run (the RejectedShareHigh alert).",
        query(
            f"max(regpipe_job_rows_rejected{{{PRE}}}) / max(regpipe_job_rows_read{{{PRE}}})",
            "rejected",
        ),
    )
    quality = ts(
        "Test R² and gap to the optimum",
        "short",
        "R² of the newest model on the test split, and how far below the exact least-squares "
        "optimum it is (the R2Dropped alert compares runs).",
        query(f"max(regpipe_job_test_r2{{{TRAIN}}})", "test R²", "A"),
        query(f"max(regpipe_job_r2_gap_to_optimum{{{TRAIN}}})", "gap to optimum", "B"),
    )
    training = ts(
        "Epochs and promotion",
        "short",
        "Epochs the last training run made, and whether its model became LATEST.",
        query(f"max(regpipe_job_epochs{{{TRAIN}}})", "epochs", "A"),
        query(f"max(regpipe_job_promoted{{{TRAIN}}})", "promoted", "B"),
    )
    return (
        dashboard.Dashboard("regpipe pipeline")
        .uid(UID)
        .description(
            "The batch jobs (preprocess, train): last status, durations, rows, rejected share, "
            "model quality, from the run metrics they push to a Pushgateway."
        )
        .tags(["regpipe", "ml", "prometheus", "pipeline"])
        .refresh("1m")
        .time("now-7d", "now")
        .timezone("browser")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_row(dashboard.Row("Runs"))
        .with_panel(succeeded.height(5).span(12))
        .with_panel(since.height(5).span(12))
        .with_panel(duration.height(8).span(12))
        .with_panel(speed.height(8).span(12))
        .with_row(dashboard.Row("Data"))
        .with_panel(rows.height(8).span(16))
        .with_panel(rejected.height(8).span(8))
        .with_row(dashboard.Row("Model"))
        .with_panel(quality.height(8).span(12))
        .with_panel(training.height(8).span(12))
        .build()
    )


def render() -> str:
    return json.dumps(build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
