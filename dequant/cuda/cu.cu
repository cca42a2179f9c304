/*
 * cu.cu - device selection, device facts, memory checks, CUDA errors (see cu.h).
 */
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu.h"

extern "C" int cu_check_at(int status, const char *call, const char *file, int line, struct err *e)
{
    if (status == (int)cudaSuccess)
        return 0;
    cudaError_t s = (cudaError_t)status;
    return err_set_at(e, ERR_CUDA, file, line, "%s: %s (%s)", call, cudaGetErrorString(s),
                      cudaGetErrorName(s));
}

extern "C" int cu_check_cublas_at(int status, const char *call, const char *file, int line,
                                  struct err *e)
{
    if (status == (int)CUBLAS_STATUS_SUCCESS)
        return 0;
    cublasStatus_t s = (cublasStatus_t)status;
    return err_set_at(e, ERR_CUDA, file, line, "%s: %s (%s)", call, cublasGetStatusString(s),
                      cublasGetStatusName(s));
}

extern "C" const char *cu_fmt_bytes(uint64_t b, char *buf, size_t n)
{
    if (b >= (1ull << 30))
        snprintf(buf, n, "%.2f GiB", (double)b / (double)(1ull << 30));
    else
        snprintf(buf, n, "%.1f MiB", (double)b / (double)(1ull << 20));
    return buf;
}

extern "C" int cu_parse_device(const char *spec, int *ordinal, struct err *e)
{
    if (!spec)
        return ERR(e, ERR_USAGE, "no device given");
    if (strcmp(spec, "cuda") == 0) {
        *ordinal = 0;
        return 0;
    }
    if (strncmp(spec, "cuda:", 5) == 0 && spec[5] >= '0' && spec[5] <= '9') {
        char *end;
        long v = strtol(spec + 5, &end, 10);
        if (*end == 0 && v >= 0 && v < 1024) {
            *ordinal = (int)v;
            return 0;
        }
    }
    return ERR(e, ERR_USAGE, "bad device '%s' (expected cpu, cuda or cuda:N)", spec);
}

extern "C" int cu_device_count(int *n, char *why, size_t why_len)
{
    int c = 0;
    cudaError_t s = cudaGetDeviceCount(&c);
    if (s != cudaSuccess) {
        if (why)
            snprintf(why, why_len, "cudaGetDeviceCount: %s", cudaGetErrorString(s));
        cudaGetLastError();          /* clear the sticky-free error state */
        *n = 0;
        return 0;
    }
    *n = c;
    if (c == 0 && why)
        snprintf(why, why_len, "no CUDA device");
    return 0;
}

extern "C" int cu_open(int ordinal, struct cu_info *info, struct err *e)
{
    char why[256];
    int n;
    cu_device_count(&n, why, sizeof why);
    if (n == 0)
        return ERR(e, ERR_CUDA, "device cuda:%d: %s", ordinal, why);
    if (ordinal < 0 || ordinal >= n)
        return ERR(e, ERR_USAGE, "device cuda:%d does not exist (%d CUDA device%s: cuda:0..cuda:%d)",
                   ordinal, n, n == 1 ? "" : "s", n - 1);
    if (CU_CHECK(e, cudaSetDevice(ordinal), "cudaSetDevice"))
        return -1;
    cudaDeviceProp p;
    if (CU_CHECK(e, cudaGetDeviceProperties(&p, ordinal), "cudaGetDeviceProperties"))
        return -1;
    memset(info, 0, sizeof *info);
    info->ordinal = ordinal;
    snprintf(info->name, sizeof info->name, "%s", p.name);
    info->cc_major = p.major;
    info->cc_minor = p.minor;
    info->sm_count = p.multiProcessorCount;
    size_t fr = 0, tot = 0;
    if (CU_CHECK(e, cudaMemGetInfo(&fr, &tot), "cudaMemGetInfo"))
        return -1;
    info->mem_free = fr;
    info->mem_total = tot;
    cudaDriverGetVersion(&info->driver_version);
    cudaRuntimeGetVersion(&info->runtime_version);
    return 0;
}

extern "C" int cu_need(const struct cu_info *info, uint64_t need, const char *what, struct err *e)
{
    char a[32], b[32], c[32];
    if (need <= info->mem_free)
        return 0;
    return ERR(e, ERR_LIMIT, "%s needs %s on the device, cuda:%d (%s) has %s free of %s", what,
               cu_fmt_bytes(need, a, sizeof a), info->ordinal, info->name,
               cu_fmt_bytes(info->mem_free, b, sizeof b), cu_fmt_bytes(info->mem_total, c, sizeof c));
}
