"""``TwoTower``: a user tower and an item tower meeting in one L2-normalised space.

Item tower: ``[item id embedding ; LM content embedding] -> MLP -> dim``. Items without
training interactions get a zero id embedding, so only their content drives them (the
id embedding of a cold item was never trained); ``id_dropout`` zeroes the id embedding of
random training items too, so the tower learns to place items from content alone.

User tower: ``[user id embedding ; mean LM content of the user's training items] -> MLP
-> dim``. Users without training interactions get a zero id embedding and a zero history.
While training, the positive item is left out of its own user's history mean (otherwise
the tower learns to find the item it was shown).

The score of a (user, item) pair is the cosine of the two vectors. Training
(:func:`train_two_tower`) is an in-batch sampled softmax (InfoNCE) over (user, positive
item) pairs with a temperature and the logQ correction of Yi et al. (2019): an item
appears as an in-batch negative as often as it is sampled, so ``log q(item)`` is
subtracted from its logit to make the loss an estimate of the full softmax.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtlrec.models.layers import MLP


def _tower(in_dim: int, hidden: int, dim: int) -> nn.Sequential:
    """``(B, in_dim) -> (B, dim)``: one hidden layer (Linear, LayerNorm, ReLU), then Linear."""
    body = MLP(in_dim, [hidden])
    return nn.Sequential(body, nn.Linear(body.out_dim, dim))


class TwoTower(nn.Module):
    """User and item towers over ``n_users`` users and ``n_items`` items.

    ``content`` ``(n_items, D_text)`` holds the fixed LM item embeddings (a buffer, saved in
    the state dict); ``user_items`` ``(n_users, n_items)`` the training interactions (only
    which entries are non-zero matters), from which the history means and the cold masks
    are derived (buffers rebuilt from ``user_items``, not saved).
    """

    content: Tensor  # (n_items, D_text)
    history_sum: Tensor  # (n_users, D_text) sum of the content of each user's items
    history_count: Tensor  # (n_users,) number of items of each user
    warm_users: Tensor  # (n_users,) 1.0 for users with training interactions, else 0.0
    warm_items: Tensor  # (n_items,) 1.0 for items with training interactions, else 0.0

    def __init__(
        self,
        content: Tensor,
        user_items: sp.csr_matrix,
        dim: int = 64,
        hidden: int = 256,
        id_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        n_users, n_items = user_items.shape
        if content.ndim != 2 or content.shape[0] != n_items:
            raise ValueError(f"content must be ({n_items}, D), got {tuple(content.shape)}")
        taken = sp.csr_matrix(user_items, dtype=np.float32)
        taken.data = (taken.data != 0).astype(np.float32)  # binary: every item counts once
        content = content.detach().to(torch.float32)
        device = content.device
        history_sum = np.asarray(taken @ content.cpu().numpy())  # (U, D_text)
        history_count = np.asarray(taken.sum(axis=1)).reshape(-1)  # (U,)
        item_count = np.asarray(taken.sum(axis=0)).reshape(-1)  # (I,)
        derived = {
            "history_sum": history_sum,
            "history_count": history_count,
            "warm_users": (history_count > 0).astype(np.float32),
            "warm_items": (item_count > 0).astype(np.float32),
        }
        self.register_buffer("content", content)
        for name, value in derived.items():
            self.register_buffer(name, torch.from_numpy(value).to(device), persistent=False)
        self.id_dropout = id_dropout
        self.user_embedding = nn.Embedding(n_users, dim)
        self.item_embedding = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user_embedding.weight, std=0.1)
        nn.init.normal_(self.item_embedding.weight, std=0.1)
        self.user_tower = _tower(dim + content.shape[1], hidden, dim)
        self.item_tower = _tower(dim + content.shape[1], hidden, dim)

    @property
    def n_users(self) -> int:
        return int(self.user_embedding.num_embeddings)

    @property
    def n_items(self) -> int:
        return int(self.item_embedding.num_embeddings)

    # ------------------------------------------------------------------ towers
    def _users(self, user_ids: Tensor, held_out: Tensor | None = None) -> Tensor:
        """``(B,)`` user ids (and ``(B,)`` items to leave out of their histories) ->
        ``(B, dim)``."""
        total = self.history_sum[user_ids]  # (B, D_text)
        count = self.history_count[user_ids]  # (B,)
        if held_out is not None:
            total = total - self.content[held_out]
            count = count - 1
        history = total / count.clamp(min=1).unsqueeze(1)  # (B, D_text) mean; 0 when empty
        ids = self.user_embedding(user_ids) * self.warm_users[user_ids].unsqueeze(1)  # (B, dim)
        out = self.user_tower(torch.cat([ids, history], dim=1))  # (B, dim)
        return F.normalize(out, dim=1)

    def _items(self, item_ids: Tensor, keep_ids: Tensor) -> Tensor:
        """``(B,)`` item ids and ``(B,)`` 0/1 id-embedding masks -> ``(B, dim)``."""
        ids = self.item_embedding(item_ids) * keep_ids.unsqueeze(1)  # (B, dim)
        out = self.item_tower(torch.cat([ids, self.content[item_ids]], dim=1))  # (B, dim)
        return F.normalize(out, dim=1)

    def forward(
        self, user_ids: Tensor, item_ids: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Training view of ``(B,)`` (user, positive item) pairs -> ``((B, dim), (B, dim))``:
        each positive is left out of its user's history; in training mode the item id
        embeddings are also dropped with probability ``id_dropout`` (drawn from
        ``generator``)."""
        keep = self.warm_items[item_ids]  # (B,)
        if self.training and self.id_dropout > 0:
            draw = torch.rand(item_ids.shape, generator=generator).to(item_ids.device)
            keep = keep * (draw >= self.id_dropout).float()
        return self._users(user_ids, held_out=item_ids), self._items(item_ids, keep)

    def user_vectors(self, user_ids: Tensor) -> Tensor:
        """Vectors ``(B, dim)`` of ``(B,)`` users, from their whole training history."""
        return self._users(user_ids)

    def item_vectors(self, item_ids: Tensor | None = None) -> Tensor:
        """Vectors ``(B, dim)`` of ``(B,)`` items (all ``(n_items, dim)`` when ``None``)."""
        if item_ids is None:
            item_ids = torch.arange(self.n_items, device=self.content.device)
        return self._items(item_ids, self.warm_items[item_ids])


def in_batch_softmax_loss(
    user_vectors: Tensor,
    item_vectors: Tensor,
    item_ids: Tensor,
    log_q: Tensor,
    temperature: float,
) -> Tensor:
    """InfoNCE over a batch of ``(B, dim)`` user and positive-item vectors.

    Row ``i`` is a softmax over the batch's items with item ``i`` the target; the logit of
    each column is ``cos / temperature - log q(item)`` (``log_q`` ``(n_items,)`` is the log
    probability that a pair drawn for the batch has that item). Columns holding the row's
    own item again (duplicates in the batch) are masked: they are not negatives.
    """
    logits = user_vectors @ item_vectors.T / temperature  # (B, B)
    logits = logits - log_q[item_ids].unsqueeze(0)  # logQ correction, per column
    duplicate = item_ids.unsqueeze(0) == item_ids.unsqueeze(1)  # (B, B)
    duplicate.fill_diagonal_(False)
    logits = logits.masked_fill(duplicate, float("-inf"))
    targets = torch.arange(len(item_ids), device=logits.device)
    return F.cross_entropy(logits, targets)


def train_two_tower(
    model: TwoTower,
    user_ids: Tensor,
    item_ids: Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    temperature: float,
    seed: int,
) -> list[float]:
    """Train ``model`` on ``(N,)`` (user, item) pairs with AdamW and
    :func:`in_batch_softmax_loss`; returns the mean loss of every epoch.

    Shuffling and id dropout draw from a ``torch.Generator`` seeded with ``seed``, so on
    CPU the same inputs give the same model (parameter initialisation is the caller's:
    build ``model`` under a seeded RNG). Leaves ``model`` in eval mode.
    """
    n = len(user_ids)
    if n == 0:
        raise ValueError("two-tower training needs at least one (user, item) pair")
    generator = torch.Generator().manual_seed(seed)
    counts = torch.bincount(item_ids, minlength=model.n_items).float()  # (n_items,)
    log_q = torch.log(counts.clamp(min=1) / n)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    losses: list[float] = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            users, items = model(user_ids[batch], item_ids[batch], generator)  # (b, dim) each
            loss = in_batch_softmax_loss(users, items, item_ids[batch], log_q, temperature)
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / n)
    model.eval()
    return losses
