/*
 * dq_cpu.c - run-time CPU detection for the fast kernels.
 *
 * dq_avx2.c is compiled with -mavx2 -mfma -mf16c (Makefile rule for *_avx2.c), so its
 * functions may only run when the CPU and the OS (saved YMM state) support all three;
 * __builtin_cpu_supports checks both for AVX2 and FMA; F16C
 * comes from CPUID directly.  Anything else (older x86,
 * other architectures) gets the scalar kernels.  Setting APR_DQ_SCALAR=1 in the
 * environment forces the scalar kernels everywhere (for comparisons and bug hunts).
 */
#include "dq_impl.h"

#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "../common/banned.h"

int dq__cpu_avx2(void)
{
    const char *force = getenv("APR_DQ_SCALAR");
    if (force && *force && *force != '0')
        return 0;
#if defined(DQ_HAVE_AVX2_BUILD) && (defined(__GNUC__) || defined(__clang__))
    unsigned a, b, c, d;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return 0;
    /* F16C is CPUID.1:ECX bit 29 (clang 14 does not know "f16c" as a feature name). */
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    return (c >> 29) & 1;
#else
    return 0;
#endif
}
