# One image for both services (and the migrate step); docker-compose.yml picks the command.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# Exactly the pinned, hash-checked production set (make lock), then the project without resolving.
COPY requirements/prod.txt ./requirements/prod.txt
RUN pip install --require-hashes -r requirements/prod.txt
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY gateway ./gateway
COPY whoop_service ./whoop_service
COPY sandbox ./sandbox
RUN pip install --no-deps . && useradd --system --uid 10001 --home /app app && mkdir -p /app/var \
    && chown app /app/var
USER app
ENV ENVIRONMENT=production LOG_FORMAT=json
EXPOSE 8000 8001
# One worker per container: scale by replicas (in-process limiters multiply with workers).
CMD ["uvicorn", "--factory", "gateway.main:create_app", "--host", "0.0.0.0", "--port", "8000"]
