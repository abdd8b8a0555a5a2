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

#include <stddef.h>

#define FASTGMM_DEFINE_COLUMN_MOMENTS(NAME, T)                                   \
static void NAME(const T *restrict x, ptrdiff_t n, ptrdiff_t d,                  \
                 T *restrict mean, T *restrict var)                              \
{                                                                                \
    ptrdiff_t i, j;                                                              \
    for (j = 0; j < d; j++) mean[j] = (T)0 + x[j];  /* numpy starts at +0 */      \
    for (i = 1; i < n; i++) {                                                    \
        const T *restrict row = x + i * d;                                       \
        for (j = 0; j < d; j++) mean[j] += row[j];                               \
    }                                                                            \
    for (j = 0; j < d; j++) mean[j] = (T)((double)mean[j] / (double)n);          \
    for (j = 0; j < d; j++) {                                                    \
        T e = x[j] - mean[j];                                                    \
        var[j] = (T)0 + e * e;                                                   \
    }                                                                            \
    for (i = 1; i < n; i++) {                                                    \
        const T *restrict row = x + i * d;                                       \
        for (j = 0; j < d; j++) {                                                \
            T e = row[j] - mean[j];                                              \
            T sq = e * e;                                                        \
            var[j] += sq;                                                        \
        }                                                                        \
    }                                                                            \
    for (j = 0; j < d; j++) var[j] = (T)((double)var[j] / (double)n);            \
}

FASTGMM_DEFINE_COLUMN_MOMENTS(fastgmm_column_moments_d, double)
FASTGMM_DEFINE_COLUMN_MOMENTS(fastgmm_column_moments_f, float)

#endif
