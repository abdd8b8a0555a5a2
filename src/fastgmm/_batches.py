"""Exact out-of-core fits: data given as a re-iterable source of row batches.

`GaussianMixture.fit_batches(batches)` runs the same EM as `fit`, one pass
over all batches per iteration, so only one batch is in memory at a time.
The result equals the in-memory fit of the concatenated batches from the
same initialisation (to rounding: the sums are grouped by batch).
"""

import numpy as np
from sklearn.utils import check_array

from fastgmm import _kmeans
from fastgmm._data import blocked_moments
from fastgmm._initialization import (
    _stats_of_given_resp, first_rows, kmeans, kmeans_plusplus, stats_of_labels,
)


class BatchData:
    """A re-iterable source of (n_i, D) arrays, validated on a first pass.

    `batches` is either a collection that can be iterated more than once (a
    list or tuple of arrays, a numpy array split, ...) or a function that
    returns a fresh iterator of arrays at each call (for example one that
    reads a file chunk by chunk).
    """

    def __init__(self, batches):
        if callable(batches):
            self._open = batches
        else:
            if iter(batches) is batches:
                raise TypeError(
                    "batches is a one-shot iterator, but EM needs one pass over the data "
                    "per iteration. Pass a list of arrays, or a function that returns a "
                    "new iterator of arrays each time it is called."
                )
            self._open = lambda: iter(batches)
        self.dtype = None
        self.n_features = None
        self.n_samples = 0
        self.max_block_rows = 0
        self.n_batches = 0
        # each batch's rows, first row and last row: what later passes must repeat
        self._fingerprints = []
        column_sum = None
        all_float32 = True
        for index, batch in enumerate(self._open()):
            if np.ndim(batch) == 2 and np.shape(batch)[0] == 0:
                raise ValueError(f"batch {index} has no rows: every batch needs at least "
                                 "one (leave empty ones out of the source)")
            # each batch keeps its own float type here; the fit's is float32
            # only if every batch is float32, as for a fit of their
            # concatenation (a float32 first batch once set it for all, and
            # a later float64 batch was rounded to float32 without a word)
            batch = check_array(
                batch, dtype=[np.float64, np.float32], order="C", ensure_min_samples=1,
                input_name=f"batch {index}",
            )
            all_float32 = all_float32 and batch.dtype == np.float32
            if self.n_features is None:
                self.n_features = batch.shape[1]
                column_sum = np.zeros(self.n_features)
            elif batch.shape[1] != self.n_features:
                raise ValueError(
                    f"batch {index} has {batch.shape[1]} features, but batch 0 has "
                    f"{self.n_features}: every batch must have the same columns."
                )
            self.n_samples += batch.shape[0]
            self.max_block_rows = max(self.max_block_rows, batch.shape[0])
            self.n_batches += 1
            print_ = _fingerprint(batch)
            self._fingerprints.append(print_)
            column_sum += np.frombuffer(print_[3], dtype=np.float64)
        if self.n_batches == 0:
            raise ValueError("batches yielded no data: at least one non-empty batch is needed.")
        self.dtype = np.dtype(np.float32 if all_float32 else np.float64)
        self.total_weight = float(self.n_samples)
        self.center = (column_sum / self.n_samples).astype(self.dtype)

    def passes(self):
        """(batch, None) for every batch, in the fit's dtype (float32 when every
        batch of the first pass was float32, else float64)."""
        seen = 0
        for index, batch in enumerate(self._open()):
            batch = np.ascontiguousarray(batch, dtype=self.dtype)
            if batch.ndim != 2 or batch.shape[1] != self.n_features:
                raise ValueError(
                    f"batch {index} has shape {batch.shape}; expected (n, {self.n_features})."
                )
            seen += batch.shape[0]
            if (index >= len(self._fingerprints)
                    or _fingerprint(batch) != self._fingerprints[index]):
                raise ValueError(
                    f"batch {index} is not the one the first pass read (its number of rows, "
                    "first or last row or column sums differ): the source must yield the "
                    "same data on every pass."
                )
            yield batch, None
        if seen != self.n_samples:
            raise ValueError(
                f"the batches held {seen} rows on this pass but {self.n_samples} on the "
                "first: the source must yield the same data on every pass."
            )

    def statistics(self, workspace, kernel, n_threads):
        """Summed sufficient statistics of one EM pass over all batches."""
        total = None
        for batch, sample_weight in self.passes():
            block_total = workspace.accumulate(batch, sample_weight, kernel, n_threads)
            total = block_total if total is None else total + block_total
        return total

    def prior_moments(self, full):
        """Mean and covariance of all the rows, in two more passes."""
        return blocked_moments(self.passes, self.n_features, full)

    def _row_blocks(self):
        start = 0
        for batch, _ in self.passes():
            yield start, batch
            start += batch.shape[0]

    def initial_statistics(self, init_params, n_components, random_state, covariance_type,
                           n_threads):
        """As `_initialization.initial_statistics` on the concatenated batches,
        with the same random draws (k-means and k-means++ pass over the
        batches, fastgmm._kmeans)."""
        dtype = self.dtype
        spread = np.ascontiguousarray(
            np.broadcast_to(self.center, (n_components, self.n_features))
        )
        if init_params == "random":
            # One uniform stream, row after row, exactly as the in-memory fit draws it.
            def blocks():
                for start, batch in self._row_blocks():
                    resp = np.asarray(
                        random_state.uniform(size=(batch.shape[0], n_components)), dtype=dtype
                    )
                    resp /= resp.sum(axis=1)[:, np.newaxis]
                    yield batch, resp

            stats = self._sum_blocks(blocks(), covariance_type, spread, self.center, n_threads)
            return stats, spread, self.center

        if init_params == "kmeans":
            rows = self._kmeans_rows()
            labels, _ = kmeans(rows, n_components, random_state, n_threads=n_threads)
            first = first_rows(labels, n_components)
            present = np.flatnonzero(first >= 0)
            centers = spread.copy()
            centers[present] = rows.take(first[present])
            return self._sum_labels(labels, covariance_type, centers, self.center,
                                    n_threads), centers, self.center
        if init_params == "k-means++":
            _, indices = kmeans_plusplus(self._kmeans_rows(), n_components, random_state,
                                         n_threads=n_threads)
        else:
            indices = random_state.choice(self.n_samples, size=n_components, replace=False)
        if covariance_type == "tied":
            labels = np.full(self.n_samples, -1, dtype=np.int32)
            labels[indices] = np.arange(n_components)
            origin = np.zeros_like(self.center)
            zeros = np.zeros_like(spread)
            return self._sum_labels(labels, covariance_type, zeros, origin, n_threads), zeros, origin
        rows = np.empty((n_components, self.n_features), dtype=dtype)
        for start, batch in self._row_blocks():
            inside = (indices >= start) & (indices < start + batch.shape[0])
            rows[inside] = batch[indices[inside] - start]
        resp = np.eye(n_components, dtype=dtype)
        stats = _stats_of_given_resp(rows, [(0, n_components, resp)], covariance_type, rows,
                                     self.center, n_threads)
        return stats, rows, self.center

    def _sum_labels(self, labels, covariance_type, centers, tied_center, n_threads):
        """stats_of_labels over the batches, summed in order."""
        total = None
        for start, batch in self._row_blocks():
            part = stats_of_labels(batch, labels[start : start + batch.shape[0]],
                                   covariance_type, centers, tied_center, n_threads)
            total = part if total is None else total + part
        return total

    def _kmeans_rows(self):
        """The batches as a row source for fastgmm._kmeans."""
        return _kmeans.BlockRows(lambda: (batch for batch, _ in self.passes()),
                                 self.n_samples, self.n_features, self.dtype)

    @staticmethod
    def _sum_blocks(blocks, covariance_type, centers, tied_center, n_threads):
        total = None
        for batch, resp in blocks:
            part = _stats_of_given_resp(batch, [(0, batch.shape[0], resp)], covariance_type,
                                        centers, tied_center, n_threads)
            total = part if total is None else total + part
        return total


def _fingerprint(batch):
    """A batch's number of rows, the bytes of its first and last rows and of
    its column sums, in float64 (exact for float32 rows, and numpy adds the
    rows in order either way, so a batch's print is the same before and
    after it is converted to the fit's type); none for a batch without rows,
    which a later pass may yield. The sums catch a changed row anywhere,
    NaN or inf included, for one read of the batch beside EM's (an outside
    audit: a middle row of 1e200 on a later pass fitted silently)."""
    if batch.shape[0] == 0:
        return 0, b"", b"", b""
    ends = np.asarray(batch[[0, -1]], dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        sums = batch.sum(axis=0, dtype=np.float64)
    return batch.shape[0], ends[0].tobytes(), ends[1].tobytes(), sums.tobytes()
