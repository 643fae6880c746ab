# scimward: a governed SCIM 2.0 identity-lifecycle hub. docs/docker.md tells how to run it.
#
#   docker build -t scimward .
#   docker compose up            # the hub, a worker and PostgreSQL (compose.yaml)

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim
LABEL org.opencontainers.image.title="scimward" \
      org.opencontainers.image.description="A governed SCIM 2.0 identity-lifecycle hub" \
      org.opencontainers.image.licenses="Apache-2.0"
# Not root: the process owns nothing but its data directory (the key file of target credentials).
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/scimward --create-home scimward
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER scimward
WORKDIR /var/lib/scimward
ENV SCIMWARD_DATA_DIR=/var/lib/scimward \
    SCIMWARD_HOST=0.0.0.0 \
    SCIMWARD_PORT=8000 \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/scimward"]
EXPOSE 8000
# Readiness touches the database; liveness (/healthz) does not (docs/configuration.md).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
ENTRYPOINT ["scimward"]
CMD ["serve"]
