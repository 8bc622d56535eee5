"""The HTTP service of ``mtlrec serve ARTIFACT`` (the ``serve`` extra: FastAPI, uvicorn,
prometheus-client). FastAPI is imported only by ``mtlrec.serving.app`` and what it uses.

* :mod:`~mtlrec.serving.app`         ``create_app(settings)``: routes, errors, middleware, /ui
* :mod:`~mtlrec.serving.routes`      ``/v1/recommend``, ``/v1/score``, similar items, users,
  reload, ``/healthz``, ``/readyz``, ``/metrics``
* :mod:`~mtlrec.serving.engine`      ``ServingModel``: fused cascade / heads / cold start /
  popularity over one artifact
* :mod:`~mtlrec.serving.catalogue`   what is precomputed at load time
* :mod:`~mtlrec.serving.heads`       per-task predictions for known and unknown users
* :mod:`~mtlrec.serving.filters`     request filters -> excluded items
* :mod:`~mtlrec.serving.reasons`     short reasons per recommended item
* :mod:`~mtlrec.serving.holder`      ``ModelHolder``: atomic swap on hot reload
* :mod:`~mtlrec.serving.auth`        API keys: sha256 hashes, scopes, constant-time lookup
* :mod:`~mtlrec.serving.metrics`     Prometheus collectors
* :mod:`~mtlrec.serving.middleware`  body limit, metrics, access log with masked user ids
* :mod:`~mtlrec.serving.schemas`     request / response models
* :mod:`~mtlrec.serving.settings`    ``ServeSettings``
"""

from mtlrec.serving.settings import ServeSettings

__all__ = ["ServeSettings"]
