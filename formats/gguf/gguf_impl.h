/*
 * gguf_impl.h - constants and helpers shared by gguf_read.c and gguf_write.c.
 * Private to formats/gguf: tools include gguf.h only.
 */
#ifndef GGUF_IMPL_H
#define GGUF_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/slice.h"

#define GGUF_MAGIC             "GGUF"
#define GGUF_VERSION_MAX       3
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_DIMS          4               /* GGML_MAX_DIMS */
#define GGUF_NAME_MAX_GGML     63              /* GGML_MAX_NAME is 64 including the NUL */
#define GGUF_NAME_MAX          65535u          /* our (generous) cap for tensor names */
#define GGUF_KEY_MAX           65535u          /* the spec's limit for keys */
#define GGUF_STRING_MAX        (1ull << 30)    /* GGUF_MAX_STRING_LENGTH in ggml */
#define GGUF_ARRAY_DEPTH_MAX   16              /* nested arrays: bounds our recursion */
#define GGUF_KEY_ALIGNMENT     "general.alignment"

/*
 * Render a name from a file for an error message: printable ASCII is kept, every
 * other byte becomes \xNN (a malicious name cannot inject terminal sequences), and
 * long names are cut with "...".  Returns buf (always NUL-terminated).
 */
const char *gguf__quote(struct slice s, char *buf, size_t n);

#define GGUF_QUOTE_LEN 96   /* buffer size callers use with gguf__quote */

#endif
