"""Build the regpipe-predict Grafana dashboard as code (grafana-foundation-sdk).

    .venv/bin/python charts/predict/dashboards/build.py   # rewrites regpipe-predict.json

The JSON beside this file is what the chart ships (ConfigMap labelled grafana_dashboard: "1");
tests/test_charts.py checks that it is up to date with this script, and
tests/test_observability.py runs every panel's query against a real Prometheus that scraped a
real regpipe-predict.

Every query selects one service with the ``$namespace`` and ``$job`` variables: the series a
Prometheus Operator ServiceMonitor produces (job = the Service name).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import (
    bargauge,
    dashboard,
    heatmap,
    prometheus,
    stat,
    timeseries,
)
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import prometheus as prometheus_models

OUTPUT = Path(__file__).with_name("regpipe-predict.json")
UID = "regpipe-predict"
DATASOURCE = dashboard_models.DataSourceRef(type_val="prometheus", uid="${datasource}")

SEL = 'namespace="$namespace", job="$job"'
# Probes and the scrape itself are not traffic.
TRAFFIC = f'{SEL}, url_rule!~"/healthz|/readyz|/metrics"'
RATE = "$__rate_interval"
HTTP = "flask_http_request_duration_seconds"


def query(
    expr: str, legend: str = "", ref: str = "A", *, instant: bool = False, fmt: str | None = None
) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    if instant:
        q = q.instant()
    if fmt == "heatmap":
        q = q.format(prometheus_models.PromQueryFormat.HEATMAP)
    return q


def ts(title: str, unit: str, description: str, *targets: prometheus.Dataquery) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common_models.LegendDisplayMode.LIST)
            .placement(common_models.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    for target in targets:
        panel = panel.with_target(target)
    return panel


def new_dashboard(
    title: str, uid: str, description: str, tags: list[str], refresh: str, since: str
) -> dashboard.Dashboard:
    """A regpipe dashboard: its identity, a time range up to now (browser time), and the
    Prometheus data source variable every query uses."""
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(tags)
        .refresh(refresh)
        .time(since, "now")
        .timezone("browser")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
    )


Layout = dict[str, list[tuple[Any, int, int]]]  # row title -> (panel, height, width in 24ths)


def laid_out(board: dashboard.Dashboard, rows: Layout) -> dashboard_models.Dashboard:
    """``board`` with its rows of panels, in order; built."""
    for title, panels in rows.items():
        board = board.with_row(dashboard.Row(title))
        for panel, height, span in panels:
            board = board.with_panel(panel.height(height).span(span))
    return board.build()


def to_json(board: dashboard_models.Dashboard) -> str:
    """The JSON the chart ships (stable: sorted keys)."""
    return json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def write(output: Path, board: dashboard_models.Dashboard) -> int:
    output.write_text(to_json(board))
    print(f"wrote {output}")
    return 0


def quantiles(metric: str, selector: str) -> list[prometheus.Dataquery]:
    return [
        query(
            f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{selector}}}[{RATE}])))",
            f"p{round(q * 100)}",
            ref,
        )
        for ref, q in (("A", 0.5), ("B", 0.95), ("C", 0.99))
    ]


def build() -> dashboard_models.Dashboard:
    request_rate = ts(
        "Request rate by route",
        "reqps",
        "HTTP requests per second, by Flask URL rule.",
        query(f"sum by (url_rule) (rate({HTTP}_count{{{TRAFFIC}}}[{RATE}]))", "{{url_rule}}"),
    )
    error_rate = ts(
        "Error rate",
        "percentunit",
        "Fraction of requests answered 5xx (server errors) and 4xx (refused input).",
        query(
            f'(sum(rate({HTTP}_count{{{TRAFFIC}, status=~"5.."}}[{RATE}]))'
            f" or sum(rate({HTTP}_count{{{TRAFFIC}}}[{RATE}])) * 0)"
            f" / sum(rate({HTTP}_count{{{TRAFFIC}}}[{RATE}]))",
            "5xx",
            "A",
        ),
        query(
            f'(sum(rate({HTTP}_count{{{TRAFFIC}, status=~"4.."}}[{RATE}]))'
            f" or sum(rate({HTTP}_count{{{TRAFFIC}}}[{RATE}])) * 0)"
            f" / sum(rate({HTTP}_count{{{TRAFFIC}}}[{RATE}]))",
            "4xx",
            "B",
        ),
    )
    refusals = ts(
        "Refused predictions by reason",
        "reqps",
        "regpipe_prediction_errors_total: requests refused before the model ran, by reason.",
        query(
            f"sum by (reason) (rate(regpipe_prediction_errors_total{{{SEL}}}[{RATE}]))",
            "{{reason}}",
        ),
    )
    latency = ts(
        "Latency p50 / p95 / p99",
        "s",
        "Request duration quantiles over all traffic routes (probes and /metrics excluded).",
        *quantiles("flask_http_request_duration_seconds", TRAFFIC),
    )
    rows = ts(
        "Rows predicted",
        "short",
        "Rows predicted per second and prediction requests per second, by protocol (rest, v2).",
        query(
            f"sum by (protocol) (rate(regpipe_rows_predicted_total{{{SEL}}}[{RATE}]))",
            "rows/s {{protocol}}",
            "A",
        ),
        query(
            f"sum by (protocol) (rate(regpipe_predictions_total{{{SEL}}}[{RATE}]))",
            "requests/s {{protocol}}",
            "B",
        ),
    )
    compute = ts(
        "Model compute time p50 / p95 / p99",
        "s",
        "regpipe_model_compute_seconds: model time per request, validated matrix in, "
        "predictions out (parsing and validation excluded).",
        *quantiles("regpipe_model_compute_seconds", SEL),
    )
    version = (
        stat.Panel()
        .title("Model version")
        .description("The model name and version the workers serve (regpipe_model_info == 1).")
        .datasource(DATASOURCE)
        .with_target(
            query(
                f"max by (name, version) (regpipe_model_info{{{SEL}}}) == 1",
                "{{name}} {{version}}",
                instant=True,
            )
        )
        .text_mode(common_models.BigValueTextMode.NAME)
        .color_mode(common_models.BigValueColorMode.NONE)
        .graph_mode(common_models.BigValueGraphMode.NONE)
    )
    values = (
        heatmap.Panel()
        .title("Predicted value distribution")
        .description(
            "regpipe_predicted_value: predictions per bucket (buckets at the training "
            "target's mean ± 0.25..4 standard deviations)."
        )
        .datasource(DATASOURCE)
        .with_target(
            query(
                f"sum by (le) (increase(regpipe_predicted_value_bucket{{{SEL}}}[{RATE}]))",
                "{{le}}",
                fmt="heatmap",
            )
        )
    )
    drift = (
        bargauge.Panel()
        .title("Feature drift (training standard deviations)")
        .description(
            "regpipe_feature_drift: (mean of the recent inputs − training mean) / "
            "training standard deviation, per feature. The FeatureDrift alert fires "
            "above ±3."
        )
        .datasource(DATASOURCE)
        .unit("short")
        .min(-5)
        .max(5)
        .with_target(
            query(f"max by (feature) (regpipe_feature_drift{{{SEL}}})", "{{feature}}", instant=True)
        )
        .thresholds(
            dashboard.ThresholdsConfig()
            .mode(dashboard_models.ThresholdsMode.ABSOLUTE)
            .steps(
                [
                    dashboard_models.Threshold(value=None, color="red"),
                    dashboard_models.Threshold(value=-3, color="green"),
                    dashboard_models.Threshold(value=3, color="red"),
                ]
            )
        )
    )
    unseen_share = ts(
        "Unseen category levels: recent vs training share",
        "percentunit",
        "regpipe_unknown_category_share: share of the recent input rows whose level of a "
        "category feature is not one the model kept (unseen or infrequent, encoded as all "
        "zeros), beside regpipe_unknown_category_training_share (the training rows' "
        "infrequent share). The CategoryDrift alert fires when recent exceeds training by "
        "more than 0.1. Empty for a model without category features.",
        query(f"max by (feature) (regpipe_unknown_category_share{{{SEL}}})", "{{feature}} recent"),
        query(
            f"max by (feature) (regpipe_unknown_category_training_share{{{SEL}}})",
            "{{feature}} training",
            "B",
        ),
    )
    unseen_rate = ts(
        "Unseen category values per second",
        "short",
        "regpipe_unknown_category_total: category values outside the kept levels, per feature.",
        query(
            f"sum by (feature) (rate(regpipe_unknown_category_total{{{SEL}}}[{RATE}]))",
            "{{feature}}",
        ),
    )

    description = (
        "HTTP traffic, latency, model work, model version, predicted values and "
        "input drift of one regpipe-predict service."
    )
    tags = ["regpipe", "ml", "prometheus"]
    board = (
        new_dashboard("regpipe predict", UID, description, tags, "30s", "now-1h")
        .with_variable(
            dashboard.QueryVariable("namespace")
            .label("Namespace")
            .datasource(DATASOURCE)
            .query("label_values(regpipe_model_info, namespace)")
            .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        )
        .with_variable(
            dashboard.QueryVariable("job")
            .label("Service")
            .datasource(DATASOURCE)
            .query('label_values(regpipe_model_info{namespace="$namespace"}, job)')
            .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        )
    )
    layout = {
        "Traffic": [
            (request_rate, 8, 8),
            (error_rate, 8, 8),
            (refusals, 8, 8),
            (latency, 8, 12),
            (rows, 8, 12),
        ],
        "Model": [
            (version, 6, 6),
            (compute, 6, 18),
            (values, 9, 12),
            (drift, 9, 12),
            (unseen_share, 8, 12),
            (unseen_rate, 8, 12),
        ],
    }
    return laid_out(board, layout)


def render() -> str:
    return to_json(build())


if __name__ == "__main__":
    sys.exit(write(OUTPUT, build()))
