/* The k-means chunk kernels for one floating type; included by _kmeans.h
 * with FASTGMM_KM_T (double or float), FASTGMM_KM_V (its native vector
 * type) and FASTGMM_KM_S (the name suffix, d or f) defined. No include
 * guard: it is meant to be included once per type. */

#define KT FASTGMM_KM_T
#define KV FASTGMM_KM_V
#define KN(name) FASTGMM_KM_GLUE(name, FASTGMM_KM_S)

/* Centres in a vector: the lanes of one native vector. */
enum { KN(fastgmm_km_lanes) = FASTGMM_KM_VBYTES / (int)sizeof(KT) };
#define KW KN(fastgmm_km_lanes)
/* the same, for the preprocessor */
#define KM_LANES (FASTGMM_KM_VBYTES / FASTGMM_KM_TBYTES)
#define KR FASTGMM_KM_ROWS

/* The centres packed for the dot products: ct[j * kp + k] = c[k, j] with
 * kp = K rounded up to whole vectors (the padding 0), and their squared
 * norms cn[k] = sum_j c[k, j]^2, summed in order in T (padding 0). Every
 * centre's norm and column are the same whatever the other centres, so a
 * distance comes out the same in every pass. */
static inline ptrdiff_t KN(fastgmm_km_padded)(ptrdiff_t K)
{
    return (K + KW - 1) / KW * KW;
}

/* Lanes of the candidates' packing in potentials_chunk: at least
 * FASTGMM_KM_MARKS, so that its per-row loop has a fixed length. */
static inline ptrdiff_t KN(fastgmm_km_marked_lanes)(void)
{
    return KN(fastgmm_km_padded)(FASTGMM_KM_MARKS);
}

static inline void KN(fastgmm_km_pack)(
    ptrdiff_t K, ptrdiff_t D, const KT *__restrict__ c, ptrdiff_t kp, KT *__restrict__ ct,
    KT *__restrict__ cn)
{
    for (ptrdiff_t j = 0; j < D; j++)
        for (ptrdiff_t k = 0; k < kp; k++) ct[j * kp + k] = k < K ? c[k * D + j] : (KT)0;
    for (ptrdiff_t k = 0; k < kp; k++) {
        /* padding: +inf, so that no comparison of Lloyd's step picks it */
        KT s = k < K ? (KT)0 : (KT)INFINITY;
        if (k < K)
            for (ptrdiff_t j = 0; j < D; j++) s += c[k * D + j] * c[k * D + j];
        cn[k] = s;
    }
}

/* One block of q <= KR rows, centred: yb[r, j] = x[r_r, j] - shift[j]
 * (rounded to T, as numpy rounds X - mean), r_r = rows[r] (rows NULL:
 * r), and yn[r] = sum_j yb[r, j]^2: whole vectors of features summed in
 * lanes and the lanes added by a fixed tree, then the remaining features
 * in order (3x faster than one chain per row at D = 39); rows q..KR-1
 * are 0. */
static inline void KN(fastgmm_km_rows)(
    ptrdiff_t q, ptrdiff_t D, const KT *__restrict__ X, const ptrdiff_t *__restrict__ rows,
    const KT *__restrict__ shift, KT *__restrict__ yb, KT *__restrict__ yn)
{
    for (int r = 0; r < KR; r++) {
        KT *__restrict__ y = yb + r * D;
        if (r >= q) {
            for (ptrdiff_t j = 0; j < D; j++) y[j] = 0;
            yn[r] = 0;
            continue;
        }
        const KT *__restrict__ x = X + (rows == NULL ? r : rows[r]) * D;
        ptrdiff_t j = 0;
        KT s = 0;
#ifdef FASTGMM_VECTOR_TYPES
        KV acc = {0};
        for (; j + KW <= D; j += KW) {
            KV xv, sv;
            __builtin_memcpy(&xv, x + j, sizeof(KV));
            __builtin_memcpy(&sv, shift + j, sizeof(KV));
            const KV yv = xv - sv;
            __builtin_memcpy(y + j, &yv, sizeof(KV));
            acc += yv * yv;
        }
        if (j < D && D >= KW) {
            /* the last KW features as one vector, overlapping the ones
             * done: the same values stored again, and only the new lanes'
             * squares added (scalar tails were a quarter of a float32
             * potentials pass at D = 39) */
            typedef FASTGMM_KM_VI VI;
            const ptrdiff_t t0 = D - KW;
            KV xv, sv;
            VI lane;
            __builtin_memcpy(&xv, x + t0, sizeof(KV));
            __builtin_memcpy(&sv, shift + t0, sizeof(KV));
            __builtin_memcpy(&lane, fastgmm_km_iota, sizeof(VI));
            const KV yv = xv - sv;
            __builtin_memcpy(y + t0, &yv, sizeof(KV));
            const VI fresh = lane >= (FASTGMM_KM_I)(j - t0);
            const KV sq = yv * yv;
            acc += (KV)((VI)sq & fresh);
            j = D;
        }
        s = FASTGMM_KM_HSUM(acc);
#endif
        for (; j < D; j++) {
            y[j] = x[j] - shift[j];
            s += y[j] * y[j];
        }
        yn[r] = s;
    }
}

/* Asks for rows rows[a..b) of X ahead of their use, into the outer caches
 * (locality hint 1): the rows a k-means++ pass gathers are scattered, and
 * the hardware prefetchers, which follow runs of lines, left each one a
 * miss. Two blocks ahead, float64, D = 39, one thread, ns a gathered row:
 * 92 -> 63 (into L1 instead, hint 3: 88; four blocks ahead: 90). */
static inline void KN(fastgmm_km_prefetch)(
    ptrdiff_t a, ptrdiff_t b, ptrdiff_t D, const KT *__restrict__ X,
    const ptrdiff_t *__restrict__ rows)
{
#if defined(__GNUC__) || defined(__clang__)
    const ptrdiff_t bytes = D * (ptrdiff_t)sizeof(KT);
    for (ptrdiff_t r = a; r < b; r++) {
        const char *row = (const char *)(X + rows[r] * D);
        for (ptrdiff_t off = 0; off < bytes; off += 64) __builtin_prefetch(row + off, 0, 1);
        __builtin_prefetch(row + bytes - 1, 0, 1);
    }
#else
    (void)a; (void)b; (void)D; (void)X; (void)rows;
#endif
}
#define KM_AHEAD (2 * KR)

/* dots[r * kp + k] = sum_j yb[r, j] ct[j, k] for R rows from r0 and V
 * vectors of centres from k0: a register tile whose R x V accumulators
 * (8: enough chains to cover the multiply-add's latency) stay in
 * registers across all features, each loaded vector of centres feeding R
 * chains and each row's coordinate broadcast to V. Every lane is its own
 * chain over j in order, so a centre's dot product does not depend on the
 * lane it sits in, nor on the other centres. */
static FASTGMM_ALWAYS_INLINE void KN(fastgmm_km_tile)(
    const int R, const int V, ptrdiff_t D, ptrdiff_t kp, int r0, ptrdiff_t k0,
    const KT *__restrict__ yb, const KT *__restrict__ ct, KT *__restrict__ dots)
{
#ifdef FASTGMM_VECTOR_TYPES
    KV a[8][2];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++) {
        a[r][0] = (KV){0};
        a[r][1] = (KV){0};
    }
    for (ptrdiff_t j = 0; j < D; j++) {
        KV c[2];
        _Pragma("GCC unroll 2")
        for (int v = 0; v < V; v++) {
            __builtin_memcpy(&c[v], ct + j * kp + k0 + v * KW, sizeof(KV));
            FASTGMM_IN_REGISTER(c[v]);
        }
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            const KT y = yb[(r0 + r) * D + j];
            _Pragma("GCC unroll 2")
            for (int v = 0; v < V; v++) a[r][v] += y * c[v];
        }
    }
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++) {
        _Pragma("GCC unroll 2")
        for (int v = 0; v < V; v++)
            __builtin_memcpy(dots + (r0 + r) * kp + k0 + v * KW, &a[r][v], sizeof(KV));
    }
#else
    for (int r = r0; r < r0 + R; r++)
        for (ptrdiff_t k = k0; k < k0 + V * KW; k++) {
            KT s = 0;
            for (ptrdiff_t j = 0; j < D; j++) s += yb[r * D + j] * ct[j * kp + k];
            dots[r * kp + k] = s;
        }
#endif
}

/* The dot products of a block's KR = 8 rows with every (padded) centre:
 * tiles of 4 rows by 2 vectors, then 8 rows by the last vector. */
static inline void KN(fastgmm_km_dots)(
    ptrdiff_t D, ptrdiff_t kp, const KT *__restrict__ yb, const KT *__restrict__ ct,
    KT *__restrict__ dots)
{
    ptrdiff_t k0 = 0;
    for (; k0 + 2 * KW <= kp; k0 += 2 * KW) {
        KN(fastgmm_km_tile)(4, 2, D, kp, 0, k0, yb, ct, dots);
        KN(fastgmm_km_tile)(4, 2, D, kp, 4, k0, yb, ct, dots);
    }
    if (k0 < kp) KN(fastgmm_km_tile)(8, 1, D, kp, 0, k0, yb, ct, dots);
}

/* |y - c|^2 from |y|^2, |c|^2 and y.c: (|y|^2 + |c|^2) - 2 y.c, at least 0
 * (scikit-learn's expansion; no multiply, so no contraction can change it
 * between passes). */
static FASTGMM_ALWAYS_INLINE KT KN(fastgmm_km_dist)(KT yn, KT cn, KT dot)
{
    const KT d = (yn + cn) - (dot + dot);
    return d > 0 ? d : (KT)0;
}

#ifdef FASTGMM_VECTOR_TYPES
/* Butterflies over the lanes of a native vector: KM_XOR(x, s) swaps lanes
 * l and l ^ s; KM_VMIN / KM_IMIN, the lane-wise smaller (b where b < a). */
#define KM_VMIN(a, b) ((KV)(((VI)(b) & (VI)((b) < (a))) | ((VI)(a) & ~(VI)((b) < (a)))))
#define KM_IMIN(a, b) (((b) & (VI)((b) < (a))) | ((a) & ~(VI)((b) < (a))))
#if KM_LANES == 16
#define KM_XOR(x, s) __builtin_shufflevector(x, x, 0 ^ s, 1 ^ s, 2 ^ s, 3 ^ s, 4 ^ s, 5 ^ s, \
    6 ^ s, 7 ^ s, 8 ^ s, 9 ^ s, 10 ^ s, 11 ^ s, 12 ^ s, 13 ^ s, 14 ^ s, 15 ^ s)
#elif KM_LANES == 8
#define KM_XOR(x, s) __builtin_shufflevector(x, x, 0 ^ s, 1 ^ s, 2 ^ s, 3 ^ s, 4 ^ s, 5 ^ s, \
    6 ^ s, 7 ^ s)
#elif KM_LANES == 4
#define KM_XOR(x, s) __builtin_shufflevector(x, x, 0 ^ s, 1 ^ s, 2 ^ s, 3 ^ s)
#else
#define KM_XOR(x, s) __builtin_shufflevector(x, x, 0 ^ s, 1 ^ s)
#endif
/* every lane the smallest of all lanes */
#if KM_LANES == 16
#define KM_ALL_MIN(x, MIN) do { x = MIN(x, KM_XOR(x, 8)); x = MIN(x, KM_XOR(x, 4)); \
    x = MIN(x, KM_XOR(x, 2)); x = MIN(x, KM_XOR(x, 1)); } while (0)
#elif KM_LANES == 8
#define KM_ALL_MIN(x, MIN) do { x = MIN(x, KM_XOR(x, 4)); x = MIN(x, KM_XOR(x, 2)); \
    x = MIN(x, KM_XOR(x, 1)); } while (0)
#elif KM_LANES == 4
#define KM_ALL_MIN(x, MIN) do { x = MIN(x, KM_XOR(x, 2)); x = MIN(x, KM_XOR(x, 1)); } while (0)
#else
#define KM_ALL_MIN(x, MIN) do { x = MIN(x, KM_XOR(x, 1)); } while (0)
#endif
#endif

/* The first k of smallest |c_k|^2 - 2 y.c_k over the K centres, for one
 * row's dot products dr (kp of them). With vector types: the running
 * minimum of every lane (strict <, so each lane keeps its first), then the
 * smallest of the lanes, the lowest centre among equals: the same k as a
 * scan in order. Padding lanes have |c|^2 = +inf and never win.
 *
 * With ta and tb (not NULL), also the smallest value t_a (at the chosen
 * k = a) and the smallest over the other centres t_b (+inf for K = 1):
 * what the bounds of nearest_bounded_chunk are made of. Always inlined, so
 * that argmin's calls (ta NULL) carry none of that bookkeeping. */
static FASTGMM_ALWAYS_INLINE int32_t KN(fastgmm_km_argmin_with)(
    ptrdiff_t K, ptrdiff_t kp, const KT *__restrict__ cn, const KT *__restrict__ dr,
    KT *__restrict__ ta, KT *__restrict__ tb)
{
    const int with_values = ta != NULL;
#ifdef FASTGMM_VECTOR_TYPES
    if (kp > KW) {
        /* per lane the smallest, where it is (and the one after it) */
        typedef FASTGMM_KM_VI VI;
        KV best, second = (KV){0} + (KT)INFINITY, c, d;
        VI idx, at;
        const VI step = (VI){0} + (FASTGMM_KM_I)KW;
        __builtin_memcpy(&idx, fastgmm_km_iota, sizeof(VI));
        __builtin_memcpy(&c, cn, sizeof(KV));
        __builtin_memcpy(&d, dr, sizeof(KV));
        best = c - (d + d);
        at = idx;
        for (ptrdiff_t k0 = KW; k0 < kp; k0 += KW) {
            __builtin_memcpy(&c, cn + k0, sizeof(KV));
            __builtin_memcpy(&d, dr + k0, sizeof(KV));
            const KV s = c - (d + d);
            at += step;
            const VI less = (VI)(s < best);
            if (with_values) {
                const KV low2 = KM_VMIN(second, s);
                second = (KV)(((VI)best & less) | ((VI)low2 & ~less));
            }
            best = (KV)(((VI)s & less) | ((VI)best & ~less));
            idx = (at & less) | (idx & ~less);
        }
        /* the smallest value, then the lowest centre holding it, by
         * butterflies of lane swaps (vector selects: lane by lane in
         * scalar code, with branches on the comparisons, this was a third
         * of a Lloyd pass at D = 8, K = 32) */
        KV v = best;
        KM_ALL_MIN(v, KM_VMIN);
        const VI tie = (VI)(best == v);
        VI k = (idx & tie) | (((VI){0} + (FASTGMM_KM_I)kp) & ~tie);
        KM_ALL_MIN(k, KM_IMIN);
        if (with_values) {
            /* the smallest of every other lane's best and this lane's second */
            const VI mine = (VI)(idx == k);
            KV alt = (KV)(((VI)second & mine) | ((VI)best & ~mine));
            KM_ALL_MIN(alt, KM_VMIN);
            *ta = v[0];
            *tb = alt[0];
        }
        /* no lane equal to the smallest: NaN values (float32 squares past
         * FLT_MAX give inf - inf); centre 0, as the scalar loop gives when
         * its first value is NaN, never the padding */
        return k[0] < (FASTGMM_KM_I)K ? (int32_t)k[0] : 0;
    }
#endif
    KT best = cn[0] - (dr[0] + dr[0]), second = (KT)INFINITY;
    int32_t label = 0;
    for (ptrdiff_t k = 1; k < K; k++) {
        const KT s = cn[k] - (dr[k] + dr[k]);
        const int less = s < best;
        if (with_values) second = less ? best : (s < second ? s : second);
        label = less ? (int32_t)k : label;
        best = less ? s : best;
    }
    if (with_values) {
        *ta = best;
        *tb = second;
    }
    return label;
}

static inline int32_t KN(fastgmm_km_argmin)(
    ptrdiff_t K, ptrdiff_t kp, const KT *__restrict__ cn, const KT *__restrict__ dr)
{
    return KN(fastgmm_km_argmin_with)(K, kp, cn, dr, NULL, NULL);
}

/* labels[i] = the first k of smallest |c_k|^2 - 2 y_i.c_k (that is, of
 * smallest |y_i - c_k|^2; ties to the lower k), for the n rows of X.
 * ct, cn: from pack. yb: KR x D, dots: KR x kp scratch. */
static inline void KN(fastgmm_km_nearest_chunk)(
    ptrdiff_t n, ptrdiff_t D, ptrdiff_t K, const KT *__restrict__ X,
    const KT *__restrict__ shift, const KT *__restrict__ ct, const KT *__restrict__ cn,
    KT *__restrict__ yb, KT *__restrict__ dots, int32_t *__restrict__ labels)
{
    const ptrdiff_t kp = KN(fastgmm_km_padded)(K);
    KT yn[KR];
    for (ptrdiff_t i0 = 0; i0 < n; i0 += KR) {
        const ptrdiff_t q = n - i0 < KR ? n - i0 : KR;
        KN(fastgmm_km_rows)(q, D, X + i0 * D, NULL, shift, yb, yn);
        KN(fastgmm_km_dots)(D, kp, yb, ct, dots);
        for (ptrdiff_t r = 0; r < q; r++)
            labels[i0 + r] = KN(fastgmm_km_argmin)(K, kp, cn, dots + r * kp);
    }
}

/* Rounded towards -inf into a float (a lower bound stays one); at most FLT_MAX. */
static inline float KN(fastgmm_km_down)(double g)
{
    if (g >= (double)FLT_MAX) return FLT_MAX;
    float f = (float)g;
    if ((double)f > g) f = nextafterf(f, -INFINITY);
    return f;
}

/* Lloyd's labels with a bound that skips the rows whose label cannot change
 * (Hamerly's bounds folded into one number a row). gap[i] is a lower bound
 * on min_{k != a} |y_i - c_k| - |y_i - c_a| (a = labels[i], exact
 * arithmetic) for the previous pass's centres; delta[k] bounds how far
 * centre k moved since (delta_max the largest), so gap - delta[a] -
 * delta_max bounds it now. The computed label is a, bit for bit the label
 * the full computation gives, when every other centre is farther by more
 * than the rounding of the computed |c_k|^2 - 2 y.c_k (at most
 * E = 4 e (|y|^2 + cmax2), e = 2 (D + 4) eps of T, cmax2 >= max |c_k|^2):
 * |y - c_k|^2 - |y - c_a|^2 >= gap^2 > 2 E. Those rows keep their label and
 * their bound; the others get the dot products with every centre (KR at a
 * time, gathered), their label and a fresh bound from the two smallest
 * values, widened by E and rounded down into the float. labels < 0 (the
 * first pass): every row. fresh: the new labels, rows: scratch of n. */
static inline void KN(fastgmm_km_nearest_bounded_chunk)(
    ptrdiff_t n, ptrdiff_t D, ptrdiff_t K, const KT *__restrict__ X,
    const KT *__restrict__ shift, const KT *__restrict__ ct, const KT *__restrict__ cn,
    const int32_t *__restrict__ labels, const double *__restrict__ delta, double delta_max,
    double e, double cmax2, float *__restrict__ gap, ptrdiff_t *__restrict__ rows,
    KT *__restrict__ yb, KT *__restrict__ dots, int32_t *__restrict__ fresh)
{
    const ptrdiff_t kp = KN(fastgmm_km_padded)(K);
    const double down = 1.0 - 4.0 * DBL_EPSILON, up = 1.0 + 4.0 * DBL_EPSILON;
    ptrdiff_t m = 0;
    KT yn[KR];
    for (ptrdiff_t i = 0; i < n; i++) {
        const int32_t a = labels[i];
        int skip = 0;
        if (a >= 0) {
            double g = ((double)gap[i] - (delta[a] + delta_max)) * down;
            if (g > 0) {
                const KT *__restrict__ x = X + i * D;
                double y2 = 0;
                for (ptrdiff_t j = 0; j < D; j++) {
                    const double y = (double)(KT)(x[j] - shift[j]);
                    y2 += y * y;
                }
                const double E = 4.0 * e * (y2 + cmax2);
                if (g * g * down > 2.0 * E) {
                    skip = 1;
                    fresh[i] = a;
                    gap[i] = KN(fastgmm_km_down)(g);
                }
            }
        }
        rows[m] = i;
        m += !skip;
    }
    for (ptrdiff_t p0 = 0; p0 < m; p0 += KR) {
        const ptrdiff_t q = m - p0 < KR ? m - p0 : KR;
        KN(fastgmm_km_rows)(q, D, X, rows + p0, shift, yb, yn);
        KN(fastgmm_km_dots)(D, kp, yb, ct, dots);
        for (ptrdiff_t r = 0; r < q; r++) {
            const ptrdiff_t i = rows[p0 + r];
            KT ta, tb;
            const int32_t a = KN(fastgmm_km_argmin_with)(K, kp, cn, dots + r * kp, &ta, &tb);
            const double y2 = (double)yn[r];
            const double E = 4.0 * e * (y2 + cmax2);
            const double lo = ((double)tb + y2) - E;     /* <= min_{k != a} |y - c_k|^2 */
            const double hi = ((double)ta + y2) + E;     /* >= |y - c_a|^2 */
            const double g = (lo > 0 ? sqrt(lo) * down : 0.0) - (hi > 0 ? sqrt(hi) * up : 0.0);
            fresh[i] = a;
            gap[i] = KN(fastgmm_km_down)(g);
        }
    }
}

/* The fast form of k-means++'s passes: the FASTGMM_KM_MARKS = 8 candidate
 * lanes as one vector of 8 T when that fits in a native vector (float32
 * with AVX2 or AVX-512, float64 with AVX-512). The dot products of a block
 * of KR rows stay in KR such vectors and are consumed from registers, the
 * per-row loop over the candidates is vector code, and float32's candidates
 * take 256-bit multiply-adds (two a cycle on AVX-512 machines that split
 * 512-bit ones), not 16-lane vectors with half their lanes padding. Every
 * lane is the same chain over the features as in fastgmm_km_tile, so the
 * bits are those of the general form. */
#if defined(FASTGMM_VECTOR_TYPES) && FASTGMM_KM_MARKS * FASTGMM_KM_TBYTES <= FASTGMM_KM_VBYTES
#define KM_FAST8 1
typedef KT KN(fastgmm_km_v8) __attribute__((vector_size(FASTGMM_KM_MARKS * FASTGMM_KM_TBYTES)));
typedef FASTGMM_KM_I KN(fastgmm_km_i8)
    __attribute__((vector_size(FASTGMM_KM_MARKS * FASTGMM_KM_TBYTES)));
typedef KT KN(fastgmm_km_v4) __attribute__((vector_size(4 * FASTGMM_KM_TBYTES)));
typedef FASTGMM_KM_I KN(fastgmm_km_i4) __attribute__((vector_size(4 * FASTGMM_KM_TBYTES)));
#define K8 KN(fastgmm_km_v8)
#define I8 KN(fastgmm_km_i8)
#define K4 KN(fastgmm_km_v4)
#define I4 KN(fastgmm_km_i4)

/* a[r] = sum_j yb[r, j] ct[j, 0:NL] for the KR rows of a block (ct's rows
 * kp apart, kp >= NL), one chain per lane, j in order: tile8 on eight
 * lanes, tile4 on the first four. Each lane is the same chain either way,
 * so the same bits; four lanes are half the work where a step has at most
 * four candidates (float64: one 256-bit vector, where the eight lanes take
 * two, or one 512-bit vector that AMD's Zen 4 runs as two halves). */
#define KM_DEFINE_TILE(NAME, VK)                                                \
static FASTGMM_ALWAYS_INLINE void NAME(                                         \
    ptrdiff_t D, ptrdiff_t kp, const KT *__restrict__ yb, const KT *__restrict__ ct, \
    VK a[KR])                                                                   \
{                                                                               \
    _Pragma("GCC unroll 8")                                                     \
    for (int r = 0; r < KR; r++) a[r] = (VK){0};                                \
    for (ptrdiff_t j = 0; j < D; j++) {                                         \
        VK c;                                                                   \
        __builtin_memcpy(&c, ct + j * kp, sizeof(VK));                          \
        FASTGMM_IN_REGISTER(c);                                                 \
        _Pragma("GCC unroll 8")                                                 \
        for (int r = 0; r < KR; r++) a[r] += yb[r * D + j] * c;                 \
    }                                                                           \
}
KM_DEFINE_TILE(KN(fastgmm_km_tile8), K8)
KM_DEFINE_TILE(KN(fastgmm_km_tile4), K4)
#undef KM_DEFINE_TILE

/* The bits of the lanes set in a comparison mask, lane m as bit m. */
static FASTGMM_ALWAYS_INLINE unsigned KN(fastgmm_km_bits8)(I8 mask)
{
    const I8 pow2 = {1, 2, 4, 8, 16, 32, 64, 128};
    I8 b = mask & pow2;
    b |= __builtin_shufflevector(b, b, 4, 5, 6, 7, 0, 1, 2, 3);
    b |= __builtin_shufflevector(b, b, 2, 3, 0, 1, 6, 7, 4, 5);
    b |= __builtin_shufflevector(b, b, 1, 0, 3, 2, 5, 4, 7, 6);
    return (unsigned)b[0];
}
static FASTGMM_ALWAYS_INLINE unsigned KN(fastgmm_km_bits4)(I4 mask)
{
    const I4 pow2 = {1, 2, 4, 8};
    I4 b = mask & pow2;
    b |= __builtin_shufflevector(b, b, 2, 3, 0, 1);
    b |= __builtin_shufflevector(b, b, 1, 0, 3, 2);
    return (unsigned)b[0];
}

/* The kept rows of a potentials pass through the candidates' dot products
 * on NL lanes (a vector VK of T, VI of integers, VD of double): sums[c] =
 * sum_i w_i min(closest_i, d_ic) over them, counts[c] the rows with
 * d_ic < closest_i and improve[i] their bits, for c < NL. in_order: all n
 * rows read in order, the pruned ones (improve[i] = 0) masked out (they
 * add 0 and get no bit: the same sums and bits); else the m rows listed
 * in `rows`, gathered. Where three quarters of the chunk's rows are kept,
 * they are read in order: a gathered row, prefetched, costs about twice a
 * row read in order on one thread (float64, D = 39: 63 against 33 ns), but
 * on two threads the pass is bound by memory and the rows not read count
 * (k-means++, median of 5, threshold one half -> three quarters: mid
 * 47-80 -> 37-38 ms, speech 585-690 -> 558-576 ms). */
#define KM_DEFINE_MARKED(NAME, VK, VI, VD, NL, TILE, BITS)                                \
static inline void NAME(                                                                  \
    ptrdiff_t n, ptrdiff_t m, ptrdiff_t D, const KT *__restrict__ X,                      \
    const KT *__restrict__ shift, const KT *__restrict__ ct, ptrdiff_t kp,                \
    const KT *__restrict__ cn, const KT *__restrict__ w, const KT *__restrict__ closest,  \
    const ptrdiff_t *__restrict__ rows, KT *__restrict__ yb, uint8_t *__restrict__ improve, \
    double *__restrict__ sums, double *__restrict__ counts)                               \
{                                                                                         \
    VK cnv, a[KR];                                                                        \
    VI cnt = (VI){0};                                                                     \
    VD acc = (VD){0};                                                                     \
    KT yn[KR];                                                                            \
    __builtin_memcpy(&cnv, cn, sizeof(VK));                                               \
    const int in_order = 4 * m >= 3 * n;                                                  \
    const ptrdiff_t span = in_order ? n : m;                                              \
    for (ptrdiff_t p0 = 0; p0 < span; p0 += KR) {                                         \
        const ptrdiff_t q = span - p0 < KR ? span - p0 : KR;                              \
        if (!in_order)                                                                    \
            KN(fastgmm_km_prefetch)(p0 + KM_AHEAD < m ? p0 + KM_AHEAD : m,                \
                                    p0 + KM_AHEAD + KR < m ? p0 + KM_AHEAD + KR : m,      \
                                    D, X, rows);                                          \
        KN(fastgmm_km_rows)(q, D, in_order ? X + p0 * D : X, in_order ? NULL : rows + p0, \
                            shift, yb, yn);                                               \
        TILE(D, kp, yb, ct, a);                                                           \
        for (ptrdiff_t r = 0; r < q; r++) {                                               \
            const ptrdiff_t i = in_order ? p0 + r : rows[p0 + r];                         \
            const KT cl = closest[i];                                                     \
            const FASTGMM_KM_I keep =                                                     \
                in_order ? -(FASTGMM_KM_I)improve[i] : (FASTGMM_KM_I)-1;                  \
            const VK clv = (VK){0} + cl;                                                  \
            const double wi = w == NULL ? 1.0 : (double)w[i];                             \
            /* fastgmm_km_dist lane by lane: (|y|^2 + |c|^2) - 2 y.c, at least 0 */       \
            VK d = (yn[r] + cnv) - (a[r] + a[r]);                                         \
            d = (VK)((VI)d & (VI)(d > 0));                                                \
            const VI nearer = (VI)(d < clv) & keep;                                       \
            const VK v = (VK)((((VI)d & nearer) | ((VI)clv & ~nearer)) & keep);           \
            acc += wi * __builtin_convertvector(v, VD);                                   \
            cnt -= nearer;                                                                \
            improve[i] = (uint8_t)BITS(nearer);                                           \
        }                                                                                 \
    }                                                                                     \
    for (int c = 0; c < NL; c++) {                                                        \
        sums[c] = acc[c];                                                                 \
        counts[c] = (double)cnt[c];                                                       \
    }                                                                                     \
}
KM_DEFINE_MARKED(KN(fastgmm_km_marked8), K8, I8, fastgmm_km_d8, 8, KN(fastgmm_km_tile8),
                 KN(fastgmm_km_bits8))
KM_DEFINE_MARKED(KN(fastgmm_km_marked4), K4, I4, fastgmm_km_d4, 4, KN(fastgmm_km_tile4),
                 KN(fastgmm_km_bits4))
#undef KM_DEFINE_MARKED
#endif

/* Row i of a potentials pass: improve[i] = whether it is kept (its seed's
 * reach below closest_i), and w_i closest_i where it is not, else 0 (the
 * value's bits masked, so that a kept row's inf or NaN adds nothing, as
 * the pruned sum never held it). */
static FASTGMM_ALWAYS_INLINE double KN(fastgmm_km_pruned)(
    ptrdiff_t i, const KT *__restrict__ closest, const int32_t *__restrict__ nearest,
    const double *__restrict__ reach, const KT *__restrict__ w, uint8_t *__restrict__ improve)
{
    const double cl = (double)closest[i];
    const int keep = reach[nearest[i]] < cl;
    improve[i] = (uint8_t)keep;
    double v = (w == NULL ? 1.0 : (double)w[i]) * cl;
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    b &= (uint64_t)keep - 1u;
    memcpy(&v, &b, sizeof v);
    return v;
}

/* k-means++ potentials of M <= FASTGMM_KM_MARKS candidates c_m over a chunk:
 *   pot[m] += sum_i w_i min(closest_i, |y_i - c_m|^2)        (w NULL: ones)
 *   marked[m] += the rows with |y_i - c_m|^2 < closest_i,
 * and improve[i] = the bits m of those candidates.
 *
 * closest_i is the squared distance of y_i to its nearest seed,
 * seed nearest[i]. By the triangle inequality a candidate can come nearer
 * than that seed only if |c_m - seed| < 2 |y_i - seed|; reach[a] is that
 * bound for the nearest candidate, less the rounding (fastgmm._kmeans.reach),
 * so a row with closest_i <= reach[nearest[i]] adds w_i closest_i to every
 * potential, gets no bit, and its x is never read: as if computed.
 * The other rows go through the dot products KR at a time, then a loop
 * over FASTGMM_KM_MARKS lanes (vectorised; lanes past M have |c|^2 = +inf
 * and add nothing that is kept). Sums in double; the order is fixed by
 * the data. ct, cn: the candidates packed on marked_lanes() lanes; rows:
 * scratch of n; yb, dots: as for nearest_chunk. */
static inline void KN(fastgmm_km_potentials_chunk)(
    ptrdiff_t n, ptrdiff_t D, ptrdiff_t M, const KT *__restrict__ X,
    const KT *__restrict__ shift, const KT *__restrict__ ct, const KT *__restrict__ cn,
    const KT *__restrict__ w, const KT *__restrict__ closest,
    const int32_t *__restrict__ nearest, const double *__restrict__ reach,
    ptrdiff_t *__restrict__ rows, KT *__restrict__ yb, KT *__restrict__ dots,
    uint8_t *__restrict__ improve, double *__restrict__ pot, double *__restrict__ marked)
{
    enum { L = FASTGMM_KM_MARKS };
    const ptrdiff_t kp = KN(fastgmm_km_marked_lanes)();
    double base[4] = {0, 0, 0, 0};
    double sums[L], counts[L];
    ptrdiff_t m = 0;
    for (int c = 0; c < L; c++) sums[c] = counts[c] = 0;
    /* Which rows are kept is data, as good as random: written as a select,
     * GCC still branched on it (a fifth of the pass in mispredictions and
     * a store-to-load chain through base, one thread, speech). So: the
     * keep flags (into improve, whose kept rows are written again below)
     * and the pruned rows' sum, four rows to the four partial sums of
     * base[i & 3] as before, with the value masked by bits (vector code,
     * the reach looked up by a gather); then the kept rows listed. */
    ptrdiff_t i4 = 0;
#ifdef FASTGMM_VECTOR_TYPES
    {
        /* four rows a vector, as four lanes of base (GCC left the loop
         * below scalar, a tenth of mid's pass) */
        typedef int64_t km_q4 __attribute__((vector_size(4 * sizeof(int64_t))));
        fastgmm_km_d4 b4 = {0, 0, 0, 0};
        for (; i4 + 4 <= n; i4 += 4) {
            const fastgmm_km_d4 cl = {(double)closest[i4], (double)closest[i4 + 1],
                                      (double)closest[i4 + 2], (double)closest[i4 + 3]};
            const fastgmm_km_d4 rc = {reach[nearest[i4]], reach[nearest[i4 + 1]],
                                      reach[nearest[i4 + 2]], reach[nearest[i4 + 3]]};
            const km_q4 keep = (km_q4)(rc < cl);
            fastgmm_km_d4 v = cl;
            if (w != NULL)
                v = (fastgmm_km_d4){(double)w[i4], (double)w[i4 + 1], (double)w[i4 + 2],
                                    (double)w[i4 + 3]} * cl;
            b4 += (fastgmm_km_d4)((km_q4)v & ~keep);
            for (int l = 0; l < 4; l++) improve[i4 + l] = (uint8_t)(keep[l] & 1);
        }
        for (int l = 0; l < 4; l++) base[l] = b4[l];
    }
#endif
    for (; i4 + 4 <= n; i4 += 4)
        for (int l = 0; l < 4; l++)
            base[l] += KN(fastgmm_km_pruned)(i4 + l, closest, nearest, reach, w, improve);
    for (; i4 < n; i4++)
        base[i4 & 3] += KN(fastgmm_km_pruned)(i4, closest, nearest, reach, w, improve);
    for (ptrdiff_t i = 0; i < n; i++) {
        rows[m] = i;
        m += improve[i];
    }
    const double skipped = (base[0] + base[1]) + (base[2] + base[3]);
#ifdef KM_FAST8
    if (M <= 4)
        KN(fastgmm_km_marked4)(n, m, D, X, shift, ct, kp, cn, w, closest, rows, yb, improve,
                               sums, counts);
    else
        KN(fastgmm_km_marked8)(n, m, D, X, shift, ct, kp, cn, w, closest, rows, yb, improve,
                               sums, counts);
#else
    KT yn[KR];
    for (ptrdiff_t p0 = 0; p0 < m; p0 += KR) {
        const ptrdiff_t q = m - p0 < KR ? m - p0 : KR;
        KN(fastgmm_km_rows)(q, D, X, rows + p0, shift, yb, yn);
        KN(fastgmm_km_dots)(D, kp, yb, ct, dots);
        for (ptrdiff_t r = 0; r < q; r++) {
            const ptrdiff_t i = rows[p0 + r];
            const KT cl = closest[i];
            const double wi = w == NULL ? 1.0 : (double)w[i];
            const KT *__restrict__ dr = dots + r * kp;
            unsigned bits = 0;
            for (int c = 0; c < L; c++) {
                const KT d = KN(fastgmm_km_dist)(yn[r], cn[c], dr[c]);
                const int nearer = d < cl;
                sums[c] += wi * (double)(nearer ? d : cl);
                counts[c] += nearer ? 1.0 : 0.0;
                bits |= (unsigned)nearer << c;
            }
            improve[i] = (uint8_t)bits;
        }
    }
#endif
    for (ptrdiff_t c = 0; c < M; c++) {
        pot[c] += skipped + sums[c];
        marked[c] += counts[c];
    }
}

/* The seed `label` (at c, packed in ct and cn as one centre) joins:
 * closest_i = |y_i - c|^2 and nearest[i] = label for the rows it is nearer
 * to than their seed. With improve (not NULL) those are the rows with
 * `bit` set (found by potentials_chunk with the same arithmetic); else the
 * rows that the triangle inequality cannot rule out (reach as above, for
 * c alone) and whose distance turns out smaller. init: every row, and
 * *pot += sum_i w_i closest_i (then n is one chunk, at most
 * FASTGMM_KM_CHUNK rows; otherwise any number). rows: scratch of n; yb,
 * dots: as above. */
static inline void KN(fastgmm_km_closest_chunk)(
    ptrdiff_t n, ptrdiff_t D, const KT *__restrict__ X, const KT *__restrict__ shift,
    const KT *__restrict__ ct, const KT *__restrict__ cn, const KT *__restrict__ w,
    int init, int32_t label, const uint8_t *__restrict__ improve, unsigned bit,
    const double *__restrict__ reach, KT *__restrict__ closest,
    int32_t *__restrict__ nearest, ptrdiff_t *__restrict__ rows, KT *__restrict__ yb,
    KT *__restrict__ dots, double *__restrict__ pot)
{
    const ptrdiff_t kp = KW;
    ptrdiff_t m = 0;
    double sum = 0;
    KT yn[KR];
    if (init) {
        for (ptrdiff_t i = 0; i < n; i++) rows[m++] = i;
    } else if (improve != NULL) {
        for (ptrdiff_t i = 0; i < n; i++) {
            rows[m] = i;
            m += (improve[i] & bit) != 0;
        }
    } else {
        for (ptrdiff_t i = 0; i < n; i++) {
            rows[m] = i;
            m += reach[nearest[i]] < (double)closest[i];
        }
    }
    for (ptrdiff_t p0 = 0; p0 < m; p0 += KR) {
        const ptrdiff_t q = m - p0 < KR ? m - p0 : KR;
        if (!init)
            KN(fastgmm_km_prefetch)(p0 + KM_AHEAD < m ? p0 + KM_AHEAD : m,
                                    p0 + KM_AHEAD + KR < m ? p0 + KM_AHEAD + KR : m, D, X, rows);
        KN(fastgmm_km_rows)(q, D, X, rows + p0, shift, yb, yn);
#ifdef KM_FAST8
        /* lane 0 of a four-lane tile: the chain potentials_chunk ran */
        K4 a[KR];
        KN(fastgmm_km_tile4)(D, kp, yb, ct, a);
        for (int r = 0; r < KR; r++) dots[r * kp] = a[r][0];
#else
        KN(fastgmm_km_tile)(8, 1, D, kp, 0, 0, yb, ct, dots);
#endif
        for (ptrdiff_t r = 0; r < q; r++) {
            const ptrdiff_t i = rows[p0 + r];
            const KT d = KN(fastgmm_km_dist)(yn[r], cn[0], dots[r * kp]);
            if (init || d < closest[i]) {
                closest[i] = d;
                nearest[i] = label;
            }
            if (init) sum += (w == NULL ? 1.0 : (double)w[i]) * (double)d;
        }
    }
    if (init) *pot += sum;
}

/* One chunk's share of a Lloyd step, given its new labels `fresh`:
 * stat = [changes, counts (K), weights (K), sums (K x D)] in double, with
 * changes += the rows whose label differs from labels[i] (then overwritten
 * by fresh[i]), counts[k] += rows labelled k and, with `update`,
 * weights[k] += w_i and sums[k, :] += w_i y_i (w NULL: ones). */
static inline void KN(fastgmm_km_lloyd_sums_chunk)(
    ptrdiff_t n, ptrdiff_t D, ptrdiff_t K, const KT *__restrict__ X,
    const KT *__restrict__ shift, const KT *__restrict__ w,
    const int32_t *__restrict__ fresh, int32_t *__restrict__ labels, int update,
    double *__restrict__ stat)
{
    double *__restrict__ counts = stat + 1;
    double *__restrict__ weights = counts + K;
    double *__restrict__ sums = weights + K;
    ptrdiff_t changes = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        const int32_t k = fresh[i];
        changes += labels[i] != k;
        labels[i] = k;
        counts[k] += 1.0;
        if (!update) continue;
        const KT *__restrict__ x = X + i * D;
        double *__restrict__ s = sums + (ptrdiff_t)k * D;
        if (w == NULL) {
            weights[k] += 1.0;
            for (ptrdiff_t j = 0; j < D; j++) s[j] += (double)(KT)(x[j] - shift[j]);
        } else {
            const double wi = (double)w[i];
            weights[k] += wi;
            for (ptrdiff_t j = 0; j < D; j++) s[j] += wi * (double)(KT)(x[j] - shift[j]);
        }
    }
    stat[0] += (double)changes;
}

/* The sufficient statistics of one-hot responsibilities, from the labels:
 * em_pass's layout (stat = [ll, N (K), S1 (K x D), S2]) with
 *   N_k += w_i,  S1_k += w_i d_i,  d_i = x_i - centres[k] (in T), k = labels[i]
 *   S2 (cov 0, full):  += w_i d_i d_i^T, each cluster's lower triangle
 *                      packed row by row
 *   S2 (cov 1, tied):  += w_i g_i g_i^T over every row, g_i = x_i - tied_centre,
 *                      the lower triangle of a D x D row-major matrix
 *   S2 (cov 2, diag):  += w_i d_i^2
 * in double (w: double weights as em_pass's, NULL: ones). A row labelled -1 adds to the tied S2 only (no
 * responsibility, as em_pass given an all-zero row). O(D) or O(D^2) a row:
 * em_pass given the one-hot rows spent O(K D) on each (speech, diag: 0.5 s).
 * d: scratch of 2 D doubles. */
static inline void KN(fastgmm_km_label_stats_chunk)(
    ptrdiff_t n, ptrdiff_t D, ptrdiff_t K, const KT *__restrict__ X,
    const double *__restrict__ w, const int32_t *__restrict__ labels,
    const KT *__restrict__ centres, int cov, const KT *__restrict__ tied_centre,
    double *__restrict__ d, double *__restrict__ stat)
{
    double *__restrict__ nk = stat + 1;
    double *__restrict__ s1 = nk + K;
    double *__restrict__ s2 = s1 + K * D;
    const ptrdiff_t packed = D * (D + 1) / 2;
    double *__restrict__ g = d + D;
    for (ptrdiff_t i = 0; i < n; i++) {
        const int32_t k = labels[i];
        const double wi = w == NULL ? 1.0 : w[i];
        const KT *__restrict__ x = X + i * D;
        if (cov == 1) {
            for (ptrdiff_t j = 0; j < D; j++) g[j] = (double)(KT)(x[j] - tied_centre[j]);
            for (ptrdiff_t a = 0; a < D; a++) {
                const double e = wi * g[a];
                double *__restrict__ row = s2 + a * D;
                for (ptrdiff_t b = 0; b <= a; b++) row[b] += e * g[b];
            }
        }
        if (k < 0) continue;
        const KT *__restrict__ c = centres + (ptrdiff_t)k * D;
        double *__restrict__ s1k = s1 + (ptrdiff_t)k * D;
        nk[k] += wi;
        for (ptrdiff_t j = 0; j < D; j++) {
            d[j] = (double)(KT)(x[j] - c[j]);
            s1k[j] += wi * d[j];
        }
        if (cov == 2) {
            double *__restrict__ s2k = s2 + (ptrdiff_t)k * D;
            for (ptrdiff_t j = 0; j < D; j++) s2k[j] += wi * d[j] * d[j];
        } else if (cov == 0) {
            double *__restrict__ s2k = s2 + (ptrdiff_t)k * packed;
            for (ptrdiff_t a = 0; a < D; a++) {
                const double e = wi * d[a];
                double *__restrict__ row = s2k + a * (a + 1) / 2;
                for (ptrdiff_t b = 0; b <= a; b++) row[b] += e * d[b];
            }
        }
    }
}

#undef KM_AHEAD
#ifdef KM_FAST8
#undef KM_FAST8
#undef K8
#undef I8
#undef K4
#undef I4
#endif
#ifdef FASTGMM_VECTOR_TYPES
#undef KM_XOR
#undef KM_VMIN
#undef KM_IMIN
#undef KM_ALL_MIN
#endif
#undef KM_LANES
#undef KW
#undef KR
#undef KT
#undef KV
#undef KN
