import numpy as np

from tgir.eval.metrics import recall_at_k, topk_excluding


def test_source_is_excluded_and_order_is_by_score():
    scores = np.array([[0.9, 0.1, 0.5, 0.7],
                       [0.2, 0.8, 0.3, 0.1]], dtype=np.float32)
    top = topk_excluding(scores, 3, np.array([0, -1]))
    assert top.tolist() == [[3, 2, 1], [1, 2, 0]]


def test_recall_hand_checked_with_duplicates():
    labels = np.array([10, 11, 12, 11, 13])  # items 1 and 3 are the same scene
    scores = np.array([
        [1.0, 0.2, 0.9, 0.8, 0.1],  # source 0 (excluded); target label 11 -> item 3 at rank 2
        [0.1, 0.9, 0.2, 0.3, 0.95],  # source 4 excluded; target 12 -> item 2 at rank 3
        [0.5, 0.4, 0.3, 0.2, 0.1],  # source 0 excluded; target 10 -> only the source has it
    ], dtype=np.float32)
    exclude = np.array([0, 4, 0])
    target_labels = np.array([11, 12, 10])
    top = topk_excluding(scores, 4, exclude)
    r = recall_at_k(labels[top], target_labels, ks=(1, 2, 3, 4))
    assert r == {"R@1": 0.0, "R@2": 1 / 3, "R@3": 2 / 3, "R@4": 2 / 3}


def test_duplicate_of_target_counts_as_hit():
    labels = np.array([1, 2, 2])
    top = topk_excluding(np.array([[0.0, 0.1, 0.9]], np.float32), 1, np.array([0]))
    assert top.tolist() == [[2]]
    assert recall_at_k(labels[top], np.array([2]), ks=(1,))["R@1"] == 1.0


def test_minp_ap_and_precision_at_k_hand_computed():
    from tgir.eval.metrics import (
        average_precision,
        cmc_and_map,
        inverse_negative_penalty,
        precision_at_k,
    )

    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5],
                       [0.1, 0.2, 0.3, 0.4, 0.5]])
    rel = np.array([[True, False, True, False, False],   # hits at ranks 1 and 3
                    [False, False, False, False, False]])  # no relevant item: left out
    # INP = |relevant| / rank of the last relevant = 2 / 3; AP = (1/1 + 2/3) / 2
    assert np.isclose(inverse_negative_penalty(scores, rel)[0], 2 / 3)
    assert np.isnan(inverse_negative_penalty(scores, rel)[1])
    assert np.isclose(average_precision(scores, rel)[0], (1 + 2 / 3) / 2)
    assert np.isclose(precision_at_k(scores, rel, 2)[0], 0.5)
    assert np.isclose(precision_at_k(scores, rel, 3)[0], 2 / 3)
    m = cmc_and_map(scores, rel, ks=(1, 5), chunk=1)
    assert np.isclose(m["mINP"], 2 / 3) and m["R@1"] == 1.0 and np.isclose(m["mAP"], 5 / 6)
    # chunking gives the same numbers as one block
    rng = np.random.default_rng(0)
    s, r = rng.random((37, 50)), rng.random((37, 50)) < 0.1
    assert cmc_and_map(s, r, chunk=5) == cmc_and_map(s, r, chunk=1000)


def test_recall_past_the_gallery_size_when_the_ranking_is_complete():
    ranked = np.array([[3, 1, 2], [2, 3, 1]])
    assert recall_at_k(ranked, np.array([1, 9]), ks=(1, 10)) == {"R@1": 0.0}
    assert recall_at_k(ranked, np.array([1, 9]), ks=(1, 10), complete=True) == \
        {"R@1": 0.0, "R@10": 0.5}
