/* exp(x) for the responsibilities, written so that loops over components
 * vectorise (no libm call, no branch).
 *
 * x = n ln2 + r with |r| <= ln2/2; exp(r) by its degree-13 Taylor polynomial
 * (truncation below 4e-18 relative), 2^n built in the exponent bits. n is
 * rounded with the 1.5 * 2^52 trick, whose low mantissa bits then hold n as
 * an integer. Accuracy: within 2 ulp of libm's exp. Arguments below -708
 * (results under 2^-1021) return 0 where libm returns a tiny or denormal
 * number: such a responsibility is zero at float64 precision anyway.
 */
#ifndef FASTGMM_FASTEXP_H
#define FASTGMM_FASTEXP_H

#include <stdint.h>
#include <string.h>

static inline double fastgmm_exp(double x)
{
    const double log2e = 1.4426950408889634074;
    const double ln2_hi = 6.93147180369123816490e-01;
    const double ln2_lo = 1.90821492927058770002e-10;
    const double shifter = 6755399441055744.0;   /* 1.5 * 2^52 */
    double xc = x < -708.0 ? -708.0 : x;
    double t = xc * log2e + shifter;
    double n = t - shifter;
    double r = (xc - n * ln2_hi) - n * ln2_lo;
    double p = 1.0 / 6227020800.0;               /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t t_bits, shifter_bits, scale_bits;
    double scale;
    memcpy(&t_bits, &t, sizeof t);
    memcpy(&shifter_bits, &shifter, sizeof shifter);
    scale_bits = (t_bits - shifter_bits + 1023) << 52;
    memcpy(&scale, &scale_bits, sizeof scale);
    const double y = p * scale;
    return x < -708.0 ? 0.0 : y;
}

/* log(x) for x >= 1 (the sum of max-subtracted exponentials, in [1, K]),
 * branch-free so the per-row loop vectorises. x = m 2^e with m in
 * [sqrt(1/2), sqrt(2)), log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <=
 * 0.1716, by its series to s^21 (truncation below 1e-18). Within 2 ulp of
 * libm's log on [1, 2^1000] (tested). */
static inline double fastgmm_log_ge1(double x)
{
    const double ln2_hi = 6.93147180369123816490e-01;
    const double ln2_lo = 1.90821492927058770002e-10;
    int64_t bits, exponent, mant_bits;
    double m;
    memcpy(&bits, &x, sizeof bits);
    exponent = ((bits >> 52) & 0x7ff) - 1023;
    mant_bits = (bits & 0x000fffffffffffffLL) | 0x3ff0000000000000LL;
    memcpy(&m, &mant_bits, sizeof m);
    /* m in [1, 2): fold [sqrt 2, 2) to [sqrt 1/2, 1) */
    const int64_t big = m > 1.4142135623730951;
    m = big ? 0.5 * m : m;
    exponent += big;
    const double s = (m - 1.0) / (m + 1.0);
    const double s2 = s * s;
    double p = 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    const double log_m = 2.0 * s + 2.0 * s * s2 * p;
    const double e = (double)exponent;
    return (e * ln2_hi + log_m) + e * ln2_lo;
}

/* exp(x) in float32, for the responsibilities of float32 data: the same
 * reduction as fastgmm_exp (2^n in the exponent bits, 1.5 * 2^23 rounding
 * n) with r's Taylor polynomial to degree 7 (truncation below 6e-9
 * relative, a tenth of a float32 ulp). Within 2 ulp of exp rounded to
 * float32 on [-69, 0] (tested). Results under 1e-30 (x < ln 1e-30) are 0:
 * zero at float32 precision, and kept out of the float32 denormal range
 * (where every product with them takes a ~100x slower microcode assist)
 * even after a row's normalisation divides them by up to K. Arguments
 * above 88 (not produced by the max-subtracted rows) are clamped. */
static inline float fastgmm_expf(float x)
{
    const float floor_arg = -69.07755279f;        /* ln 1e-30 */
    const float log2e = 1.44269504089f;
    const float ln2_hi = 0.693145751953125f;      /* 15 bits: n * ln2_hi is exact */
    const float ln2_lo = 1.428606765330187e-06f;
    const float shifter = 12582912.0f;            /* 1.5 * 2^23 */
    float xc = x < floor_arg ? floor_arg : x;
    xc = xc > 88.0f ? 88.0f : xc;
    float t = xc * log2e + shifter;
    float n = t - shifter;
    float r = (xc - n * ln2_hi) - n * ln2_lo;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t t_bits, shifter_bits, scale_bits;
    float scale;
    memcpy(&t_bits, &t, sizeof t);
    memcpy(&shifter_bits, &shifter, sizeof shifter);
    scale_bits = (t_bits - shifter_bits + 127) << 23;
    memcpy(&scale, &scale_bits, sizeof scale);
    const float y = p * scale;
    return x < floor_arg ? 0.0f : y;
}

#endif
