# The ParkTrace node image: `parktrace node run --config …` is its usual command.
# Build context: see .dockerignore (no virtualenv, no var/, no keys get in).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ledger ledger
COPY traceability traceability
COPY nodes nodes
COPY api api
COPY cli cli
COPY sdk sdk
COPY devtools devtools
COPY web web
RUN pip install . && rm -rf /app/build

# An unprivileged user (docker-compose.yml runs the nodes as the owner of their bundle).
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin parktrace
USER 10001:10001
WORKDIR /node

# The node's API (docker-compose.yml's health check is the same command).
HEALTHCHECK --interval=5s --timeout=4s --start-period=20s --retries=5 \
    CMD ["parktrace", "node", "health", "--url", "http://127.0.0.1:8000"]
ENTRYPOINT ["parktrace"]
CMD ["--help"]
