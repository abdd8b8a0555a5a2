"""Fits and predictions on Dask arrays, on any Dask scheduler (dask.distributed included).

`GaussianMixture.fit(X)` with X a `dask.array.Array` runs the same EM as the
in-memory fit. Every EM iteration is one Dask graph: each block of rows
computes its sufficient statistics with the native `em_pass` (the same kernel
as in memory), a fixed tree of additions sums them, and the M-step runs on
the client. The parameters are one key of that graph, so each worker fetches
them once per iteration, whatever its number of blocks. Only the summed
statistics (one float64 vector of 1 + K + K D + K D^2 numbers for 'full')
travel back per block.

This module is imported only when a Dask array reaches the estimator; the
rest of fastgmm never imports dask.

Initialisation (see docs/distributed.md):

- data of at most `sample_rows(...)` rows is fetched to the client and
  initialised exactly as in memory (the same draws from random_state);
- larger data is never pulled to the client: 'kmeans' and 'k-means++' run
  (fastgmm's native k-means, as in memory) on a uniform sample of rows, 'random_from_data' draws its rows from
  blocks, 'random' draws uniform responsibilities block by block from
  per-block random streams. These draws cannot be scikit-learn's (those
  need the whole data in order), so the starting point differs from the
  in-memory fit's; from the same starting point the fits agree.
"""

import math

import dask
import dask.array as da
import numpy as np
from sklearn.metrics import pairwise_distances_argmin

from fastgmm import _parameters as P
from fastgmm._data import InMemoryData
from fastgmm._initialization import _block_rows, _stats_of_given_resp, kmeans, kmeans_plusplus
from fastgmm._kernels._dispatch import em_pass, estimate
from fastgmm._kernels._openmp_helpers import openmp_effective_n_threads
from fastgmm._kernels._suffstats import stat_size
from fastgmm._threads import blas_single_threaded, n_threads_for

# Rows drawn for a k-means / k-means++ initialisation on large data. Data no
# larger than this (and than SAMPLE_BYTES) is fetched whole and initialised
# exactly as in memory.
SAMPLE_ROWS = 100_000
SAMPLE_BYTES = 64 * 2**20

# Partial sums added per task of the reduction tree (dask's split_every).
SPLIT_EVERY = 8


def sample_rows(n_components, n_features, itemsize):
    """Rows of the sample that initialises a fit on large data."""
    by_bytes = SAMPLE_BYTES // max(1, n_features * itemsize)
    return max(20 * n_components, min(SAMPLE_ROWS, by_bytes))


# ------------------------------------------------------------- validation

def check_array(X, input_name="X"):
    """A 2-D float32/float64 Dask array with known row chunks and one column chunk."""
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D array, got a {X.ndim}D Dask array of shape {X.shape} for "
            f"{input_name}. Reshape your data, e.g. X.reshape(-1, 1) for a single feature."
        )
    if any(math.isnan(c) for c in X.chunks[0]) or any(math.isnan(c) for c in X.chunks[1]):
        raise ValueError(
            f"{input_name} is a Dask array with unknown chunk sizes (for example after "
            "boolean indexing). Call X.compute_chunk_sizes() first, or build the array "
            "with known chunks."
        )
    if X.shape[1] < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is "
            "required."
        )
    if X.dtype not in (np.float32, np.float64):
        if X.dtype.kind not in "biuf":
            raise ValueError(
                f"{input_name} has dtype {X.dtype}; GaussianMixture needs numbers "
                "(float32 or float64)."
            )
        X = X.astype(np.float64)
    if len(X.chunks[1]) > 1:
        # A block must hold whole rows: the kernel needs all the features of a row.
        X = X.rechunk({1: -1})
    return X


def check_sample_weight(sample_weight, X):
    """None, or the weights as a float64 (n_samples, 1) Dask array chunked as X's rows.

    Values (finite, non-negative) are checked by the summary pass, block by block.
    """
    if sample_weight is None:
        return None
    n_samples = X.shape[0]
    if isinstance(sample_weight, da.Array):
        if sample_weight.ndim != 1:
            raise ValueError(
                f"sample_weight must be 1D, got a {sample_weight.ndim}D Dask array."
            )
        if math.isnan(sample_weight.shape[0]):
            raise ValueError(
                "sample_weight is a Dask array with unknown chunk sizes; call "
                "sample_weight.compute_chunk_sizes() first."
            )
        weights = sample_weight.astype(np.float64)
    else:
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.ndim == 0:
            weights = np.full(n_samples, float(weights))
        if weights.ndim != 1:
            raise ValueError(f"sample_weight must be 1D, got shape {weights.shape}.")
        weights = da.from_array(weights, chunks=(X.chunks[0],))
    if weights.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight.shape == ({weights.shape[0]},), expected ({n_samples},)!"
        )
    if weights.chunks[0] != X.chunks[0]:
        # Weights are cheap to move; align them with X's blocks rather than refuse.
        weights = weights.rechunk((X.chunks[0],))
    return weights[:, None]


def _raise_not_finite(x, name, block_index, start):
    bad = ~np.isfinite(x)
    if bad.ndim > 1:
        bad = bad.any(axis=1)
    row = start + int(np.flatnonzero(bad)[0])
    what = "NaN" if np.isnan(x).any() else "infinity"
    raise ValueError(
        f"Input {name} contains {what}: row {row}, in block {block_index} (rows {start} "
        f"to {start + x.shape[0] - 1}) of the Dask array. GaussianMixture does not accept "
        "missing or infinite values: drop or impute those rows before fitting."
    )


def _check_block(x, w, block_index, start):
    """Raise a ValueError naming the block if x or w holds a bad value."""
    if not np.isfinite(x).all():
        _raise_not_finite(x, "X", block_index, start)
    if w is not None:
        if not np.isfinite(w).all():
            _raise_not_finite(w, "sample_weight", block_index, start)
        if (w < 0).any():
            raise ValueError(
                "Negative values in data passed to sample_weight: row "
                f"{start + int(np.flatnonzero(w < 0)[0])}, in block {block_index}."
            )


# ---------------------------------------------------------------- threads

def task_threads(collections, n_blocks):
    """OpenMP threads per block task, or None for the worker's own setting.

    dask's threaded scheduler runs several block tasks at once in this
    process: share the cores between them. Worker processes (distributed,
    multiprocessing) use their own OpenMP setting (dask's nanny sets
    OMP_NUM_THREADS=1 per worker thread); the synchronous scheduler runs one
    task at a time and uses every thread.
    """
    scheduler = dask.base.get_scheduler(collections=collections)
    if scheduler is dask.threaded.get:
        pool = dask.config.get("num_workers", None) or dask.threaded.CPU_COUNT
        return max(1, openmp_effective_n_threads() // max(1, min(n_blocks, pool)))
    return None


def _threads(n_threads, n_rows):
    return n_threads_for(n_rows) if n_threads is None else n_threads


# ------------------------------------------------------------ block tasks

class _PassSpec:
    """What a statistics pass sends to every block task (one graph key).

    kernel: the KernelParams of the E-step, or None when the responsibilities
    are given by `resp_rule`: ("random", entropy), ("nearest", centers) or
    ("rows", global_indices) (one-hot on those rows, component = position).
    """

    def __init__(self, covariance_type, n_components, n_threads, kernel=None,
                 resp_rule=None, centers=None, tied_center=None):
        self.covariance_type = covariance_type
        self.n_components = n_components
        self.n_threads = n_threads
        self.kernel = kernel
        self.resp_rule = resp_rule
        self.centers = centers
        self.tied_center = tied_center


def _block_statistics(x, w, spec, block_info=None):
    """Summed sufficient statistics of one block, as a (1, S) float64 array."""
    start = block_info[0]["array-location"][0][0]
    block_index = block_info[0]["chunk-location"][0]
    weights = None if w is None else np.ascontiguousarray(w[:, 0])
    x = np.ascontiguousarray(x)
    n_threads = _threads(spec.n_threads, x.shape[0])
    with blas_single_threaded():
        if spec.kernel is None:
            total = _given_resp_statistics(x, weights, spec, start, block_index, n_threads)
        else:
            total = _em_statistics(x, weights, spec, n_threads)
    if not np.isfinite(total).all():
        # Non-finite sums come from non-finite input or from overflow: look at the
        # block (already in memory) only then, so clean data is read once.
        _check_block(x, weights, block_index, start)
    return total[None, :]


def _em_statistics(x, weights, spec, n_threads):
    kernel = spec.kernel
    n_features = x.shape[1]
    stats = P.allocate_stats(
        P.n_slots_for(x.shape[0], spec.covariance_type, spec.n_components, n_features),
        spec.covariance_type, spec.n_components, n_features,
    )
    em_pass(
        x, np.empty(0) if weights is None else weights, *kernel.args(),
        np.empty((0, spec.n_components), dtype=x.dtype), kernel.code, stats, n_threads,
    )
    return stats.sum(axis=0)


def _given_resp_statistics(x, weights, spec, start, block_index, n_threads):
    n_rows, K = x.shape[0], spec.n_components
    kind, value = spec.resp_rule
    step = _block_rows(K)
    if kind == "random":
        rng = np.random.default_rng(np.random.SeedSequence(value, spawn_key=(block_index,)))

    def blocks():
        for lo in range(0, n_rows, step):
            hi = min(lo + step, n_rows)
            if kind == "random":
                resp = rng.uniform(size=(hi - lo, K)).astype(x.dtype)
                resp /= resp.sum(axis=1)[:, np.newaxis]
            elif kind == "nearest":
                labels = pairwise_distances_argmin(x[lo:hi], value)
                resp = np.zeros((hi - lo, K), dtype=x.dtype)
                resp[np.arange(hi - lo), labels] = 1
            else:  # "rows"
                resp = np.zeros((hi - lo, K), dtype=x.dtype)
                inside = np.flatnonzero((value >= start + lo) & (value < start + hi))
                resp[value[inside] - start - lo, inside] = 1
            yield lo, hi, resp

    return _stats_of_given_resp(x, blocks(), spec.covariance_type, spec.centers,
                                spec.tied_center, n_threads, weights)


def _block_summary(x, w, block_index, start):
    """(rows, float64 column sums, weight sum, positive weights, smallest and
    largest weight) of one block."""
    column_sum = x.sum(axis=0, dtype=np.float64)
    weights = None if w is None else w[:, 0]
    if not np.isfinite(column_sum).all() or (
        weights is not None and not (np.isfinite(weights).all() and (weights >= 0).all())
    ):
        _check_block(x, weights, block_index, start)
    if weights is None:
        return x.shape[0], column_sum, float(x.shape[0]), x.shape[0], 1.0, 1.0
    return (x.shape[0], column_sum, float(weights.sum()), int(np.count_nonzero(weights)),
            float(weights.min(initial=np.inf)), float(weights.max(initial=-np.inf)))


def _block_sample(x, w, count, entropy, block_index, start, weighted):
    """`count` rows of the block: uniform without replacement, or with
    replacement in proportion to the weights. Returns (global rows, rows, weights)."""
    rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(block_index,)))
    if weighted:
        p = w[:, 0] / w[:, 0].sum()
        local = np.sort(rng.choice(x.shape[0], size=count, replace=True, p=p))
    else:
        local = np.sort(rng.choice(x.shape[0], size=count, replace=False))
    rows = np.ascontiguousarray(x[local])
    weights = None if w is None else np.ascontiguousarray(w[local, 0])
    return start + local, rows, weights


# ------------------------------------------------------------- the source

class DaskData:
    """A Dask array (and its weights) as a data source for `_run_em`.

    Validation runs as one pass over the blocks (the summary pass): column
    sums (the centre of the initial shifts), the total weight, and a check
    of every value; a non-finite value stops the fit with a ValueError
    naming its row and block.
    """

    def __init__(self, X, sample_weight, n_components):
        X = check_array(X)
        self.X = X
        self.n_samples, self.n_features = X.shape
        self.dtype = X.dtype
        self.n_components = n_components
        # The client's own workspace is never used: blocks are summed on the workers.
        self.max_block_rows = 1
        self.weights = check_sample_weight(sample_weight, X)
        self.row_chunks = X.chunks[0]
        self.starts = np.concatenate([[0], np.cumsum(self.row_chunks)[:-1]]).astype(np.int64)
        self.n_blocks = len(self.row_chunks)
        self.n_sample_rows = sample_rows(n_components, self.n_features, self.dtype.itemsize)
        self.local = None
        if self.n_samples <= self.n_sample_rows:
            self._fetch()
        else:
            self._summarise()
        if self.n_positive < n_components:
            raise ValueError(
                f"sample_weight has only {self.n_positive} positive weights, fewer than "
                f"n_components = {n_components}: each component needs a sample of its "
                "own. Lower n_components or give more samples a positive weight."
            )

    def _blocks(self):
        xs = self.X.to_delayed().ravel()
        ws = [None] * len(xs) if self.weights is None else self.weights.to_delayed().ravel()
        return xs, ws

    def _fetch(self):
        """Small data: bring it to the client and initialise it as in memory."""
        X, weights = dask.compute(self.X, self.weights)
        X = np.ascontiguousarray(X)
        for index, start in enumerate(self.starts):
            stop = start + self.row_chunks[index]
            _check_block(X[start:stop], None if weights is None else weights[start:stop, 0],
                         index, int(start))
        weights = None if weights is None else np.ascontiguousarray(weights[:, 0])
        self.local = InMemoryData(X, weights)
        if self.weights is not None:
            # The passes use the weights the local data holds (fit_weights:
            # None when all equal, else of mean 1), as total_weight does.
            local_weights = self.local.sample_weight
            self.weights = (None if local_weights is None
                            else da.from_array(local_weights, chunks=(self.row_chunks,))[:, None])
        self.total_weight = self.local.total_weight
        self.n_positive = (self.n_samples if weights is None
                           else int(np.count_nonzero(weights)))
        self.center = np.mean(X, axis=0, dtype=np.float64).astype(self.dtype)

    def _summarise(self):
        xs, ws = self._blocks()
        summary = dask.delayed(_block_summary)
        parts = dask.compute(*[
            summary(x, w, index, int(start))
            for index, (x, w, start) in enumerate(zip(xs, ws, self.starts))
        ])
        rows, column_sums, weight_sums, positives, minima, maxima = zip(*parts)
        if list(rows) != list(self.row_chunks):
            raise ValueError(
                "The Dask array's blocks hold other numbers of rows than its chunks "
                f"declare ({list(rows)[:5]}... against {list(self.row_chunks)[:5]}...)."
            )
        self.block_weights = np.asarray(weight_sums)
        self.total_weight = float(math.fsum(weight_sums))
        self.n_positive = int(sum(positives))
        self.unequal_weights = max(maxima) > min(minima)
        if self.weights is not None:
            # As in memory (_gaussian_mixture.fit_weights): equal weights are
            # dropped, others brought to a mean of 1, so that the fit does not
            # depend on a common scale of the weights.
            if not self.unequal_weights:
                self.weights = None
                self.block_weights = np.asarray(rows, dtype=np.float64)
                self.total_weight = float(self.n_samples)
            else:
                largest = max(maxima)
                scale = self.n_samples / math.fsum(w / largest for w in weight_sums)
                self.weights = self.weights * (scale / largest)
                self.block_weights = self.block_weights * (scale / largest)
                self.total_weight = float(math.fsum(self.block_weights))
        self.center = (np.sum(column_sums, axis=0) / self.n_samples).astype(self.dtype)

    def prior_moments(self, full):
        """(weighted mean, weighted covariance with one degree of freedom
        taken) of the rows, float64, as `_data.blocked_moments`: two Dask
        graphs, one number of D or D x D per block brought back."""
        if self.local is not None:
            return self.local.prior_moments(full)
        X = self.X.astype(np.float64)
        w = self.weights
        if w is None:
            total, weight_sum = dask.compute(X.sum(axis=0), float(self.n_samples))
        else:
            total, weight_sum = dask.compute((X * w).sum(axis=0), w.sum())
        weight_sum = float(weight_sum)
        mean = np.asarray(total) / weight_sum
        centred = X - mean
        weighted = centred if w is None else centred * w
        if full:
            scatter = (weighted.T @ centred).compute()
        else:
            scatter = (weighted * centred).sum(axis=0).compute()
        return mean, np.asarray(scatter) / (weight_sum - 1.0)

    # ------------------------------------------------------------ passes

    def _statistics(self, spec):
        """Sum of every block's statistics: one graph, one compute."""
        size = stat_size(P.KERNEL_COV_CODE[spec.covariance_type], spec.n_components,
                         self.n_features)
        spec_key = dask.delayed(spec, traverse=False)
        args = [self.X, self.weights] if self.weights is not None else [self.X, None]
        per_block = da.map_blocks(
            _block_statistics, *args, spec_key,
            chunks=((1,) * self.n_blocks, (size,)), dtype=np.float64,
        )
        total = per_block.sum(axis=0, split_every=SPLIT_EVERY)
        return np.asarray(total.compute(), dtype=np.float64)

    def statistics(self, workspace, kernel, n_threads):
        """Summed sufficient statistics of one EM iteration under `kernel`."""
        spec = _PassSpec(workspace.covariance_type, kernel.means.shape[0],
                         task_threads([self.X], self.n_blocks), kernel=kernel)
        return self._statistics(spec)

    def initial_statistics(self, init_params, n_components, random_state, covariance_type,
                           n_threads):
        if self.local is not None:
            return self.local.initial_statistics(init_params, n_components, random_state,
                                                 covariance_type, n_threads)
        dtype = self.dtype
        spread = np.ascontiguousarray(
            np.broadcast_to(self.center, (n_components, self.n_features)))
        entropy = random_state.randint(0, 2**32, size=4, dtype=np.uint64)
        threads = task_threads([self.X], self.n_blocks)

        def spec(rule, centers, tied_center):
            return _PassSpec(covariance_type, n_components, threads, resp_rule=rule,
                             centers=np.ascontiguousarray(centers, dtype=dtype),
                             tied_center=np.ascontiguousarray(tied_center, dtype=dtype))

        if init_params == "random":
            return (self._statistics(spec(("random", entropy), spread, self.center)),
                    spread, self.center)

        weighted = self.unequal_weights
        if init_params == "random_from_data" and not weighted:
            size = n_components
        else:
            size = self.n_sample_rows
        indices, rows, weights = self._sample(size, entropy, weighted)
        if init_params == "kmeans":
            labels, kmeans_centers = kmeans(rows, n_components, random_state)
            # Shift each cluster by one of its sampled points (near its mean);
            # a copy: the rule below assigns rows to the k-means centres.
            centers = np.array(kmeans_centers, dtype=dtype)
            present, first = np.unique(labels, return_index=True)
            centers[present] = rows[first]
            rule = ("nearest", np.asarray(kmeans_centers, dtype=np.float64))
            sample_mean = rows.mean(axis=0, dtype=np.float64).astype(dtype)
            return self._statistics(spec(rule, centers, sample_mean)), centers, sample_mean
        if init_params == "k-means++":
            _, chosen = kmeans_plusplus(rows, n_components, random_state)
        else:  # random_from_data: the first n_components distinct rows of a shuffled draw
            order = random_state.permutation(indices.shape[0])
            _, first = np.unique(indices[order], return_index=True)
            chosen = order[np.sort(first)][:n_components]
            if chosen.shape[0] < n_components:
                raise ValueError(
                    f"The weighted sample of {indices.shape[0]} rows holds only "
                    f"{chosen.shape[0]} distinct rows, fewer than n_components = "
                    f"{n_components}: the weights are concentrated on a few rows. Give "
                    "means_init, weights_init and precisions_init, or use init_params="
                    "'random'."
                )
        chosen_rows = np.ascontiguousarray(rows[chosen])
        if covariance_type == "tied":
            origin = np.zeros_like(self.center)
            zeros = np.zeros_like(spread)
            rule = ("rows", np.asarray(indices[chosen], dtype=np.int64))
            return self._statistics(spec(rule, zeros, origin)), zeros, origin
        chosen_weights = None if weights is None else np.ascontiguousarray(weights[chosen])
        resp = np.eye(n_components, dtype=dtype)
        with blas_single_threaded():
            stats = _stats_of_given_resp(chosen_rows, [(0, n_components, resp)],
                                         covariance_type, chosen_rows, self.center,
                                         n_threads, chosen_weights)
        return stats, chosen_rows, self.center

    def worst_explained_rows(self, params, covariance_type, n_rows):
        """The `n_rows` rows of lowest log-density under `params` (rows of zero
        weight skipped, ties to the earlier row), found block by block on the
        workers: only each block's candidates come back."""
        kernel = P.as_kernel(params, covariance_type, self.dtype)
        spec = _EstimateSpec(kernel, kernel.means.shape[0],
                             task_threads([self.X], self.n_blocks),
                             "log_prob")
        spec_key = dask.delayed(spec, traverse=False)
        xs, ws = self._blocks()
        scan = dask.delayed(_block_worst_rows)
        parts = dask.compute(*[
            scan(x, w, spec_key, n_rows, int(start))
            for x, w, start in zip(xs, ws, self.starts)
        ])
        values = np.concatenate([p[0] for p in parts])
        index = np.concatenate([p[1] for p in parts])
        rows = np.concatenate([p[2] for p in parts])
        keep = np.lexsort((index, values))[:n_rows]
        finite = np.isfinite(values[keep])
        return index[keep][finite], rows[keep][finite]

    def _sample(self, size, entropy, weighted):
        """`size` rows drawn block by block: uniform without replacement, or, with
        unequal weights, with replacement in proportion to the weights.

        Returns (global row indices, rows, their weights). The weights are None
        for a weighted draw: its rows already stand for the weights and are
        used unweighted."""
        rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(2**32,)))
        sizes = np.asarray(self.row_chunks, dtype=np.int64)
        if weighted:
            counts = rng.multinomial(size, self.block_weights / self.block_weights.sum())
        else:
            counts = rng.multivariate_hypergeometric(sizes, size)
        xs, ws = self._blocks()
        sample = dask.delayed(_block_sample)
        parts = dask.compute(*[
            sample(xs[b], ws[b], int(counts[b]), entropy, b, int(self.starts[b]), weighted)
            for b in np.flatnonzero(counts)
        ])
        indices = np.concatenate([p[0] for p in parts])
        rows = np.concatenate([p[1] for p in parts])
        weights = None if self.weights is None else np.concatenate([p[2] for p in parts])
        if weighted:
            # With replacement, in proportion to the weights: the draws stand for them.
            weights = None
        return indices, rows, weights


# ------------------------------------------------------------- inference

class _EstimateSpec:
    def __init__(self, kernel, n_components, n_threads, output):
        self.kernel = kernel
        self.n_components = n_components
        self.n_threads = n_threads
        self.output = output


def _block_estimate(x, spec, block_info=None):
    start = block_info[0]["array-location"][0][0]
    block_index = block_info[0]["chunk-location"][0]
    if not np.isfinite(x).all():
        _raise_not_finite(x, "X", block_index, start)
    x = np.ascontiguousarray(x, dtype=spec.kernel.means.dtype)
    n_rows, K = x.shape[0], spec.n_components
    labels = np.empty(0, dtype=np.int64)
    log_prob = np.empty(0, dtype=x.dtype)
    resp = np.empty((0, K), dtype=x.dtype)
    if spec.output == "labels":
        labels = out = np.empty(n_rows, dtype=np.int64)
    elif spec.output == "log_prob":
        log_prob = out = np.empty(n_rows, dtype=x.dtype)
    else:
        resp = out = np.empty((n_rows, K), dtype=x.dtype)
    with blas_single_threaded():
        estimate(x, *spec.kernel.args(), spec.kernel.code, labels, log_prob, resp,
                 _threads(spec.n_threads, n_rows))
    return out


def _block_worst_rows(x, w, spec, n_rows, start):
    """This block's `n_rows` rows of lowest log-density: (values, global indices, rows)."""
    x = np.ascontiguousarray(x)
    log_prob = np.empty(x.shape[0], dtype=x.dtype)
    with blas_single_threaded():
        estimate(x, *spec.kernel.args(), spec.kernel.code, np.empty(0, dtype=np.int64),
                 log_prob, np.empty((0, spec.n_components), dtype=x.dtype),
                 _threads(spec.n_threads, x.shape[0]))
    values = log_prob.astype(np.float64)
    if w is not None:
        values[w[:, 0] == 0] = np.inf
    keep = np.lexsort((np.arange(values.shape[0]), values))[:n_rows]
    return values[keep], start + keep, x[keep].astype(np.float64)


def lazy_estimate(X, params, covariance_type, output):
    """Labels, log p(x) or responsibilities of a Dask array, as a lazy Dask array.
    `params`: a KernelParams, or a Gaussian mixture's (weights, means,
    covariances, precisions_cholesky)."""
    means = params.means if isinstance(params, P.KernelParams) else params[1]
    dtype = np.result_type(X.dtype, np.asarray(means).dtype)
    kernel = P.as_kernel(params, covariance_type, dtype)
    n_components = kernel.means.shape[0]
    spec = _EstimateSpec(kernel, n_components, task_threads([X], len(X.chunks[0])), output)
    spec_key = dask.delayed(spec, traverse=False)
    if output == "resp":
        return da.map_blocks(_block_estimate, X, spec_key, dtype=dtype,
                             chunks=(X.chunks[0], (n_components,)))
    return da.map_blocks(_block_estimate, X, spec_key, drop_axis=1,
                         dtype=np.int64 if output == "labels" else dtype)


def total_log_likelihood(log_prob, sample_weight, ratios=False):
    """(sum of w_i log p(x_i), sum of w_i), computed together.

    The weights are checked first, as the in-memory path checks them
    (finite, non-negative, one positive; a pass over the weights alone: an
    outside audit found negative and NaN weights summed here), and with
    `ratios` (score: a weighted mean) taken as ratios to the largest, so
    that weights near the float64 limit or subnormal give the mean they do
    in memory."""
    if sample_weight is None:
        total = log_prob.sum(dtype=np.float64)
        return float(total.compute()), float(log_prob.shape[0])
    weights = check_sample_weight(sample_weight, log_prob[:, None])[:, 0]
    finite, smallest, largest, positive = dask.compute(
        da.isfinite(weights).all(), weights.min(), weights.max(), (weights > 0).sum())
    if not finite:
        raise ValueError("Input sample_weight contains NaN or infinity.")
    if smallest < 0:
        raise ValueError("Negative values in data passed to `sample_weight`")
    if positive < 1:
        raise ValueError("sample_weight has no positive weight: at least one sample "
                         "must have a positive weight.")
    if ratios:
        weights = weights / largest
    total, weight_sum = dask.compute((log_prob.astype(np.float64) * weights).sum(),
                                     weights.sum())
    return float(total), float(weight_sum)
