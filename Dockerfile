# scimward: a governed SCIM 2.0 identity-lifecycle hub. docs/docker.md tells how to run it.
#
#   docker build -t scimward .
#   docker compose up            # the hub, a worker and PostgreSQL (compose.yaml)

# The Python base image; a mirror or a pinned digest of it can be given with --build-arg PYTHON_IMAGE=...
ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS build
# pip's index, if not PyPI (a mirror): --build-arg PIP_INDEX_URL=https://... (pip reads it from the environment)
ARG PIP_INDEX_URL
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="scimward" \
      org.opencontainers.image.description="A governed SCIM 2.0 identity-lifecycle hub" \
      org.opencontainers.image.licenses="Apache-2.0"
# Not root: the process owns nothing but its data directory (the key file of target credentials).
RUN groupadd --system --gid 10001 scimward \
 && useradd --system --uid 10001 --gid scimward --home-dir /var/lib/scimward --no-log-init scimward \
 && install -d -o scimward -g scimward -m 0700 /var/lib/scimward
COPY --from=build /wheels /wheels
ARG PIP_INDEX_URL
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER scimward
WORKDIR /var/lib/scimward
ENV SCIMWARD_DATA_DIR=/var/lib/scimward \
    SCIMWARD_HOST=0.0.0.0 \
    SCIMWARD_PORT=8000 \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/scimward"]
EXPOSE 8000
# Readiness touches the database; liveness (/healthz) does not (docs/configuration.md). It asks the
# port serve listens on, SCIMWARD_PORT; a container running `worker` serves no HTTP: turn it off there.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('SCIMWARD_PORT', '8000'), timeout=2)"]
ENTRYPOINT ["scimward"]
CMD ["serve"]
