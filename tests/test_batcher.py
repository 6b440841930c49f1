"""Concurrent single-query searches merged into one index call (issue 10)."""

import threading

import numpy as np
import pytest

from tgir.search.batcher import SearchBatcher


def _exact(db):
    def search(q, k):
        s = q @ db.T
        rows = np.argsort(-s, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(s, rows, 1), rows
    return search


def test_concurrent_queries_get_their_own_exact_answers_in_fewer_calls():
    rng = np.random.default_rng(0)
    db = rng.standard_normal((500, 16)).astype(np.float32)
    qs = rng.standard_normal((40, 16)).astype(np.float32)
    exact = _exact(db)
    b = SearchBatcher(exact, max_batch=16, wait_s=0.02)
    out: dict[int, tuple] = {}

    def ask(i):
        out[i] = b.search(qs[i:i + 1], 3 + i % 4)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(qs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(out) == len(qs)
    for i, (s, r) in out.items():
        es, er = exact(qs[i:i + 1], 3 + i % 4)
        assert np.array_equal(r, er) and np.allclose(s, es)
    assert b.queries == len(qs) and b.calls < len(qs)  # merged
    # several rows at once bypass the queue
    assert b.search(qs[:5], 2)[1].shape == (5, 2)


def test_an_error_reaches_every_waiting_caller():
    def broken(q, k):
        raise RuntimeError("index gone")

    b = SearchBatcher(broken, wait_s=0.01)
    errors = []

    def ask():
        try:
            b.search(np.zeros((1, 4), np.float32), 1)
        except RuntimeError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert errors == ["index gone"] * 6
    with pytest.raises(RuntimeError):  # and the batcher still works afterwards
        b.search(np.zeros((1, 4), np.float32), 1)


def test_small_batch_blas_path_equals_the_faiss_scan(monkeypatch):
    import faiss

    from tgir.search.backends import FaissIndex

    rng = np.random.default_rng(1)
    v = rng.standard_normal((3000, 32)).astype(np.float32)
    v[7] = v[3]  # a tie: either order is right
    ix = faiss.IndexFlatIP(32)
    ix.add(v)
    f = FaissIndex(ix)
    monkeypatch.setattr(FaissIndex, "LARGE_INDEX", 1000)
    for q in (v[3:4], rng.standard_normal((4, 32)).astype(np.float32)):
        a, b = ix.search(q, 12), f.search(q, 12)
        assert np.allclose(a[0], b[0], atol=1e-4)
        assert np.array_equal(np.sort(a[1], 1), np.sort(b[1], 1))
        assert (a[1] == b[1]).sum() >= 10  # the same order outside the tie
    assert f._flat_matrix() is not None and f._flat_matrix().shape == (3000, 32)
