/*
 * cu.h - the CUDA backend's infrastructure, callable from C: device selection,
 * device facts, memory-need checks, and CUDA errors through the one error type.
 *
 * Only built with `make CUDA=1` (APR_CUDA defined).  Every CUDA runtime or cuBLAS
 * failure becomes ERR_CUDA with a message naming the call and CUDA's own words:
 *     "cudaMalloc (weights, 3.80 GiB): out of memory"
 * A model that cannot fit fails before any upload with ERR_LIMIT:
 *     "model needs 13.48 GiB on the device, cuda:0 (NVIDIA H100 80GB HBM3) has 2.10 GiB free of 79.19 GiB"
 */
#ifndef CU_H
#define CU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "../../common/err.h"

struct cu_info {
    int      ordinal;
    char     name[256];
    int      cc_major, cc_minor, sm_count;
    uint64_t mem_total, mem_free;      /* bytes, at cu_open time */
    int      driver_version, runtime_version;
};

/*
 * Parse a --device value: "cuda" -> 0, "cuda:N" -> N (0 <= N < 1024).  Anything else
 * is ERR_USAGE naming the value.  "cpu" is the caller's business (returns -1 here).
 */
int cu_parse_device(const char *spec, int *ordinal, struct err *e);

/*
 * How many CUDA devices this process sees.  No driver, no device or a driver too old
 * is not an error: *n = 0 and why (when not NULL) says what CUDA said.  Returns 0.
 */
int cu_device_count(int *n, char *why, size_t why_len);

/* Select device `ordinal` for this thread and fill *info.  ERR_USAGE when the ordinal
 * is out of range (naming how many devices there are), ERR_CUDA on a CUDA failure. */
int cu_open(int ordinal, struct cu_info *info, struct err *e);

/* ERR_LIMIT unless `need` bytes fit in the free memory recorded in *info. */
int cu_need(const struct cu_info *info, uint64_t need, const char *what, struct err *e);

/* Record a CUDA runtime status (cudaError_t as int): 0 when it is success, else ERR_CUDA
 * "call: message" and -1.  cu_check_cublas does the same for a cublasStatus_t. */
int cu_check_at(int status, const char *call, const char *file, int line, struct err *e);
int cu_check_cublas_at(int status, const char *call, const char *file, int line, struct err *e);
#define CU_CHECK(e, call, what) cu_check_at((int)(call), (what), __FILE__, __LINE__, (e))
#define CU_CHECK_BLAS(e, call, what) cu_check_cublas_at((int)(call), (what), __FILE__, __LINE__, (e))

/* bytes as "3.80 GiB" / "512.0 MiB" into buf */
const char *cu_fmt_bytes(uint64_t b, char *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif
