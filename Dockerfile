# Touchstream's Python services (registry, collector, serving) for docker-compose.yml.
# The broker is the official apache/kafka image, so this image needs no Java or Maven.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TOUCHSTREAM_HOME=/data \
    TOUCHSTREAM_HOST=0.0.0.0

WORKDIR /app
# Only what `pip install .` needs (see pyproject package-dir): no .venv, no local data.
COPY pyproject.toml README.md ./
COPY touchstream ./touchstream
COPY events ./events
COPY processors ./processors
COPY projections ./projections
COPY schemas ./schemas
RUN pip install . && mkdir -p /data

VOLUME ["/data"]
EXPOSE 8081 8080 8000
# Each compose service runs one part in the foreground, e.g. `up --only registry --foreground`.
ENTRYPOINT ["touchstream"]
CMD ["--help"]
