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
