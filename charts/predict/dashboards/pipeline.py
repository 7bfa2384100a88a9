"""Build the "regpipe pipeline" Grafana dashboard as code (grafana-foundation-sdk).

    .venv/bin/python charts/predict/dashboards/pipeline.py   # rewrites regpipe-pipeline.json

It watches the batch jobs through the run metrics they push to a Pushgateway
(``regpipe_common.pushgateway``: ``regpipe_job_*``, ``job`` = the pushing job, kept by a scrape
with ``honor_labels``). The chart ships the JSON in the same ConfigMap as the predict dashboard;
tests/test_pipeline_metrics.py checks that it is up to date and runs every panel's query on a
real Prometheus that scraped a real Pushgateway after the real jobs ran.
"""

from __future__ import annotations

import sys
from pathlib import Path

from build import DATASOURCE, laid_out, new_dashboard, query, to_json, ts, write
from grafana_foundation_sdk.builders import stat
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
    description = (
        "The batch jobs (preprocess, train): last status, durations, rows, rejected share, "
        "model quality, from the run metrics they push to a Pushgateway."
    )
    tags = ["regpipe", "ml", "prometheus", "pipeline"]
    board = new_dashboard("regpipe pipeline", UID, description, tags, "1m", "now-7d")
    return laid_out(
        board,
        {
            "Runs": [(succeeded, 5, 12), (since, 5, 12), (duration, 8, 12), (speed, 8, 12)],
            "Data": [(rows, 8, 16), (rejected, 8, 8)],
            "Model": [(quality, 8, 12), (training, 8, 12)],
        },
    )


def render() -> str:
    return to_json(build())


if __name__ == "__main__":
    sys.exit(write(OUTPUT, build()))
