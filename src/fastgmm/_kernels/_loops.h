/* Innermost loops over components, in C so that their pointers can be
 * declared restrict: the compiler then vectorises them unconditionally
 * instead of guarding them with run-time alias checks (which fell back to
 * the scalar loop here: 3x slower on the diag statistics). */
#ifndef FASTGMM_LOOPS_H
#define FASTGMM_LOOPS_H

#include <stddef.h>

#define FASTGMM_DEFINE_LOOPS(T, SUFFIX)                                        \
/* acc[k] += (x - c[k])^2 * p[k]   (diag log-density) */                      \
static inline void fastgmm_sq_dist_scaled_##SUFFIX(                            \
    int K, T x, const T *__restrict__ c, const T *__restrict__ p,             \
    T *__restrict__ acc)                                                      \
{                                                                             \
    for (int k = 0; k < K; k++) {                                             \
        T d = x - c[k];                                                       \
        acc[k] += d * d * p[k];                                               \
    }                                                                         \
}                                                                             \
/* acc[k] += (x - c[k])^2   (tied log-density on projected rows) */           \
static inline void fastgmm_sq_dist_##SUFFIX(                                   \
    int K, T x, const T *__restrict__ c, T *__restrict__ acc)                 \
{                                                                             \
    for (int k = 0; k < K; k++) {                                             \
        T d = x - c[k];                                                       \
        acc[k] += d * d;                                                      \
    }                                                                         \
}                                                                             \
/* s1[k] += r[k] (x - c[k]);  s2[k] += r[k] (x - c[k])^2   (diag moments) */  \
static inline void fastgmm_moments_##SUFFIX(                                   \
    int K, T x, const T *__restrict__ c, const T *__restrict__ r,             \
    T *__restrict__ s1, T *__restrict__ s2)                                   \
{                                                                             \
    for (int k = 0; k < K; k++) {                                             \
        T d = x - c[k];                                                       \
        T rd = r[k] * d;                                                      \
        s1[k] += rd;                                                          \
        s2[k] += rd * d;                                                      \
    }                                                                         \
}                                                                             \
/* y[j] += a * u[j]   (row times matrix, one row of the matrix at a time) */  \
static inline void fastgmm_axpy_##SUFFIX(                                      \
    int n, T a, const T *__restrict__ u, T *__restrict__ y)                   \
{                                                                             \
    for (int j = 0; j < n; j++) {                                             \
        y[j] += a * u[j];                                                     \
    }                                                                         \
}

#define FASTGMM_DEFINE_SOA_LOOPS(T, SUFFIX)                                    \
/* Tiny-D full covariance on a chunk stored feature-major (xt: D x n), every   \
 * loop running over rows: maha[i] = ||(x_i - mu) @ U||^2 with U upper-        \
 * triangular, row-major. */                                                  \
static inline void fastgmm_maha_rows_##SUFFIX(                                 \
    int n, int D, const T *__restrict__ xt, const T *__restrict__ mu,         \
    const T *__restrict__ U, T *__restrict__ y, T *__restrict__ maha)         \
{                                                                             \
    for (int i = 0; i < n; i++) maha[i] = 0;                                  \
    for (int j = 0; j < D; j++) {                                             \
        for (int i = 0; i < n; i++) y[i] = 0;                                 \
        for (int l = 0; l <= j; l++) {                                        \
            const T u = U[l * D + j], m = mu[l];                              \
            const T *__restrict__ xl = xt + (size_t)l * n;                    \
            for (int i = 0; i < n; i++) y[i] += (xl[i] - m) * u;              \
        }                                                                     \
        for (int i = 0; i < n; i++) maha[i] += y[i] * y[i];                   \
    }                                                                         \
}                                                                             \
/* s1[a] += sum_i r_i d_ia;  s2[a, b] += sum_i r_i d_ia d_ib (b <= a), with    \
 * d = x - mu, on a feature-major chunk; d (D x n) is scratch. The sums over   \
 * rows are SIMD reductions: fixed lanes, so the same binary always adds in    \
 * the same order. */                                                         \
static inline void fastgmm_moments_rows_##SUFFIX(                              \
    int n, int D, const T *__restrict__ xt, const T *__restrict__ mu,         \
    const T *__restrict__ r, T *__restrict__ d, double *__restrict__ s1,      \
    double *__restrict__ s2)                                                  \
{                                                                             \
    for (int l = 0; l < D; l++) {                                             \
        const T m = mu[l];                                                    \
        for (int i = 0; i < n; i++)                                           \
            d[(size_t)l * n + i] = xt[(size_t)l * n + i] - m;                 \
    }                                                                         \
    for (int a = 0; a < D; a++) {                                             \
        const T *__restrict__ da = d + (size_t)a * n;                         \
        T acc = 0;                                                            \
        FASTGMM_SIMD_SUM(acc)                                                 \
        for (int i = 0; i < n; i++) acc += r[i] * da[i];                      \
        s1[a] += acc;                                                         \
        for (int b = 0; b <= a; b++) {                                        \
            const T *__restrict__ db = d + (size_t)b * n;                     \
            T acc2 = 0;                                                       \
            FASTGMM_SIMD_SUM(acc2)                                            \
            for (int i = 0; i < n; i++) acc2 += r[i] * da[i] * db[i];         \
            s2[a * D + b] += acc2;                                            \
        }                                                                     \
    }                                                                         \
}

/* out[k] += sum_i resp[i, k] (resp: n x K, row-major). Few components: one
 * SIMD reduction down each column; many: rows of K, vectorised across k. */
static inline void fastgmm_column_sums(int n, int K, const double *__restrict__ resp,
                                       double *__restrict__ out);

/* xt (D x n) = X (n x D) transposed. */
#define FASTGMM_DEFINE_TRANSPOSE(T, SUFFIX)                                    \
static inline void fastgmm_transpose_##SUFFIX(                                 \
    int n, int D, const T *__restrict__ X, T *__restrict__ xt)                \
{                                                                             \
    for (int l = 0; l < D; l++)                                               \
        for (int i = 0; i < n; i++)                                           \
            xt[(size_t)l * n + i] = X[(size_t)i * D + l];                     \
}

#ifdef _OPENMP
#define FASTGMM_PRAGMA(x) _Pragma(#x)
#define FASTGMM_SIMD_SUM(v) FASTGMM_PRAGMA(omp simd reduction(+:v))
#else
#define FASTGMM_SIMD_SUM(v)
#endif

FASTGMM_DEFINE_LOOPS(double, d)
FASTGMM_DEFINE_LOOPS(float, f)
FASTGMM_DEFINE_SOA_LOOPS(double, d)
FASTGMM_DEFINE_SOA_LOOPS(float, f)
FASTGMM_DEFINE_TRANSPOSE(double, d)
FASTGMM_DEFINE_TRANSPOSE(float, f)

static inline void fastgmm_column_sums(int n, int K, const double *__restrict__ resp,
                                       double *__restrict__ out)
{
    if (K < 8) {
        for (int k = 0; k < K; k++) {
            double acc = 0;
            FASTGMM_SIMD_SUM(acc)
            for (int i = 0; i < n; i++) acc += resp[(size_t)i * K + k];
            out[k] += acc;
        }
    } else {
        for (int i = 0; i < n; i++)
            for (int k = 0; k < K; k++) out[k] += resp[(size_t)i * K + k];
    }
}

#endif
