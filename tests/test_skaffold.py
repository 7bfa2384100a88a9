"""skaffold.yaml against the official skaffold/v4beta14 JSON schema, and against the charts.

There is no Skaffold binary here: the schema (from the Skaffold repository) checks the file's
shape; these tests check what the schema cannot: every artifact is built from a Dockerfile that
exists, every artifact's image is the one its chart's values name, every Helm release points at
a chart that exists and injects its artifact's image through setValueTemplates, sync rules point
at sources that exist, and every profile's patches apply to the document.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from values import merge_values

ROOT = Path(__file__).resolve().parents[1]
# Vendored beside the tests (Apache-2.0, unmodified; see tests/schemas/README.md).
SCHEMA_CANDIDATES = [
    ROOT / "tests" / "schemas" / "skaffold-v4beta14.json",
    ROOT.parent / "shared" / "schemas" / "skaffold-v4beta14.json",
]


def load() -> dict:
    return yaml.safe_load((ROOT / "skaffold.yaml").read_text())


def schema() -> dict:
    for path in SCHEMA_CANDIDATES:
        if path.exists():
            return json.loads(path.read_text())
    pytest.fail(f"the skaffold v4beta14 JSON schema is missing: looked in {SCHEMA_CANDIDATES}")


def template_key(image: str) -> str:
    """How skaffold names an image in setValueTemplates: non-alphanumerics become '_'."""
    return re.sub(r"[^A-Za-z0-9]", "_", image)


def json_patch(doc: dict, patches: list[dict]) -> dict:
    """RFC 6902 add/replace/remove, as skaffold applies profile patches."""
    doc = copy.deepcopy(doc)
    for p in patches:
        parts = [s.replace("~1", "/").replace("~0", "~") for s in p["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if p["op"] == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), p["value"])
            else:
                parent[last] = p["value"]
        elif p["op"] == "replace":
            parent[int(last) if isinstance(parent, list) else last] = p["value"]
        elif p["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise AssertionError(f"unsupported patch op {p['op']}")
    return doc


def with_profile(doc: dict, name: str) -> dict:
    [profile] = [p for p in doc["profiles"] if p["name"] == name]
    out = json_patch(doc, profile.get("patches", []))
    for key in ("build", "manifests", "deploy", "portForward"):
        if key in profile:
            if isinstance(profile[key], dict) and isinstance(out.get(key), dict):
                out[key] = {**out[key], **profile[key]}
            else:
                out[key] = profile[key]
    return out


def test_schema_valid() -> None:
    jsonschema.validate(load(), schema())


def test_schema_refuses_a_wrong_file() -> None:
    bad = load()
    bad["build"]["artifacts"][0]["dockerfile"] = "Dockerfile"  # not under docker:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema())


def test_api_version_and_profiles() -> None:
    doc = load()
    assert doc["apiVersion"] == "skaffold/v4beta14"
    assert {p["name"] for p in doc["profiles"]} == {"dev", "pipeline", "ci"}


def test_artifacts_match_dockerfiles_and_chart_values() -> None:
    doc = load()
    artifacts = {a["image"]: a for a in doc["build"]["artifacts"]}
    assert len(artifacts) == 4
    for service in ("preprocess", "train", "predict", "score"):
        values = yaml.safe_load((ROOT / "charts" / service / "values.yaml").read_text())
        image = f"{values['image']['registry']}/{values['image']['repository']}"
        assert image in artifacts, f"no artifact builds {image} (charts/{service}/values.yaml)"
        artifact = artifacts[image]
        assert artifact["context"] == "."
        # One Dockerfile, the service as target and build argument (issue 9 item 6).
        assert artifact["docker"]["dockerfile"] == "Dockerfile"
        assert artifact["docker"]["target"] == service
        assert artifact["docker"]["buildArgs"]["SERVICE"] == service
        assert (ROOT / artifact["docker"]["dockerfile"]).is_file()
        assert "sync" not in artifact or service == "predict", "only the server syncs sources"


def test_predict_file_sync_reaches_the_running_code() -> None:
    """Sources sync to /tmp/dev-src (writable under readOnlyRootFilesystem), which the dev
    profile puts first on PYTHONPATH; the after-hook completes the packages and HUPs gunicorn."""
    doc = load()
    [artifact] = [a for a in doc["build"]["artifacts"] if a["image"].endswith("regpipe-predict")]
    rules = artifact["sync"]["manual"]
    packages = set()
    for rule in rules:
        src_root = ROOT / rule["strip"]
        assert src_root.is_dir(), rule
        matched = list(ROOT.glob(rule["src"]))
        assert matched, f"sync rule matches nothing: {rule}"
        assert rule["dest"] == "/tmp/dev-src"
        packages.add(rule["src"][len(rule["strip"]) :].split("/")[0])
    assert packages == {"regpipe_predict", "regpipe_common"}
    [hook] = artifact["sync"]["hooks"]["after"]
    script = hook["container"]["command"][-1]
    for package in packages:
        assert package in script
    assert "/opt/venv/lib/python3.11/site-packages/" in script and "kill -HUP 1" in script
    dev = with_profile(doc, "dev")
    values = releases(dev)["regpipe-predict"]["setValues"]
    assert values["extraEnvVars[0].name"] == "PYTHONPATH"
    assert values["extraEnvVars[0].value"] == "/tmp/dev-src"
    # /tmp is the chart's writable emptyDir
    chart_values = yaml.safe_load((ROOT / "charts/predict/values.yaml").read_text())
    assert chart_values["containerSecurityContext"]["readOnlyRootFilesystem"] is True


def releases(doc: dict) -> dict[str, dict]:
    return {r["name"]: r for r in doc["manifests"]["helm"]["releases"]}


def check_release(release: dict, artifacts: set[str]) -> None:
    chart = ROOT / release["chartPath"]
    assert (chart / "Chart.yaml").is_file(), f"{release['name']}: no chart at {chart}"
    service = chart.name
    values = yaml.safe_load((chart / "values.yaml").read_text())
    image = f"{values['image']['registry']}/{values['image']['repository']}"
    assert image in artifacts
    key = template_key(image)
    assert release["setValueTemplates"] == {
        "image.registry": f"{{{{.IMAGE_DOMAIN_{key}}}}}",
        "image.repository": f"{{{{.IMAGE_REPO_NO_DOMAIN_{key}}}}}",
        "image.tag": f"{{{{.IMAGE_TAG_{key}}}}}@{{{{.IMAGE_DIGEST_{key}}}}}",
    }, f"{service}: the image is not injected the way the chart reads it"
    for path in release.get("setFiles", {}).values():
        assert (ROOT / path).is_file(), path


def test_every_release_points_at_a_chart_and_injects_its_image() -> None:
    doc = load()
    artifacts = {a["image"] for a in doc["build"]["artifacts"]}
    assert set(releases(doc)) == {"regpipe-predict"}
    for profile in ("dev", "pipeline", "ci"):
        patched = with_profile(doc, profile)
        for release in releases(patched).values():
            check_release(release, artifacts)
    assert set(releases(with_profile(doc, "pipeline"))) == {
        "regpipe-predict",
        "regpipe-preprocess",
        "regpipe-train",
        "regpipe-score",
    }


def test_profiles_still_match_the_schema() -> None:
    doc = load()
    for profile in ("dev", "pipeline", "ci"):
        jsonschema.validate(with_profile(doc, profile), schema())


def test_port_forward_reaches_the_predict_service() -> None:
    doc = load()
    [forward] = doc["portForward"]
    values = yaml.safe_load((ROOT / "charts/predict/values.yaml").read_text())
    assert forward["resourceType"] == "service"
    assert forward["resourceName"] == "regpipe-predict"  # the chart's fullname for this release
    assert forward["port"] == values["service"]["ports"]["http"]
    assert forward["address"] == "127.0.0.1"
    assert releases(doc)["regpipe-predict"]["namespace"] == forward["namespace"]


@pytest.mark.parametrize("profile", ["dev", "pipeline", "ci"])
def test_release_values_are_accepted_by_the_charts(profile: str) -> None:
    """Every release's setValues (parsed as Helm parses --set), setFiles and the injected image
    render with Helm, values.schema.json included."""
    helm_python = pytest.importorskip("helm_python")
    doc = with_profile(load(), profile)
    for release in releases(doc).values():
        values: dict = {}
        for k, v in release.get("setValues", {}).items():
            values = merge_values(values, helm_python.parse_set_string(f"{k}={v}"))
        for k, path in release.get("setFiles", {}).items():
            values = merge_values(values, helm_python.parse_set_file(f"{k}={ROOT / path}"))
        values = merge_values(
            values,
            {
                "image": {
                    "registry": "localhost:5000",
                    "repository": "dev/x",
                    "tag": "abc@sha256:" + "e" * 64,
                }
            },
        )
        chart = helm_python.Chart.load(ROOT / release["chartPath"])
        out = chart.render(values, name=release["name"], namespace=release["namespace"])
        assert any("localhost:5000/dev/x:abc@sha256:" in t for t in out.values())
        if profile == "dev" and release["name"] == "regpipe-predict":
            assert "PYTHONPATH" in out["predict/templates/deployment.yaml"]
