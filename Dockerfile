# The yfdocs image: one image for every role (migrate, worker, beat, flower, sandbox, CLI).
# Dependencies come only from the hash-locked requirements.lock, so a build cannot pull a
# release nobody reviewed; the project itself is installed on top without resolving again.
#
#   docker build -t yfdocs:latest .                                      # python:3.11-slim
#   docker build -t yfdocs:latest --build-arg BASE_IMAGE=yfdocs-base:bookworm .   # bare Debian
#
# A base image without Python (bare Debian 12) gets Debian's python3 (3.11.2), which the
# lock file supports. Everything is installed into /opt/yfdocs (a virtual environment) in a
# build stage; the final image copies only that, so build-time tools and certificates never
# reach it.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS python-base
RUN if ! command -v python3 >/dev/null 2>&1; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 \
        && rm -rf /var/lib/apt/lists/*; \
    fi

FROM python-base AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CONFIG_FILE=/tmp/build-ca/pip.conf
RUN if ! python3 -c "import ensurepip" >/dev/null 2>&1; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/yfdocs
# Extra CA certificates for this stage's downloads only, on a network that inspects TLS
# (scripts/docker/build-images.sh copies the host's there; the folder is empty otherwise).
# pip then trusts its own bundle plus these.
COPY docker/build-ca/ /tmp/build-ca/
RUN set -eu; : > /tmp/build-ca/pip.conf; \
    if ls /tmp/build-ca/*.crt >/dev/null 2>&1; then \
        bundle=/tmp/build-ca/bundle.pem; \
        cat "$(/opt/yfdocs/bin/python -c 'import pip._vendor.certifi as c; print(c.where())')" \
            /tmp/build-ca/*.crt > "$bundle"; \
        printf '[global]\ncert = %s\n' "$bundle" > /tmp/build-ca/pip.conf; \
    fi

WORKDIR /tmp/yfdocs-src
# Dependencies first: this layer is reused until the lock file changes.
COPY requirements.lock ./
RUN /opt/yfdocs/bin/pip install --require-hashes -r requirements.lock

COPY pyproject.toml README.md ./
COPY api_client/ api_client/
COPY config/ config/
COPY intake/ intake/
COPY messaging/ messaging/
COPY models/ models/
COPY monitoring/ monitoring/
COPY sandbox/ sandbox/
COPY scheduling/ scheduling/
COPY worker/ worker/
COPY yfdocs/ yfdocs/
RUN /opt/yfdocs/bin/pip install --no-deps . \
    && /opt/yfdocs/bin/pip uninstall --yes pip \
    && rm -rf build *.egg-info

FROM python-base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/yfdocs/bin:$PATH \
    YFDOCS_DATA_DIR=/var/lib/yfdocs

COPY --from=build /opt/yfdocs /opt/yfdocs
COPY docker/yfdocs-entrypoint.sh /usr/local/bin/yfdocs-entrypoint

# A fixed uid, so that the shared data volume has one owner on every host. The data dir is
# created here with that owner: Docker copies it into a new named volume, owner included.
RUN groupadd --system --gid 10001 yfdocs \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/yfdocs \
        --shell /usr/sbin/nologin yfdocs \
    && mkdir -p /var/lib/yfdocs \
    && chown yfdocs:yfdocs /var/lib/yfdocs \
    && chmod 0755 /usr/local/bin/yfdocs-entrypoint
USER 10001:10001
# No .env is read from here (settings read one from the working directory).
WORKDIR /opt/yfdocs

# Flower (`yfdocs flower --address 0.0.0.0`), the sandbox (`python -m sandbox --host 0.0.0.0`)
# and the metrics (`yfdocs metrics --address 0.0.0.0`, which then needs YFDOCS_METRICS_TOKEN).
EXPOSE 5555 8765 9808

ENTRYPOINT ["yfdocs-entrypoint"]
CMD ["yfdocs", "--help"]
