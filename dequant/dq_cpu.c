/*
 * dq_cpu.c - run-time CPU detection for the fast kernels.
 *
 * dq_avx2.c is compiled with -mavx2 -mfma -mf16c (Makefile rule for *_avx2.c), so its
 * functions may only run when the CPU and the OS (saved YMM state) support all three;
 * __builtin_cpu_supports checks both for AVX2 and FMA; F16C
 * comes from CPUID (common/cpu.h).  Anything else (older x86,
 * other architectures) gets the scalar kernels.  Setting APR_DQ_SCALAR=1 in the
 * environment forces the scalar kernels everywhere (for comparisons and bug hunts).
 */
#include "dq_impl.h"

#include <stdlib.h>
#include "../common/cpu.h"

#include "../common/banned.h"

int dq__cpu_avx2(void)
{
    const char *force = getenv("APR_DQ_SCALAR");
    if (force && *force && *force != '0')
        return 0;
#if defined(DQ_HAVE_AVX2_BUILD) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return 0;
    return cpu_has_f16c();
#else
    return 0;
#endif
}
