# The HTTP service: `mtlrec serve ARTIFACT` (docs/design.md, "Serving").
#
#   docker build -t mtlrec-serve .
#   mtlrec api-keys add keys/keys.json --name web --scope recommend   # prints the key once
#   docker run -p 8000:8000 -v "$PWD/runs/mi-serve-artifacts:/models:ro" \
#       -v "$PWD/keys:/etc/mtlrec/keys:ro" mtlrec-serve /models/amazon-mi-fused-<version>
#
# The artifact is mounted (or baked into a derived image), never downloaded at start; the
# key file holds sha256 hashes only. One uvicorn worker per container: scale with replicas.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OMP_NUM_THREADS=1 \
    MTLREC_API_KEYS_FILE=/etc/mtlrec/keys/keys.json

# libgomp: the OpenMP runtime LightGBM's wheel links against (FAISS and torch bring theirs)
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/mtlrec
# torch first, the CPU wheel pinned: a bare `torch` would pull a multi-GB CUDA build
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install '.[serve,export]' && rm -rf /opt/mtlrec/src /opt/mtlrec/build

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin mtlrec
USER 10001
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

# SIGTERM: uvicorn stops accepting, lets requests in flight finish (--graceful-timeout)
STOPSIGNAL SIGTERM
ENTRYPOINT ["mtlrec", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["/models/current"]
