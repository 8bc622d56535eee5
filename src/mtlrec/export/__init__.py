"""The model artifact and its portable / compressed forms (``mtlrec export``).

* :mod:`~mtlrec.export.artifact`   versioned, checksummed bundle: its layout, verified loading
  (imports nothing of data preparation, training or the pipeline: the service's path)
* :mod:`~mtlrec.export.write`      writing a trained run's bundle atomically
  (:func:`mtlrec.core.atomic.staged_folder`: temp folder -> fsync -> rename)
* :mod:`~mtlrec.export.parts`      entities, task specs and interactions that rebuild a model
* :mod:`~mtlrec.export.checksums`  sha256 file table and its verification
* :mod:`~mtlrec.export.onnx`       ONNX export (dict inputs, dynamic batch) + onnxruntime parity
* :mod:`~mtlrec.export.quantize`   dynamic int8 quantization of ``nn.Linear``
* :mod:`~mtlrec.export.prune`      global L1 magnitude / L2 structured pruning
* :mod:`~mtlrec.export.measure`    serialised size and latency
* :mod:`~mtlrec.export.compression_report`  size / latency / every test metric before and after
* :mod:`~mtlrec.export.run`        ``export_run``: all of it for a run folder

Import from the modules themselves: this package imports none of them, so loading an
artifact does not pull in the writer's dependencies.
Heavy dependencies (safetensors, onnx, onnxruntime, onnxscript) are the ``export`` extra,
imported inside the functions that need them.
"""
