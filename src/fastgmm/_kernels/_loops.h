/* Innermost loops over components, in C so that their pointers can be
 * declared restrict: the compiler then vectorises them unconditionally
 * instead of guarding them with run-time alias checks (which fell back to
 * the scalar loop here: 3x slower on the diag statistics). */
#ifndef FASTGMM_LOOPS_H
#define FASTGMM_LOOPS_H

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

FASTGMM_DEFINE_LOOPS(double, d)
FASTGMM_DEFINE_LOOPS(float, f)

#endif
