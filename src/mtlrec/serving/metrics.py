"""Prometheus metrics of the service, in a registry of its own (one per app).

- ``mtlrec_http_requests_total{method, route, status}``      every answered request
- ``mtlrec_http_request_duration_seconds{method, route}``    latency histogram
- ``mtlrec_http_request_errors_total{route, kind}``          ``client`` (4xx), ``server`` (5xx)
- ``mtlrec_http_requests_in_flight``                         requests being handled
- ``mtlrec_recommendations_total{strategy}``                 lists by strategy (fused, model,
  cold_history, popularity)
- ``mtlrec_model_info{name, version, format_version, mtlrec_version}``   the served model (1)
- ``mtlrec_model_loaded_timestamp_seconds``                  when it was loaded
- ``mtlrec_model_reloads_total{result}``                     reloads, ``ok`` or ``failed``

``route`` is the route's template (``/v1/items/{item_id}/similar``), never the raw path,
so ids neither leak into metrics nor blow up their cardinality.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from mtlrec.serving.engine import ServingModel

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    """The service's collectors, registered in :attr:`registry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "mtlrec_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "mtlrec_http_request_duration_seconds",
            "Time to answer a request",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "mtlrec_http_request_errors",
            "Requests answered with an error status",
            ["route", "kind"],
            registry=r,
        )
        self.in_flight = Gauge(
            "mtlrec_http_requests_in_flight", "Requests being handled", registry=r
        )
        self.recommendations = Counter(
            "mtlrec_recommendations",
            "Recommendation lists by strategy",
            ["strategy"],
            registry=r,
        )
        self.model = Info("mtlrec_model", "The served model artifact", registry=r)
        self.loaded_at = Gauge(
            "mtlrec_model_loaded_timestamp_seconds",
            "When the served model was loaded",
            registry=r,
        )
        self.reloads = Counter(
            "mtlrec_model_reloads", "Artifact reloads by result", ["result"], registry=r
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        if status >= 400:
            self.errors.labels(route, "server" if status >= 500 else "client").inc()

    def set_model(self, model: ServingModel) -> None:
        """Record the model now served."""
        manifest = model.artifact.manifest
        self.model.info(
            {
                "name": model.name,
                "version": model.version,
                "format_version": str(manifest.get("format_version")),
                "mtlrec_version": str(manifest.get("mtlrec_version")),
            }
        )
        self.loaded_at.set(model.loaded_at)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
