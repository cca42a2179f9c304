/*
 * cpu.h - CPU features that __builtin_cpu_supports cannot name on every compiler we build
 * with.  The dequant kernels (dequant/dq_cpu.c) and the comparison kernels
 * (compare/compare.c) both gate their F16C code on this one check.
 */
#ifndef CPU_H
#define CPU_H

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* F16C is CPUID.1:ECX bit 29 (clang 14 does not know "f16c" as a feature name). */
static inline int cpu_has_f16c(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    return (c >> 29) & 1;
#else
    return 0;
#endif
}

#endif
