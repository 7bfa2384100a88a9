# The four regpipe images from one recipe. Build with the repository root as the context, the
# service as both the build argument and the target:
#   docker build --build-arg SERVICE=predict --target predict -t regpipe-predict .
# Dependencies first, exactly the service's share of uv.lock with every hash checked (that layer
# changes only when the lock does), then the source on top; the runtime stage copies only the
# pip-less virtualenv onto a clean slim Python and runs as a numeric non-root user.

FROM python:3.11.14-slim-bookworm AS builder
ARG SERVICE
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# uv only reads the lock here (`uv export`); pip installs. Same uv version as in uv.lock.
RUN test -n "$SERVICE" || { echo "build with --build-arg SERVICE=preprocess|train|predict|score" >&2; exit 1; } \
 && python -m venv /opt/build \
 && /opt/build/bin/pip install uv==0.13.9 \
 && python -m venv --without-pip /opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/
COPY services/preprocess/pyproject.toml services/preprocess/
COPY services/train/pyproject.toml services/train/
COPY services/predict/pyproject.toml services/predict/
COPY services/score/pyproject.toml services/score/
RUN /opt/build/bin/uv export --quiet --frozen --package "regpipe-$SERVICE" --no-dev \
      --no-emit-workspace --output-file /tmp/requirements.txt \
 && /opt/build/bin/pip --python /opt/venv/bin/python install --require-hashes --no-deps \
      -r /tmp/requirements.txt
COPY libs/common/ libs/common/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN /opt/build/bin/pip --python /opt/venv/bin/python install --no-deps ./libs/common \
      "./services/$SERVICE" \
 && "/opt/venv/bin/regpipe-$SERVICE" --version

FROM python:3.11.14-slim-bookworm AS runtime
# A fixed numeric UID/GID (Kubernetes runAsNonRoot can check it); HOME is /tmp so that the
# image runs with a read-only root filesystem and a writable /tmp only.
RUN groupadd --gid 10001 regpipe \
 && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin regpipe
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /tmp
# Last, so that a new commit only relabels: CI passes the tag's version and the commit. The
# RUN records them in the image too, and makes a layer cache keyed on instruction text (as
# buildah's is) see a new revision, which it would not for the LABEL alone.
ARG SERVICE
ARG VERSION=0.1.0
ARG REVISION=unknown
RUN printf 'regpipe-%s %s %s\n' "$SERVICE" "$VERSION" "$REVISION" > /etc/regpipe-build
USER 10001:10001
LABEL org.opencontainers.image.title="regpipe-${SERVICE}" \
      org.opencontainers.image.source="https://github.com/regpipe/regpipe" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"

FROM runtime AS preprocess
LABEL org.opencontainers.image.description="Validate, clean and split a large CSV/Parquet dataset with Dask into Parquet + a manifest"
ENTRYPOINT ["regpipe-preprocess"]

FROM runtime AS train
LABEL org.opencontainers.image.description="Train a Pipeline(StandardScaler, SGDRegressor) incrementally with Dask and publish a model bundle"
ENTRYPOINT ["regpipe-train"]

FROM runtime AS score
LABEL org.opencontainers.image.description="Score a whole prepared dataset with a verified model bundle, on Dask, into Parquet + a manifest"
ENTRYPOINT ["regpipe-score"]

FROM runtime AS predict
LABEL org.opencontainers.image.description="Serve a regpipe model bundle over HTTP (REST + Open Inference Protocol V2) with Prometheus metrics"
ENV PORT=8080 \
    HOST=0.0.0.0
EXPOSE 8080
ENTRYPOINT ["regpipe-predict"]
