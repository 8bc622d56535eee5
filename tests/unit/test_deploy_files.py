"""The Dockerfile and the Kubernetes example agree with the service (no container engine
runs here, so this is what can be checked: the files parse and point at real routes)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mtlrec.serving.routes import metrics_router, router

ROOT = Path(__file__).resolve().parents[2]
ROUTES = {
    getattr(route, "path", None)
    for route in [*router.routes, *metrics_router(key_required=False).routes]
}
"""The service's routes, /metrics as the default settings have it (open: the example's
Prometheus annotations scrape it without a key)."""


def test_dockerfile_builds_the_service_as_documented() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "\nFROM python:3.11-slim\n" in text
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in text
    assert "pip install '.[serve,export]'" in text
    assert re.search(r"^USER 10001$", text, re.M)  # not root
    health = re.search(r"HEALTHCHECK .*?CMD (.*)$", text, re.S | re.M)
    assert health and "http://127.0.0.1:8000/healthz" in health.group(1)
    assert "/healthz" in ROUTES
    assert 'ENTRYPOINT ["mtlrec", "serve", "--host", "0.0.0.0", "--port", "8000"]' in text
    assert "MTLREC_API_KEYS_FILE=/etc/mtlrec/keys/keys.json" in text


def test_kubernetes_example_probes_scales_and_mounts_the_keys() -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy/k8s/mtlrec-serve.yaml").read_text()))
    kinds = {d["kind"]: d for d in documents}
    assert set(kinds) == {
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"/readyz", "/healthz", "/metrics"} <= ROUTES
    annotations = kinds["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert Path(env["MTLREC_API_KEYS_FILE"]).parent == Path(mounts["api-keys"])
    secret_volume = next(v for v in pod["volumes"] if v["name"] == "api-keys")
    assert secret_volume["secret"]["secretName"] == kinds["Secret"]["metadata"]["name"]
    assert "keys.json" in kinds["Secret"]["stringData"]
    assert pod["terminationGracePeriodSeconds"] > 30  # longer than --graceful-timeout=30
    assert "--graceful-timeout=30" in container["args"]
    assert container["resources"]["requests"]["cpu"]  # the HPA's utilisation needs requests
    hpa = kinds["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == kinds["Deployment"]["metadata"]["name"]
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Pods"]["pods"]["metric"]["name"] == "mtlrec_http_requests_per_second"
