/* Column means and variances of a C-contiguous N x D array, bitwise equal to
 * numpy's X.mean(axis=0) and X.var(axis=0) for D >= 2.
 *
 * numpy reduces a C-contiguous array over axis 0 one row at a time (its
 * pairwise summation applies along the contiguous axis only): column j's sum
 * is (((0 + x[0][j]) + x[1][j]) + x[2][j]) + ..., in the array's dtype (the
 * 0 matters only to a column of -0.0, whose sum is +0.0). It then
 * divides by N in double precision (a numpy integer count promotes float32
 * to float64) and stores the quotient in the dtype. np.var subtracts that
 * mean from every element, squares (rounded in the dtype), sums the squares
 * the same way and divides likewise.
 *
 * The loops below keep that order for every column (vectorising across
 * columns, never along one), so they must be compiled without floating-point
 * contraction (-ffp-contract=off: setup.py gives it to the helper modules):
 * an FMA for `acc += e * e` would skip the square's rounding. numpy does the
 * same work with an inner loop of length D per row, which is why it is slow
 * for skinny arrays (15 ms for 1M x 2 here).
 */
#ifndef FASTGMM_COLUMNS_H
#define FASTGMM_COLUMNS_H

#include <float.h>
#include <stddef.h>
#include <stdint.h>

/* The two sweeps of the moments, for data that comes in blocks of rows:
 * acc[j] += x[i][j] row after row (acc starts at +0, numpy's start), and
 * acc[j] += (x[i][j] - mean[j])^2, the square rounded to T first. */
#define FASTGMM_DEFINE_COLUMN_SWEEPS(SUFFIX, T)                                  \
static void fastgmm_column_sums_##SUFFIX(const T *restrict x, ptrdiff_t n,       \
                                         ptrdiff_t d, T *restrict acc)           \
{                                                                                \
    ptrdiff_t i, j;                                                              \
    for (i = 0; i < n; i++) {                                                    \
        const T *restrict row = x + i * d;                                       \
        for (j = 0; j < d; j++) acc[j] += row[j];                                \
    }                                                                            \
}                                                                                \
static void fastgmm_column_sq_devs_##SUFFIX(const T *restrict x, ptrdiff_t n,    \
                                            ptrdiff_t d, const T *restrict mean, \
                                            T *restrict acc)                     \
{                                                                                \
    ptrdiff_t i, j;                                                              \
    for (i = 0; i < n; i++) {                                                    \
        const T *restrict row = x + i * d;                                       \
        for (j = 0; j < d; j++) {                                                \
            T e = row[j] - mean[j];                                              \
            T sq = e * e;                                                        \
            acc[j] += sq;                                                        \
        }                                                                        \
    }                                                                            \
}                                                                                \
static void fastgmm_column_moments_##SUFFIX(const T *restrict x, ptrdiff_t n,    \
                                            ptrdiff_t d, T *restrict mean,       \
                                            T *restrict var)                     \
{                                                                                \
    ptrdiff_t j;                                                                 \
    for (j = 0; j < d; j++) mean[j] = (T)0;                                      \
    fastgmm_column_sums_##SUFFIX(x, n, d, mean);                                 \
    for (j = 0; j < d; j++) mean[j] = (T)((double)mean[j] / (double)n);          \
    for (j = 0; j < d; j++) var[j] = (T)0;                                       \
    fastgmm_column_sq_devs_##SUFFIX(x, n, d, mean, var);                         \
    for (j = 0; j < d; j++) var[j] = (T)((double)var[j] / (double)n);            \
}

FASTGMM_DEFINE_COLUMN_SWEEPS(d, double)
FASTGMM_DEFINE_COLUMN_SWEEPS(f, float)

/* k-means++ draws exactly as scikit-learn makes them with numpy.
 *
 * first_draw: RandomState.choice(n, p=w / total) for its one uniform draw
 * u: p_i = w_i / total in T (the weights' dtype; w NULL: every weight 1),
 * widened to double, cdf = cumsum(p) in double row after row, cdf / cdf[-1]
 * and the first i with cdf_i / cdf[-1] > u (searchsorted, side='right').
 * Two sweeps, no array.
 *
 * cumsum_search: np.searchsorted(np.cumsum(w * d), r) (side='left') for
 * thresholds r sorted ascending: the running sum in T, each product
 * rounded to T first, and for each r the first i with sum_i >= r (n when
 * none). The sweep stops at the last threshold.
 *
 * Both must not contract a product into an add (-ffp-contract=off, as for
 * the moments above). */
#define FASTGMM_DEFINE_DRAWS(SUFFIX, T)                                          \
static ptrdiff_t fastgmm_first_draw_##SUFFIX(const T *restrict w, ptrdiff_t n,   \
                                             T total, double u)                  \
{                                                                                \
    const T unit = (T)1 / total;                                                 \
    double cdf = 0.0, last;                                                      \
    ptrdiff_t i;                                                                 \
    for (i = 0; i < n; i++) cdf += (double)(w == NULL ? unit : (T)(w[i] / total)); \
    last = cdf;                                                                  \
    cdf = 0.0;                                                                   \
    for (i = 0; i < n; i++) {                                                    \
        cdf += (double)(w == NULL ? unit : (T)(w[i] / total));                   \
        if (cdf / last > u) return i;                                            \
    }                                                                            \
    return n;                                                                    \
}                                                                                \
static void fastgmm_cumsum_search_##SUFFIX(const T *restrict w,                  \
                                           const T *restrict d, ptrdiff_t n,     \
                                           const double *restrict r, ptrdiff_t m, \
                                           ptrdiff_t *restrict out)              \
{                                                                                \
    T s = (T)0;                                                                  \
    ptrdiff_t i, k = 0;                                                          \
    for (i = 0; i < n && k < m; i++) {                                           \
        T term = w == NULL ? d[i] : (T)(w[i] * d[i]);                            \
        s = s + term;                                                            \
        while (k < m && (double)s >= r[k]) out[k++] = i;                         \
    }                                                                            \
    while (k < m) out[k++] = n;                                                  \
}

FASTGMM_DEFINE_DRAWS(d, double)
FASTGMM_DEFINE_DRAWS(f, float)

/* cumsum_search_d without its chain of n dependent adds (k-means++ runs
 * one a seed: 0.39 ms of 500k rows, 25 ms of speech's default fit), for
 * non-negative terms. Relative to the exact sum (terms >= 0), the
 * sequential sums S_i are within n 2^-53 and the sums Q_i below within
 * (B + n/B + 1 + n) 2^-53 (a block's lanes, the blocks' running sum, the
 * sequential tail), so |S_i - Q_i| <= (2n + 2B + n/B) 2^-53 Q_i, to first
 * order: S_i < r is sure where Q_i (1 + delta) < r and S_i >= r where
 * Q_i (1 - delta) >= r, with delta = (4n + 8B + 64) 2^-53, twice that and
 * more for the rounding of the tests themselves. Q is summed by blocks of B
 * terms (eight chains a block, then the blocks' running sum), and the
 * threshold's block again from its start in order. Returns 0 when a
 * threshold is nearer a sum than delta (for n = 500k, about once in 10^4
 * thresholds) or the terms' sum is not finite: the caller then takes the
 * sequential sweep. The terms must be >= 0 (or NaN): the caller's
 * promise, not checked term by term. block: scratch of (n + B - 1) / B
 * doubles. */
#define FASTGMM_CUMSUM_BLOCK 1024
static int fastgmm_cumsum_search_blocked_d(const double *restrict w,
                                           const double *restrict d, ptrdiff_t n,
                                           const double *restrict r, ptrdiff_t m,
                                           ptrdiff_t *restrict out, double *restrict block)
{
    const ptrdiff_t B = FASTGMM_CUMSUM_BLOCK, nb = (n + B - 1) / B;
    const double delta = (double)(4 * n + 8 * B + 64) * 0x1p-53;
    for (ptrdiff_t b = 0; b < nb; b++) {
        const ptrdiff_t lo = b * B, hi = lo + B < n ? lo + B : n;
        ptrdiff_t i = lo;
#if defined(__GNUC__) || defined(__clang__)
        /* four chains of the baseline's two-double vectors (this helper is
         * built for the baseline: wider types were lowered to slow code) */
        typedef double v2 __attribute__((vector_size(16)));
        v2 acc[4] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
        for (; i + 8 <= hi; i += 8) {
            for (int t = 0; t < 4; t++) {
                v2 term;
                __builtin_memcpy(&term, d + i + 2 * t, sizeof(v2));
                if (w != NULL) {
                    v2 wt;
                    __builtin_memcpy(&wt, w + i + 2 * t, sizeof(v2));
                    term = wt * term;
                }
                acc[t] += term;
            }
        }
        const v2 s2 = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        double a = s2[0] + s2[1];
#else
        double a = 0;
#endif
        for (; i < hi; i++) a += w == NULL ? d[i] : (double)(w[i] * d[i]);
        block[b] = a;
    }
    /* block[b] becomes the sum of the blocks before b, `total` of all */
    double total = 0;
    for (ptrdiff_t b = 0; b < nb; b++) {
        const double s = block[b];
        block[b] = total;
        total += s;
    }
    /* terms >= 0: a NaN or an inf among them (or an overflow) shows here */
    if (!(total >= 0 && total <= DBL_MAX)) return 0;
    ptrdiff_t b = 0;
    for (ptrdiff_t k = 0; k < m; k++) {
        const double rk = r[k];
        while (b < nb && (b + 1 < nb ? block[b + 1] : total) * (1.0 + delta) < rk) b++;
        if (b == nb) {                  /* every sum surely below rk */
            out[k] = n;
            continue;
        }
        double q = block[b];
        ptrdiff_t i = b * B;
        for (; i < n; i++) {
            q += w == NULL ? d[i] : (double)(w[i] * d[i]);
            if (q * (1.0 + delta) < rk) continue;
            if (q * (1.0 - delta) >= rk) break;
            return 0;                   /* too near to tell */
        }
        out[k] = i;                     /* i = n: every sum surely below rk */
    }
    return 1;
}

#endif
