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
    return x < -708.0 ? 0.0 : p * scale;
}

#endif
