# The ParkTrace node image: `parktrace node run --config …` is its usual command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ledger ledger
COPY nodes nodes
COPY api api
COPY web web
RUN pip install --no-cache-dir .
ENTRYPOINT ["parktrace"]
CMD ["--help"]
