"""mtlrec: multi-task learning for recommender systems around pretrained language models."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mtlrec")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
