"""The sequential multi-task recommender: causality, the sequence loader, retrieval over the
catalogue, auxiliary heads, and a review classifier that is not the majority constant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlrec.core.types import TaskSpec
from mtlrec.data.examples import ExampleSet
from mtlrec.models.architectures import SequentialArchitecture
from mtlrec.models.heads import HEADS
from mtlrec.models.losses import masked_task_loss
from mtlrec.models.sequential import OFFSET, PAD, START, ItemEncoder, SequentialRecommender
from mtlrec.training.refit import refit_heads
from mtlrec.training.sequences import (
    FutureTargets,
    SequenceLoader,
    UserSequences,
    held_out_batches,
    history_tokens,
)

N_ITEMS = 12


def _model(
    encoder: str = "causal",
    tasks: dict[str, TaskSpec] | None = None,
    inputs: dict[str, str] | None = None,
    review_dim: int | None = None,
    text: torch.Tensor | None = None,
    item_item: bool = False,
    review_content: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> SequentialRecommender:
    torch.manual_seed(0)
    items = ItemEncoder(
        torch.arange(N_ITEMS), N_ITEMS, 16, text=text, dropout=0.0, review_content=review_content
    )
    specs = {"interest": TaskSpec("interest", "multiclass", N_ITEMS), **(tasks or {})}
    inputs = inputs or {}
    heads = {
        name: HEADS.get("fc")(
            SequentialRecommender.rep_dim(inputs.get(name, "pair"), 16),  # type: ignore[arg-type]
            spec,
        )
        for name, spec in specs.items()
        if name != "interest"
    }
    return SequentialRecommender(
        items,
        16,
        specs,
        heads,
        "interest",
        inputs,  # type: ignore[arg-type]
        encoder=encoder,  # type: ignore[arg-type]
        max_len=8,
        layers=1,
        n_heads=2,
        dropout=0.0,
        review_dim=review_dim,
        item_item=item_item,
    )


@pytest.mark.parametrize("encoder", ["causal", "pooled"])
def test_a_state_never_sees_a_later_item(encoder: str) -> None:
    model = _model(encoder).eval()
    history = torch.tensor(
        [[PAD, PAD, START, 2 + OFFSET, 5 + OFFSET, 7 + OFFSET, 1 + OFFSET, 3 + OFFSET]]
    )
    changed = history.clone()
    changed[0, 6:] = torch.tensor([9 + OFFSET, 4 + OFFSET])
    with torch.no_grad():
        before, after = model.states(history), model.states(changed)
    assert torch.isfinite(before).all()
    torch.testing.assert_close(before[0, :6], after[0, :6])
    assert not torch.allclose(before[0, 6:], after[0, 6:])


def test_left_padding_gives_finite_states_and_matches_the_unpadded_history() -> None:
    model = _model().eval()
    short = torch.tensor([[START, 3 + OFFSET, 4 + OFFSET]])
    padded = torch.tensor([[PAD] * 5 + [START, 3 + OFFSET, 4 + OFFSET]])
    with torch.no_grad():
        # positions are absolute, so compare the padded states among themselves only
        states = model.states(padded)
    assert torch.isfinite(states).all()
    assert torch.equal(states[0, :5], torch.zeros_like(states[0, :5]))
    assert short.shape[1] == 3  # the unpadded form is valid input too
    assert torch.isfinite(model.states(short)).all()


def _examples(users: list[int], items: list[int], split: list[int]) -> ExampleSet:
    n = len(users)
    return ExampleSet(
        "interaction",
        {"user_row": torch.tensor(users), "item_row": torch.tensor(items)},
        {"rating": torch.arange(n, dtype=torch.float32)},
        {"rating": torch.ones(n, dtype=torch.bool)},
        torch.tensor(split),
        torch.zeros(n, dtype=torch.bool),
    )


@pytest.mark.parametrize("stride", [None, 2, 1])
def test_every_training_interaction_is_a_target_once_after_its_own_past(
    stride: int | None,
) -> None:
    # user 0: items 1..11 in time order (11 train rows > max_len 4 -> 3+ windows); user 1: 2
    users = [0] * 11 + [1, 1, 0, 0]
    items = [*range(1, 12), 5, 6, 0, 2]
    split = [0] * 13 + [1, 2]
    examples = _examples(users, items, split)
    order = np.arange(len(users))
    train = UserSequences.build(examples, order, [0])
    loader = SequenceLoader(
        examples, train, 4, 2, "interest", ["interest", "rating"], seed=3, stride=stride
    )
    seen: list[int] = []
    for batch in loader.batches(0):
        target = batch.features["target_item"]
        history = batch.features["history"]
        labels = batch.labels["rating"].long().tolist()  # rating == example index here
        assert batch.labels["interest"].tolist() == target[target >= 0].tolist()
        assert len(batch.features["positions"]) == len(labels)
        k = 0
        for row in range(target.shape[0]):
            for pos in range(target.shape[1]):
                if target[row, pos] < 0:
                    continue
                example = labels[k]
                k += 1
                seen.append(example)
                # the history up to pos holds only earlier examples of the same user
                earlier = {
                    int(items[e]) + OFFSET
                    for e in range(example)
                    if users[e] == users[example] and split[e] == 0
                }
                tokens = set(history[row, : pos + 1].tolist()) - {PAD, START}
                assert tokens <= earlier
                # with a stride, a target sees at least max_len - stride items (or all)
                context = history[row, : pos + 1].ne(PAD).sum().item()
                assert context >= min(len(earlier) + 1, 4 - (stride or 4) + 1)
    assert sorted(seen) == list(range(13))  # valid / test rows are never training targets
    order_0 = [b.features["positions"].tolist() for b in loader.batches(0)]
    assert order_0 == [b.features["positions"].tolist() for b in loader.batches(0)]
    assert order_0 != [b.features["positions"].tolist() for b in loader.batches(1)]


def test_a_shuffled_history_order_reorders_each_users_training_items_per_epoch() -> None:
    users = [0] * 9 + [1] * 3 + [0]
    items = [*range(1, 10), 3, 4, 5, 0]
    split = [0] * 12 + [2]
    examples = _examples(users, items, split)
    train = UserSequences.build(examples, np.arange(len(users)), [0])
    loader = SequenceLoader(
        examples, train, 4, 8, "interest", ["rating"], seed=0, stride=2, history_order="shuffled"
    )

    def epoch(n: int) -> list[tuple[int, tuple[int, ...]]]:
        out = []
        for batch in loader.batches(n):
            labels = iter(batch.labels["rating"].long().tolist())  # example index
            target, history = batch.features["target_item"], batch.features["history"]
            for row, pos in zip(*torch.nonzero(target >= 0, as_tuple=True), strict=True):
                example = next(labels)
                context = set(history[row, : pos + 1].tolist()) - {PAD, START}
                # a target's history holds other training items of its own user only
                own = {items[e] + OFFSET for e in range(12) if users[e] == users[example]}
                assert context <= own - {items[example] + OFFSET}
                out.append((example, tuple(sorted(context))))
        return out

    first, second = epoch(0), epoch(1)
    assert sorted(e for e, _ in first) == list(range(12))  # each training target once
    assert sorted(e for e, _ in second) == list(range(12))
    assert sorted(first) != sorted(second)  # other random subsets precede the targets
    assert first == epoch(0)  # reproducible per (seed, epoch)
    with pytest.raises(ValueError, match="history_order"):
        SequenceLoader(examples, train, 4, 8, "interest", [], history_order="random")


def test_set_rows_make_every_training_item_a_target_at_its_own_position() -> None:
    users = [0] * 9 + [1] * 3 + [0]
    items = [*range(1, 10), 3, 4, 5, 0]
    split = [0] * 12 + [2]
    examples = _examples(users, items, split)
    train = UserSequences.build(examples, np.arange(len(users)), [0])
    loader = SequenceLoader(examples, train, 4, 8, "interest", ["rating"], history_order="set")
    seen = []
    for batch in loader.batches(0):
        labels = iter(batch.labels["rating"].long().tolist())  # example index
        target, history = batch.features["target_item"], batch.features["history"]
        for row, pos in zip(*torch.nonzero(target >= 0, as_tuple=True), strict=True):
            example = next(labels)
            seen.append(example)
            assert history[row, pos] == items[example] + OFFSET  # its own token
            own = {items[e] + OFFSET for e in range(12) if users[e] == users[example]}
            assert set(history[row].tolist()) - {PAD, START} <= own  # the user's items
        assert (history[target.ne(-1).any(dim=1)].eq(START).sum(dim=1) == 1).all()
    assert sorted(seen) == list(range(12))  # user 0's 9 items in pieces of <= 3, once each


def test_future_targets_spread_weight_over_the_next_training_items_of_the_same_user() -> None:
    users = [0] * 6 + [1] * 3 + [0]
    items = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    split = [0] * 9 + [1]  # user 0's last item is held out: never a training target's future
    examples = _examples(users, items, split)
    train = UserSequences.build(examples, np.arange(len(users)), [0])
    future = FutureTargets(window=2, weight=0.4, n_items=N_ITEMS)
    loader = SequenceLoader(examples, train, 4, 8, "interest", ["rating"], stride=1, future=future)
    checked = 0
    for batch in loader.batches(0):
        labels = batch.labels["interest"]
        assert labels.shape == (len(batch.features["positions"]), N_ITEMS)
        assert torch.allclose(labels.sum(dim=1), torch.ones(len(labels)))
        for example, label in zip(batch.labels["rating"].long().tolist(), labels, strict=True):
            mine = [e for e in range(9) if users[e] == users[example]]
            after = [items[e] for e in mine[mine.index(example) + 1 :][:2]]
            expected = torch.zeros(N_ITEMS)
            expected[items[example]] = 1.0 if not after else 0.6
            for item in after:
                expected[item] += 0.4 / len(after)
            assert torch.allclose(label, expected), (example, label, expected)
            checked += 1
    assert checked == 9  # every training target once; the held-out item 10 never appears
    # a soft label trains the retrieval task through the usual cross-entropy
    spec = TaskSpec("interest", "multiclass", N_ITEMS)
    logits = torch.randn(3, N_ITEMS)
    soft = torch.zeros(3, N_ITEMS)
    soft[torch.arange(3), torch.tensor([1, 2, 3])] = 1.0
    hard = masked_task_loss(spec, logits, torch.tensor([1, 2, 3]), torch.ones(3, dtype=torch.bool))
    assert torch.allclose(
        masked_task_loss(spec, logits, soft, torch.ones(3, dtype=torch.bool)), hard
    )
    with pytest.raises(ValueError, match="future targets"):
        SequenceLoader(
            examples, train, 4, 8, "interest", [], history_order="shuffled", future=future
        )


def test_in_set_training_an_items_score_never_reads_its_own_token() -> None:
    tasks = {"rating": TaskSpec("rating", "regression", 1)}
    model = _model("pooled", tasks=tasks, item_item=True)
    model.set_targets = True
    assert model.item_item is not None
    with torch.no_grad():
        torch.nn.init.normal_(model.item_item.weight)
        model.item_item.weight[PAD] = 0.0  # as training keeps it
    model.train()  # dropout is 0: training mode is deterministic here
    history = torch.tensor([[START, 1 + OFFSET, 2 + OFFSET, 3 + OFFSET]])
    target = torch.tensor([[-1, 1, 2, 3]])
    swapped = history.clone()
    swapped[0, 2] = 7 + OFFSET  # position 2's own token changes, its target does not
    with torch.no_grad():
        out = model({"history": history, "target_item": target})
        other = model({"history": swapped, "target_item": target})
        # position 2 (the second target) is scored as a history of items 1 and 3 is
        expected = model.eval().score_items(torch.tensor([[PAD, START, 1 + OFFSET, 3 + OFFSET]]))
    torch.testing.assert_close(out["interest"][1], other["interest"][1])
    torch.testing.assert_close(out["rating"][1], other["rating"][1])
    assert not torch.allclose(out["interest"][0], other["interest"][0])  # others read it
    torch.testing.assert_close(out["interest"][1], expected[0])
    with pytest.raises(ValueError, match="pooled encoder"):
        SequentialRecommender(
            model.items, 16, model.specs, {}, "interest", {}, encoder="causal", set_targets=True
        )


def test_held_out_examples_are_ranked_after_the_earlier_splits_only() -> None:
    users, items, split = [0, 0, 0, 0], [3, 4, 5, 6], [0, 0, 1, 2]
    examples = _examples(users, items, split)
    order = np.arange(4)
    items_np = np.asarray(items)
    earlier = {
        u: items_np[r] for u, r in UserSequences.build(examples, order, [0, 1]).examples.items()
    }
    (batch,) = list(held_out_batches(examples, earlier, 2, 6, "interest", ["rating"]))
    assert batch.features["history"][0].tolist() == history_tokens(np.array([3, 4, 5]), 6).tolist()
    assert batch.features["target_item"][0, -1] == 6
    assert batch.labels["rating"].tolist() == [3.0]


def test_score_items_equals_the_retrieval_logits_of_the_last_position() -> None:
    model = _model().eval()
    history = torch.tensor([[PAD, START, 1 + OFFSET, 2 + OFFSET]])
    target = torch.tensor([[-1, -1, -1, 5]])
    with torch.no_grad():
        logits = model({"history": history, "target_item": target})["interest"]
        scores = model.score_items(history)
    torch.testing.assert_close(logits, scores)
    assert scores.shape == (1, N_ITEMS)


@pytest.mark.parametrize("item_item", [False, True])
def test_pair_outputs_give_each_pair_what_full_scoring_gives_it(item_item: bool) -> None:
    tasks = {"rating": TaskSpec("rating", "regression", 1), "like": TaskSpec("like", "binary", 1)}
    model = _model(tasks=tasks, item_item=item_item).eval()
    if model.item_item is not None:
        torch.nn.init.normal_(model.item_item.weight)
    history = torch.tensor(
        [[PAD, START, 1 + OFFSET, 2 + OFFSET], [START, 3 + OFFSET, 4 + OFFSET, 7 + OFFSET]]
    )
    users = torch.tensor([1, 0, 1, 0, 1])
    items = torch.tensor([0, 5, 11, 5, 3])
    with torch.no_grad():
        full = model.score_items(history)  # (2, N_ITEMS)
        pairs = model.pair_outputs(history, users, items)
        # the heads on the last position's state and the pair's item, as forward gives them
        target = torch.full((2, 4), -1)
        target[:, -1] = torch.tensor([5, 3])
        forward = model({"history": history, "target_item": target})
    torch.testing.assert_close(pairs["interest"], full[users, items])
    assert set(pairs) == {"interest", "rating", "like"}
    torch.testing.assert_close(pairs["rating"][[1, 4]], forward["rating"])
    torch.testing.assert_close(pairs["like"][[1, 4]], forward["like"])
    with torch.no_grad():  # some heads only: those alone, with the same values
        some = model.pair_outputs(history, users, items, tasks=["rating"])
        logit_only = model.pair_outputs(history, users, items, tasks=[])
    assert set(some) == {"interest", "rating"} and set(logit_only) == {"interest"}
    torch.testing.assert_close(some["rating"], pairs["rating"])
    torch.testing.assert_close(logit_only["interest"], pairs["interest"])


def test_a_forward_for_some_tasks_gives_those_alone_and_the_same_values() -> None:
    tasks = {"rating": TaskSpec("rating", "regression", 1), "like": TaskSpec("like", "binary", 1)}
    model = _model(tasks=tasks, item_item=True).eval()
    history = torch.tensor([[PAD, START, 1 + OFFSET, 2 + OFFSET]])
    target = torch.tensor([[-1, 3, 4, 5]])
    features = {"history": history, "target_item": target}
    with torch.no_grad():
        full = model(features)
        heads_only = model(features, ["rating"])
        retrieval_only = model(features, ["interest"])
    # the head-only pass computes no (P, N_items) retrieval logits at all
    assert set(heads_only) == {"rating"} and set(retrieval_only) == {"interest"}
    torch.testing.assert_close(heads_only["rating"], full["rating"])
    torch.testing.assert_close(retrieval_only["interest"], full["interest"])


def test_review_tasks_are_not_scored_before_the_interaction() -> None:
    tasks = {"sentiment": TaskSpec("sentiment", "multiclass", 3)}
    model = _model(tasks=tasks, inputs={"sentiment": "review"}, review_dim=4)
    assert model.pair_tasks() == ["interest"]


def test_learns_a_next_item_rule_over_the_whole_catalogue() -> None:
    """Item k is always followed by item k + 1: after training, the next item ranks first."""
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    spec = model.specs["interest"]
    rng = np.random.default_rng(0)
    for _ in range(150):
        starts = rng.integers(0, N_ITEMS - 6, size=16)
        seqs = np.stack([np.arange(s, s + 6) for s in starts])  # (16, 6)
        history = torch.from_numpy(np.c_[np.full(16, START), seqs[:, :-1] + OFFSET])
        target = torch.from_numpy(seqs)
        out = model({"history": history, "target_item": target})["interest"]
        loss = masked_task_loss(
            spec, out, target.reshape(-1), torch.ones(out.shape[0], dtype=torch.bool)
        )
        assert loss is not None
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    history = torch.from_numpy(np.r_[START, np.arange(2, 6) + OFFSET]).unsqueeze(0)
    with torch.no_grad():
        assert int(model.score_items(history).argmax()) == 6


def test_the_review_classifier_is_not_the_majority_constant() -> None:
    """88% of reviews are positive; the review text tells the class. Class-weighted CE on
    the review task must give a classifier that predicts more than one class and beats the
    always-positive macro-F1 (a constant classifier fails this test)."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    n, dim = 600, 8
    classes = np.where(rng.random(n) < 0.88, 2, rng.integers(0, 2, size=n))
    reviews = rng.normal(size=(n, dim)).astype(np.float32)
    reviews[:, 0] += 2.5 * (classes - 1)  # the review's text carries its sentiment
    counts = np.bincount(classes, minlength=3).astype(np.float64)
    weights = tuple((counts.sum() / (3 * counts)).tolist())
    spec = TaskSpec("sentiment", "multiclass", 3, class_weights=weights)
    model = _model(tasks={"sentiment": spec}, inputs={"sentiment": "review"}, review_dim=dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    history = torch.full((n, 2), START)
    history[:, 0] = PAD
    target = torch.full((n, 2), -1)
    target[:, 1] = torch.from_numpy(rng.integers(0, N_ITEMS, size=n))
    review = torch.zeros(n, 2, dim)
    review[:, 1] = torch.from_numpy(reviews)
    labels = torch.from_numpy(classes)
    features = {"history": history, "target_item": target, "own_review": review}
    for _ in range(200):
        out = model(features)["sentiment"]
        loss = masked_task_loss(spec, out, labels, torch.ones(n, dtype=torch.bool))
        assert loss is not None
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = model.eval()(features)["sentiment"].argmax(dim=1).numpy()
    assert len(np.unique(predicted)) > 1, "the classifier predicts one class for every example"
    constant = f1_score(classes, np.full(n, 2), average="macro")
    assert f1_score(classes, predicted, average="macro") > constant + 0.2


def test_a_training_target_is_scored_without_its_own_review_in_its_item_content() -> None:
    torch.manual_seed(1)
    reviews = torch.randn(3, 6)  # item 2's training reviews: 0 and 1; item 5's: 2
    total = torch.zeros(N_ITEMS, 6)
    total[2], total[5] = reviews[0] + reviews[1], reviews[2]
    count = torch.zeros(N_ITEMS)
    count[2], count[5] = 2.0, 1.0
    items = ItemEncoder(torch.arange(N_ITEMS), N_ITEMS, 8, review_content=(total, count))
    items.eval()
    left_out = items(torch.tensor([2, 5, 2]), torch.stack([reviews[0], reviews[2], torch.zeros(6)]))
    # item 2 without review 0 reads review 1 alone; item 5 without its only review reads
    # nothing; a zero row (a held-out example) takes nothing out
    alone = torch.zeros(N_ITEMS, 6)
    alone[2] = reviews[1]
    only = torch.zeros(N_ITEMS)
    only[2] = 1.0
    expected = ItemEncoder(torch.arange(N_ITEMS), N_ITEMS, 8, review_content=(alone, only))
    expected.load_state_dict(items.state_dict())
    expected.eval()
    assert torch.allclose(left_out[0], expected()[2], atol=1e-6)
    assert torch.allclose(left_out[1], expected()[5], atol=1e-6)  # no content at all
    assert torch.allclose(left_out[2], items()[2], atol=1e-6)


def test_retrieval_logits_of_a_position_never_read_a_later_item_with_item_to_item() -> None:
    model = _model(item_item=True)
    with torch.no_grad():
        assert model.item_item is not None
        model.item_item.weight.normal_()  # trained weights, not the zero start
    model.eval()
    history = torch.tensor([[START, 2 + OFFSET, 5 + OFFSET, 7 + OFFSET]])
    changed = history.clone()
    changed[0, 3] = 9 + OFFSET
    target = torch.tensor([[2, 5, 7, 1]])
    with torch.no_grad():
        before = model({"history": history, "target_item": target})["interest"]
        after = model({"history": changed, "target_item": target})["interest"]
        whole = model.score_items(history)
    torch.testing.assert_close(before[:3], after[:3])
    assert not torch.allclose(before[3], after[3])
    torch.testing.assert_close(whole[0], before[3])  # ranking = the last position's logits


def test_the_target_logit_reads_its_item_without_the_own_review() -> None:
    torch.manual_seed(2)
    reviews = torch.randn(2, 6)
    total = torch.zeros(N_ITEMS, 6)
    total[4] = reviews.sum(0)
    count = torch.zeros(N_ITEMS)
    count[4] = 2.0
    model = _model(review_content=(total, count)).eval()
    history = torch.tensor([[START, 3 + OFFSET]])
    target = torch.tensor([[-1, 4]])
    leave_out = torch.zeros(1, 2, 6)
    leave_out[0, 1] = reviews[0]
    with torch.no_grad():
        out = model({"history": history, "target_item": target, "content_leave_out": leave_out})
        plain = model({"history": history, "target_item": target})
        state = model.states(history)[0, 1]
        without = model.items(torch.tensor([4]), reviews[:1])[0]
    logits, plain_logits = out["interest"][0], plain["interest"][0]
    torch.testing.assert_close(logits[4], state @ without + model.items.logit_bias()[4])
    assert not torch.allclose(logits[4], plain_logits[4])
    other = torch.arange(N_ITEMS) != 4
    torch.testing.assert_close(logits[other], plain_logits[other])  # other items unchanged


def test_an_item_task_with_the_self_attention_head_reads_the_target_items_tokens() -> None:
    torch.manual_seed(3)
    spec = TaskSpec("genres", "multilabel", 5)
    items = ItemEncoder(torch.arange(N_ITEMS), N_ITEMS, 16, dropout=0.0)
    tokens = torch.randint(1, 40, (N_ITEMS, 6))
    head = HEADS.get("self_attention")(16, spec, vocab_size=40, dim=8, heads=2)
    model = SequentialRecommender(
        items,
        16,
        {"interest": TaskSpec("interest", "multiclass", N_ITEMS), "genres": spec},
        {"genres": head},
        "interest",
        {"genres": "item"},
        max_len=4,
        layers=1,
        n_heads=2,
        dropout=0.0,
        item_tokens=tokens,
    ).eval()
    history = torch.tensor([[START, 3 + OFFSET, 4 + OFFSET]])
    with torch.no_grad():
        out = model({"history": history, "target_item": torch.tensor([[3, 4, 7]])})["genres"]
        tokens[7] = torch.randint(1, 40, (6,))  # only item 7's tokens change
        again = model({"history": history, "target_item": torch.tensor([[3, 4, 7]])})["genres"]
    assert out.shape == (3, 5)
    torch.testing.assert_close(out[:2], again[:2])
    assert not torch.allclose(out[2], again[2])


def test_sampled_softmax_puts_the_target_first_corrects_by_log_q_and_masks_hits() -> None:
    torch.manual_seed(4)
    items = ItemEncoder(torch.arange(N_ITEMS), N_ITEMS, 16, dropout=0.0)
    counts = torch.arange(N_ITEMS)  # item 0 has vocabulary index 0: unseen, never drawn
    model = SequentialRecommender(
        items,
        16,
        {"interest": TaskSpec("interest", "multiclass", N_ITEMS)},
        {},
        "interest",
        {},
        max_len=4,
        layers=1,
        n_heads=2,
        dropout=0.0,
        sampled_negatives=6,
        item_counts=counts,
    )
    history = torch.tensor([[START, 3 + OFFSET, 4 + OFFSET], [PAD, START, 5 + OFFSET]])
    target = torch.tensor([[4, 5, 7], [-1, 5, 7]])
    model.train()
    logits = model({"history": history, "target_item": target})["interest"]
    targets = target[target >= 0]
    assert logits.shape[0] == len(targets) and logits.shape[1] == 1 + 3 + 6  # 3 distinct
    weights = (counts.float() + 1.0) * (torch.arange(N_ITEMS) > 0).float()
    q = weights / weights.sum()
    assert model.sampling_q[0] == 0.0
    state = model.states(history)[target >= 0]
    own = (state * model.items()[targets]).sum(-1) + model.items.logit_bias()[targets]
    torch.testing.assert_close(logits[:, 0], own - q[targets].log())
    # each row's own target among the in-batch candidates (sorted distinct 4, 5, 7) is masked
    in_batch = torch.tensor([4, 5, 7])
    hits = in_batch.unsqueeze(0) == targets.unsqueeze(1)
    assert torch.isinf(logits[:, 1:4][hits]).all() and torch.isfinite(logits[:, 1:4][~hits]).all()
    model.eval()
    with torch.no_grad():
        full = model({"history": history, "target_item": target})["interest"]
    assert full.shape == (len(targets), N_ITEMS)  # evaluation scores the whole catalogue


def _fixed_weights_model(weights: torch.Tensor, **options: object) -> SequentialRecommender:
    """A retrieval-only model whose item-to-item term is ``weights`` under the scale."""
    items = ItemEncoder(torch.arange(N_ITEMS), N_ITEMS, 16, dropout=0.0)
    specs = {"interest": TaskSpec("interest", "multiclass", N_ITEMS)}
    return SequentialRecommender(
        items,
        16,
        specs,
        {},
        "interest",
        {},
        dropout=0.0,
        item_item=True,
        item_item_weights=weights,
        **options,  # type: ignore[arg-type]
    )


def test_fixed_item_to_item_weights_add_a_scaled_sum_over_the_history() -> None:
    torch.manual_seed(0)
    weights = torch.rand(N_ITEMS, N_ITEMS)
    model = _fixed_weights_model(weights, max_len=8, layers=1, n_heads=2).eval()
    items, specs = model.items, model.specs
    assert model.item_item is None and model.item_item_scale is not None
    # the weights are not trained, the scale is
    assert "item_item_fixed" in model.state_dict()
    assert not any(p is model.item_item_fixed for p in model.parameters())
    history = torch.tensor([[PAD, START, 1 + OFFSET, 4 + OFFSET]])
    with torch.no_grad():
        without = model.retrieval_logits(model.user_states(history), model.items())
        scores = model.score_items(history)
    # item 0 has no training id (vocabulary index 0): cold items get no item-to-item score
    expected = without + 10.0 * (weights[1] + weights[4]) * (torch.arange(N_ITEMS) > 0)
    torch.testing.assert_close(scores, expected)
    with pytest.raises(ValueError, match="set item_item"):
        SequentialRecommender(items, 16, specs, {}, "interest", {}, item_item_weights=weights)


def test_training_reads_each_users_out_of_fold_item_to_item_weights() -> None:
    torch.manual_seed(0)
    full, folds = torch.rand(N_ITEMS, N_ITEMS), torch.rand(2, N_ITEMS, N_ITEMS)
    model = _fixed_weights_model(full, encoder="pooled", max_len=4)
    model.set_training_folds(folds, torch.tensor([1, 0]))  # user 0 in fold 1, user 1 in 0
    history = torch.tensor([[START, 1 + OFFSET, 4 + OFFSET], [START, 2 + OFFSET, 3 + OFFSET]])
    users = torch.tensor([0, 1])
    warm = (torch.arange(N_ITEMS) > 0).float()
    with torch.no_grad():
        model.train()
        trained = model.history_item_scores(history, "running", users)
        model.eval()
        held_out = model.history_item_scores(history, "whole")
    assert isinstance(trained, torch.Tensor) and isinstance(held_out, torch.Tensor)
    torch.testing.assert_close(trained[0, -1], 10.0 * (folds[1][1] + folds[1][4]) * warm)
    torch.testing.assert_close(trained[1, -1], 10.0 * (folds[0][2] + folds[0][3]) * warm)
    torch.testing.assert_close(held_out[0], 10.0 * (full[1] + full[4]) * warm)
    assert "fold_weights" not in model.state_dict()  # a training aid, not the model


@pytest.mark.parametrize("sets", [False, True])
def test_exclude_seen_leaves_the_targets_known_items_out_of_its_training_softmax(
    sets: bool,
) -> None:
    model = _model("pooled")
    model.exclude_seen, model.set_targets = True, sets
    history = torch.tensor([[START, 1 + OFFSET, 2 + OFFSET, 1 + OFFSET]])
    # prefix order: the next items; set order: each position's own item
    target = torch.tensor([[1, 2, 1, 5]]) if not sets else torch.tensor([[-1, 1, 2, 1]])
    model.train()
    with torch.no_grad():
        logits = model({"history": history, "target_item": target})["interest"]
        model.eval()
        plain = model({"history": history, "target_item": target})["interest"]
    masked = logits < -1e8
    if not sets:
        # position t excludes the items of tokens <= t, never its own target (item 1 again)
        assert masked.nonzero().tolist() == [[1, 1], [2, 2], [3, 1], [3, 2]]
    else:
        # every other item of the row; a repeated item is its own target at positions 1, 3
        assert masked.nonzero().tolist() == [[0, 2], [1, 1], [2, 2]]
    assert not (plain < -1e8).any()  # evaluation scores every item
    if not sets:  # (the set order's states differ in training: each reads the others)
        torch.testing.assert_close(logits[~masked], plain[~masked])


def test_refit_heads_trains_only_the_heads_and_keeps_each_heads_best_epoch() -> None:
    users = [u for u in range(6) for _ in range(5)]
    items = [(u + k) % N_ITEMS for u in range(6) for k in range(5)]
    examples = _examples(users, items, [0] * len(users))
    examples.labels["rating"] = torch.tensor([float(i % 5) for i in items])  # item-determined
    examples.masks["rating"] = torch.ones(len(users), dtype=torch.bool)
    train = UserSequences.build(examples, np.arange(len(users)), [0])
    loader = SequenceLoader(examples, train, 4, 8, "interest", ["interest", "rating"], seed=0)
    tasks = {"rating": TaskSpec("rating", "regression", 1)}
    model = _model(tasks=tasks, inputs={"rating": "item"})
    shared = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("heads.")}
    batch = next(loader.batches(0))

    def validate() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            out = model(batch.features)["rating"].reshape(-1)
        rmse = float(((out - batch.labels["rating"]) ** 2).mean().sqrt())
        return {"valid/rating/rmse": rmse}

    before = validate()["valid/rating/rmse"]
    result = refit_heads(
        model,
        model.heads,
        model.specs,
        ["rating"],
        loader,
        validate,
        epochs=30,
        patience=5,
        lr=0.05,
        forward=lambda features: model(features, ["rating"]),  # the heads' outputs alone
    )
    after = validate()["valid/rating/rmse"]
    assert after < before and result.best["rating"] == pytest.approx(after)
    assert result.best_epoch["rating"] >= 0 and result.epochs_run >= 1
    # nothing outside the heads moved, and every parameter trains again afterwards
    for key, value in model.state_dict().items():
        if key in shared:
            torch.testing.assert_close(value, shared[key])
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="no head"):
        refit_heads(model, model.heads, model.specs, ["genres"], loader, validate, 1, 1)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"future_window": 3}, "go together"),
        ({"future_weight": 0.3}, "go together"),
        ({"future_window": 3, "future_weight": 1.0}, r"in \[0, 1\)"),
        ({"future_window": -1, "future_weight": 0.0}, ">= 0"),
        ({"future_window": 3, "future_weight": 0.3, "history_order": "set"}, "'time'"),
        ({"future_window": 3, "future_weight": 0.3, "sampled_negatives": 8}, "full softmax"),
    ],
)
def test_future_target_settings_are_checked_when_the_params_are_read(
    params: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SequentialArchitecture(**params)  # type: ignore[arg-type]
    assert SequentialArchitecture(future_window=3, future_weight=0.3).future_window == 3


@pytest.mark.parametrize("sets", [False, True])
def test_seen_items_matches_a_one_hot_count_of_the_history(sets: bool) -> None:
    model = _model("pooled")
    model.exclude_seen, model.set_targets = True, sets
    model.train()
    generator = torch.Generator().manual_seed(0)
    history = torch.randint(OFFSET, N_ITEMS + OFFSET, (5, 9), generator=generator)
    history[:, :3] = torch.tensor([PAD, START, START])[None]  # padding and start tokens
    where = torch.rand(5, 9, generator=generator) > 0.3
    targets = torch.randint(0, N_ITEMS, (int(where.sum()),), generator=generator)
    rows = (history - OFFSET).clamp(min=0)
    hits = torch.nn.functional.one_hot(rows, N_ITEMS) * (history >= OFFSET).unsqueeze(-1)
    counts = hits.sum(dim=1, keepdim=True) - hits if sets else hits.cumsum(dim=1)
    expected = counts[where] > 0  # (P, N)
    expected[torch.arange(len(targets)), targets] = False
    assert torch.equal(model.seen_items(history, where, targets), expected)
