# One image for the ingress, the workers and Flower: docker-compose.yml picks each service's command.
# Your integration: copy its package next to examples/ below and set FRAMEIO_APP=package.module:app.

FROM python:3.11-slim AS build
WORKDIR /src
# constraints.txt: the versions CI tested, so the image runs what the tests ran.
COPY pyproject.toml README.md constraints.txt ./
COPY frameio_kit/ frameio_kit/
COPY shared/ shared/
COPY ingress/ ingress/
COPY workers/ workers/
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt ".[flower,otel]"

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FRAMEIO_KIT_HOST=0.0.0.0 \
    FRAMEIO_KIT_PORT=8000 \
    FRAMEIO_KIT_WORKER_METRICS_PORT=9808 \
    FRAMEIO_APP=examples.review_bot:app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin frameio
WORKDIR /app
COPY --chown=frameio:frameio examples/ examples/
USER frameio
EXPOSE 8000 9808 5555
# Checks the ingress by default; compose overrides it for the worker and Flower services.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["frameio-kit", "healthcheck", "ingress"]
CMD ["frameio-kit", "ingress"]
