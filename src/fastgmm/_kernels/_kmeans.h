/* k-means kernels on one chunk of rows (at most FASTGMM_KM_CHUNK).
 *
 * Rows are taken FASTGMM_KM_ROWS at a time, centred (y = x - shift,
 * rounded to the data's type, as numpy rounds X - X.mean(axis=0)), and
 * their dot products with the centres computed in register tiles with the
 * centres in the vector lanes (the centres packed feature-major once per
 * pass): one multiply-add per row, feature and vector of centres, no
 * transposition of the data. Squared distances are scikit-learn's
 * expansion |y|^2 + |c|^2 - 2 y.c (the comparisons of Lloyd's step need
 * only |c|^2 - 2 y.c). Each tile is consumed at once:
 *
 *   nearest_chunk     the first nearest centre of every row (Lloyd's labels)
 *   potentials_chunk  sum_i w_i min(closest_i, d(y_i, c_m)) for a few
 *                     k-means++ candidates c_m, and which rows each would
 *                     come nearer to, reading only the rows that a
 *                     candidate can come nearer to (triangle inequality)
 *   closest_chunk     closest_i = min(closest_i, d(y_i, c)) for the chosen
 *                     candidate, on the rows it comes nearer to
 *   lloyd_sums_chunk  per-cluster row counts, weights and sum_i w_i y_i of
 *                     the new labels; the number of labels that changed
 *
 * A transposed chunk (rows in the lanes, the data's features innermost)
 * was the first design: transposing took about one cycle an element,
 * as long as the distances to six candidates (speech, D = 39), and the
 * direct form sum_j (y_j - c_j)^2 costs a subtraction more per term.
 *
 * Sums over rows are in double, in a fixed order: the same binary gives
 * the same bits whatever the thread count. The body is written once, in
 * _kmeans_body.h, and included for double and float.
 */
#ifndef FASTGMM_KMEANS_H
#define FASTGMM_KMEANS_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "_loops.h"      /* vector types, FASTGMM_VBYTES, FASTGMM_ALWAYS_INLINE */

/* Rows per chunk, the unit of the slots (as em_pass's CHUNK_SIZE). */
#define FASTGMM_KM_CHUNK 256
/* Rows per block: register tiles of 8 rows by one vector of centres or 4
 * rows by two, 8 accumulators either way (4 chains left the tiles waiting
 * on the multiply-add's latency: speech's candidates 46 -> ns a row). */
#define FASTGMM_KM_ROWS 8
/* Candidates of one k-means++ step that potentials_chunk marks row by row:
 * a byte of bits (n_local_trials = 2 + ln K is 8 from K = 1097). */
#define FASTGMM_KM_MARKS 8
#ifdef FASTGMM_VECTOR_TYPES
#define FASTGMM_KM_VBYTES FASTGMM_VBYTES
#else
#define FASTGMM_KM_VBYTES 16
#endif

#define FASTGMM_KM_GLUE2(a, b) a##_##b
#define FASTGMM_KM_GLUE(a, b) FASTGMM_KM_GLUE2(a, b)

#ifdef FASTGMM_VECTOR_TYPES
/* integer vectors with the lanes of fastgmm_nvd / fastgmm_nvf: comparison
 * masks and centre numbers */
typedef int64_t fastgmm_km_nvid __attribute__((vector_size(FASTGMM_VBYTES)));
typedef int32_t fastgmm_km_nvif __attribute__((vector_size(FASTGMM_VBYTES)));
/* eight doubles: the k-means++ potentials of the candidate lanes */
typedef double fastgmm_km_d8 __attribute__((vector_size(8 * sizeof(double))));
/* four: the same for steps of at most four candidates */
typedef double fastgmm_km_d4 __attribute__((vector_size(4 * sizeof(double))));
#endif
/* 0, 1, 2, ...: the lanes' first centre numbers (loaded, not built lane by
 * lane: that cost more than the comparisons); as int64 and as int32 */
static const int64_t fastgmm_km_iota_d[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const int32_t fastgmm_km_iota_f[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* one copy per type: the type, its native vector and the integer vector
 * of as many lanes, the name suffix and the vector's fixed-tree lane sum
 * (_loops.h) */
#define FASTGMM_KM_T double
#define FASTGMM_KM_TBYTES 8
#define fastgmm_km_iota fastgmm_km_iota_d
#define FASTGMM_KM_I int64_t
#define FASTGMM_KM_VI fastgmm_km_nvid
#define FASTGMM_KM_V fastgmm_nvd
#define FASTGMM_KM_S d
#define FASTGMM_KM_HSUM fastgmm_hsum_vd
#include "_kmeans_body.h"
#undef FASTGMM_KM_T
#undef FASTGMM_KM_TBYTES
#undef fastgmm_km_iota
#undef FASTGMM_KM_I
#undef FASTGMM_KM_VI
#undef FASTGMM_KM_V
#undef FASTGMM_KM_S
#undef FASTGMM_KM_HSUM

#define FASTGMM_KM_T float
#define FASTGMM_KM_TBYTES 4
#define fastgmm_km_iota fastgmm_km_iota_f
#define FASTGMM_KM_I int32_t
#define FASTGMM_KM_VI fastgmm_km_nvif
#define FASTGMM_KM_V fastgmm_nvf
#define FASTGMM_KM_S f
#define FASTGMM_KM_HSUM fastgmm_hsum_vf
#include "_kmeans_body.h"
#undef FASTGMM_KM_T
#undef FASTGMM_KM_TBYTES
#undef fastgmm_km_iota
#undef FASTGMM_KM_I
#undef FASTGMM_KM_VI
#undef FASTGMM_KM_V
#undef FASTGMM_KM_S
#undef FASTGMM_KM_HSUM

/* Centres in one vector, for each type. */
static inline ptrdiff_t fastgmm_km_vector_lanes_d(void) { return fastgmm_km_lanes_d; }
static inline ptrdiff_t fastgmm_km_vector_lanes_f(void) { return fastgmm_km_lanes_f; }

#endif
