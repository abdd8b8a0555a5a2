/* Innermost loops over components, in C so that their pointers can be
 * declared restrict: the compiler then vectorises them unconditionally
 * instead of guarding them with run-time alias checks (which fell back to
 * the scalar loop here: 3x slower on the diag statistics). */
#ifndef FASTGMM_LOOPS_H
#define FASTGMM_LOOPS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "_fastexp.h"

#if defined(_MSC_VER) && !defined(__clang__)
#define __restrict__ __restrict   /* MSVC spells it without the trailing underscores */
#endif

#define FASTGMM_DEFINE_LOOPS(T, SUFFIX)                                        \
/* s1[k, j] += sum_i r[i, k] (x[i, j] - mu[k, j]) in double (tied; X n x D,   \
 * r n x K, mu and s1 K x D). In Cython, the possible aliasing of s1 with X    \
 * and mu kept this loop scalar, with a store and reload per term: half of a   \
 * tied pass (200k x 16 x 16). */                                             \
static inline void fastgmm_centred_sums_##SUFFIX(                              \
    int n, int K, int D, const T *__restrict__ X, const T *__restrict__ r,    \
    const T *__restrict__ mu, double *__restrict__ s1)                        \
{                                                                             \
    for (int i = 0; i < n; i++) {                                             \
        const T *__restrict__ x = X + (size_t)i * D;                          \
        for (int k = 0; k < K; k++) {                                         \
            const double rk = r[(size_t)i * K + k];                           \
            const T *__restrict__ m = mu + (size_t)k * D;                     \
            double *__restrict__ s = s1 + (size_t)k * D;                      \
            for (int j = 0; j < D; j++) s[j] += rk * ((double)x[j] - m[j]);   \
        }                                                                     \
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
            const T u = U[(size_t)l * D + j], m = mu[l];                      \
            const T *__restrict__ xl = xt + (size_t)l * n;                    \
            for (int i = 0; i < n; i++) y[i] += (xl[i] - m) * u;              \
        }                                                                     \
        for (int i = 0; i < n; i++) maha[i] += y[i] * y[i];                   \
    }                                                                         \
}                                                                             \
/* s1[a] += sum_i r_i d_ia;  s2[a, b] += sum_i r_i d_ia d_ib (b <= a, s2 packed \
 * row by row: [a, b] at a (a + 1) / 2 + b), with                             \
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
            s2[(size_t)a * (a + 1) / 2 + b] += acc2;                          \
        }                                                                     \
    }                                                                         \
}


/* xt (D x n) = X (n x D) transposed. */
#define FASTGMM_DEFINE_TRANSPOSE(T, SUFFIX)                                    \
static inline void fastgmm_transpose_##SUFFIX(                                 \
    int n, int D, const T *__restrict__ X, T *__restrict__ xt)                \
{                                                                             \
    for (int l = 0; l < D; l++)                                               \
        for (int i = 0; i < n; i++)                                           \
            xt[(size_t)l * n + i] = X[(size_t)i * D + l];                     \
}

/* Forced inlining: helpers that take or return vector types (so that no
 * vector crosses a call, passed in memory where the ABI lacks its width),
 * and the fused small-D kernel's body (one copy per compile-time D). */
#if defined(__GNUC__) || defined(__clang__)
#define FASTGMM_ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define FASTGMM_ALWAYS_INLINE __forceinline
#else
#define FASTGMM_ALWAYS_INLINE inline
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FASTGMM_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define FASTGMM_NOINLINE __declspec(noinline)
#else
#define FASTGMM_NOINLINE
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FASTGMM_VECTOR_TYPES 1
/* Kernels on vector types use the machine's own vector width: wider types
 * are lowered to register pairs or quads and spill (with 64-byte vectors,
 * -march=x86-64-v3 ran the diag row kernel 18x and the tiled full kernel
 * 35x slower). */
#if defined(__AVX512F__)
#define FASTGMM_VBYTES 64
#elif defined(__AVX__)
#define FASTGMM_VBYTES 32
#else
#define FASTGMM_VBYTES 16
#endif
typedef double fastgmm_nvd __attribute__((vector_size(FASTGMM_VBYTES)));
typedef float fastgmm_nvf __attribute__((vector_size(FASTGMM_VBYTES)));
#endif

/* out[k] = sum_j (x[j] - c[j, k])^2 * p[j, k] for one row and the
 * components k0 <= k < k1; c and p are D x K (components contiguous);
 * p NULL: every weight is 1. */
#define FASTGMM_DEFINE_DIAG_ROW_TAIL(T, SUFFIX)                                \
static inline void fastgmm_diag_row_tail_##SUFFIX(                             \
    int k0, int k1, int K, int D, const T *__restrict__ x,                    \
    const T *__restrict__ c, const T *__restrict__ p, T *__restrict__ out)    \
{                                                                             \
    for (int k = k0; k < k1; k++) out[k] = 0;                                 \
    for (int j = 0; j < D; j++) {                                             \
        const T xj = x[j];                                                    \
        const T *__restrict__ cj = c + (size_t)j * K;                         \
        if (p == NULL) {                                                      \
            for (int k = k0; k < k1; k++) {                                  \
                const T d = xj - cj[k];                                       \
                out[k] += d * d;                                              \
            }                                                                 \
            continue;                                                         \
        }                                                                     \
        const T *__restrict__ pj = p + (size_t)j * K;                         \
        for (int k = k0; k < k1; k++) {                                      \
            const T d = xj - cj[k];                                           \
            out[k] += d * d * pj[k];                                          \
        }                                                                     \
    }                                                                         \
}

/* out[i, k] = sum_j (x[i, j] - c[j, k])^2 * p[j, k] for the n rows of a
 * chunk (X n x D, out n x K; c and p D x K, components contiguous). Each
 * out[i, k] is one chain over j in order, as in the plain loop above.
 * With GCC/Clang vector types the components go in blocks of two native
 * vectors and, within a block, the rows four at a time: the block's c and
 * p stay in L1 across the chunk, each load of them serves four rows, and
 * the 4 x 2 sums stay in registers across all D features (8 + 4 vector
 * registers, so the same shape suits 16-register AVX2 and SSE). Row by row
 * over all K, c and p (40 KB for D = 39, K = 64) came from L2 for every
 * row. One thread, 256-row chunks of 39 features, 64 components, C
 * microbenchmark, ns per (row, feature, component): 0.116 -> 0.071 with
 * AVX-512, 0.177 -> 0.089 with AVX2 (x86-64-v3). Other compilers, the
 * remaining components and the last n % 4 rows take the plain loop. */
#ifdef FASTGMM_VECTOR_TYPES
/* Keeps a loaded vector in a register: without it GCC folded the loads of
 * c and p into every arithmetic instruction that used them (memory
 * operands), four loads instead of one, and the kernel was load-bound. */
#if defined(__x86_64__) || defined(__i386__)
#define FASTGMM_IN_REGISTER(v) __asm__("" : "+v"(v))
#elif defined(__aarch64__)
#define FASTGMM_IN_REGISTER(v) __asm__("" : "+w"(v))
#else
#define FASTGMM_IN_REGISTER(v) ((void)0)
#endif
#define FASTGMM_DEFINE_DIAG_ROWS(T, V, SUFFIX)                                 \
    FASTGMM_DEFINE_BLOCKED_ROWS(T, V, fastgmm_diag_rows_##SUFFIX, 1, SUFFIX)   \
    FASTGMM_DEFINE_BLOCKED_ROWS(T, V, fastgmm_sq_dist_rows_##SUFFIX, 0, SUFFIX)
/* WEIGHTED 0 (tied, on projected rows): p is not read, every weight is 1. */
#define FASTGMM_DEFINE_BLOCKED_ROWS(T, V, NAME, WEIGHTED, SUFFIX)              \
static inline void NAME(                                                      \
    int n, int K, int D, const T *__restrict__ X, const T *__restrict__ c,    \
    const T *__restrict__ p, T *__restrict__ out)                             \
{                                                                             \
    enum { R = 4, NV = 2, W = (int)(sizeof(V) / sizeof(T)) };                 \
    int k0 = 0;                                                               \
    for (; k0 + NV * W <= K; k0 += NV * W) {                                  \
        int i = 0;                                                            \
        for (; i + R <= n; i += R) {                                          \
            const T *__restrict__ x = X + (size_t)i * D;                      \
            V a[R][NV];                                                       \
            _Pragma("GCC unroll 4")                                           \
            for (int t = 0; t < R; t++) {                                     \
                _Pragma("GCC unroll 2")                                       \
                for (int v = 0; v < NV; v++) a[t][v] = (V){0};                \
            }                                                                 \
            for (int j = 0; j < D; j++) {                                     \
                const T *cj = c + (size_t)j * K + k0;                         \
                const T *pj = WEIGHTED ? p + (size_t)j * K + k0 : NULL;       \
                _Pragma("GCC unroll 2")                                       \
                for (int v = 0; v < NV; v++) {                                \
                    V cv, pv = {0};                                           \
                    __builtin_memcpy(&cv, cj + v * W, sizeof(V));             \
                    FASTGMM_IN_REGISTER(cv);                                  \
                    if (WEIGHTED) {                                           \
                        __builtin_memcpy(&pv, pj + v * W, sizeof(V));         \
                        FASTGMM_IN_REGISTER(pv);                              \
                    }                                                         \
                    _Pragma("GCC unroll 4")                                   \
                    for (int t = 0; t < R; t++) {                             \
                        const V d = x[(size_t)t * D + j] - cv;                \
                        if (WEIGHTED) a[t][v] += d * d * pv;                  \
                        else a[t][v] += d * d;                                \
                    }                                                         \
                }                                                             \
            }                                                                 \
            _Pragma("GCC unroll 4")                                           \
            for (int t = 0; t < R; t++) {                                     \
                _Pragma("GCC unroll 2")                                       \
                for (int v = 0; v < NV; v++)                                  \
                    __builtin_memcpy(out + (size_t)(i + t) * K + k0 + v * W,  \
                                     &a[t][v], sizeof(V));                    \
            }                                                                 \
        }                                                                     \
        for (; i < n; i++)                                                    \
            fastgmm_diag_row_tail_##SUFFIX(k0, k0 + NV * W, K, D, X + (size_t)i * D, \
                                           c, WEIGHTED ? p : NULL,            \
                                           out + (size_t)i * K);              \
    }                                                                         \
    if (k0 < K)                                                               \
        for (int i = 0; i < n; i++)                                           \
            fastgmm_diag_row_tail_##SUFFIX(k0, K, K, D, X + (size_t)i * D, c,   \
                                           WEIGHTED ? p : NULL,               \
                                           out + (size_t)i * K);              \
}
#else
#define FASTGMM_DEFINE_DIAG_ROWS(T, V, SUFFIX)                                 \
static inline void fastgmm_diag_rows_##SUFFIX(                                 \
    int n, int K, int D, const T *__restrict__ X, const T *__restrict__ c,    \
    const T *__restrict__ p, T *__restrict__ out)                             \
{                                                                             \
    for (int i = 0; i < n; i++)                                               \
        fastgmm_diag_row_tail_##SUFFIX(0, K, K, D, X + (size_t)i * D, c, p,   \
                                       out + (size_t)i * K);                  \
}                                                                             \
static inline void fastgmm_sq_dist_rows_##SUFFIX(                              \
    int n, int K, int D, const T *__restrict__ X, const T *__restrict__ c,    \
    const T *__restrict__ p, T *__restrict__ out)                             \
{                                                                             \
    (void)p;                                                                  \
    fastgmm_diag_rows_##SUFFIX(n, K, D, X, c, NULL, out);                     \
}
#endif

/* Diagonal moments of a chunk: s1[j, k] += sum_i r[i, k] (x[i, j] - c[j, k])
 * and s2[j, k] += sum_i r[i, k] (x[i, j] - c[j, k])^2, with X n x D, r n x K,
 * c, s1, s2 D x K.
 *
 * From FASTGMM_MOMENT_SPARSE_MIN_D features on, components go a block of
 * 64 bytes (8 float64, 16 float32) at a time, over only the rows with a
 * responsibility other than +-0 in the block. A responsibility of exactly
 * 0 (an exp that underflowed: common when components lie far apart in
 * many dimensions) adds +-0 to both sums, which changes no value (the sums
 * start at +0 and are never -0); the one exception, x - c = +-inf, where
 * 0 (x - c) is NaN, is a row that would have poisoned its block's sums
 * with a term of no weight. Speech-like data (500k x 39, K = 64) keeps 4.6
 * of 8 blocks a row in float64, 1 of 4 in float32: diag em_pass 291 -> 251
 * ms (float64), 162 -> 115 ms (float32) on one thread. A NaN
 * responsibility is kept.
 * Kept rows go eight at a time (each partial sum loaded and stored once per
 * eight rows), the rest one at a time; a block that keeps every row adds
 * in the order of the dense loop, so its sums are the dense loop's bits. */
#define FASTGMM_MOMENT_ROWS 256
/* Below this many features the dense loop runs: the listing and each
 * block's setup cost more than the skipped rows save (1M x 8, K = 32,
 * every row kept: 12.8 against 6.5 us a chunk). */
#define FASTGMM_MOMENT_SPARSE_MIN_D 16
/* The kb components of a block from k0, over the m rows listed: one row at
 * a time (rows1), and eight at a time then the rest (block; kb a
 * compile-time constant where inlined for whole blocks). */
#define FASTGMM_DEFINE_DIAG_MOMENTS_BLOCK(T, SUFFIX)                           \
static inline void fastgmm_diag_moments_rows1_##SUFFIX(                        \
    int m, const int *__restrict__ rows, int K, int D, int k0, int kb,        \
    const T *__restrict__ X, const T *__restrict__ r,                         \
    const T *__restrict__ c, T *__restrict__ s1, T *__restrict__ s2)          \
{                                                                             \
    for (int p = 0; p < m; p++) {                                             \
        const T *xi = X + (size_t)rows[p] * D;                                \
        const T *ri = r + (size_t)rows[p] * K + k0;                           \
        for (int j = 0; j < D; j++) {                                         \
            const T y = xi[j];                                                \
            const T *__restrict__ cj = c + (size_t)j * K + k0;                \
            T *__restrict__ s1j = s1 + (size_t)j * K + k0;                    \
            T *__restrict__ s2j = s2 + (size_t)j * K + k0;                    \
            for (int k = 0; k < kb; k++) {                                    \
                const T d = y - cj[k];                                        \
                const T e = ri[k] * d;                                        \
                s1j[k] += e;                                                  \
                s2j[k] += e * d;                                              \
            }                                                                 \
        }                                                                     \
    }                                                                         \
}                                                                             \
static FASTGMM_ALWAYS_INLINE void fastgmm_diag_moments_block_##SUFFIX(         \
    int m, const int *__restrict__ rows, int K, int D, int k0, int kb,        \
    const T *__restrict__ X, const T *__restrict__ r,                         \
    const T *__restrict__ c, T *__restrict__ s1, T *__restrict__ s2)          \
{                                                                             \
    int p = 0;                                                                \
    for (; p + 8 <= m; p += 8) {                                              \
        const T *x0[8];                                                       \
        const T *r0[8];                                                       \
        for (int t = 0; t < 8; t++) {                                         \
            x0[t] = X + (size_t)rows[p + t] * D;                              \
            r0[t] = r + (size_t)rows[p + t] * K + k0;                         \
        }                                                                     \
        for (int j = 0; j < D; j++) {                                         \
            T y[8];                                                           \
            for (int t = 0; t < 8; t++) y[t] = x0[t][j];                      \
            const T *__restrict__ cj = c + (size_t)j * K + k0;                \
            T *__restrict__ s1j = s1 + (size_t)j * K + k0;                    \
            T *__restrict__ s2j = s2 + (size_t)j * K + k0;                    \
            for (int k = 0; k < kb; k++) {                                    \
                const T ck = cj[k];                                           \
                T a1 = 0, a2 = 0;                                             \
                for (int t = 0; t < 8; t++) {                                 \
                    const T d = y[t] - ck;                                    \
                    const T e = r0[t][k] * d;                                 \
                    a1 += e;                                                  \
                    a2 += e * d;                                              \
                }                                                             \
                s1j[k] += a1;                                                 \
                s2j[k] += a2;                                                 \
            }                                                                 \
        }                                                                     \
    }                                                                         \
    fastgmm_diag_moments_rows1_##SUFFIX(m - p, rows + p, K, D, k0, kb, X, r, c, s1, s2); \
}

#ifdef FASTGMM_VECTOR_TYPES
/* A whole block (64 bytes of components) on native vectors: NV of W lanes,
 * lane for lane the arithmetic of the plain loop above (every build groups
 * the same rows). The group's responsibilities stay in registers for all D
 * features. Left to GCC, the plain loop with a constant 8 components was
 * vectorised over the rows, with permutations: slower than the dense loop
 * even with 1 block in 8 kept. Not inlined: inlined into its caller it ran
 * 20% slower (register allocation). */
#define FASTGMM_DEFINE_DIAG_MOMENTS_WHOLE(T, V, SUFFIX)                        \
static FASTGMM_NOINLINE void fastgmm_diag_moments_whole_##SUFFIX(              \
    int m, const int *__restrict__ rows, int K, int D, int k0,                \
    const T *__restrict__ X, const T *__restrict__ r,                         \
    const T *__restrict__ c, T *__restrict__ s1, T *__restrict__ s2)          \
{                                                                             \
    enum { W = FASTGMM_VBYTES / (int)sizeof(T), NV = 64 / FASTGMM_VBYTES };   \
    int p = 0;                                                                \
    for (; p + 8 <= m; p += 8) {                                              \
        const T *x0[8];                                                       \
        V rv[8][NV];                                                          \
        for (int t = 0; t < 8; t++) {                                         \
            x0[t] = X + (size_t)rows[p + t] * D;                              \
            for (int v = 0; v < NV; v++)                                      \
                __builtin_memcpy(&rv[t][v], r + (size_t)rows[p + t] * K + k0 + v * W, \
                                 sizeof(V));                                  \
        }                                                                     \
        for (int j = 0; j < D; j++) {                                         \
            const T *__restrict__ cj = c + (size_t)j * K + k0;                \
            T *__restrict__ s1j = s1 + (size_t)j * K + k0;                    \
            T *__restrict__ s2j = s2 + (size_t)j * K + k0;                    \
            for (int v = 0; v < NV; v++) {                                    \
                V ck, o1, o2;                                                 \
                __builtin_memcpy(&ck, cj + v * W, sizeof(V));                 \
                /* c - x (= -(x - c) exactly): the x operand is then       \
                 * broadcast within the subtraction (AVX-512), not by a    \
                 * shuffle of its own (82 -> 78 us a chunk, every row kept); \
                 * a1 is then -sum r (x - c), and is subtracted. */        \
                V a1 = (V){0}, a2 = (V){0};                                   \
                for (int t = 0; t < 8; t++) {                                 \
                    const V d = ck - x0[t][j];                                \
                    const V e = rv[t][v] * d;                                 \
                    a1 += e;                                                  \
                    a2 += e * d;                                              \
                }                                                             \
                __builtin_memcpy(&o1, s1j + v * W, sizeof(V));                \
                __builtin_memcpy(&o2, s2j + v * W, sizeof(V));                \
                o1 -= a1;                                                     \
                o2 += a2;                                                     \
                __builtin_memcpy(s1j + v * W, &o1, sizeof(V));                \
                __builtin_memcpy(s2j + v * W, &o2, sizeof(V));                \
            }                                                                 \
        }                                                                     \
    }                                                                         \
    for (; p < m; p++) {                                                      \
        const T *xi = X + (size_t)rows[p] * D;                                \
        V ri[NV];                                                             \
        for (int v = 0; v < NV; v++)                                          \
            __builtin_memcpy(&ri[v], r + (size_t)rows[p] * K + k0 + v * W, sizeof(V)); \
        for (int j = 0; j < D; j++) {                                         \
            const T y = xi[j];                                                \
            const T *__restrict__ cj = c + (size_t)j * K + k0;                \
            T *__restrict__ s1j = s1 + (size_t)j * K + k0;                    \
            T *__restrict__ s2j = s2 + (size_t)j * K + k0;                    \
            for (int v = 0; v < NV; v++) {                                    \
                V ck, o1, o2;                                                 \
                __builtin_memcpy(&ck, cj + v * W, sizeof(V));                 \
                __builtin_memcpy(&o1, s1j + v * W, sizeof(V));                \
                __builtin_memcpy(&o2, s2j + v * W, sizeof(V));                \
                const V d = y - ck;                                           \
                const V e = ri[v] * d;                                        \
                o1 += e;                                                      \
                o2 += e * d;                                                  \
                __builtin_memcpy(s1j + v * W, &o1, sizeof(V));                \
                __builtin_memcpy(s2j + v * W, &o2, sizeof(V));                \
            }                                                                 \
        }                                                                     \
    }                                                                         \
}
#define FASTGMM_DIAG_MOMENTS_WHOLE(SUFFIX, m, rows, K, D, k0, X, r, c, s1, s2) \
    fastgmm_diag_moments_whole_##SUFFIX(m, rows, K, D, k0, X, r, c, s1, s2)
#else
#define FASTGMM_DEFINE_DIAG_MOMENTS_WHOLE(T, V, SUFFIX)
#define FASTGMM_DIAG_MOMENTS_WHOLE(SUFFIX, m, rows, K, D, k0, X, r, c, s1, s2) \
    fastgmm_diag_moments_block_##SUFFIX(m, rows, K, D, k0, 64 / (int)sizeof(*(X)), \
                                        X, r, c, s1, s2)
#endif

#define FASTGMM_DEFINE_DIAG_MOMENTS(T, U, SUFFIX)                              \
/* Every row, every component: the block loop over all K components and  \
 * every row of each piece (the plain loop, components innermost,          \
 * vectorised by the compiler). */                                         \
static inline void fastgmm_diag_moments_dense_##SUFFIX(                        \
    int n, int K, int D, const T *__restrict__ X, const T *__restrict__ r,    \
    const T *__restrict__ c, T *__restrict__ s1, T *__restrict__ s2)          \
{                                                                             \
    int rows[FASTGMM_MOMENT_ROWS];                                            \
    for (int i = 0; i < FASTGMM_MOMENT_ROWS; i++) rows[i] = i;                \
    for (int i0 = 0; i0 < n; i0 += FASTGMM_MOMENT_ROWS) {                     \
        const int q = n - i0 < FASTGMM_MOMENT_ROWS ? n - i0 : FASTGMM_MOMENT_ROWS; \
        fastgmm_diag_moments_block_##SUFFIX(q, rows, K, D, 0, K, X + (size_t)i0 * D, \
                                            r + (size_t)i0 * K, c, s1, s2);   \
    }                                                                         \
}                                                                             \
/* The rows of q with a responsibility other than +-0 among the kb         \
 * components from k0, listed in `rows`; returns their number. As bits:    \
 * any bit but the sign (a NaN is kept), an OR over the lanes, which       \
 * vectorises. */                                                           \
static FASTGMM_ALWAYS_INLINE int fastgmm_diag_moments_list_##SUFFIX(          \
    int q, int K, int k0, int kb, const T *__restrict__ r, int *__restrict__ rows) \
{                                                                             \
    enum { BLK = 64 / (int)sizeof(T) };                                       \
    int m = 0;                                                                \
    for (int i = 0; i < q; i++) {                                             \
        U bits[BLK], any = 0;                                                 \
        memcpy(bits, r + (size_t)i * K + k0, (size_t)kb * sizeof(T));           \
        for (int k = 0; k < kb; k++) any |= bits[k] << 1;                     \
        rows[m] = i;                                                          \
        m += any != 0;                                                        \
    }                                                                         \
    return m;                                                                 \
}                                                                             \
/* (a constant length for whole blocks: the OR is then a few vector ops) */ \
static inline int fastgmm_diag_moments_rows_##SUFFIX(                          \
    int q, int K, int k0, int kb, const T *__restrict__ r, int *__restrict__ rows) \
{                                                                             \
    enum { BLK = 64 / (int)sizeof(T) };                                       \
    if (kb == BLK)                                                            \
        return fastgmm_diag_moments_list_##SUFFIX(q, K, k0, BLK, r, rows);    \
    return fastgmm_diag_moments_list_##SUFFIX(q, K, k0, kb, r, rows);         \
}                                                                             \
static inline void fastgmm_diag_moments_##SUFFIX(                              \
    int n, int K, int D, const T *__restrict__ X, const T *__restrict__ r,    \
    const T *__restrict__ c, T *__restrict__ s1, T *__restrict__ s2)          \
{                                                                             \
    enum { BLK = 64 / (int)sizeof(T) };                                       \
    int rows[FASTGMM_MOMENT_ROWS];                                            \
    if (D < FASTGMM_MOMENT_SPARSE_MIN_D) {                                    \
        fastgmm_diag_moments_dense_##SUFFIX(n, K, D, X, r, c, s1, s2);        \
        return;                                                               \
    }                                                                         \
    /* pieces of FASTGMM_MOMENT_ROWS rows (em_pass's chunks are no longer) */ \
    for (int i0 = 0; i0 < n; i0 += FASTGMM_MOMENT_ROWS) {                     \
        const int q = n - i0 < FASTGMM_MOMENT_ROWS ? n - i0 : FASTGMM_MOMENT_ROWS; \
        const T *Xq = X + (size_t)i0 * D;                                     \
        const T *rq = r + (size_t)i0 * K;                                     \
        for (int k0 = 0; k0 < K; k0 += BLK) {                                 \
            const int kb = K - k0 < BLK ? K - k0 : BLK;                       \
            const int m = fastgmm_diag_moments_rows_##SUFFIX(q, K, k0, kb, rq, rows); \
            if (kb == BLK)                                                    \
                FASTGMM_DIAG_MOMENTS_WHOLE(SUFFIX, m, rows, K, D, k0, Xq, rq, c, s1, s2); \
            else                                                              \
                fastgmm_diag_moments_block_##SUFFIX(m, rows, K, D, k0, kb,    \
                                                    Xq, rq, c, s1, s2);       \
        }                                                                     \
    }                                                                         \
}

/* Row-major chunk helpers for the full kernel (BLAS path):
 *   centre:   out[i, :] = X[i, :] - mu
 *   log_density_col: wlp[i, k] = c - sum_j Y[i, j]^2 / 2   (SIMD reduction)
 *   weighted: out[i, :] = sqrt(r_i) (X[i, :] - mu), s1 += sum_i r_i (X[i, :] - mu)
 *             with r_i = resp[i * K], and s1 summed in T over the chunk. */
#define FASTGMM_DEFINE_ROW_OPS(T, SUFFIX)                                      \
static inline void fastgmm_centre_##SUFFIX(                                    \
    int n, int D, const T *__restrict__ X, const T *__restrict__ mu,          \
    T *__restrict__ out)                                                      \
{                                                                             \
    for (int i = 0; i < n; i++)                                               \
        for (int j = 0; j < D; j++)                                           \
            out[(size_t)i * D + j] = X[(size_t)i * D + j] - mu[j];            \
}                                                                             \
static inline void fastgmm_log_density_col_##SUFFIX(                          \
    int n, int D, const T *__restrict__ Y, double c, int K,                   \
    T *__restrict__ wlp_col)                                                  \
{                                                                             \
    for (int i = 0; i < n; i++) {                                             \
        const T *__restrict__ y = Y + (size_t)i * D;                          \
        T acc = 0;                                                            \
        FASTGMM_SIMD_SUM(acc)                                                 \
        for (int j = 0; j < D; j++) acc += y[j] * y[j];                       \
        wlp_col[(size_t)i * K] = (T)(c - 0.5 * (double)acc);                  \
    }                                                                         \
}                                                                             \
/* wlp[i, k] = c[k] - wlp[i, k] / 2 in place, in double then rounded to T  \
 * (tied and diag: squared distances in, log-densities out). In Cython the  \
 * possible aliasing of c and wlp kept this loop scalar: 7% of a speech     \
 * pass. */                                                                  \
static inline void fastgmm_log_density_rows_##SUFFIX(                          \
    int n, int K, const double *__restrict__ c, T *__restrict__ wlp)          \
{                                                                             \
    for (int i = 0; i < n; i++) {                                             \
        T *__restrict__ row = wlp + (size_t)i * K;                            \
        for (int k = 0; k < K; k++) row[k] = (T)(c[k] - 0.5 * (double)row[k]); \
    }                                                                         \
}                                                                             \
/* Rows with a responsibility of exactly 0 (an exp that underflowed: common \
 * when clusters are far apart in many dimensions) add exactly nothing to  \
 * S1 and S2, so they are left out: `out` holds only the others, packed,   \
 * and their count is returned; syrk then runs on those rows alone. The    \
 * sums keep their order over the remaining rows (at most the sign of an   \
 * exact zero could differ from summing the zeros too). */                 \
static inline int fastgmm_weighted_centre_##SUFFIX(                            \
    int n, int D, int K, const T *__restrict__ X, const T *__restrict__ mu,   \
    const T *__restrict__ resp, T *__restrict__ out,                          \
    T *__restrict__ s1_chunk)                                                 \
{                                                                             \
    int m = 0;                                                                \
    for (int j = 0; j < D; j++) s1_chunk[j] = 0;                              \
    for (int i = 0; i < n; i++) {                                             \
        const T r = resp[(size_t)i * K];                                      \
        if (r == 0) continue;                                                 \
        const T w = (T)sqrt((double)r);                                       \
        const T *__restrict__ x = X + (size_t)i * D;                          \
        T *__restrict__ o = out + (size_t)m * D;                              \
        for (int j = 0; j < D; j++) {                                         \
            const T d = x[j] - mu[j];                                         \
            s1_chunk[j] += r * d;                                             \
            o[j] = w * d;                                                     \
        }                                                                     \
        m++;                                                                  \
    }                                                                         \
    return m;                                                                 \
}


/* Full covariance on a feature-major chunk (xt: D x n, rows innermost), for
 * the feature counts where a BLAS call on a 256-row chunk is mostly packing
 * overhead. Both kernels work on blocks of rows held in vector registers:
 *
 *   tri_maha:    d = xt - mu (scratch, D x n), then
 *                maha[i] = sum_j (sum_{l <= j} d[l, i] U[l, j])^2
 *                two output columns j, j + 1 at a time, so each loaded d[l]
 *                feeds four independent chains (two row vectors x two
 *                columns) and U's zero lower triangle is never read;
 *   tri_moments: d = xt - mu, e = r * d (scratch, D x n each), then
 *                s1[a] += sum_i e[a, i], s2[a, b] += sum_i e[a, i] d[b, i]
 *                (b <= a; s2 packed like moments_rows')
 *                (b <= a) in 2 x 2 tiles of (a, b): four loads feed four
 *                accumulators across the whole chunk.
 * Sums run in T over the chunk and are added to the float64 statistics
 * once; every sum has a fixed order, so results do not depend on threads. */
#ifdef FASTGMM_VECTOR_TYPES
typedef double fastgmm_vd4 __attribute__((vector_size(32)));
typedef double fastgmm_vd2 __attribute__((vector_size(16)));
typedef float fastgmm_vf8 __attribute__((vector_size(32)));
typedef float fastgmm_vf4 __attribute__((vector_size(16)));
/* Lanes added as a fixed tree of half-vector adds. */
static FASTGMM_ALWAYS_INLINE double fastgmm_hsum_vd(fastgmm_nvd v)
{
#if FASTGMM_VBYTES == 64
    fastgmm_vd4 a = __builtin_shufflevector(v, v, 0, 1, 2, 3)
                  + __builtin_shufflevector(v, v, 4, 5, 6, 7);
#elif FASTGMM_VBYTES == 32
    fastgmm_vd4 a = v;
#endif
#if FASTGMM_VBYTES >= 32
    fastgmm_vd2 b = __builtin_shufflevector(a, a, 0, 1) + __builtin_shufflevector(a, a, 2, 3);
#else
    fastgmm_vd2 b = v;
#endif
    return b[0] + b[1];
}
static FASTGMM_ALWAYS_INLINE float fastgmm_hsum_vf(fastgmm_nvf v)
{
#if FASTGMM_VBYTES == 64
    fastgmm_vf8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7)
                  + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
#elif FASTGMM_VBYTES == 32
    fastgmm_vf8 a = v;
#endif
#if FASTGMM_VBYTES >= 32
    fastgmm_vf4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3)
                  + __builtin_shufflevector(a, a, 4, 5, 6, 7);
#else
    fastgmm_vf4 b = v;
#endif
    return (b[0] + b[2]) + (b[1] + b[3]);
}
#define FASTGMM_HSUM_d(v) fastgmm_hsum_vd(v)
#define FASTGMM_HSUM_f(v) fastgmm_hsum_vf(v)
#define FASTGMM_DEFINE_TRI(T, V, SUFFIX)                                       \
/* Lanes added as a fixed tree of half-vector adds (a scalar W-long chain,  \
 * or scalar adds over a stored copy, was a fifth of a float32 pass). */     \
static FASTGMM_ALWAYS_INLINE T fastgmm_hsum_##SUFFIX(V v)                                  \
{                                                                             \
    return FASTGMM_HSUM_##SUFFIX(v);                                          \
}                                                                             \
static FASTGMM_ALWAYS_INLINE V fastgmm_load_##SUFFIX(const T *p)                           \
{                                                                             \
    V v;                                                                      \
    __builtin_memcpy(&v, p, sizeof(V));                                       \
    return v;                                                                 \
}                                                                             \
static inline void fastgmm_tri_maha_##SUFFIX(                                  \
    int n, int D, const T *__restrict__ xt, const T *__restrict__ mu,         \
    const T *__restrict__ U, T *__restrict__ d, T *__restrict__ maha)         \
{                                                                             \
    const int W = (int)(sizeof(V) / sizeof(T));                               \
    for (int l = 0; l < D; l++) {                                             \
        const T m = mu[l];                                                    \
        for (int i = 0; i < n; i++)                                           \
            d[(size_t)l * n + i] = xt[(size_t)l * n + i] - m;                 \
    }                                                                         \
    int i0 = 0;                                                               \
    for (; i0 + 2 * W <= n; i0 += 2 * W) {                                    \
        V m0 = {0}, m1 = {0};                                                 \
        int j = 0;                                                            \
        for (; j + 2 <= D; j += 2) {                                          \
            V a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};                         \
            for (int l = 0; l <= j; l++) {                                    \
                const T *dl = d + (size_t)l * n + i0;                         \
                const V x0 = fastgmm_load_##SUFFIX(dl);                       \
                const V x1 = fastgmm_load_##SUFFIX(dl + W);                   \
                const T u = U[(size_t)l * D + j], v = U[(size_t)l * D + j + 1]; \
                a0 += x0 * u; a1 += x1 * u;                                   \
                b0 += x0 * v; b1 += x1 * v;                                   \
            }                                                                 \
            const T *dl = d + (size_t)(j + 1) * n + i0;                       \
            const T v = U[(size_t)(j + 1) * D + j + 1];                       \
            b0 += fastgmm_load_##SUFFIX(dl) * v;                              \
            b1 += fastgmm_load_##SUFFIX(dl + W) * v;                          \
            m0 += a0 * a0; m0 += b0 * b0;                                     \
            m1 += a1 * a1; m1 += b1 * b1;                                     \
        }                                                                     \
        if (j < D) {                                                          \
            V a0 = {0}, a1 = {0};                                             \
            for (int l = 0; l <= j; l++) {                                    \
                const T *dl = d + (size_t)l * n + i0;                         \
                const T u = U[(size_t)l * D + j];                             \
                a0 += fastgmm_load_##SUFFIX(dl) * u;                          \
                a1 += fastgmm_load_##SUFFIX(dl + W) * u;                      \
            }                                                                 \
            m0 += a0 * a0; m1 += a1 * a1;                                     \
        }                                                                     \
        __builtin_memcpy(maha + i0, &m0, sizeof(V));                          \
        __builtin_memcpy(maha + i0 + W, &m1, sizeof(V));                      \
    }                                                                         \
    for (int i = i0; i < n; i++) {                                            \
        T m = 0;                                                              \
        int j = 0;                                                            \
        for (; j + 2 <= D; j += 2) {                                          \
            T a = 0, b = 0;                                                   \
            for (int l = 0; l <= j; l++) {                                    \
                const T x = d[(size_t)l * n + i];                             \
                a += x * U[(size_t)l * D + j];                                \
                b += x * U[(size_t)l * D + j + 1];                            \
            }                                                                 \
            b += d[(size_t)(j + 1) * n + i] * U[(size_t)(j + 1) * D + j + 1]; \
            m += a * a; m += b * b;                                           \
        }                                                                     \
        if (j < D) {                                                          \
            T a = 0;                                                          \
            for (int l = 0; l <= j; l++)                                      \
                a += d[(size_t)l * n + i] * U[(size_t)l * D + j];             \
            m += a * a;                                                       \
        }                                                                     \
        maha[i] = m;                                                          \
    }                                                                         \
}                                                                             \
static inline void fastgmm_tri_moments_##SUFFIX(                               \
    int n, int D, const T *__restrict__ xt, const T *__restrict__ mu,         \
    const T *__restrict__ r, T *__restrict__ d, T *__restrict__ e,            \
    double *__restrict__ s1, double *__restrict__ s2)                         \
{                                                                             \
    const int W = (int)(sizeof(V) / sizeof(T));                               \
    const int nv = n - n % W;       /* rows in whole vectors */               \
    for (int l = 0; l < D; l++) {                                             \
        const T m = mu[l];                                                    \
        const T *__restrict__ xl = xt + (size_t)l * n;                        \
        T *__restrict__ dl = d + (size_t)l * n;                               \
        T *__restrict__ el = e + (size_t)l * n;                               \
        for (int i = 0; i < n; i++) {                                         \
            dl[i] = xl[i] - m;                                                \
            el[i] = r[i] * dl[i];                                             \
        }                                                                     \
    }                                                                         \
    for (int a = 0; a < D; a++) {                                             \
        const T *ea = e + (size_t)a * n;                                      \
        V acc = {0};                                                          \
        for (int i = 0; i < nv; i += W) acc += fastgmm_load_##SUFFIX(ea + i); \
        T t = fastgmm_hsum_##SUFFIX(acc);                                     \
        for (int i = nv; i < n; i++) t += ea[i];                              \
        s1[a] += t;                                                           \
    }                                                                         \
    for (int a0 = 0; a0 < D; a0 += 2) {                                       \
        const int a1 = a0 + 1 < D ? a0 + 1 : a0;                              \
        const T *ea0 = e + (size_t)a0 * n, *ea1 = e + (size_t)a1 * n;         \
        for (int b0 = 0; b0 <= a0; b0 += 2) {                                 \
            const int b1 = b0 + 1 < D ? b0 + 1 : b0;                          \
            const T *db0 = d + (size_t)b0 * n, *db1 = d + (size_t)b1 * n;     \
            V c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0};                     \
            for (int i = 0; i < nv; i += W) {                                 \
                const V x0 = fastgmm_load_##SUFFIX(ea0 + i);                  \
                const V x1 = fastgmm_load_##SUFFIX(ea1 + i);                  \
                const V y0 = fastgmm_load_##SUFFIX(db0 + i);                  \
                const V y1 = fastgmm_load_##SUFFIX(db1 + i);                  \
                c00 += x0 * y0; c01 += x0 * y1;                               \
                c10 += x1 * y0; c11 += x1 * y1;                               \
            }                                                                 \
            T t00 = fastgmm_hsum_##SUFFIX(c00), t01 = fastgmm_hsum_##SUFFIX(c01); \
            T t10 = fastgmm_hsum_##SUFFIX(c10), t11 = fastgmm_hsum_##SUFFIX(c11); \
            for (int i = nv; i < n; i++) {                                    \
                t00 += ea0[i] * db0[i]; t01 += ea0[i] * db1[i];               \
                t10 += ea1[i] * db0[i]; t11 += ea1[i] * db1[i];               \
            }                                                                 \
            s2[(size_t)a0 * (a0 + 1) / 2 + b0] += t00;                        \
            if (b1 != b0 && b1 <= a0) s2[(size_t)a0 * (a0 + 1) / 2 + b1] += t01; \
            if (a1 != a0) {                                                   \
                s2[(size_t)a1 * (a1 + 1) / 2 + b0] += t10;                    \
                if (b1 != b0) s2[(size_t)a1 * (a1 + 1) / 2 + b1] += t11;      \
            }                                                                 \
        }                                                                     \
    }                                                                         \
}
#endif

#if defined(_OPENMP) && _OPENMP >= 201307   /* omp simd: OpenMP 4.0 (not MSVC's /openmp, 2.0) */
#define FASTGMM_PRAGMA(x) _Pragma(#x)
#define FASTGMM_SIMD_SUM(v) FASTGMM_PRAGMA(omp simd reduction(+:v))
#else
#define FASTGMM_SIMD_SUM(v)
#endif

FASTGMM_DEFINE_LOOPS(double, d)
FASTGMM_DEFINE_LOOPS(float, f)
FASTGMM_DEFINE_SOA_LOOPS(double, d)
FASTGMM_DEFINE_SOA_LOOPS(float, f)
FASTGMM_DEFINE_DIAG_ROW_TAIL(double, d)
FASTGMM_DEFINE_DIAG_ROW_TAIL(float, f)
FASTGMM_DEFINE_DIAG_ROWS(double, fastgmm_nvd, d)
FASTGMM_DEFINE_DIAG_ROWS(float, fastgmm_nvf, f)
FASTGMM_DEFINE_DIAG_MOMENTS_BLOCK(double, d)
FASTGMM_DEFINE_DIAG_MOMENTS_BLOCK(float, f)
FASTGMM_DEFINE_DIAG_MOMENTS_WHOLE(double, fastgmm_nvd, d)
FASTGMM_DEFINE_DIAG_MOMENTS_WHOLE(float, fastgmm_nvf, f)
FASTGMM_DEFINE_DIAG_MOMENTS(double, uint64_t, d)
FASTGMM_DEFINE_DIAG_MOMENTS(float, uint32_t, f)
/* Each row's maximum (the first of equal ones; a NaN is passed over, as
 * `if (v > m) m = v`) and each row's total, of an n x K chunk, written to
 * out as double: one fold, a = STEP(a, v) from INIT. Each row's chain runs
 * k = 0 .. K-1 in order, as the plain loop did, but eight rows at a time:
 * eight independent chains, where one row's K dependent adds or max were
 * latency-bound (speech's float64 em_pass, one thread: 251 -> 241 ms). The
 * same bits as row by row. */
#define FASTGMM_ROW_MAX_STEP(a, v) ((v) > (a) ? (v) : (a))
#define FASTGMM_ROW_SUM_STEP(a, v) ((a) + (v))
#define FASTGMM_DEFINE_ROW_FOLD(NAME, T, INIT, STEP)                           \
static inline void NAME(int n, int K, const T *__restrict__ x, double *__restrict__ out) \
{                                                                             \
    int i = 0;                                                                \
    for (; i + 8 <= n; i += 8) {                                              \
        T a[8];                                                               \
        for (int t = 0; t < 8; t++) a[t] = (T)(INIT);                         \
        for (int k = 0; k < K; k++)                                           \
            for (int t = 0; t < 8; t++) {                                     \
                const T v = x[(size_t)(i + t) * K + k];                       \
                a[t] = STEP(a[t], v);                                         \
            }                                                                 \
        for (int t = 0; t < 8; t++) out[i + t] = (double)a[t];                \
    }                                                                         \
    for (; i < n; i++) {                                                      \
        T a = (T)(INIT);                                                      \
        for (int k = 0; k < K; k++) {                                         \
            const T v = x[(size_t)i * K + k];                                 \
            a = STEP(a, v);                                                   \
        }                                                                     \
        out[i] = (double)a;                                                   \
    }                                                                         \
}
#define FASTGMM_DEFINE_ROW_REDUCE(T, SUFFIX)                                   \
FASTGMM_DEFINE_ROW_FOLD(fastgmm_row_max_##SUFFIX, T, -INFINITY, FASTGMM_ROW_MAX_STEP) \
FASTGMM_DEFINE_ROW_FOLD(fastgmm_row_totals_##SUFFIX, T, 0, FASTGMM_ROW_SUM_STEP)

FASTGMM_DEFINE_ROW_REDUCE(double, d)
FASTGMM_DEFINE_ROW_REDUCE(float, f)
FASTGMM_DEFINE_ROW_OPS(double, d)
FASTGMM_DEFINE_ROW_OPS(float, f)
FASTGMM_DEFINE_TRANSPOSE(double, d)
FASTGMM_DEFINE_TRANSPOSE(float, f)
#ifdef FASTGMM_VECTOR_TYPES
FASTGMM_DEFINE_TRI(double, fastgmm_nvd, d)
FASTGMM_DEFINE_TRI(float, fastgmm_nvf, f)
#else
/* Without vector types (MSVC): the plain row-wise loops, same results. */
#define FASTGMM_DEFINE_TRI_FALLBACK(T, SUFFIX)                                 \
static inline void fastgmm_tri_maha_##SUFFIX(                                  \
    int n, int D, const T *xt, const T *mu, const T *U, T *d, T *maha)        \
{                                                                             \
    fastgmm_maha_rows_##SUFFIX(n, D, xt, mu, U, d, maha);                     \
}                                                                             \
static inline void fastgmm_tri_moments_##SUFFIX(                               \
    int n, int D, const T *xt, const T *mu, const T *r, T *d, T *e,           \
    double *s1, double *s2)                                                   \
{                                                                             \
    (void)e;                                                                  \
    fastgmm_moments_rows_##SUFFIX(n, D, xt, mu, r, d, s1, s2);                \
}
FASTGMM_DEFINE_TRI_FALLBACK(double, d)
FASTGMM_DEFINE_TRI_FALLBACK(float, f)
#endif

/* out[i] = resp[i * stride]: one component's responsibilities, gathered
 * contiguous for the feature-major full kernels. */
#define FASTGMM_DEFINE_RESP_COLUMN(T, SUFFIX)                                  \
static inline void fastgmm_resp_column_##SUFFIX(                               \
    int n, int stride, const T *__restrict__ resp, T *__restrict__ out)       \
{                                                                             \
    for (int i = 0; i < n; i++) out[i] = resp[(size_t)i * stride];            \
}
FASTGMM_DEFINE_RESP_COLUMN(double, d)
FASTGMM_DEFINE_RESP_COLUMN(float, f)

/* One component's rows with a responsibility other than exactly 0 (an exp
 * that underflowed adds exactly nothing to its moments). Returns their
 * count m when it is 0, or when it is at most max_m and their centred rows
 * fit in d_out (capacity: `room` entries of T): then their responsibilities
 * are in r_out[0, m) and their rows d = x - mu in d_out, m rows of
 * FASTGMM_PADDED_D(D, T) entries (the padding set to 0: never summed into
 * the statistics, but no stale values in the lanes). Otherwise returns -1
 * and writes nothing. A chunk has at most FASTGMM_PACK_MAX_ROWS rows
 * (CHUNK_SIZE); a longer one is never packed. */
#define FASTGMM_PACK_MAX_ROWS 256
#ifdef FASTGMM_VECTOR_TYPES
#define FASTGMM_LANES(T) ((int)(FASTGMM_VBYTES / sizeof(T)))
#else
#define FASTGMM_LANES(T) 1
#endif
#define FASTGMM_PADDED_D(D, T) (((D) + FASTGMM_LANES(T) - 1) / FASTGMM_LANES(T) * FASTGMM_LANES(T))
#define FASTGMM_DEFINE_PACK_ROWS(T, SUFFIX)                                    \
static inline int fastgmm_pack_rows_##SUFFIX(                                  \
    int n, int D, int stride, const T *__restrict__ resp,                     \
    const T *__restrict__ X, const T *__restrict__ mu, int max_m,             \
    size_t room, T *__restrict__ r_out, T *__restrict__ d_out)                \
{                                                                             \
    int kept[FASTGMM_PACK_MAX_ROWS];                                          \
    const int Dp = FASTGMM_PADDED_D(D, T);                                    \
    int m = 0;                                                                \
    if (n > FASTGMM_PACK_MAX_ROWS) return -1;                                 \
    for (int i = 0; i < n; i++)                                               \
        if (resp[(size_t)i * stride] != 0) kept[m++] = i;                     \
    if (m == 0) return 0;                                                     \
    if (m > max_m || (size_t)m * Dp > room) return -1;                        \
    for (int c = 0; c < m; c++) {                                             \
        r_out[c] = resp[(size_t)kept[c] * stride];                            \
        const T *__restrict__ x = X + (size_t)kept[c] * D;                    \
        T *__restrict__ o = d_out + (size_t)c * Dp;                           \
        for (int l = 0; l < D; l++) o[l] = x[l] - mu[l];                      \
        for (int l = D; l < Dp; l++) o[l] = 0;                                \
    }                                                                         \
    return m;                                                                 \
}
FASTGMM_DEFINE_PACK_ROWS(double, d)
FASTGMM_DEFINE_PACK_ROWS(float, f)

/* The moments of a few packed centred rows (d: m x Dp, from pack_rows):
 * s1[a] += sum_c r_c d_ca;  s2[a, b] += sum_c (r_c d_ca) d_cb (b <= a, s2
 * packed as moments_rows'). For the few rows a component keeps in a chunk
 * when its other responsibilities underflowed. Four rows a of S2 at a time
 * against one vector of columns b, summed over the m rows in registers
 * (no reduction across lanes, nothing stored until the end); the sums run
 * over the rows in order, in T, and are added to the float64 statistics. */
#ifdef FASTGMM_VECTOR_TYPES
#define FASTGMM_DEFINE_PACKED_MOMENTS(T, V, SUFFIX)                            \
static inline void fastgmm_moments_packed_##SUFFIX(                            \
    int m, int D, const T *__restrict__ d, const T *__restrict__ r,           \
    double *__restrict__ s1, double *__restrict__ s2)                         \
{                                                                             \
    const int W = FASTGMM_LANES(T), Dp = FASTGMM_PADDED_D(D, T);              \
    for (int j = 0; j < Dp; j += W) {                                         \
        V t = {0};                                                            \
        for (int c = 0; c < m; c++)                                           \
            t += r[c] * fastgmm_load_##SUFFIX(d + (size_t)c * Dp + j);        \
        for (int l = 0; l < W && j + l < D; l++) s1[j + l] += t[l];           \
    }                                                                         \
    for (int a0 = 0; a0 < D; a0 += 4) {                                       \
        const int a1 = a0 + 1 < D ? a0 + 1 : a0;                              \
        const int a2 = a0 + 2 < D ? a0 + 2 : a0;                              \
        const int a3 = a0 + 3 < D ? a0 + 3 : a0;                              \
        /* columns up to the block's last real row (a3 may be a stand-in) */  \
        const int a_last = a0 + 3 < D ? a0 + 3 : D - 1;                       \
        for (int j = 0; j <= a_last; j += W) {                                \
            V c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};                         \
            for (int c = 0; c < m; c++) {                                     \
                const T *row = d + (size_t)c * Dp;                            \
                const V dv = fastgmm_load_##SUFFIX(row + j);                  \
                const T rc = r[c];                                            \
                c0 += (rc * row[a0]) * dv; c1 += (rc * row[a1]) * dv;         \
                c2 += (rc * row[a2]) * dv; c3 += (rc * row[a3]) * dv;         \
            }                                                                 \
            const int as[4] = {a0, a1, a2, a3};                               \
            for (int q = 0; q < 4 && a0 + q < D; q++) {                       \
                const int a = as[q];                                          \
                const V cq = q == 0 ? c0 : q == 1 ? c1 : q == 2 ? c2 : c3;    \
                for (int l = 0; l < W && j + l <= a; l++)                     \
                    s2[(size_t)a * (a + 1) / 2 + j + l] += cq[l];             \
            }                                                                 \
        }                                                                     \
    }                                                                         \
}
FASTGMM_DEFINE_PACKED_MOMENTS(double, fastgmm_nvd, d)
FASTGMM_DEFINE_PACKED_MOMENTS(float, fastgmm_nvf, f)
#else
/* Without vector types (MSVC): one row of S2 at a time, same sums. */
#define FASTGMM_DEFINE_PACKED_MOMENTS_PLAIN(T, SUFFIX)                         \
static inline void fastgmm_moments_packed_##SUFFIX(                            \
    int m, int D, const T *d, const T *r, double *s1, double *s2)             \
{                                                                             \
    for (int a = 0; a < D; a++) {                                             \
        T t = 0;                                                              \
        for (int c = 0; c < m; c++) t += r[c] * d[(size_t)c * D + a];         \
        s1[a] += t;                                                           \
        for (int b = 0; b <= a; b++) {                                        \
            T u = 0;                                                          \
            for (int c = 0; c < m; c++)                                       \
                u += (r[c] * d[(size_t)c * D + a]) * d[(size_t)c * D + b];    \
            s2[(size_t)a * (a + 1) / 2 + b] += u;                             \
        }                                                                     \
    }                                                                         \
}
FASTGMM_DEFINE_PACKED_MOMENTS_PLAIN(double, d)
FASTGMM_DEFINE_PACKED_MOMENTS_PLAIN(float, f)
#endif

/* out[k] += sum_i resp[i, k] (resp: n x K, row-major), summed in double. Few
 * components: one SIMD reduction down each column; many: rows of K,
 * vectorised across k. */
#define FASTGMM_DEFINE_COLUMN_SUMS(T, SUFFIX)                                   \
static inline void fastgmm_column_sums_##SUFFIX(                               \
    int n, int K, const T *__restrict__ resp, double *__restrict__ out)       \
{                                                                             \
    if (K < 8) {                                                              \
        for (int k = 0; k < K; k++) {                                         \
            double acc = 0;                                                   \
            FASTGMM_SIMD_SUM(acc)                                             \
            for (int i = 0; i < n; i++) acc += resp[(size_t)i * K + k];       \
            out[k] += acc;                                                    \
        }                                                                     \
    } else {                                                                  \
        for (int i = 0; i < n; i++)                                           \
            for (int k = 0; k < K; k++) out[k] += resp[(size_t)i * K + k];    \
    }                                                                         \
}
FASTGMM_DEFINE_COLUMN_SUMS(double, d)
FASTGMM_DEFINE_COLUMN_SUMS(float, f)

/* The log-sum-exp normalisation of _chunk.pxd's log_normalize_rows for few
 * components (K < FASTGMM_SMALL_K), with the rows in the vector lanes: the
 * chunk is transposed to K x n in s, every sweep (maximum, exponentials,
 * totals, scaling) runs down contiguous rows, and the result is transposed
 * back. Row by row, K = 3 left every sweep but the exponentials scalar, at
 * a compare, branch and store per entry: 9.5 of 21 ms in a one-thread pass
 * over 1M x 2 rows with K = 3. The same operations in the same order per
 * entry as the row-wise loop, so the same results to the bit. s: scratch
 * of (K + 2) n entries; transposed_in: the full kernel already wrote the
 * log-densities there, K x n. */
#define FASTGMM_SMALL_K 8
#define FASTGMM_DEFINE_LOG_NORMALIZE_SMALL(T, EXP, SUFFIX)                     \
static inline void fastgmm_log_normalize_small_##SUFFIX(                       \
    int n, int K, T *__restrict__ wlp, double *__restrict__ lse,              \
    T *__restrict__ s, int transposed_in)                                     \
{                                                                             \
    T *__restrict__ mx = s + (size_t)K * n;                                   \
    T *__restrict__ tot = mx + n;                                             \
    if (!transposed_in)                                                       \
        for (int k = 0; k < K; k++)                                           \
            for (int i = 0; i < n; i++)                                       \
                s[(size_t)k * n + i] = wlp[(size_t)i * K + k];                \
    for (int i = 0; i < n; i++) mx[i] = -INFINITY;                            \
    for (int k = 0; k < K; k++) {                                             \
        const T *__restrict__ sk = s + (size_t)k * n;                         \
        for (int i = 0; i < n; i++) mx[i] = sk[i] > mx[i] ? sk[i] : mx[i];    \
    }                                                                         \
    /* a row whose every entry is -inf is left unshifted: exp gives 0 */      \
    for (int k = 0; k < K; k++) {                                             \
        T *__restrict__ sk = s + (size_t)k * n;                               \
        for (int i = 0; i < n; i++)                                           \
            sk[i] = EXP(mx[i] == -INFINITY ? sk[i] : sk[i] - mx[i]);          \
    }                                                                         \
    for (int i = 0; i < n; i++) tot[i] = 0;                                   \
    for (int k = 0; k < K; k++) {                                             \
        const T *__restrict__ sk = s + (size_t)k * n;                         \
        for (int i = 0; i < n; i++) tot[i] += sk[i];                          \
    }                                                                         \
    /* total 0: no component gives the row a finite density; it keeps its     \
     * zeros and lse -inf. Otherwise total >= 1 (the maximum gives exp(0)). */ \
    for (int i = 0; i < n; i++)                                               \
        lse[i] = (tot[i] == 0 ? -INFINITY : (double)mx[i])                    \
                 + fastgmm_log_ge1((double)tot[i]);                           \
    for (int i = 0; i < n; i++)                                               \
        tot[i] = tot[i] == 0 ? (T)1 : (T)(1.0 / (double)tot[i]);              \
    for (int k = 0; k < K; k++) {                                             \
        const T *__restrict__ sk = s + (size_t)k * n;                         \
        for (int i = 0; i < n; i++) wlp[(size_t)i * K + k] = sk[i] * tot[i];  \
    }                                                                         \
}
FASTGMM_DEFINE_LOG_NORMALIZE_SMALL(double, fastgmm_exp, d)
FASTGMM_DEFINE_LOG_NORMALIZE_SMALL(float, fastgmm_expf, f)

/* The whole EM pass over one chunk for full covariance with few features
 * and few components (D <= 4, K < FASTGMM_SMALL_K: blobs2d is 2 x 3), in one
 * kernel: log-densities, log-sum-exp, responsibilities, sample weights and
 * moments, with the rows in the vector lanes. The separate steps it
 * replaces (transpose the chunk, Mahalanobis distances, the transposed
 * normalisation and its transpose back, the second transpose, a gather of
 * each component's responsibilities, the moments) each swept the chunk
 * through memory for a handful of flops a row.
 *
 * Phase 1, FASTGMM_FUSED_ROWS rows (twice as many in float32) at a time on
 * the stack: log-densities for every component (D a compile-time constant:
 * the feature loops unroll, the row loops vectorise), max, exp, totals,
 * the log-likelihood, and the responsibilities, stored with the rows
 * feature-major in `buf`. Phase 2, a component at a time: its N, S1, S2
 * (centred on its mean) in registers across the rows. Per row the
 * arithmetic is maha_rows', the small-K normalisation's and moments_rows'
 * in the same order; the sums over rows run per lane (row position in a
 * block) and the lanes are added in a fixed tree at the end, so the
 * results do not depend on the thread count. Unweighted, a row's log p
 * is summed as max + log(total) with the totals multiplied per lane and
 * one log of the product at the end (a vectorised log a row was a fifth
 * of the kernel).
 *
 * One thread, 1M x 2 x 3, em_pass: 15.6 ms with the separate steps, 8.3-8.9
 * ms fused (float64); float32 22.7 -> 5.5 ms (no double log a row). */
#define FASTGMM_FUSED_ROWS 16
#define FASTGMM_FUSED_MAX_D 4
#define FASTGMM_FUSED_MAX_ROWS 256
/* One copy of the body per D = 1..4 (D <= FASTGMM_FUSED_MAX_D). */
#define FASTGMM_SMALL_FULL_SWITCH(SUFFIX, WEIGHTED)                           \
    switch (D) {                                                              \
    case 1: fastgmm_small_full_body_##SUFFIX(1, WEIGHTED, n, K, X, w, mu, U, log_const, buf, stat); break; \
    case 2: fastgmm_small_full_body_##SUFFIX(2, WEIGHTED, n, K, X, w, mu, U, log_const, buf, stat); break; \
    case 3: fastgmm_small_full_body_##SUFFIX(3, WEIGHTED, n, K, X, w, mu, U, log_const, buf, stat); break; \
    default: fastgmm_small_full_body_##SUFFIX(4, WEIGHTED, n, K, X, w, mu, U, log_const, buf, stat); break; \
    }
#define FASTGMM_DEFINE_SMALL_FULL(T, EXP, IS_FLOAT, SUFFIX)                     \
static FASTGMM_ALWAYS_INLINE void fastgmm_small_full_body_##SUFFIX(             \
    const int D, const int WEIGHTED, int n, int K, const T *__restrict__ X,   \
    const double *__restrict__ w, const T *__restrict__ mu,                   \
    const T *__restrict__ U, const double *__restrict__ log_const,            \
    T *__restrict__ buf, double *__restrict__ stat)                           \
{                                                                             \
    /* as many bytes a block in float32 as in float64 */                      \
    enum { B = FASTGMM_FUSED_ROWS * (int)(sizeof(double) / sizeof(T)) };      \
    const int P = 1 + D + D * (D + 1) / 2;   /* N, S1, S2 packed */          \
    const int packed = D * (D + 1) / 2;                                       \
    double ll[B];                                                             \
    T pad[B * FASTGMM_FUSED_MAX_D];                                           \
    double pad_w[B];                                                          \
    double prod[B];                                                           \
    for (int t = 0; t < B; t++) ll[t] = 0;                                    \
    for (int t = 0; t < B; t++) prod[t] = 1.0;                                \
    /* the chunk's rows (feature-major) and responsibilities, padded to */    \
    /* whole blocks, in the scratch */                                        \
    const int nr = (n + B - 1) / B * B;                                       \
    T *__restrict__ xb = buf;                                                 \
    T *__restrict__ rb = buf + (size_t)D * nr;                                \
    for (int i0 = 0; i0 < n; i0 += B) {                                       \
        const int nb = n - i0 < B ? n - i0 : B;                               \
        const T *__restrict__ src = X + (size_t)i0 * D;                       \
        const double *__restrict__ wsrc = WEIGHTED ? w + i0 : NULL;           \
        if (nb < B) {                                                         \
            /* the last rows, padded with copies of the last one (finite) */  \
            /* and weight 0; unweighted, `valid` drops their lanes */         \
            for (int t = 0; t < B; t++)                                       \
                for (int l = 0; l < D; l++)                                   \
                    pad[t * D + l] = src[(size_t)(t < nb ? t : nb - 1) * D + l]; \
            src = pad;                                                        \
            if (WEIGHTED) {                                                   \
                for (int t = 0; t < B; t++) pad_w[t] = t < nb ? wsrc[t] : 0.0; \
                wsrc = pad_w;                                                 \
            }                                                                 \
        }                                                                     \
        T x[FASTGMM_FUSED_MAX_D][B], wl[FASTGMM_SMALL_K][B];                   \
        T mx[B], tot[B], inv[B];                                              \
        for (int t = 0; t < B; t++) {                                         \
            _Pragma("GCC unroll 4")                                           \
            for (int l = 0; l < D; l++) x[l][t] = src[t * D + l];             \
        }                                                                     \
        _Pragma("GCC unroll 4")                                               \
        for (int l = 0; l < D; l++)                                           \
            for (int t = 0; t < B; t++) xb[(size_t)l * nr + i0 + t] = x[l][t]; \
        for (int k = 0; k < K; k++) {                                         \
            const T *__restrict__ m = mu + (size_t)k * D;                     \
            const T *__restrict__ u = U + (size_t)k * D * D;                  \
            const double c = log_const[k];                                    \
            for (int t = 0; t < B; t++) {                                     \
                T q = 0;                                                      \
                _Pragma("GCC unroll 4")                                       \
                for (int j = 0; j < D; j++) {                                 \
                    T y = 0;                                                  \
                    _Pragma("GCC unroll 4")                                   \
                    for (int l = 0; l < D; l++)                               \
                        if (l <= j) y += (x[l][t] - m[l]) * u[l * D + j];     \
                    q += y * y;                                               \
                }                                                             \
                wl[k][t] = (T)(c - 0.5 * q);                                  \
            }                                                                 \
        }                                                                     \
        for (int t = 0; t < B; t++) mx[t] = -INFINITY;                        \
        for (int k = 0; k < K; k++)                                           \
            for (int t = 0; t < B; t++) mx[t] = wl[k][t] > mx[t] ? wl[k][t] : mx[t]; \
        for (int t = 0; t < B; t++) tot[t] = 0;                               \
        /* a row whose every entry is -inf is left unshifted: exp gives 0. */ \
        /* (Selects between values, never around an operation: AVX2 has */    \
        /* no masked arithmetic, and GCC left such loops scalar there.) */    \
        for (int t = 0; t < B; t++) mx[t] = mx[t] == -INFINITY ? (T)0 : mx[t]; \
        for (int k = 0; k < K; k++)                                           \
            for (int t = 0; t < B; t++) {                                     \
                wl[k][t] = EXP(wl[k][t] - mx[t]);                             \
                tot[t] += wl[k][t];                                           \
            }                                                                 \
        for (int t = 0; t < B; t++)                                           \
            inv[t] = (T)1 / (tot[t] == 0 ? (T)1 : tot[t]);                    \
        if (WEIGHTED) {                                                       \
            /* weight 0 drops the row, even one with lse -inf, and the */     \
            /* padding lanes have weight 0 */                                 \
            for (int t = 0; t < B; t++) {                                     \
                const double lse = (tot[t] == 0 ? -INFINITY : (double)mx[t])  \
                                   + fastgmm_log_ge1((double)tot[t]);         \
                const double term = wsrc[t] * lse;                            \
                ll[t] += wsrc[t] != 0.0 ? term : 0.0;                         \
            }                                                                 \
        } else {                                                              \
            /* lse = max + log(total): the maxima summed, the totals */       \
            /* multiplied, one log of the product at the end: a lane sees */  \
            /* at most FASTGMM_FUSED_MAX_ROWS / B = 16 rows, and each total */ \
            /* is in [1, K], so the product stays below 8^16 = 3e14. A */     \
            /* padding lane adds nothing, and its inv 0 zeroes its */         \
            /* responsibilities. */                                           \
            for (int t = 0; t < B; t++) {                                     \
                const int valid = t < nb;                                     \
                ll[t] += valid ? (tot[t] == 0 ? -INFINITY : (double)mx[t]) : 0.0; \
                prod[t] *= (valid & (tot[t] != 0)) ? (double)tot[t] : 1.0;    \
                inv[t] = valid ? inv[t] : (T)0;                               \
            }                                                                 \
        }                                                                     \
        for (int k = 0; k < K; k++) {                                         \
            T *__restrict__ rk = rb + (size_t)k * nr + i0;                     \
            for (int t = 0; t < B; t++) {                                     \
                T r = wl[k][t] * inv[t];                                      \
                if (WEIGHTED) {                                               \
                    r = (T)((double)r * wsrc[t]);                             \
                    if (IS_FLOAT) r = r < (T)1e-30 ? (T)0 : r; /* no float32 denormal */ \
                }                                                             \
                rk[t] = r;                                                    \
            }                                                                 \
        }                                                                     \
    }                                                                         \
    if (!WEIGHTED)                                                            \
        for (int t = 0; t < B; t++) ll[t] += fastgmm_log_ge1(prod[t]);        \
    /* lanes added pairwise, a fixed tree */                                  \
    for (int h = B / 2; h > 0; h /= 2)                                        \
        for (int t = 0; t < h; t++) ll[t] += ll[t + h];                       \
    stat[0] += ll[0];                                                         \
    /* The moments, a component at a time: its sums stay in registers */      \
    /* across the chunk (padding lanes have r = 0 and finite x). */           \
    double *__restrict__ n_k = stat + 1;                                      \
    double *__restrict__ s1 = n_k + K;                                        \
    double *__restrict__ s2 = s1 + (size_t)K * D;                             \
    for (int k = 0; k < K; k++) {                                             \
        const T *__restrict__ m = mu + (size_t)k * D;                         \
        const T *__restrict__ rk = rb + (size_t)k * nr;                       \
        T a[1 + FASTGMM_FUSED_MAX_D * (FASTGMM_FUSED_MAX_D + 3) / 2][B];       \
        _Pragma("GCC unroll 15")                                              \
        for (int e = 0; e < P; e++)                                           \
            for (int t = 0; t < B; t++) a[e][t] = 0;                          \
        for (int i0 = 0; i0 < nr; i0 += B) {                                  \
            for (int t = 0; t < B; t++) {                                     \
                const T r = rk[i0 + t];                                       \
                T d[FASTGMM_FUSED_MAX_D];                                     \
                _Pragma("GCC unroll 4")                                       \
                for (int l = 0; l < D; l++) d[l] = xb[(size_t)l * nr + i0 + t] - m[l]; \
                a[0][t] += r;                                                 \
                _Pragma("GCC unroll 4")                                       \
                for (int l = 0; l < D; l++) a[1 + l][t] += r * d[l];          \
                _Pragma("GCC unroll 4")                                       \
                for (int l = 0; l < D; l++)                                   \
                    _Pragma("GCC unroll 4")                                   \
                    for (int l2 = 0; l2 < D; l2++)                            \
                        if (l2 <= l)                                          \
                            a[1 + D + l * (l + 1) / 2 + l2][t] += r * d[l] * d[l2]; \
            }                                                                 \
        }                                                                     \
        _Pragma("GCC unroll 15")                                              \
        for (int e = 0; e < P; e++) {                                         \
            for (int h = B / 2; h > 0; h /= 2)                                \
                for (int t = 0; t < h; t++) a[e][t] += a[e][t + h];           \
            if (e == 0) n_k[k] += a[e][0];                                    \
            else if (e <= D) s1[(size_t)k * D + e - 1] += a[e][0];            \
            else s2[(size_t)k * packed + e - 1 - D] += a[e][0];               \
        }                                                                     \
    }                                                                         \
}                                                                             \
/* The rows FASTGMM_FUSED_MAX_ROWS at a time (one piece for a chunk of      \
 * CHUNK_SIZE rows); buf: scratch of (K + D) FASTGMM_FUSED_MAX_ROWS entries. \
 * D and the weighting are constants in each copy of the body: the loops    \
 * over features unroll, and the loops over a block's rows vectorise. */    \
static inline void fastgmm_small_full_chunk_##SUFFIX(                          \
    int n_rows, int D, int K, const T *__restrict__ rows,                     \
    const double *__restrict__ weights, const T *__restrict__ mu,             \
    const T *__restrict__ U, const double *__restrict__ log_const,            \
    T *__restrict__ buf, double *__restrict__ stat)                           \
{                                                                             \
    for (int i = 0; i < n_rows; i += FASTGMM_FUSED_MAX_ROWS) {                \
        const int n = n_rows - i < FASTGMM_FUSED_MAX_ROWS                     \
                      ? n_rows - i : FASTGMM_FUSED_MAX_ROWS;                  \
        const T *X = rows + (size_t)i * D;                                    \
        const double *w = weights == NULL ? NULL : weights + i;               \
        if (w == NULL)                                                        \
            FASTGMM_SMALL_FULL_SWITCH(SUFFIX, 0)                              \
        else                                                                  \
            FASTGMM_SMALL_FULL_SWITCH(SUFFIX, 1)                              \
    }                                                                         \
}
FASTGMM_DEFINE_SMALL_FULL(double, fastgmm_exp, 0, d)
FASTGMM_DEFINE_SMALL_FULL(float, fastgmm_expf, 1, f)

#endif
