"""``ServingModel`` on real tiny artifacts: each recommendation path, filters, scores."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mtlrec.export.artifact import load_artifact
from mtlrec.models.scoring import pair_scores
from mtlrec.serving.catalogue import Catalogue, ItemAttribute, cooccurrence_similarity
from mtlrec.serving.engine import ServingModel, UnknownItemsError
from mtlrec.serving.filters import FilterError, attribute_mask
from mtlrec.serving.schemas import Filters, Pair, RecommendRequest, ScoreRequest
from serving_support import TinyServing


@pytest.fixture(scope="module")
def fused(tiny_serving: TinyServing) -> ServingModel:
    return ServingModel(load_artifact(tiny_serving.fused))


@pytest.fixture(scope="module")
def plain(tiny_serving: TinyServing) -> ServingModel:
    return ServingModel(load_artifact(tiny_serving.plain))


def _ids(response: object) -> list[str]:
    return [item.item_id for item in response.items]  # type: ignore[attr-defined]


def test_cooccurrence_similarity_is_the_item_cosine() -> None:
    train = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0], [0, 0, 1]], np.float32))
    got = cooccurrence_similarity(train).toarray()
    x = train.toarray()
    norms = np.linalg.norm(x, axis=0)
    expected = (x.T @ x) / np.outer(norms, norms)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_known_user_gets_the_fused_cascade_list(fused: ServingModel) -> None:
    artifact = fused.artifact
    assert artifact.fused is not None
    row = 3
    user = fused.catalogue.user_ids[row]
    response = fused.recommend(RecommendRequest(user_id=user, k=5))
    assert response.strategy == "fused" and response.known_user
    # the cascade itself, with everything the user ever interacted with excluded
    seen = fused.catalogue.history(row)
    exclude = np.zeros((1, fused.catalogue.n_items), dtype=bool)
    exclude[0, seen] = True
    out = artifact.fused.cascade.run(np.array([row]), exclude, 5)
    expected = [fused.catalogue.item_ids[i] for i in out.items[0] if i >= 0]
    assert _ids(response)[: len(expected)] == expected
    seen_ids = {fused.catalogue.item_ids[i] for i in seen}
    assert not seen_ids & set(_ids(response))
    first = response.items[0]
    assert set(first.scores) == {"interest", "rating", "sentiment"}
    assert first.fused is not None and first.retrieved_by
    assert first.reason.startswith("retrieved by ")
    assert set(first.sources) <= {"popularity", "item_knn"}
    # the heads' values are the model's own predictions for the pair
    heads = pair_scores(
        artifact.model,
        artifact.entities,
        torch.tensor([row]),
        torch.tensor([fused.catalogue.item_row[first.item_id]]),
        ["interest", "rating"],
    )
    assert first.scores["interest"] == pytest.approx(float(heads["interest"][0]), abs=1e-6)
    assert first.scores["rating"] == pytest.approx(float(heads["rating"][0]), abs=1e-6)


def test_lists_longer_than_the_fitted_rerank_and_filters(fused: ServingModel) -> None:
    user = fused.catalogue.user_ids[0]
    assert fused.cascade is not None and fused.cascade.reranker is not None
    k = fused.cascade.reranker.k + 7  # beyond the MMR list length the cascade was fitted with
    response = fused.recommend(RecommendRequest(user_id=user, k=k))
    assert len(response.items) == k and len(set(_ids(response))) == k
    assert [item.rank for item in response.items] == list(range(1, k + 1))

    allowed = fused.catalogue.item_ids[:12]
    banned = _ids(response)[:2]
    filtered = fused.recommend(
        RecommendRequest(
            user_id=user,
            k=k,
            filters=Filters(include_items=[*allowed, "not-an-item"], exclude_items=banned),
        )
    )
    history = set(fused.history(user).items)
    assert set(_ids(filtered)) == set(allowed) - set(banned) - history  # all that is left
    everything = fused.recommend(
        RecommendRequest(user_id=user, k=30, filters=Filters(exclude_seen=False))
    )
    assert history <= set(_ids(everything))  # seen items may come back when asked


def test_plain_artifact_ranks_by_the_ranking_task(plain: ServingModel) -> None:
    assert plain.cascade is None and plain.ranking_task == "interest"
    row = 5
    user = plain.catalogue.user_ids[row]
    response = plain.recommend(RecommendRequest(user_id=user, k=4))
    assert response.strategy == "model"
    unseen = np.setdiff1d(np.arange(plain.catalogue.n_items), plain.catalogue.history(row))
    values = pair_scores(
        plain.artifact.model,
        plain.artifact.entities,
        torch.full((len(unseen),), row),
        torch.from_numpy(unseen),
        ["interest"],
    )["interest"].numpy()
    best = unseen[np.argsort(-values, kind="stable")[:4]]
    assert _ids(response) == [plain.catalogue.item_ids[i] for i in best]
    for item in response.items:
        assert item.fused == pytest.approx(item.scores["interest"], abs=1e-6)
        assert item.reason.startswith("predicted interest ")


def test_cold_start_with_and_without_history(fused: ServingModel) -> None:
    catalogue = fused.catalogue
    history = [catalogue.item_ids[i] for i in catalogue.history(0)[:3]]
    response = fused.recommend(RecommendRequest(history=[*history, "no-such-item"], k=5))
    assert response.strategy == "cold_history" and not response.known_user
    assert response.ignored_history == ["no-such-item"]
    assert len(response.items) == 5 and not set(history) & set(_ids(response))
    assert any(item.reason.startswith("similar to ") for item in response.items)
    named = {r.split(" ")[2] for r in (i.reason for i in response.items) if "similar" in r}
    assert named <= set(history)  # a reason names an item of the given history
    assert set(response.items[0].scores) == {"interest", "rating", "sentiment"}

    nobody = fused.recommend(RecommendRequest(k=5))
    assert nobody.strategy == "popularity"
    expected = [catalogue.item_ids[i] for i in catalogue.popular[:5]]
    assert _ids(nobody) == expected
    assert all(item.reason.startswith("popular: ") for item in nobody.items)
    unknown_only = fused.recommend(RecommendRequest(user_id="someone new", history=["x"], k=3))
    assert unknown_only.strategy == "popularity" and unknown_only.ignored_history == ["x"]


def test_score_known_and_unknown_users(plain: ServingModel) -> None:
    catalogue = plain.catalogue
    pairs = [
        Pair(user_id=catalogue.user_ids[1], item_id=catalogue.item_ids[2]),
        Pair(user_id="new user", item_id=catalogue.item_ids[2]),
    ]
    response = plain.score(ScoreRequest(pairs=pairs))
    assert response.tasks == ["interest", "rating", "sentiment"]
    known, unknown = response.predictions
    assert known.known_user and not unknown.known_user
    expected = pair_scores(
        plain.artifact.model,
        plain.artifact.entities,
        torch.tensor([1]),
        torch.tensor([2]),
        ["interest", "rating", "sentiment"],
    )
    for task, value in expected.items():
        assert known.scores[task] == pytest.approx(float(value[0]), abs=1e-6)
    assert set(unknown.scores) == set(expected) and 0.0 <= unknown.scores["interest"] <= 1.0
    with pytest.raises(UnknownItemsError, match="'nope'"):
        plain.score(ScoreRequest(pairs=[Pair(user_id="u", item_id="nope")]))


def test_similar_items_by_embedding_or_cooccurrence(
    fused: ServingModel, plain: ServingModel
) -> None:
    item = fused.catalogue.item_ids[4]
    by_vectors = fused.similar(item, 5)
    assert by_vectors.method == "embedding" and len(by_vectors.items) == 5
    assert item not in [s.item_id for s in by_vectors.items]
    scores = [s.score for s in by_vectors.items]
    assert scores == sorted(scores, reverse=True)
    by_counts = plain.similar(item, 5)  # no item embeddings in a plain tiny artifact
    assert by_counts.method == "cooccurrence" and by_counts.items
    row = plain.catalogue.similarity[4].toarray()[0]
    top = plain.catalogue.item_ids[int(np.argmax(row))]
    assert by_counts.items[0].item_id == top
    with pytest.raises(KeyError):
        plain.similar("nope", 3)


def test_attribute_filters() -> None:
    catalogue = Catalogue(
        user_ids=[],
        item_ids=["a", "b", "c"],
        user_row={},
        item_row={"a": 0, "b": 1, "c": 2},
        seen=sp.csr_matrix((0, 3)),
        popularity=np.zeros(3, np.float32),
        popular=np.arange(3),
        similarity=sp.csr_matrix((3, 3)),
        vectors=None,
        index=None,
        attributes={
            "genres": ItemAttribute(
                np.array([[1, 2], [2, 0], [3, 0]]), {"<unk>": 0, "x": 1, "y": 2, "z": 3}
            )
        },
    )
    np.testing.assert_array_equal(attribute_mask(catalogue, {"genres": ["y"]}), [True, True, False])
    np.testing.assert_array_equal(attribute_mask(catalogue, {"genres": ["z", "?"]}), [0, 0, 1])
    with pytest.raises(FilterError, match="'brand' is not a categorical item attribute"):
        attribute_mask(catalogue, {"brand": ["x"]})


def test_large_catalogues_score_candidates_only(tiny_serving: TinyServing) -> None:
    limited = ServingModel(load_artifact(tiny_serving.plain), full_rank_limit=5, candidates=6)
    row = 2
    history = limited.catalogue.history(row)
    exclude = np.zeros(limited.catalogue.n_items, dtype=bool)
    exclude[history] = True
    pool = limited._model_candidates(history, exclude)
    assert 0 < len(pool) <= 12 and not set(pool) & set(history)  # 6 + 6 at most, unseen
    response = limited.recommend(RecommendRequest(user_id=limited.catalogue.user_ids[row], k=5))
    assert response.strategy == "model" and len(response.items) == 5
    assert {limited.catalogue.item_row[i.item_id] for i in response.items[:4]} <= set(pool)
