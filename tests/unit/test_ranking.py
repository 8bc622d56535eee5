"""Full-ranking top-K metrics, the ranking evaluator and the results report."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import torch
from rich.console import Console
from sklearn.metrics import ndcg_score

from mtlrec.evaluation.ranking import (
    RankingEvaluator,
    UserItems,
    merge_slices,
    rank_metrics,
    sampled_rank_metrics,
    scores_from_matrix,
)
from mtlrec.evaluation.results import load_results, print_results, results_to_json

LOG3, LOG6 = math.log2(3), math.log2(6)

# user 0 ranks items 0..5 in order; user 1 ranks them 5..0; user 2 has nothing relevant
SCORES = torch.tensor(
    [
        [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        [0.3, 0.1, 0.2, 0.6, 0.5, 0.4],
    ]
)
TARGETS = [[1, 4], [3], []]


def test_hand_computed_two_users() -> None:
    got = rank_metrics(SCORES, TARGETS, ks=(1, 3, 5))
    # user 0: hits at ranks 2 and 5 (|R| = 2); user 1: hit at rank 3 (|R| = 1)
    u0: dict[int, dict[str, float]] = {
        1: dict(hr=0, recall=0, ndcg=0, mrr=0),
        3: dict(hr=1, recall=0.5, ndcg=(1 / LOG3) / (1 + 1 / LOG3), mrr=0.5),
        5: dict(hr=1, recall=1, ndcg=(1 / LOG3 + 1 / LOG6) / (1 + 1 / LOG3), mrr=0.5),
    }
    u1: dict[int, dict[str, float]] = {
        1: dict(hr=0, recall=0, ndcg=0, mrr=0),
        3: dict(hr=1, recall=1, ndcg=0.5, mrr=1 / 3),
        5: dict(hr=1, recall=1, ndcg=0.5, mrr=1 / 3),
    }
    assert got["n_users"] == 2  # user 2 has no relevant item and is not averaged
    for k in (1, 3, 5):
        for metric in ("hr", "recall", "ndcg", "mrr"):
            want = (u0[k][metric] + u1[k][metric]) / 2
            assert got[f"{metric}@{k}"] == pytest.approx(want), f"{metric}@{k}"
    assert list(got) == ["n_users"] + [
        f"{m}@{k}" for m in ("hr", "recall", "ndcg", "mrr") for k in (1, 3, 5)
    ]


def test_recall_divides_by_all_relevant_items_not_by_k() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6]])
    got = rank_metrics(scores, [[0, 1, 2]], ks=(2,))
    assert got["recall@2"] == pytest.approx(2 / 3)  # not 2 / min(3, 2) = 1
    assert got["ndcg@2"] == pytest.approx(1.0)  # ideal DCG over min(|R|, K) = 2 items
    assert got["hr@2"] == 1.0 and got["mrr@2"] == 1.0


def test_excluded_training_item_is_skipped() -> None:
    # user 0's top item (0) is a training item: item 1 moves to rank 1
    got = rank_metrics(SCORES[:1], [[1, 4]], exclude=[[0]], ks=(1, 4))
    assert got["hr@1"] == 1.0 and got["mrr@1"] == 1.0 and got["ndcg@1"] == 1.0
    assert got["recall@1"] == pytest.approx(0.5)
    # item 4 is now at rank 4 (0 is gone): both hits within K = 4
    assert got["recall@4"] == 1.0
    assert got["ndcg@4"] == pytest.approx((1 + 1 / math.log2(5)) / (1 + 1 / LOG3))
    without = rank_metrics(SCORES[:1], [[1, 4]], ks=(1,))
    assert without["hr@1"] == 0.0


def test_relevant_items_that_are_excluded_do_not_count() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.2], [0.5, 0.4, 0.3, 0.2]])
    # user 0: relevant {0, 2}, 0 excluded -> only 2 is relevant; user 1: its only relevant
    # item is excluded -> the user is not averaged at all
    got = rank_metrics(scores, [[0, 2], [1]], exclude=[[0], [1]], ks=(3,))
    assert got["n_users"] == 1
    # user 0 ranking after exclusion: 1, 3, 2 -> item 2 at rank 3, |R| = 1
    assert got["recall@3"] == 1.0
    assert got["mrr@3"] == pytest.approx(1 / 3)
    assert got["ndcg@3"] == pytest.approx(0.5)


def test_k_larger_than_the_catalogue_and_no_relevant_users() -> None:
    got = rank_metrics(SCORES, TARGETS, ks=(50,))
    assert got["hr@50"] == 1.0 and got["recall@50"] == 1.0
    empty = rank_metrics(SCORES, [[], [], []], ks=(5,))
    assert empty["n_users"] == 0 and math.isnan(empty["hr@5"])


def _reference(
    scores: np.ndarray, targets: list[list[int]], exclude: list[list[int]], k: int
) -> dict[str, float]:
    """Plain per-user loop with numpy sorting."""
    sums = {"hr": 0.0, "recall": 0.0, "ndcg": 0.0, "mrr": 0.0}
    users = 0
    for u, row in enumerate(scores):
        row = row.copy()
        row[exclude[u]] = -np.inf
        relevant = set(targets[u]) - set(exclude[u])
        if not relevant:
            continue
        users += 1
        top = list(np.argsort(-row, kind="stable")[:k])
        ranks = [r + 1 for r, item in enumerate(top) if item in relevant]
        sums["hr"] += float(bool(ranks))
        sums["recall"] += len(ranks) / len(relevant)
        ideal = sum(1 / math.log2(r + 1) for r in range(1, min(len(relevant), k) + 1))
        sums["ndcg"] += sum(1 / math.log2(r + 1) for r in ranks) / ideal
        sums["mrr"] += 1 / ranks[0] if ranks else 0.0
    return {f"{m}@{k}": s / users for m, s in sums.items()}


def _random_case(
    seed: int, n_users: int = 40, n_items: int = 60
) -> tuple[torch.Tensor, list[list[int]], list[list[int]]]:
    rng = np.random.default_rng(seed)
    scores = torch.from_numpy(rng.normal(size=(n_users, n_items)))
    targets, exclude = [], []
    for _ in range(n_users):
        items = rng.permutation(n_items)
        n_rel, n_ex = int(rng.integers(1, 15)), int(rng.integers(0, 10))
        targets.append(items[:n_rel].tolist())
        # some excluded items overlap the relevant ones
        exclude.append(items[max(0, n_rel - 2) : n_rel - 2 + n_ex].tolist())
    return scores, targets, exclude


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 5, 10, 20])
def test_ndcg_matches_sklearn_without_exclusions(seed: int, k: int) -> None:
    scores, targets, _ = _random_case(seed)
    relevance = np.zeros(tuple(scores.shape))
    for u, items in enumerate(targets):
        relevance[u, items] = 1.0
    got = rank_metrics(scores, targets, ks=(k,))
    assert got["n_users"] == scores.shape[0]
    assert got[f"ndcg@{k}"] == pytest.approx(ndcg_score(relevance, scores.numpy(), k=k), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_all_metrics_match_a_per_user_loop_with_exclusions(seed: int) -> None:
    scores, targets, exclude = _random_case(seed)
    got = rank_metrics(scores, targets, exclude=exclude, ks=(3, 10))
    for k in (3, 10):
        for name, value in _reference(scores.numpy(), targets, exclude, k).items():
            assert got[name] == pytest.approx(value, abs=1e-12), name


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 16])
def test_chunked_equals_unchunked(chunk_size: int) -> None:
    scores, targets, exclude = _random_case(11, n_users=37)
    whole = rank_metrics(scores, targets, exclude=exclude, chunk_size=10_000)
    chunked = rank_metrics(scores, targets, exclude=exclude, chunk_size=chunk_size)
    assert chunked.keys() == whole.keys()
    for name, value in whole.items():
        assert chunked[name] == pytest.approx(value, abs=1e-12), name


def test_csr_inputs_are_equivalent_to_lists() -> None:
    scores, targets, exclude = _random_case(3, n_users=12, n_items=20)

    def csr(lists: list[list[int]]) -> sp.csr_matrix:
        rows = [u for u, items in enumerate(lists) for _ in items]
        cols = [i for items in lists for i in items]
        return sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(12, 20))

    from_lists = rank_metrics(scores, targets, exclude=exclude)
    from_scipy = rank_metrics(scores, csr(targets), exclude=csr(exclude))
    users = torch.tensor([u for u, items in enumerate(targets) for _ in items])
    items = torch.tensor([i for its in targets for i in its])
    from_pairs = rank_metrics(
        scores,
        UserItems.from_pairs(users, items, n_users=12),
        exclude=UserItems.from_lists(exclude),
    )
    for name, value in from_lists.items():
        assert from_scipy[name] == pytest.approx(value, abs=1e-12)
        assert from_pairs[name] == pytest.approx(value, abs=1e-12)


def test_user_items_validation_and_dense_rows() -> None:
    ui = UserItems.from_lists([[2, 0], [], [1, 1]])
    assert ui.dense(torch.tensor([2, 0, 5]), 3).tolist() == [
        [False, True, False],
        [True, False, True],
        [False, False, False],
    ]
    with pytest.raises(ValueError, match="indices must lie"):
        ui.dense(torch.tensor([0]), 2)
    with pytest.raises(ValueError, match="indptr"):
        UserItems(torch.tensor([0, 3]), torch.tensor([1]))
    with pytest.raises(ValueError, match="nan"):
        rank_metrics(torch.tensor([[float("nan"), 1.0]]), [[0]])


# --------------------------------------------------------------------------- evaluator


def test_evaluator_cold_and_warm_slices_hand_computed() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    train = pl.DataFrame({"user_idx": [0, 1], "item_idx": [0, 5]})
    # user 0: item 2 warm, item 4 cold; user 1: item 3 warm only
    test = pl.DataFrame(
        {"user_idx": [0, 0, 1], "item_idx": [2, 4, 3], "cold_item": [False, True, False]}
    )
    out = RankingEvaluator(
        scores_from_matrix(scores), test, train, cold="cold_item", ks=(5,)
    ).evaluate()
    assert list(out) == ["all", "warm", "cold"]
    # all: user 0 ranks 1,2,3,4,5 -> hits at ranks 2 and 4; user 1 ranks 4,3,.. -> rank 2
    assert out["all"]["n_users"] == 2
    assert out["all"]["mrr@5"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert out["all"]["recall@5"] == 1.0
    # warm: user 0's cold item 4 is masked -> item 2 at rank 2; user 1 as before
    assert out["warm"]["n_users"] == 2
    assert out["warm"]["mrr@5"] == pytest.approx(1 / 2)
    # cold: only user 0; warm item 2 masked -> ranking 1, 3, 4 -> item 4 at rank 3
    assert out["cold"]["n_users"] == 1
    assert out["cold"]["mrr@5"] == pytest.approx(1 / 3)
    assert out["cold"]["ndcg@5"] == pytest.approx(0.5)


def test_evaluator_equals_rank_metrics_and_is_chunk_invariant() -> None:
    scores, targets, exclude = _random_case(5, n_users=30, n_items=50)
    # user 7 has no test pairs and must not be scored
    targets[7] = []
    test = (
        [u for u, items in enumerate(targets) for _ in items],
        np.array([i for items in targets for i in items]),
    )
    train = pl.DataFrame(
        {
            "u": [u for u, items in enumerate(exclude) for _ in items],
            "i": [i for items in exclude for i in items],
        }
    )
    seen_chunks: list[list[int]] = []

    def score_fn(user_idx: torch.Tensor) -> torch.Tensor:
        seen_chunks.append(user_idx.tolist())
        return scores[user_idx]

    want = rank_metrics(scores, targets, exclude=exclude)
    train_pairs = (train["u"], train["i"])
    for chunk_size in (4, 64):
        seen_chunks.clear()
        out = RankingEvaluator(score_fn, test, train_pairs, chunk_size=chunk_size).evaluate()
        assert list(out) == ["all"]
        for name, value in want.items():
            assert out["all"][name] == pytest.approx(value, abs=1e-12), name
        assert all(len(c) <= chunk_size for c in seen_chunks)
        assert sorted(u for c in seen_chunks for u in c) == [u for u in range(30) if u != 7]
    framed = RankingEvaluator(
        score_fn, pl.DataFrame({"u": test[0], "i": test[1]}), train, user_col="u", item_col="i"
    ).evaluate()
    assert framed["all"] == pytest.approx(want)


def test_evaluator_cold_flags_partition_the_test_pairs() -> None:
    scores, targets, exclude = _random_case(9, n_users=25, n_items=40)
    users = [u for u, items in enumerate(targets) for _ in items]
    items = [i for its in targets for i in its]
    cold = np.random.default_rng(0).random(len(items)) < 0.3
    out = RankingEvaluator(
        scores_from_matrix(scores),
        (users, items),
        (
            torch.tensor([u for u, its in enumerate(exclude) for _ in its]),
            torch.tensor([i for its in exclude for i in its]),
        ),
        cold=cold,
        ks=(10,),
        chunk_size=6,
    ).evaluate()

    def by_user(flag: bool) -> tuple[list[list[int]], list[list[int]]]:
        keep: list[list[int]] = [[] for _ in range(25)]
        other: list[list[int]] = [[] for _ in range(25)]
        for u, i, c in zip(users, items, cold, strict=True):
            (keep if bool(c) == flag else other)[u].append(i)
        return keep, other

    for name, flag in (("cold", True), ("warm", False)):
        keep, other = by_user(flag)
        want = rank_metrics(
            scores, keep, exclude=[ex + ot for ex, ot in zip(exclude, other, strict=True)], ks=(10,)
        )
        assert out[name] == pytest.approx(want)
    assert out["cold"]["n_users"] + out["warm"]["n_users"] >= out["all"]["n_users"]
    with pytest.raises(ValueError, match="flags"):
        RankingEvaluator(scores_from_matrix(scores), (users, items), cold=cold[:3]).evaluate()


def test_evaluator_rejects_bad_score_shapes() -> None:
    with pytest.raises(ValueError, match="score_fn returned"):
        RankingEvaluator(lambda u: torch.zeros(u.numel() + 1, 4), ([0, 1], [1, 2])).evaluate()


# --------------------------------------------------------------------------- sampled


def test_sampled_metrics_are_prefixed_and_count_ties_against_the_positive() -> None:
    pos = torch.tensor([0.5, 0.9])
    neg = torch.tensor([[0.9, 0.1, 0.5], [0.1, 0.2, float("-inf")]])
    got = sampled_rank_metrics(pos, neg, ks=(1, 3))
    # positive 0: two negatives >= 0.5 -> rank 2 (0-based); positive 1: rank 0
    assert got["n_positives"] == 2
    assert got["sampled_hr@1"] == pytest.approx(0.5)
    assert got["sampled_hr@3"] == pytest.approx(1.0)
    assert got["sampled_ndcg@3"] == pytest.approx((1 / math.log2(4) + 1) / 2)
    assert got["sampled_mrr@3"] == pytest.approx((1 / 3 + 1) / 2)
    assert all(k == "n_positives" or k.startswith("sampled_") for k in got)
    constant = sampled_rank_metrics(torch.zeros(4), torch.zeros(4, 9), ks=(5,))
    assert constant["sampled_hr@5"] == 0.0


# --------------------------------------------------------------------------- report


def _results() -> dict[str, dict[str, dict[str, float]]]:
    ranking = {
        "all": {"n_users": 943, "hr@10": 0.61, "ndcg@10": 0.3},
        "cold": {"n_users": 12, "hr@10": float("nan"), "ndcg@10": 0.1},
    }
    return {
        "valid": {
            "like": {"n": 812, "auc": 0.79123, "logloss": 0.5, "accuracy": 0.7},
            "rating": {"n": 800, "rmse": 0.91, "mae": 0.72},
            **merge_slices(ranking),
        },
        "test": {"like": {"n": 10, "auc": float("nan"), "logloss": 0.6, "accuracy": 0.5}},
    }


def test_results_json_round_trip_with_nan_as_null(tmp_path: Path) -> None:
    path = results_to_json(_results(), tmp_path / "out" / "metrics.json")
    raw = json.loads(path.read_text())
    assert raw["test"]["like"]["auc"] is None
    assert raw["valid"]["ranking/all"]["n_users"] == 943
    back = load_results(path)
    assert math.isnan(back["test"]["like"]["auc"])
    assert back["valid"]["like"] == _results()["valid"]["like"]


def test_print_results_renders_task_tables_per_kind_then_ranking() -> None:
    console = Console(file=io.StringIO(), width=200, record=True)
    print_results(console, _results())
    text = console.export_text()
    titles = [
        line.strip()
        for line in text.splitlines()
        if line.strip() in {"valid", "valid - ranking", "test"}
    ]
    # like and rating have other metrics: a table each, so no table is the union of both
    assert titles == ["valid", "valid", "valid - ranking", "test"]
    assert "0.7912" in text and "812" in text
    # the ranking table: slices as columns, metric@K as rows (the user count first)
    ranking = text.split("valid - ranking")[1].split("test")[0]
    header = next(line for line in ranking.splitlines() if "ranking/all" in line)
    assert header.index("ranking/all") < header.index("ranking/cold")
    names = [line.split()[1] for line in ranking.splitlines() if line.startswith("│")]
    assert names == ["n_users", "hr@10", "ndcg@10"]
    hr_row = next(line for line in ranking.splitlines() if "hr@10" in line)
    assert "0.6100" in hr_row and "-" in hr_row  # cold hr@10 is undefined
    rating_row = next(line for line in text.splitlines() if "rating" in line)
    assert "0.9100" in rating_row and "0.7200" in rating_row


def test_results_read_whole_at_100_columns() -> None:
    ks = (5, 10, 20)
    slice_metrics = {
        f"{m}@{k}": 0.123456
        for m in ("hr", "recall", "ndcg", "mrr", "coverage", "diversity", "novelty", "arp")
        for k in ks
    }
    rows = {
        "like": {"n": 10_000, "auc": 0.7, "logloss": 0.6, "accuracy": 0.6},
        "rating": {"n": 10_000, "rmse": 1.0, "mae": 0.8},
        "genres": {"n": 10_000, "micro_f1": 0.7, "macro_f1": 0.4, "auc": 0.9, "map": 0.7},
        "genres (cold items)": {"n": 18, "micro_f1": 0.3, "macro_f1": 0.1, "auc": 0.7, "map": 0.5},
        **{f"ranking ({s})": {"n_users": 943, **slice_metrics} for s in ("all", "warm", "cold")},
    }
    console = Console(file=io.StringIO(), width=100, record=True)
    print_results(console, {"test": rows})
    text = console.export_text()
    assert "…" not in text  # nothing cut
    assert max(len(line) for line in text.splitlines()) <= 100
    for name in (*slice_metrics, "macro_f1", "logloss", "genres (cold items)"):
        assert name in text, name


def test_print_results_splits_ranking_columns_by_family() -> None:
    rows = {
        "ranking (all)": {"n_users": 9, "ndcg@10": 0.3, "coverage@10": 0.2, "novelty@10": 3.0},
        "retrieval": {"n_users": 9, "candidate_recall@100x2": 0.8},
    }
    console = Console(file=io.StringIO(), width=200, record=True)
    print_results(console, {"test": rows})
    text = console.export_text()
    titles = [line.strip() for line in text.splitlines() if line.strip().startswith("test -")]
    assert titles == ["test - ranking", "test - beyond accuracy", "test - other"]
    blocks = text.split("test - ")
    assert "ndcg@10" in blocks[1] and "coverage@10" not in blocks[1]
    assert "coverage@10" in blocks[2] and "novelty@10" in blocks[2] and "9" in blocks[2]
    assert "candidate_recall@100x2" in blocks[3] and "0.8000" in blocks[3]
