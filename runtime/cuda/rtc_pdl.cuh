/*
 * rtc_pdl.cuh - programmatic dependent launch (sm_90) for the decode kernels.
 *
 * A decode step is a chain of a few hundred kernels, each waiting for the one before,
 * so every matrix kernel used to start on an idle memory system.  Kernels launched
 * with the programmatic serialization attribute (launch_ex with pdl set) may start
 * once every block of the kernel before has started and called pdl_trigger; they do
 * what does not depend on it (the int8 matrix kernels prefetch their weight rows into
 * L2), then wait in pdl_wait until that kernel has finished and its writes are
 * visible, and only then read its outputs or write anything.  Without the attribute
 * both instructions return at once, so a kernel carrying them may be launched either
 * way.  Which launches use it: rtc_pdl() (rtc_ops.h).  The results do not depend on
 * it: only the starts move.
 */
#ifndef RTC_PDL_CUH
#define RTC_PDL_CUH

#include <cuda_runtime.h>

#include "rtc_ops.h"

__device__ __forceinline__ void pdl_wait()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* one row of n bytes (16-byte aligned, a multiple of 16, < 1 MiB) into L2, by the
 * calling thread */
__device__ __forceinline__ void l2_prefetch_row(const void *p, uint32_t n)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(__cvta_generic_to_global(p)), "r"(n)
                 : "memory");
#else
    (void)p; (void)n;
#endif
}

/* a launch, with the programmatic serialization attribute when pdl; else the plain
 * <<< >>> launch */
template <typename... K, typename... A>
static cudaError_t launch_ex(int pdl, void (*k)(K...), dim3 grid, dim3 block, size_t shm, cudaStream_t st,
                             A &&...args)
{
    if (!pdl) {
        k<<<grid, block, shm, st>>>(static_cast<A &&>(args)...);
        return cudaGetLastError();
    }
    cudaLaunchConfig_t cfg{};
    cudaLaunchAttribute at[1]{};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = shm;
    cfg.stream = st;
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    cfg.numAttrs = 1;
    return cudaLaunchKernelEx(&cfg, k, static_cast<A &&>(args)...);
}

#endif
