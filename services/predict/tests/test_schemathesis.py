"""schemathesis against the app's own OpenAPI: no server errors, no schema violations."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from predict_helpers import NAME, publish
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from regpipe_predict.app import create_app
from regpipe_predict.settings import Settings

_models = Path(tempfile.mkdtemp(prefix="regpipe-st-"))
publish(_models)
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
app = create_app(Settings(model_uri=str(_models / NAME), model_poll_interval=0, max_rows=50))
# Too many rows is a 413 (the issue asks for it): a rejection like 400/422, so accept it there.
config = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
            }
        }
    }
)
schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api(case: schemathesis.Case) -> None:
    excluded = []
    if case.operation.path.endswith("/infer"):
        # OpenAPI cannot say "len(data) == prod(shape) and shape[1] == n_features", so a
        # schema-valid infer request may rightly be refused; every other check still runs.
        excluded.append(positive_data_acceptance)
    case.call_and_validate(excluded_checks=excluded)
