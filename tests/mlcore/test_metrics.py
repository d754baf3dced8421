import numpy as np
import pytest

from mlcore.data import CatalogItem
from mlcore.evaluation import retrieval_report
from mlcore.metrics import precision_at_k, precision_ceiling, relevance_matrix, retrieval_metrics


def brute_force(similarity, relevant):
    first_ranks, average_precisions = [], []
    for query in range(similarity.shape[0]):
        scores = similarity[query]
        # rank of gallery item j = 1 + number of items scored strictly higher, ties broken by index
        ranks = [
            1
            + sum(
                1 for k in range(len(scores)) if scores[k] > scores[j] or (scores[k] == scores[j] and k < j)
            )
            for j in range(len(scores))
        ]
        first_ranks.append(min(ranks[j] for j in range(len(scores)) if relevant[query, j]))
        ordered = sorted(range(len(scores)), key=lambda j: ranks[j])[:10]
        hits, total = 0, 0.0
        for position, j in enumerate(ordered, start=1):
            if relevant[query, j]:
                hits += 1
                total += hits / position
        average_precisions.append(total / min(10, relevant[query].sum()))
    first_ranks = np.array(first_ranks)
    return {
        "R@1": 100 * np.mean(first_ranks <= 1),
        "R@5": 100 * np.mean(first_ranks <= 5),
        "R@10": 100 * np.mean(first_ranks <= 10),
        "medr": float(np.median(first_ranks)),
        "meanr": float(first_ranks.mean()),
        "mAP@10": 100 * float(np.mean(average_precisions)),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrieval_metrics_match_brute_force_on_seeded_embeddings(seed):
    # Given seeded embeddings and identity keys with some duplicated titles
    rng = np.random.default_rng(seed)
    text, image = rng.normal(size=(40, 8)), rng.normal(size=(40, 8))
    keys = [f"title {i % 31}" for i in range(40)]
    relevant = relevance_matrix(keys, keys)
    similarity = text @ image.T
    # When / then
    for direction, matrix in (("t2i", similarity), ("i2t", similarity.T)):
        expected = brute_force(matrix, relevant)
        got = retrieval_metrics(matrix, relevant)
        for name, value in expected.items():
            assert got[name] == pytest.approx(value), (direction, name)


def test_precision_at_10_and_its_ceiling_match_brute_force():
    rng = np.random.default_rng(3)
    similarity = rng.normal(size=(30, 30))
    labels = [("Shirts", "Blue", "Men") if i % 3 else ("Shoes", "Red", "Women") for i in range(30)]
    labels[0] = ("Socks", "Pink", "Women")  # a group of one: its ceiling is 0.1
    expected = np.mean(
        [
            np.mean([labels[j] == labels[q] for j in np.argsort(-similarity[q], kind="stable")[:10]])
            for q in range(30)
        ]
    )
    assert precision_at_k(similarity, labels, labels) == pytest.approx(expected)
    expected_ceiling = np.mean([min(10, sum(label == labels[q] for label in labels)) / 10 for q in range(30)])
    assert precision_ceiling(labels, labels) == pytest.approx(expected_ceiling)
    assert precision_ceiling(labels, labels) < 1.0


def test_perfect_embeddings_score_full_marks_and_same_title_counts_as_relevant():
    # Given two products sharing a title (case differs) and identical embeddings for every photo/title pair
    items = [
        CatalogItem(str(i), title, f"{i}.jpg", article_type="Shirts", colour="Blue", gender="Men")
        for i, title in enumerate(["Blue Shirt", "BLUE shirt", "Red Shoe", "Green Cap"])
    ]
    embeddings = np.eye(4, dtype=np.float32)
    embeddings[1] = embeddings[0]
    report = retrieval_report(embeddings, embeddings, items)
    assert report["t2i"]["R@1"] == 100.0 and report["i2t"]["R@1"] == 100.0
    assert report["gallery"] == 4
    assert set(report["t2i"]) == {"R@1", "R@5", "R@10", "medr", "meanr", "mAP@10"}


def test_queries_without_any_relevant_item_are_rejected():
    with pytest.raises(ValueError):
        retrieval_metrics(np.zeros((2, 2)), np.array([[True, False], [False, False]]))


def test_the_paired_standard_error_is_that_of_the_mean_difference_averaged_over_kinds():
    from mlcore.shop_queries import paired_difference_standard_error

    new = {"title": [1.0, 0.5, 1.0, 0.0], "attributes": [1.0, 1.0]}
    active = {"title": [0.5, 0.5, 0.5, 0.5], "attributes": [0.0, 1.0]}
    title = np.array([0.5, 0.0, 0.5, -0.5])
    attributes = np.array([1.0, 0.0])
    expected = np.sqrt(title.var(ddof=1) / 4 + attributes.var(ddof=1) / 2) / 2

    assert paired_difference_standard_error(new, active) == pytest.approx(expected)
    assert paired_difference_standard_error(new, new) == 0.0
