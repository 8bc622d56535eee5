"""The sequential multi-task recommender: one item representation, a history encoder, a
retrieval task over the whole catalogue and auxiliary heads on the same encoder.

Item vector ``v(i)`` ``(dim,)``: the item's id embedding (train vocabulary; an unseen item
has none: row 0 stays zero) + its LM text embedding through a learned adaptor (parametric
whitening and a mixture-of-experts projection, as UniSRec) + its attribute embeddings.
A cold item is represented by text and attributes alone.

History encoder: the user's items in time order as tokens (``0`` padding, ``1`` the start
token, ``2 + item_row`` an item), left-padded to ``max_len``; ``causal`` is a SASRec-style
self-attention encoder (learned positions, causal mask: position ``t`` sees tokens ``<= t``),
``pooled`` the running mean of the item vectors. The state at position ``t`` predicts the
item at ``t + 1``: the model never sees an interaction at or after the one it predicts.

Tasks at each target position (the item ``i`` the state predicts):

- the retrieval task (``retrieval_task``): logits ``state . v(j) / temperature + b(j)``
  over every item ``j`` ``(P, N_items)`` (``b``: a learned per-item offset, 0 for unseen
  items); full-softmax cross-entropy by default (the task is ``multiclass`` with
  one class per item), so ranking is one matrix product;
- ``pair`` tasks (rating, like, ...): a head over ``[state ; v(i) ; state * v(i)]``;
- ``review`` tasks (sentiment): a head over ``[adaptor(review text embedding) ; v(i)]``:
  the task reads its own review (and nothing else reads it);
- ``item`` tasks (category, genres): a head over ``v(i)`` without the attribute being
  predicted (its columns are excluded from the item's inputs by the run).

``forward(features)`` reads ``history`` ``(B, L)`` tokens and ``target_item`` ``(B, L)``
item rows (``-1``: no target there) and, for review tasks, ``own_review`` ``(B, L, D)``;
every output is over the ``P`` target positions in row-major order.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtlrec.core.types import Predictions, TaskSpec
from mtlrec.models.heads import Head
from mtlrec.models.layers import FastDropout, use_fast_dropout
from mtlrec.models.multitask import TaskModel

TaskInput = Literal["pair", "review", "item"]
"""What an auxiliary task reads (see the module docstring)."""
PAD, START, OFFSET = 0, 1, 2
"""History tokens: padding, the start token, and ``OFFSET + item_row`` for an item."""


def history_tokens(item_rows: np.ndarray, max_len: int, with_start: bool = True) -> np.ndarray:
    """``(max_len,)`` int64 tokens of a history (oldest first): the last ``max_len`` of
    ``[START] + items``, left-padded."""
    tokens = np.r_[[START] if with_start else [], item_rows + OFFSET].astype(np.int64)
    tokens = tokens[-max_len:]
    out = np.zeros(max_len, dtype=np.int64)
    out[max_len - len(tokens) :] = tokens
    return out


class TextAdaptor(nn.Module):
    """Parametric whitening + mixture-of-experts projection: ``(..., D_text) -> (..., dim)``.

    Each expert ``e`` computes ``(x - b_e) W_e``; a softmax gate over ``x`` mixes them.
    """

    def __init__(self, text_dim: int, dim: int, n_experts: int = 4, dropout: float = 0.1):
        super().__init__()
        self.text_dim, self.dim, self.n_experts = text_dim, dim, n_experts
        self.bias = nn.Parameter(torch.zeros(n_experts, text_dim))
        self.weight = nn.Parameter(torch.empty(n_experts, text_dim, dim))
        nn.init.normal_(self.weight, std=text_dim**-0.5)
        self.gate = nn.Linear(text_dim, n_experts)
        self.dropout = FastDropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.dropout(x)
        centred = x.unsqueeze(-2) - self.bias  # (..., E, D_text)
        experts = torch.einsum("...ed,edh->...eh", centred, self.weight)  # (..., E, dim)
        gate = torch.softmax(self.gate(x), dim=-1).unsqueeze(-1)  # (..., E, 1)
        return (experts * gate).sum(dim=-2)


class ItemEncoder(nn.Module):
    """Every item's vector ``(N_items, dim)`` from its id, LM text and attributes.

    ``vocab_index`` ``(N_items,)``: the train id-vocabulary index of each item row (0 =
    unseen, a zero embedding); ``text`` ``(N_items, D_text)`` LM embeddings or None;
    ``attributes``: ``name -> (table, vocab size)``, tables ``(N_items,)`` or ``(N_items, L)``
    of codes (0 = padding / unknown).
    """

    vocab_index: Tensor
    text: Tensor
    content_sum: Tensor
    content_count: Tensor

    def __init__(
        self,
        vocab_index: Tensor,
        n_ids: int,
        dim: int,
        text: Tensor | None = None,
        attributes: Mapping[str, tuple[Tensor, int]] | None = None,
        n_experts: int = 4,
        dropout: float = 0.1,
        use_ids: bool = True,
        item_bias: bool = True,
        review_content: tuple[Tensor, Tensor] | None = None,
        norm: bool = True,
    ) -> None:
        super().__init__()
        self.register_buffer("vocab_index", vocab_index.long(), persistent=False)
        self.ids = nn.Embedding(n_ids, dim, padding_idx=0) if use_ids else None
        # a learned score offset per train item (popularity, in effect); unseen items: 0
        self.bias = nn.Embedding(n_ids, 1, padding_idx=0) if item_bias else None
        if self.bias is not None:
            nn.init.zeros_(self.bias.weight)
        if self.ids is not None:
            nn.init.normal_(self.ids.weight, std=0.02)
            with torch.no_grad():
                self.ids.weight[0].zero_()
        self.register_buffer(
            "text", text.float() if text is not None else torch.zeros(0), persistent=False
        )
        self.adaptor = (
            TextAdaptor(int(text.shape[1]), dim, n_experts, dropout) if text is not None else None
        )
        self.attribute_names = list(attributes or {})  # attribute k's table name, for explanations
        self.attributes = nn.ModuleDict()
        for k, (table, size) in enumerate((attributes or {}).values()):
            self.register_buffer(f"attr_{k}", table.long(), persistent=False)
            self.attributes[str(k)] = nn.Embedding(size + 1, dim, padding_idx=0)
        # what the training reviews say about each item: their LM embeddings' sum and count
        content_sum, content_count = review_content or (torch.zeros(0), torch.zeros(0))
        self.register_buffer("content_sum", content_sum.float(), persistent=False)
        self.register_buffer("content_count", content_count.float(), persistent=False)
        self.content_adaptor = (
            TextAdaptor(int(content_sum.shape[1]), dim, n_experts, dropout)
            if review_content is not None
            else None
        )
        # LayerNorm puts the parts on one scale but gives every item the same norm at any
        # scale (large random logits at the start); without it the vectors start small
        self.norm = nn.LayerNorm(dim) if norm else nn.Identity()

    def logit_bias(self) -> Tensor | float:
        """``(N_items,)`` each item's retrieval-score offset (0 without ``item_bias``)."""
        if self.bias is None:
            return 0.0
        bias: Tensor = self.bias(self.vocab_index).squeeze(-1)
        return bias

    def forward(self, rows: Tensor | None = None, leave_out: Tensor | None = None) -> Tensor:
        """``(N_items, dim)`` every item's vector, or ``(P, dim)`` those of item ``rows``
        ``(P,)`` with the review embeddings ``leave_out`` ``(P, D_text)`` taken out of their
        review content (a training target's own review: zero rows take nothing out).
        No dropout here: the vectors are the retrieval task's output matrix too (the
        history encoders drop out their inputs)."""

        def pick(table: Tensor) -> Tensor:
            return table if rows is None else table[rows]

        parts = []
        if self.ids is not None:
            parts.append(self.ids(pick(self.vocab_index)))
        if self.adaptor is not None:
            parts.append(self.adaptor(pick(self.text)))
        if self.content_adaptor is not None:
            total, count = pick(self.content_sum), pick(self.content_count)
            if leave_out is not None:
                total = total - leave_out
                count = count - leave_out.ne(0).any(dim=-1).to(count.dtype)
            mean = total / count.clamp(min=1.0).unsqueeze(-1)
            parts.append(self.content_adaptor(mean) * count.gt(0).unsqueeze(-1).to(mean.dtype))
        for key, embedding in self.attributes.items():
            codes = pick(getattr(self, f"attr_{key}"))
            attribute = embedding(codes)  # (N, dim) or (N, L, dim) for list-valued codes
            parts.append(attribute.sum(dim=1) if codes.dim() == 2 else attribute)
        items: Tensor = self.norm(torch.stack(parts).sum(dim=0))
        return items


class CausalEncoder(nn.Module):
    """SASRec-style encoder: ``(B, L, dim)`` item vectors + padding mask -> states ``(B, L, dim)``;
    position ``t`` attends to positions ``<= t`` only."""

    def __init__(self, dim: int, max_len: int, layers: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.positions = nn.Embedding(max_len, dim)
        nn.init.normal_(self.positions.weight, std=0.02)
        self.input_norm = nn.LayerNorm(dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim * 4, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        use_fast_dropout(self.encoder)
        self.norm = nn.LayerNorm(dim)
        self.dropout = FastDropout(dropout)
        self.n_heads = heads

    def forward(self, x: Tensor, padding: Tensor) -> Tensor:
        b, length = x.shape[:2]
        positions = torch.arange(length, device=x.device)
        x = self.dropout(self.input_norm(x + self.positions(positions)))
        # query q may not see key k when k is later or padding; every position sees itself,
        # so a padding row attends only to itself (no all-masked row, no NaN to spread)
        later = torch.triu(torch.ones(length, length, dtype=torch.bool, device=x.device), 1)
        blocked = later.unsqueeze(0) | padding.unsqueeze(1)  # (B, L, L)
        blocked = blocked & ~torch.eye(length, dtype=torch.bool, device=x.device)
        mask = blocked.repeat_interleave(self.n_heads, dim=0)  # (B * heads, L, L)
        out = self.encoder(x, mask=mask)
        states: Tensor = self.norm(out).masked_fill(padding.unsqueeze(-1), 0.0)
        return states


class PooledEncoder(nn.Module):
    """Order-free variant: the state at ``t`` is an MLP of the mean item vector up to ``t``."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), FastDropout(dropout))
        self.norm = nn.LayerNorm(dim)
        self.dropout = FastDropout(dropout)

    def forward(self, x: Tensor, padding: Tensor) -> Tensor:
        x = self.dropout(x)
        keep = (~padding).unsqueeze(-1).to(x.dtype)  # (B, L, 1)
        running = (x * keep).cumsum(dim=1) / keep.cumsum(dim=1).clamp(min=1.0)
        states: Tensor = self.norm(running + self.mlp(running))
        return states

    def others(self, x: Tensor, padding: Tensor) -> Tensor:
        """``(B, L, dim)`` item vectors + padding mask -> the state at each position from
        every OTHER item of its row (the mean of the rest, then the same MLP): what a
        training item is predicted from in the ``set`` order."""
        x = self.dropout(x)
        keep = (~padding).unsqueeze(-1).to(x.dtype)  # (B, L, 1)
        kept = x * keep
        rest = (kept.sum(dim=1, keepdim=True) - kept) / (
            keep.sum(dim=1, keepdim=True) - keep
        ).clamp(min=1.0)
        states: Tensor = self.norm(rest + self.mlp(rest))
        return states


class HistoryContext(NamedTuple):
    """What the pair outputs read of ``U`` users' histories: the state after each ``states``
    ``(U, dim)`` and the item-to-item scores ``item_item`` ``(U, N_items)`` (None for a
    model without that term)."""

    states: Tensor
    item_item: Tensor | None


class SequentialRecommender(TaskModel):
    """Item encoder + history encoder + the retrieval task + auxiliary heads (see the module).

    ``specs``: every task (the retrieval task is ``multiclass`` over ``N_items`` classes);
    ``heads``: a head per auxiliary task, built for ``rep_dim(task_inputs[task])`` inputs;
    ``task_inputs``: what each auxiliary task reads (``pair`` by default).
    """

    warm: Tensor
    item_tokens: Tensor
    item_item_fixed: Tensor
    sampling_q: Tensor
    log_q: Tensor

    def __init__(
        self,
        items: ItemEncoder,
        dim: int,
        specs: Mapping[str, TaskSpec],
        heads: Mapping[str, Head],
        retrieval_task: str,
        task_inputs: Mapping[str, TaskInput],
        encoder: Literal["causal", "pooled"] = "causal",
        max_len: int = 50,
        layers: int = 2,
        n_heads: int = 2,
        dropout: float = 0.2,
        review_dim: int | None = None,
        temperature: float = 1.0,
        item_item: bool = False,
        item_tokens: Tensor | None = None,
        sampled_negatives: int | None = None,
        item_counts: Tensor | None = None,
        item_item_weights: Tensor | None = None,
        set_targets: bool = False,
        exclude_seen: bool = False,
    ) -> None:
        super().__init__()
        if set_targets and encoder != "pooled":
            raise ValueError("set targets (history_order: set) need the pooled encoder")
        if sampled_negatives and exclude_seen:
            raise ValueError("exclude_seen masks the full softmax; sampled_negatives has none")
        if sampled_negatives and item_item:
            raise ValueError("sampled_negatives is for large catalogues; item_item is not")
        if item_item_weights is not None and not item_item:
            raise ValueError("item_item_weights are the item-to-item term's: set item_item")
        self.items, self.dim, self.max_len = items, dim, max_len
        self.specs, self.retrieval_task = dict(specs), retrieval_task
        self.task_inputs = {t: task_inputs.get(t, "pair") for t in heads}
        self.start = nn.Parameter(torch.randn(dim) * 0.02)
        self.history = (
            CausalEncoder(dim, max_len, layers, n_heads, dropout)
            if encoder == "causal"
            else PooledEncoder(dim, dropout)
        )
        self.heads = nn.ModuleDict(dict(heads))
        self.review_adaptor = (
            TextAdaptor(review_dim, dim, dropout=dropout)
            if review_dim is not None and "review" in self.task_inputs.values()
            else None
        )
        self.temperature = temperature
        n_items = int(items.vocab_index.shape[0])
        # history token -> a score for every item, summed over the history (a linear
        # item-to-item layer, as SLIM / EASE); only train items get such scores
        self.item_item = (
            nn.Embedding(n_items + OFFSET, n_items, padding_idx=PAD)
            if item_item and item_item_weights is None
            else None
        )
        if self.item_item is not None:
            nn.init.zeros_(self.item_item.weight)
        # or fixed closed-form weights (N_items, N_items) (EASE on the training
        # interactions), scaled by a learned factor: a linear item-to-item part the network
        # corrects; in the state dict when used (rows: tokens, padding and start give 0)
        fixed = torch.zeros(0, 0)
        if item_item_weights is not None:
            fixed = torch.zeros(n_items + OFFSET, n_items)
            fixed[OFFSET:] = item_item_weights.float()
        self.register_buffer("item_item_fixed", fixed, persistent=item_item_weights is not None)
        self.item_item_scale = (
            nn.Parameter(torch.tensor(10.0)) if item_item_weights is not None else None
        )
        self.register_buffer("warm", (items.vocab_index > 0).float(), persistent=False)
        # each item's LM tokens (N_items, L_tok), for heads that read them (self-attention)
        self.register_buffer(
            "item_tokens",
            item_tokens if item_tokens is not None else torch.zeros(0, dtype=torch.long),
            persistent=False,
        )
        self.token_dropout = dropout
        # training rows are sets: each position's item is predicted from the row's others
        self.set_targets = set_targets
        # training softmax over the items not yet in the target's history (as ranking
        # excludes a user's known items)
        self.exclude_seen = exclude_seen
        # training only: cross-fitted fixed weights (K, N_tokens, N) and each user's fold
        self.register_buffer("fold_weights", torch.zeros(0), persistent=False)
        self.register_buffer("user_fold", torch.zeros(0, dtype=torch.long), persistent=False)
        # sampled softmax: the proposal q over items (training counts + 1 for train items)
        self.sampled_negatives = sampled_negatives or 0
        q = torch.zeros(0)
        if self.sampled_negatives:
            counts = item_counts.float() if item_counts is not None else torch.zeros(n_items)
            q = (counts + 1.0) * self.warm
            q = q / q.sum() if q.sum() > 0 else torch.full((n_items,), 1.0 / max(n_items, 1))
        self.register_buffer("sampling_q", q, persistent=False)
        self.register_buffer("log_q", q.clamp(min=1e-12).log(), persistent=False)

    def set_training_folds(self, weights: Tensor, user_fold: Tensor) -> None:
        """Cross-fitted item-to-item weights for training: ``weights`` ``(K, N, N)``, fold
        ``k`` fitted without the users of fold ``k``; ``user_fold`` ``(N_users,)``. In
        training a window of user ``u`` reads fold ``user_fold[u]``'s weights; evaluation
        and serving read the weights fitted on every training user."""
        if self.item_item_scale is None:
            raise ValueError("training folds replace the fixed item-to-item weights: none here")
        padded = torch.zeros(weights.shape[0], self.item_item_fixed.shape[0], weights.shape[2])
        padded[:, OFFSET:] = weights.float()
        self.fold_weights, self.user_fold = padded, user_fold.long()

    def history_item_scores(
        self,
        history: Tensor,
        how: Literal["running", "whole", "others"],
        users: Tensor | None = None,
    ) -> Tensor | float:
        """The item-to-item term: history tokens ``(B, L)`` -> ``(B, L, N_items)`` sums over
        positions ``<= t`` (``running``) or over every position but ``t`` (``others``), or
        ``(B, N_items)`` over the whole history (``whole``); 0 without ``item_item``.
        Training drops whole history tokens; with training folds (see
        :meth:`set_training_folds`) and the windows' ``users`` ``(B,)``, training reads each
        user's out-of-fold weights."""
        if not self.reads_history_items:
            return 0.0
        if how == "whole" and not (self.training and self.token_dropout > 0):
            # a bag of tokens (B, N_tokens) x the weights (N_tokens, N): no (B, L, N) gather
            weight = self.item_item.weight if self.item_item is not None else self.item_item_fixed
            bag = torch.zeros(history.shape[0], weight.shape[0], dtype=weight.dtype)
            bag = bag.to(history.device).scatter_add_(
                1, history, torch.ones_like(history, dtype=weight.dtype)
            )
            whole: Tensor = bag @ weight
            if self.item_item_scale is not None:
                whole = whole * self.item_item_scale
            return whole * self.warm
        if self.item_item is not None:
            rows = self.item_item(history)  # (B, L, N)
        elif self.training and self.fold_weights.numel() and users is not None:
            assert self.item_item_scale is not None
            fold = self.user_fold[users.clamp(min=0)]  # (B,)
            rows = self.fold_weights[fold.unsqueeze(1), history] * self.item_item_scale
        else:
            assert self.item_item_scale is not None
            rows = F.embedding(history, self.item_item_fixed) * self.item_item_scale
        if self.training and self.token_dropout > 0:
            keep = torch.rand(history.shape, device=history.device) >= self.token_dropout
            rows = rows * (keep.unsqueeze(-1).to(rows.dtype) / (1 - self.token_dropout))
        if how == "running":
            summed: Tensor = rows.cumsum(dim=1)
        elif how == "others":
            summed = rows.sum(dim=1, keepdim=True) - rows
        else:
            summed = rows.sum(dim=1)
        return summed * self.warm

    @staticmethod
    def rep_dim(kind: TaskInput, dim: int) -> int:
        """Width of the representation an auxiliary head of ``kind`` reads."""
        return {"pair": 3 * dim, "review": 2 * dim, "item": dim}[kind]

    @property
    def tasks(self) -> tuple[str, ...]:
        return (self.retrieval_task, *self.heads)

    def token_vectors(self, items: Tensor) -> Tensor:
        """``(N_items + 2, dim)``: padding (zero), start, then every item's vector."""
        return torch.cat([torch.zeros_like(self.start)[None], self.start[None], items])

    def states(self, history: Tensor, items: Tensor | None = None) -> Tensor:
        """History tokens ``(B, L)`` -> states ``(B, L, dim)``."""
        items = self.items() if items is None else items
        x = self.token_vectors(items)[history]  # (B, L, dim)
        states: Tensor = self.history(x, history == PAD)
        return states

    def user_states(self, history: Tensor) -> Tensor:
        """The state after the whole history ``(B, L)`` (left-padded): ``(B, dim)``."""
        return self.states(history)[:, -1]

    def score_items(self, history: Tensor) -> Tensor:
        """Retrieval scores of every item after each history ``(B, L)``: ``(B, N_items)``."""
        items = self.items()
        return self.score_after(self.states(history, items)[:, -1], history, items)

    @property
    def reads_history_items(self) -> bool:
        """Whether scores add the item-to-item term (which reads the history's tokens, not
        only the state after them)."""
        return self.item_item is not None or self.item_item_scale is not None

    def score_after(self, state: Tensor, history: Tensor | None, items: Tensor) -> Tensor:
        """Retrieval scores ``(B, N_items)`` from the states ``(B, dim)`` after histories
        ``history`` ``(B, L)`` (needed only when :attr:`reads_history_items`) and every
        item's vector ``items`` ``(N_items, dim)``."""
        logits = self.retrieval_logits(state, items)
        if not self.reads_history_items:
            return logits
        if history is None:
            raise ValueError("the item-to-item term reads the history: pass its tokens")
        return logits + self.history_item_scores(history, "whole")

    def sampled_logits(
        self, state: Tensor, items: Tensor, target_rows: Tensor, own: Tensor
    ) -> Tensor:
        """Sampled softmax with log-Q correction: ``(P, 1 + C)`` logits, the target's in
        column 0, then ``C`` candidates: the batch's distinct targets (in-batch negatives)
        and ``sampled_negatives`` items drawn from ``q`` (training popularity). Every logit
        has ``log q(j)`` subtracted, so the softmax estimates the full one without the
        popularity bias of the candidates; a candidate that is the row's own target is
        masked out."""
        drawn = torch.multinomial(self.sampling_q, self.sampled_negatives, replacement=True)
        candidates = torch.cat([torch.unique(target_rows), drawn])  # (C,)
        bias = self.items.logit_bias()
        negatives = state @ items[candidates].T / self.temperature - self.log_q[candidates]
        if isinstance(bias, Tensor):
            negatives = negatives + bias[candidates]
        negatives = negatives.masked_fill(
            candidates.unsqueeze(0) == target_rows.unsqueeze(1), float("-inf")
        )
        positive = own - self.log_q[target_rows]
        return torch.cat([positive.unsqueeze(1), negatives], dim=1)

    def target_logits(self, state: Tensor, item: Tensor, target_rows: Tensor) -> Tensor:
        """States ``(P, dim)`` x their targets' vectors ``(P, dim)`` -> ``(P,)``, as
        :meth:`retrieval_logits` scores them."""
        bias = self.items.logit_bias()
        logits: Tensor = (state * item).sum(-1) / self.temperature + (
            bias[target_rows] if isinstance(bias, Tensor) else bias
        )
        return logits

    def retrieval_logits(self, state: Tensor, items: Tensor) -> Tensor:
        """States ``(P, dim)`` x item vectors ``(N_items, dim)`` -> ``(P, N_items)``:
        ``state . v(j) / temperature + bias(j)``."""
        logits: Tensor = state @ items.T / self.temperature + self.items.logit_bias()
        return logits

    def forward(
        self, features: Mapping[str, Tensor], tasks: Collection[str] | None = None
    ) -> Predictions:
        """Every task's predictions over the ``P`` target positions: the retrieval task's
        logits ``(P, N_items)``, or in training with ``sampled_negatives`` ``(P, 1 + C)``
        with the target in column 0 (see :meth:`sampled_logits`). ``tasks``: only these
        (None: all); without the retrieval task no all-item logits are computed (what a
        head-only stage such as the head refit needs)."""
        wanted = set(self.tasks if tasks is None else tasks)
        items = self.items()  # (N, dim)
        history = features["history"]
        if self._sets():  # each position's own item, from the row's other items
            assert isinstance(self.history, PooledEncoder)
            states = self.history.others(self.token_vectors(items)[history], history == PAD)
        else:
            states = self.states(history, items)  # (B, L, dim)
        target = features["target_item"]  # (B, L)
        where = target >= 0
        state = states[where]  # (P, dim)
        target_rows = target[where]  # (P,)
        leave_out = features.get("content_leave_out")
        if self.items.content_adaptor is None:
            leave_out = None
        # a training target's own review is in its item's review content: the target is
        # scored with that review taken out (it never feeds its own interaction)
        item = (  # (P, dim)
            items[target_rows] if leave_out is None else self.items(target_rows, leave_out[where])
        )
        out: Predictions = {}
        if self.retrieval_task in wanted:
            out[self.retrieval_task] = self._retrieval_outputs(
                history, features.get("user_row"), where, state, items, item, target_rows, leave_out
            )
        own_review = features["own_review"][where] if "own_review" in features else None
        out.update(self.head_outputs(state, item, target_rows, wanted, own_review))
        return out

    def head_outputs(
        self,
        state: Tensor,
        item: Tensor,
        target_rows: Tensor,
        tasks: Collection[str],
        own_review: Tensor | None = None,
    ) -> Predictions:
        """The auxiliary heads of ``tasks`` (the retrieval task is skipped) at ``P``
        targets: states ``(P, dim)`` before each target, the targets' vectors ``item``
        ``(P, dim)`` and rows ``target_rows`` ``(P,)``, and for review tasks the target's
        own review embedding ``own_review`` ``(P, D_text)``."""
        head_features = {"item_row": target_rows}
        if self.item_tokens.numel():
            head_features["item_tokens"] = self.item_tokens[target_rows]  # (P, L_tok)
        out: Predictions = {}
        for task, head in self.heads.items():
            if task not in tasks:
                continue
            kind = self.task_inputs[task]
            if kind == "pair":
                rep = torch.cat([state, item, state * item], dim=-1)
            elif kind == "item":
                rep = item
            else:
                if self.review_adaptor is None or own_review is None:
                    raise ValueError(f"task {task!r} reads the review: own_review is needed")
                rep = torch.cat([self.review_adaptor(own_review), item], dim=-1)
            out[task] = head(rep, head_features)
        return out

    def _sets(self) -> bool:
        """Whether this forward pass reads training rows as sets (see ``set_targets``);
        evaluation always scores after a history."""
        return self.training and self.set_targets

    def _retrieval_outputs(
        self,
        history: Tensor,
        users: Tensor | None,
        where: Tensor,
        state: Tensor,
        items: Tensor,
        item: Tensor,
        target_rows: Tensor,
        leave_out: Tensor | None,
    ) -> Tensor:
        """The retrieval logits of :meth:`forward`: ``(P, N_items)`` (or sampled
        ``(P, 1 + C)``) for states ``(P, dim)`` at the ``where`` ``(B, L)`` positions of
        ``history`` ``(B, L)``, their targets' vectors ``item`` ``(P, dim)`` and rows
        ``(P,)``."""
        if self.training and self.sampled_negatives:
            own = self.target_logits(state, item, target_rows)  # (P,)
            return self.sampled_logits(state, items, target_rows, own)
        logits = self.retrieval_logits(state, items)
        if leave_out is not None:  # the target's column, with its own review out
            own = self.target_logits(state, item, target_rows)
            logits = logits.scatter(1, target_rows.unsqueeze(1), own.unsqueeze(1))
        item_item = self.history_item_scores(
            history, "others" if self._sets() else "running", users
        )
        if isinstance(item_item, Tensor):
            logits = logits + item_item[where]
        if self.training and self.exclude_seen:
            logits = logits.masked_fill(self.seen_items(history, where, target_rows), -1e9)
        return logits

    def seen_items(self, history: Tensor, where: Tensor, target_rows: Tensor) -> Tensor:
        """``(P, N_items)`` True where an item is in the target's own history (the row's
        tokens up to the position, or in the ``set`` order every other token of the row),
        the target itself excepted: the items ranking would exclude as already known."""
        n_items = int(self.warm.shape[0])
        batch, length = history.shape
        valid = history >= OFFSET  # (B, L)
        rows = (history - OFFSET).clamp(min=0)  # (B, L) item rows (padding / start: 0)
        row_of, pos_of = where.nonzero(as_tuple=True)  # (P,) each, in ``where`` order
        if self._sets():  # how often each item is in the row, then the position's own out
            counts = torch.zeros(batch, n_items, dtype=torch.int32, device=history.device)
            counts.scatter_add_(1, rows, valid.to(torch.int32))  # (B, N)
            seen = counts[row_of] > 0  # (P, N)
            own_rows = rows[row_of, pos_of]  # (P,)
            own_valid = valid[row_of, pos_of]
            alone = counts[row_of, own_rows] <= 1
            picks = torch.arange(len(row_of), device=history.device)
            seen[picks[own_valid], own_rows[own_valid]] = ~alone[own_valid]
        else:  # the first position of each item in the row; seen from there on
            first = torch.full((batch, n_items), length, dtype=torch.long, device=history.device)
            positions = torch.arange(length, device=history.device).expand(batch, length)
            positions = positions.masked_fill(~valid, length)  # padding / start: never seen
            first.scatter_reduce_(1, rows, positions, reduce="amin")  # (B, N)
            seen = first[row_of] <= pos_of.unsqueeze(1)  # (P, N)
        seen[torch.arange(len(target_rows)), target_rows] = False
        return seen

    def pair_tasks(self) -> list[str]:
        """Tasks that give a value for any (user, item) pair from the user's history alone:
        the retrieval task and every head that reads no review (a review exists only once
        the interaction happened)."""
        return [self.retrieval_task, *(t for t in self.heads if self.task_inputs[t] != "review")]

    def pair_outputs(
        self,
        history: Tensor,
        users: Tensor,
        item_rows: Tensor,
        items: Tensor | None = None,
        tasks: Collection[str] | None = None,
    ) -> Predictions:
        """Outputs for ``P`` (user, item) pairs after each user's history: ``history``
        ``(U, L)`` tokens of ``U`` distinct users, ``users`` ``(P,)`` an index into them,
        ``item_rows`` ``(P,)``. The retrieval task gives the logit ``(P,)`` that
        :meth:`score_items` gives the pair; each task of :meth:`pair_tasks` its head output
        ``(P,)`` or ``(P, C)``. ``items``: every item's vector ``(N, dim)`` when the caller
        keeps them (a model that no longer changes, as in serving); None: computed.
        ``tasks``: the heads to run besides the retrieval logit (None: every pair task), so
        a caller ranking a whole catalogue by the logit runs no other head on it."""
        items = self.items() if items is None else items  # (N, dim)
        context = self.history_context(history, items)
        return self.outputs_after(context, users, item_rows, items, tasks)

    def history_context(self, history: Tensor, items: Tensor) -> HistoryContext:
        """What the pair outputs read of ``U`` histories ``(U, L)``: the state after each
        ``(U, dim)`` and, with :attr:`reads_history_items`, the item-to-item scores ``(U,
        N)``; ``items`` every item's vector ``(N, dim)``. Computed once, it serves any
        number of :meth:`outputs_after` calls (a ranking pass, then the picks' heads)."""
        states = self.states(history, items)[:, -1]  # (U, dim)
        item_item = self.history_item_scores(history, "whole")  # (U, N) or 0
        return HistoryContext(states, item_item if isinstance(item_item, Tensor) else None)

    def outputs_after(
        self,
        context: HistoryContext,
        users: Tensor,
        item_rows: Tensor,
        items: Tensor,
        tasks: Collection[str] | None = None,
    ) -> Predictions:
        """:meth:`pair_outputs` from a :meth:`history_context`: ``users`` ``(P,)`` index its
        histories, ``item_rows`` ``(P,)``, ``items`` every item's vector ``(N, dim)``."""
        state, item = context.states[users], items[item_rows]  # (P, dim) each
        logits = self.target_logits(state, item, item_rows)
        if context.item_item is not None:
            logits = logits + context.item_item[users, item_rows]
        out: Predictions = {self.retrieval_task: logits}
        head_features = {"item_row": item_rows}
        if self.item_tokens.numel():
            head_features["item_tokens"] = self.item_tokens[item_rows]  # (P, L_tok)
        for task in self.pair_tasks()[1:]:
            if tasks is not None and task not in tasks:
                continue
            kind = self.task_inputs[task]
            rep = torch.cat([state, item, state * item], dim=-1) if kind == "pair" else item
            out[task] = self.heads[task](rep, head_features)
        return out

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """What every task reaches: the item encoder, the start token, the history encoder."""
        yield from (p for p in self.items.parameters() if p.requires_grad)
        yield self.start
        yield from (p for p in self.history.parameters() if p.requires_grad)
