/* Whether this CPU (and its OS) can run code built with -march=x86-64-v3:
 * the x86-64-v2 features plus AVX, AVX2, BMI1, BMI2, F16C, FMA, LZCNT and
 * MOVBE, with the OS saving the YMM registers (XCR0 bits 1 and 2). Read
 * from CPUID directly, so that the answer is the same with GCC, clang and
 * MSVC. Compiled for the baseline: it must run on every x86-64 CPU. */
#ifndef FASTGMM_CPU_FEATURES_H
#define FASTGMM_CPU_FEATURES_H

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
static void fastgmm_cpuid(unsigned leaf, unsigned sub, unsigned r[4])
{
    int regs[4];
    __cpuidex(regs, (int)leaf, (int)sub);
    for (int i = 0; i < 4; i++) r[i] = (unsigned)regs[i];
}
static unsigned long long fastgmm_xcr0(void) { return _xgetbv(0); }
#else
#include <cpuid.h>
static void fastgmm_cpuid(unsigned leaf, unsigned sub, unsigned r[4])
{
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}
static unsigned long long fastgmm_xcr0(void)
{
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

#define FASTGMM_BITS(word, mask) (((word) & (mask)) == (mask))

static int fastgmm_cpu_x86_64_v3(void)
{
    unsigned r[4];
    fastgmm_cpuid(0, 0, r);
    if (r[0] < 7) return 0;
    fastgmm_cpuid(1, 0, r);
    /* ECX: SSE3 0, SSSE3 9, FMA 12, CX16 13, SSE4.1 19, SSE4.2 20, MOVBE 22,
     * POPCNT 23, OSXSAVE 27, AVX 28, F16C 29 */
    const unsigned ecx1 = (1u << 0) | (1u << 9) | (1u << 12) | (1u << 13) | (1u << 19)
                        | (1u << 20) | (1u << 22) | (1u << 23) | (1u << 27) | (1u << 28)
                        | (1u << 29);
    if (!FASTGMM_BITS(r[2], ecx1)) return 0;
    if (!FASTGMM_BITS(fastgmm_xcr0(), 0x6ull)) return 0;   /* XMM and YMM state */
    fastgmm_cpuid(7, 0, r);
    /* EBX: BMI1 3, AVX2 5, BMI2 8 */
    if (!FASTGMM_BITS(r[1], (1u << 3) | (1u << 5) | (1u << 8))) return 0;
    fastgmm_cpuid(0x80000000u, 0, r);
    if (r[0] < 0x80000001u) return 0;
    fastgmm_cpuid(0x80000001u, 0, r);
    /* ECX: LAHF/SAHF 0, LZCNT 5 */
    return FASTGMM_BITS(r[2], (1u << 0) | (1u << 5));
}

#else
static int fastgmm_cpu_x86_64_v3(void) { return 0; }
#endif

#endif
