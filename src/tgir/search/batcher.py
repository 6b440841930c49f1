"""Merge concurrent single-query searches into one index call (issue 10).

The server answers each request on its own thread, and an exact scan costs about the same for
one query as for many (it is bound by reading the catalog's vectors), so concurrent requests
are served together: the first caller becomes the leader, waits ``wait_s`` for others to
queue, runs one search for all of them (up to ``max_batch`` at a time, the largest k asked),
hands every caller its rows, and drains whatever queued meanwhile. No background thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

SearchFn = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


class _Request:
    __slots__ = ("query", "k", "done", "result", "error")

    def __init__(self, query: np.ndarray, k: int):
        self.query, self.k = query, k
        self.done = threading.Event()
        self.result: tuple[np.ndarray, np.ndarray] | None = None
        self.error: BaseException | None = None


class SearchBatcher:
    def __init__(self, search: SearchFn, max_batch: int = 64, wait_s: float = 0.002):
        self._search, self.max_batch, self.wait_s = search, max_batch, wait_s
        self._lock = threading.Lock()
        self._pending: list[_Request] = []
        self._leading = False
        self.calls = self.queries = 0  # index calls made / queries answered (for benches)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Same contract as the index's ``search``; several rows are answered directly."""
        if len(queries) != 1:
            return self._search(queries, k)
        req = _Request(queries, k)
        with self._lock:
            self._pending.append(req)
            lead = not self._leading
            self._leading = self._leading or lead
        if lead:
            time.sleep(self.wait_s)
            self._drain()
        req.done.wait()
        if req.error is not None:
            raise req.error
        assert req.result is not None
        return req.result

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch = self._pending[:self.max_batch]
                del self._pending[:self.max_batch]
                if not batch:
                    self._leading = False
                    return
            try:
                kmax = max(r.k for r in batch)
                scores, rows = self._search(np.concatenate([r.query for r in batch]), kmax)
                self.calls += 1
                self.queries += len(batch)
                for i, r in enumerate(batch):
                    r.result = (scores[i:i + 1, :r.k], rows[i:i + 1, :r.k])
            except BaseException as e:  # every waiting caller gets the error, none hangs
                for r in batch:
                    r.error = e
            finally:
                for r in batch:
                    r.done.set()
