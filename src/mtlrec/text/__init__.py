"""Text for the language model: templates render the tables, an encoder embeds the texts.

* :mod:`~mtlrec.text.templates` item / user-profile / review text from canonical tables
* :mod:`~mtlrec.text.encoder`   :class:`TextEncoder` over a local transformers folder
* :mod:`~mtlrec.text.pooling`   mean / CLS pooling of token states
* :mod:`~mtlrec.text.cache`     :class:`EmbeddingCache`, on-disk embeddings per model id
* :mod:`~mtlrec.text.finetune`  frozen / top-k layers / LoRA / full fine-tuning
"""

from mtlrec.text.cache import CacheStats, EmbeddingCache, text_key
from mtlrec.text.encoder import TextEncoder, default_model_path, folder_fingerprint
from mtlrec.text.finetune import FinetuneReport, configure_finetuning, transformer_layers
from mtlrec.text.pooling import POOLERS, cls_pool, mean_pool
from mtlrec.text.templates import (
    TextTemplates,
    item_text,
    item_texts,
    review_text,
    user_profile_texts,
)

__all__ = [
    "POOLERS",
    "CacheStats",
    "EmbeddingCache",
    "FinetuneReport",
    "TextEncoder",
    "TextTemplates",
    "cls_pool",
    "configure_finetuning",
    "default_model_path",
    "folder_fingerprint",
    "item_text",
    "item_texts",
    "mean_pool",
    "review_text",
    "text_key",
    "transformer_layers",
    "user_profile_texts",
]
