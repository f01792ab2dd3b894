# The yfdocs image: one image for every role (migrate, worker, beat, flower, CLI).
# Dependencies come only from the hash-locked requirements.lock, so a build cannot pull a
# release nobody reviewed; the project itself is installed on top without resolving again.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    YFDOCS_DATA_DIR=/var/lib/yfdocs

WORKDIR /app

# Dependencies first: this layer is reused until the lock file changes.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

COPY pyproject.toml README.md ./
COPY api_client/ api_client/
COPY models/ models/
COPY worker/ worker/
COPY sandbox/ sandbox/
COPY intake/ intake/
RUN pip install --no-deps . \
    && rm -rf build *.egg-info

# A fixed uid, so that the shared data volume has one owner on every host. The data dir is
# created here with that owner: Docker copies it into a new named volume, owner included.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/yfdocs \
        --shell /usr/sbin/nologin yfdocs \
    && mkdir -p /var/lib/yfdocs \
    && chown yfdocs:yfdocs /var/lib/yfdocs
USER 10001:10001

# Flower (only when run as `yfdocs flower --address 0.0.0.0`).
EXPOSE 5555

CMD ["yfdocs", "--help"]
