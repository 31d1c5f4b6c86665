# Two stages: build a virtual environment with the project, then copy it into a slim
# image that runs as an unprivileged user. Settings come from GATEWAY_* variables.
FROM python:3.11-slim AS build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shop_core shop_core
COPY legacy_flask legacy_flask
COPY v2_fastapi v2_fastapi
COPY gateway gateway
COPY shop shop
COPY loadtests loadtests
RUN pip install --no-cache-dir '.[shop]'

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 gateway && mkdir /data && chown gateway /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GATEWAY_ENV=production \
    GATEWAY_DATABASE_URL=sqlite:////data/gateway.db \
    GATEWAY_SEED_ON_START=false
USER gateway
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"]
# `gateway serve` serves the shop: it applies the migrations, then runs uvicorn.
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
