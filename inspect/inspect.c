/*
 * inspect.c - apr-inspect: what a model file is, what it holds, where it came from.
 *
 * One pass over the model view (formats/model.h), whatever the format.  Text output
 * is for people and is escaped (cli_put_escaped) so names and strings from a hostile
 * file cannot inject terminal control sequences; --json is for programs, with a
 * stable key order.  Nothing here reads tensor data except --stats and --values.
 */
#include "inspect.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/stream.h"
#include "../common/cli.h"
#include "../common/json.h"
#include "../common/sbuf.h"
#include "../common/threads.h"
#include "../dequant/dq.h"
#include "../formats/meta.h"
#include "../formats/model.h"
#include "../formats/model_json.h"
#include "../formats/names.h"
#include "../common/banned.h"

#define ARRAY_PREVIEW 8     /* array elements shown without --full */
#define STR_PREVIEW   120   /* string bytes shown without --full */
#define INSPECT_FULL_READ_MAX ((off_t)1 << 30)   /* above this, checks that read data are skipped */

/* ---- text helpers */

static void put_slice(FILE *f, struct slice s) { cli_put_escaped(f, s.p, s.n); }

static void put_str_preview(FILE *f, struct slice s, int full)
{
    fputc('"', f);
    if (!full && s.n > STR_PREVIEW) {
        cli_put_escaped(f, s.p, STR_PREVIEW);
        fprintf(f, "\"... (%zu bytes)", s.n);
        return;
    }
    cli_put_escaped(f, s.p, s.n);
    fputc('"', f);
}

static void put_f64(FILE *f, double v, int is_f32)
{
    char buf[48];
    json_fmt_num(buf, sizeof buf, v, is_f32);
    fputs(buf, f);
}

static void put_val(FILE *f, const struct model_val *v, int full);

static void put_arr_elem(FILE *f, const struct model_val *a, uint64_t i, int full)
{
    enum model_vtype et = a->v.arr.elem;
    if (et == MV_STR)
        put_str_preview(f, a->v.arr.strs[i], full);
    else if (a->v.arr.items)
        put_val(f, &a->v.arr.items[i], full);
    else if (et == MV_BOOL)
        fputs(model_arr_get_u64(a, i) ? "true" : "false", f);
    else if (et == MV_F32 || et == MV_F64)
        put_f64(f, model_arr_get_f64(a, i), et == MV_F32);
    else if (et == MV_U8 || et == MV_U16 || et == MV_U32 || et == MV_U64)
        fprintf(f, "%" PRIu64, model_arr_get_u64(a, i));
    else
        fprintf(f, "%" PRId64, model_arr_get_i64(a, i));
}

static void put_val(FILE *f, const struct model_val *v, int full)
{
    switch (v->type) {
    case MV_U8: case MV_U16: case MV_U32: case MV_U64: fprintf(f, "%" PRIu64, v->v.u); break;
    case MV_I8: case MV_I16: case MV_I32: case MV_I64: fprintf(f, "%" PRId64, v->v.i); break;
    case MV_F32: put_f64(f, v->v.f, 1); break;
    case MV_F64: put_f64(f, v->v.f, 0); break;
    case MV_BOOL: fputs(v->v.u ? "true" : "false", f); break;
    case MV_STR: put_str_preview(f, v->v.s, full); break;
    case MV_NULL: fputs("null", f); break;
    case MV_OBJ:
        fputc('{', f);
        for (uint64_t i = 0; i < v->v.obj.n; i++) {
            if (!full && i == ARRAY_PREVIEW) {
                fprintf(f, ", ... (%" PRIu64 " keys)", v->v.obj.n);
                break;
            }
            fputs(i ? ", " : "", f);
            put_slice(f, v->v.obj.kv[i].key);
            fputs(": ", f);
            put_val(f, &v->v.obj.kv[i].val, full);
        }
        fputc('}', f);
        break;
    case MV_ARR: {
        uint64_t n = v->v.arr.n;
        fputc('[', f);
        for (uint64_t i = 0; i < n; i++) {
            if (!full && i == ARRAY_PREVIEW) {
                fputs(", ...", f);
                break;
            }
            fputs(i ? ", " : "", f);
            put_arr_elem(f, v, i, full);
        }
        fputc(']', f);
        break;
    }
    default:
        fputc('?', f);
    }
}

static void put_type(FILE *f, const struct model_val *v)
{
    if (v->type == MV_ARR)
        fprintf(f, "%s[%s]", model_vtype_name(MV_ARR),
                v->v.arr.elem == MV_NULL ? "MIXED" : model_vtype_name(v->v.arr.elem));
    else
        fputs(model_vtype_name(v->type), f);
}

static int type_width(const struct model_val *v)
{
    if (v->type == MV_ARR)
        return (int)(strlen("ARRAY[]") +
                     strlen(v->v.arr.elem == MV_NULL ? "MIXED" : model_vtype_name(v->v.arr.elem)));
    return (int)strlen(model_vtype_name(v->type));
}

/* ---- text report */

static const char *footer_state(const struct model *m)
{
    switch (m->apr_footer_crc_ok) {
    case 1:  return "ok";
    case 0:  return "MISMATCH";
    case -1: return "TRUNCATED (the file ends before its footer checksum)";
    default: return "not checked (file over 1 GiB: inspect reads headers only)";
    }
}

static void text_header(FILE *f, const struct model *m, const struct inspect_opts *o)
{
    fputs("file:        ", f);
    cli_put_escaped(f, m->path, strlen(m->path));
    fputc('\n', f);
    fprintf(f, "format:      %s", model_format_name(m->format));
    if (m->format == MODEL_FMT_GGUF)
        fprintf(f, " v%d", m->version);
    else if (m->format == MODEL_FMT_APR)
        fprintf(f, " v%d.%d%s", m->version, m->version_minor, m->apr_magic_legacy ? " (legacy magic APR2)" : "");
    fputc('\n', f);
    fprintf(f, "size:        %" PRIu64 " bytes", m->total_size);
    if (m->n_files > 1)
        fprintf(f, " in %u files", m->n_files);
    fputc('\n', f);
    fprintf(f, "tensors:     %" PRIu64 "\n", m->n_tensors);
    fprintf(f, "metadata:    %" PRIu64 " keys\n", m->n_kv);
    if (!o->no_offsets)
        fprintf(f, "data offset: %" PRIu64 " (alignment %" PRIu64 ")\n", m->data_off, m->alignment);
    if (m->format == MODEL_FMT_APR) {
        static const char *const names[16] = {
            "LZ4", "ZSTD", "ENCRYPTED", "SIGNED", "SHARDED", "QUANTIZED", "HAS_FILTERBANK",
            "HAS_MODEL_CARD", "STREAMING", "HAS_VOCAB", "LAYOUT_ROW_MAJOR", "LAYOUT_COLUMN_MAJOR",
        };
        int any = 0;
        fprintf(f, "flags:       0x%04x", m->apr_flags);
        for (int b = 0; b < 16; b++)
            if (m->apr_flags & (1u << b)) {
                fprintf(f, "%s%s", any ? " | " : " (", names[b] ? names[b] : "?");
                any = 1;
            }
        fputs(any ? ")\n" : "\n", f);
        fprintf(f, "checksums:   header ok, footer %s\n", footer_state(m));
    }
    if (m->n_files > 1)
        for (uint32_t i = 0; i < m->n_files; i++) {
            fprintf(f, "shard %u:     ", i);
            cli_put_escaped(f, m->files[i].path, strlen(m->files[i].path));
            fprintf(f, " (%" PRIu64 " bytes)\n", m->files[i].size);
        }
    for (uint32_t i = 0; i < m->n_notes; i++) {
        fputs("note:        ", f);
        cli_put_escaped(f, m->notes[i].msg, strlen(m->notes[i].msg));
        fputc('\n', f);
    }
}

static void text_metadata(FILE *f, const struct model *m, const struct inspect_opts *o)
{
    int kw = 0, tw = 0;
    if (m->n_kv == 0)
        return;
    for (uint64_t i = 0; i < m->n_kv; i++) {
        int k = (int)m->kv[i].key.n, t = type_width(&m->kv[i].val);
        if (k > kw && k <= 48)
            kw = k;
        if (t > tw)
            tw = t;
    }
    fputs("\nmetadata:\n", f);
    for (uint64_t i = 0; i < m->n_kv; i++) {
        const struct model_kv *kv = &m->kv[i];
        int pad;
        fputs("  ", f);
        put_slice(f, kv->key);
        pad = kw - (int)kv->key.n;
        fprintf(f, "%*s  ", pad > 0 ? pad : 0, "");
        put_type(f, &kv->val);
        fprintf(f, "%*s  ", tw - type_width(&kv->val), "");
        if (kv->val.type == MV_ARR)
            fprintf(f, "(%" PRIu64 ") ", kv->val.v.arr.n);
        put_val(f, &kv->val, o->full);
        fputc('\n', f);
    }
}

/* The shard a tensor lives in (its file's base name), for models of several files. */
static const char *shard_name(const struct model *m, const struct model_tensor *t)
{
    const char *p, *sl;
    if (!m || m->n_files < 2 || t->file >= m->n_files)
        return NULL;
    p = m->files[t->file].path;
    sl = strrchr(p, '/');
    return sl ? sl + 1 : p;
}

static void text_tensor_row(FILE *f, const struct model *m, const struct model_tensor *t, int nw,
                            const struct inspect_opts *o)
{
    const char *sh_name = shard_name(m, t);
    int shw, pad;
    char shape[160];
    size_t len = 0;

    shape[0] = 0;
    len += (size_t)snprintf(shape, sizeof shape, "[");
    for (int d = 0; d < t->n_dims && len < sizeof shape; d++)
        len += (size_t)snprintf(shape + len, sizeof shape - len, "%s%" PRId64, d ? ", " : "", t->shape[d]);
    if (len < sizeof shape)
        snprintf(shape + len, sizeof shape - len, "]");
    shw = (int)strlen(shape);
    fputs("  ", f);
    put_slice(f, t->name);
    pad = nw - (int)t->name.n;
    fprintf(f, "%*s  %-7s  %s%*s", pad > 0 ? pad : 0, "", dtype_name(t->dtype), shape,
            shw < 20 ? 20 - shw : 0, "");
    if (!o->no_offsets)
        fprintf(f, "  %12" PRIu64, t->off);
    fprintf(f, "  %12" PRIu64, t->size);
    if (sh_name) {
        fputs("  ", f);
        cli_put_escaped(f, sh_name, strlen(sh_name));
    }
    fputc('\n', f);
}

static void text_tensors(FILE *f, const struct model *m, const struct inspect_opts *o)
{
    int nw = 4;
    if (m->n_tensors == 0)
        return;
    for (uint64_t i = 0; i < m->n_tensors; i++)
        if ((int)m->tensors[i].name.n > nw && m->tensors[i].name.n <= 64)
            nw = (int)m->tensors[i].name.n;
    fprintf(f, "\ntensors:\n  %-*s  %-7s  %-20s", nw, "name", "dtype", "shape");
    if (!o->no_offsets)
        fprintf(f, "  %12s", "offset");
    fprintf(f, "  %12s%s\n", "bytes", m->n_files > 1 ? "  shard" : "");
    for (uint64_t i = 0; i < m->n_tensors; i++)
        text_tensor_row(f, m, &m->tensors[i], nw, o);
}

/*
 * The tensor -t names, in any spelling (GGUF, Hugging Face, APR), as apr-diff and
 * apr-hash pair names: the exact name first, else the one whose canonical name equals
 * the canonical form of the argument.
 */
static const struct model_tensor *find_any(const struct model *m, const char *name)
{
    const struct model_tensor *t = model_tensor_find(m, name);
    char want[NAMES_MAX], have[NAMES_MAX];

    if (t || names_canonical(NULL, slice_from_cstr(name), want, sizeof want) == -2)
        return t;
    for (uint64_t i = 0; i < m->n_tensors; i++)
        if (names_canonical(NULL, m->tensors[i].name, have, sizeof have) != -2 &&
            strcmp(have, want) == 0)
            return &m->tensors[i];
    return NULL;
}

/* ---- JSON report */

static void json_kv_entry(struct json_w *w, const struct model_kv *kv, int full)
{
    json_w_obj(w);
    json_w_key(w, "key");
    json_w_str_n(w, kv->key.p, kv->key.n);
    json_w_key(w, "type");
    json_w_str(w, model_vtype_name(kv->val.type));
    if (kv->val.type == MV_ARR) {
        json_w_key(w, "elem_type");
        json_w_str(w, kv->val.v.arr.elem == MV_NULL ? "MIXED" : model_vtype_name(kv->val.v.arr.elem));
        json_w_key(w, "n");
        json_w_u64(w, kv->val.v.arr.n);
        if (!full && kv->val.v.arr.n > ARRAY_PREVIEW) {
            json_w_key(w, "truncated");
            json_w_bool(w, 1);
        }
    }
    json_w_key(w, "value");
    model_val_to_json(w, &kv->val, full ? UINT64_MAX : ARRAY_PREVIEW);
    json_w_obj_end(w);
}

static void json_tensor(struct json_w *w, const struct model *m, const struct model_tensor *t,
                        const struct inspect_opts *o)
{
    const char *sh_name = shard_name(m, t);
    json_w_obj(w);
    json_w_key(w, "name");
    json_w_str_n(w, t->name.p, t->name.n);
    json_w_key(w, "dtype");
    json_w_str(w, dtype_name(t->dtype));
    json_w_key(w, "shape");
    json_w_arr(w);
    for (int d = 0; d < t->n_dims; d++)
        json_w_i64(w, t->shape[d]);
    json_w_arr_end(w);
    json_w_key(w, "n_elements");
    json_w_i64(w, t->n_elems);
    if (!o->no_offsets) {
        json_w_key(w, "offset");
        json_w_u64(w, t->off);
    }
    json_w_key(w, "bytes");
    json_w_u64(w, t->size);
    if (sh_name) {
        json_w_key(w, "shard");
        json_w_str(w, sh_name);
    }
    json_w_obj_end(w);
}

static void json_report(struct json_w *w, const struct model *m, const struct inspect_opts *o)
{
    json_w_obj(w);
    json_w_key(w, "file");
    json_w_str(w, m->path);
    json_w_key(w, "format");
    json_w_str(w, model_format_name(m->format));
    json_w_key(w, "version");
    if (m->format == MODEL_FMT_APR) {
        char v[32];
        snprintf(v, sizeof v, "%d.%d", m->version, m->version_minor);
        json_w_str(w, v);
    } else {
        json_w_i64(w, m->version);
    }
    json_w_key(w, "file_size");
    json_w_u64(w, m->total_size);
    if (m->n_files > 1) {
        json_w_key(w, "files");
        json_w_arr(w);
        for (uint32_t i = 0; i < m->n_files; i++) {
            json_w_obj(w);
            json_w_key(w, "path");
            json_w_str(w, m->files[i].path);
            json_w_key(w, "size");
            json_w_u64(w, m->files[i].size);
            json_w_obj_end(w);
        }
        json_w_arr_end(w);
    }
    json_w_key(w, "n_tensors");
    json_w_u64(w, m->n_tensors);
    json_w_key(w, "n_kv");
    json_w_u64(w, m->n_kv);
    if (!o->no_offsets) {
        json_w_key(w, "data_offset");
        json_w_u64(w, m->data_off);
    }
    json_w_key(w, "alignment");
    json_w_u64(w, m->alignment);
    if (m->format == MODEL_FMT_APR) {
        json_w_key(w, "flags");
        json_w_u64(w, m->apr_flags);
        json_w_key(w, "footer_crc");
        json_w_str(w, footer_state(m));
    }
    if (m->format == MODEL_FMT_GGUF) {
        json_w_key(w, "canonical_layout");
        json_w_bool(w, m->gguf_canonical);
    }
    json_w_key(w, "notes");
    json_w_arr(w);
    for (uint32_t i = 0; i < m->n_notes; i++)
        json_w_str(w, m->notes[i].msg);
    json_w_arr_end(w);
    json_w_key(w, "metadata");
    json_w_arr(w);
    for (uint64_t i = 0; i < m->n_kv; i++)
        json_kv_entry(w, &m->kv[i], o->full);
    json_w_arr_end(w);
    json_w_key(w, "tensors");
    json_w_arr(w);
    for (uint64_t i = 0; i < m->n_tensors; i++)
        json_tensor(w, m, &m->tensors[i], o);
    json_w_arr_end(w);
    json_w_obj_end(w);
}

/* ---- --license: one provenance view across formats */

struct lic_field {
    const char *label;   /* the unified name, shown in text and used as the JSON key */
    const char *key;     /* the format's key */
};

static const struct lic_field lic_gguf[] = {
    { "license", "general.license" },           { "license_name", "general.license.name" },
    { "license_link", "general.license.link" }, { "name", "general.name" },
    { "author", "general.author" },             { "organization", "general.organization" },
    { "version", "general.version" },           { "url", "general.url" },
    { "repo_url", "general.repo_url" },         { "doi", "general.doi" },
    { "uuid", "general.uuid" },                 { "source_url", "general.source.url" },
    { "source_repo_url", "general.source.repo_url" }, { "source_doi", "general.source.doi" },
    { "source_uuid", "general.source.uuid" },   { "quantized_by", "general.quantized_by" },
    { NULL, NULL },
};

static const struct lic_field lic_apr[] = {
    { "license", "license" },             { "data_source", "data_source" },
    { "data_license", "data_license" },   { "source", "source" },
    { "original_format", "original_format" }, { "hf_architecture", "hf_architecture" },
    { "hf_model_type", "hf_model_type" }, { "name", "name" },
    { "author", "author" },               { "version", "version" },
    { "source_sha256", "source_sha256" }, { "converter", "converter" },
    { NULL, NULL },
};

static const struct lic_field lic_st[] = {
    { "license", "safetensors.metadata.license" },
    { "format", "safetensors.metadata.format" },
    { "architectures", "hf.config.architectures" },
    { "model_type", "hf.config.model_type" },
    { "name_or_path", "hf.config._name_or_path" },
    { "transformers_version", "hf.config.transformers_version" },
    { "dtype", "hf.config.dtype" },
    { "torch_dtype", "hf.config.torch_dtype" },
    { NULL, NULL },
};

/* GGUF per-entry groups: general.base_model.{i}.* and general.dataset.{i}.* */
static const char *const group_fields[] = {
    "name", "author", "version", "organization", "description", "url", "doi", "uuid", "repo_url", NULL,
};

/* A key that is absent and one set to null (APR writes its provenance keys as null
 * when unset) are the same hole for a release engineer. */
static const struct model_kv *lic_find(const struct model *m, const char *key)
{
    const struct model_kv *kv = model_kv_find(m, key);
    return kv && kv->val.type == MV_NULL ? NULL : kv;
}

static void lic_text_row(FILE *f, const char *label, const struct model_kv *kv)
{
    fprintf(f, "  %-22s ", label);
    if (kv)
        put_val(f, &kv->val, 0);
    else
        fputs("(missing)", f);
    fputc('\n', f);
}

static void lic_json_row(struct json_w *w, const char *label, const struct model_kv *kv)
{
    json_w_key(w, label);
    if (kv)
        model_val_to_json(w, &kv->val, UINT64_MAX);
    else
        json_w_null(w);
}

static void lic_group(FILE *f, struct json_w *w, const struct model *m, const char *what)
{
    char key[128];
    uint64_t n = 0;
    int have;

    snprintf(key, sizeof key, "general.%s.count", what);
    have = model_kv_get_u64(m, key, &n) == 0;
    if (n > 1024)
        n = 1024;   /* hostile counts: show the first 1024 */
    if (w) {
        json_w_key(w, strcmp(what, "base_model") == 0 ? "base_models" : "datasets");
        if (!have) {
            json_w_null(w);
            return;
        }
        json_w_arr(w);
    } else {
        fprintf(f, "  %-22s ", strcmp(what, "base_model") == 0 ? "base_models" : "datasets");
        if (!have) {
            fputs("(missing)\n", f);
            return;
        }
        fprintf(f, "%" PRIu64 "\n", n);
    }
    for (uint64_t i = 0; i < n; i++) {
        if (w)
            json_w_obj(w);
        for (int k = 0; group_fields[k]; k++) {
            char label[64];
            snprintf(key, sizeof key, "general.%s.%" PRIu64 ".%s", what, i, group_fields[k]);
            snprintf(label, sizeof label, "  [%" PRIu64 "] %s", i, group_fields[k]);
            const struct model_kv *kv = model_kv_find(m, key);
            if (w) {
                if (kv)
                    lic_json_row(w, group_fields[k], kv);
            } else if (kv || k == 0) {
                lic_text_row(f, label, kv);
            }
        }
        if (w)
            json_w_obj_end(w);
    }
    if (w)
        json_w_arr_end(w);
}

static const struct lic_field *lic_table(const struct model *m)
{
    switch (m->format) {
    case MODEL_FMT_GGUF: return lic_gguf;
    case MODEL_FMT_APR:  return lic_apr;
    default:             return lic_st;
    }
}

/* Keys outside the table that still speak of provenance: shown so nothing hides. */
static int lic_extra_key(const struct model *m, struct slice k)
{
    if (m->format == MODEL_FMT_SAFETENSORS)
        return slice_starts_with(k, "safetensors.metadata.");
    if (m->format == MODEL_FMT_GGUF)
        return slice_starts_with(k, "general.license") || slice_starts_with(k, "general.source.") ||
               slice_starts_with(k, "general.tags") || slice_starts_with(k, "general.languages");
    return 0;
}

static int lic_in_table(const struct lic_field *t, struct slice k)
{
    for (; t->label; t++)
        if (slice_eq_cstr(k, t->key))
            return 1;
    return 0;
}

/*
 * An APR file made by apr-convert keeps the source's own keys in its apr_tools.kv
 * namespace: the GGUF provenance (general.license.*, general.url, base models, ...)
 * of the model it came from, shown as a view of those keys.  0 and *v (kv borrowed from
 * *mt, which the caller frees) when there is one.
 */
static int lic_source_view(const struct model *m, struct meta *mt, struct model *v)
{
    struct err e = ERR_INIT;

    if (m->format != MODEL_FMT_APR || !model_kv_find(m, META_NS_KEY) ||
        meta_from_model(m, mt, &e) != 0)
        return -1;
    memset(v, 0, sizeof *v);
    v->format = MODEL_FMT_GGUF;
    v->path = m->path;
    v->kv = mt->kv;
    v->n_kv = mt->n;
    return 0;
}

static void license_text(FILE *f, const struct model *m)
{
    const struct lic_field *t = lic_table(m);
    struct meta mt;
    struct model sv;
    fputs("file:      ", f);
    cli_put_escaped(f, m->path, strlen(m->path));
    fprintf(f, "\nformat:    %s\n\nprovenance:\n", model_format_name(m->format));
    for (; t->label; t++)
        lic_text_row(f, t->label, lic_find(m, t->key));
    if (m->format == MODEL_FMT_GGUF) {
        lic_group(f, NULL, m, "base_model");
        lic_group(f, NULL, m, "dataset");
    }
    for (uint64_t i = 0; i < m->n_kv; i++) {
        struct slice k = m->kv[i].key;
        if (lic_extra_key(m, k) && !lic_in_table(lic_table(m), k)) {
            fputs("  ", f);
            put_slice(f, k);
            fputs(" = ", f);
            put_val(f, &m->kv[i].val, 0);
            fputc('\n', f);
        }
    }
    if (lic_source_view(m, &mt, &sv) == 0) {
        fputs("\nsource provenance (the source's keys, kept in apr_tools.kv):\n", f);
        for (t = lic_gguf; t->label; t++)
            lic_text_row(f, t->label, lic_find(&sv, t->key));
        lic_group(f, NULL, &sv, "base_model");
        lic_group(f, NULL, &sv, "dataset");
        for (uint64_t i = 0; i < sv.n_kv; i++) {
            struct slice k = sv.kv[i].key;
            if (lic_extra_key(&sv, k) && !lic_in_table(lic_gguf, k)) {
                fputs("  ", f);
                put_slice(f, k);
                fputs(" = ", f);
                put_val(f, &sv.kv[i].val, 0);
                fputc('\n', f);
            }
        }
        meta_free(&mt);
    }
}

static void license_json(struct json_w *w, const struct model *m)
{
    const struct lic_field *t = lic_table(m);
    struct meta mt;
    struct model sv;
    json_w_obj(w);
    json_w_key(w, "file");
    json_w_str(w, m->path);
    json_w_key(w, "format");
    json_w_str(w, model_format_name(m->format));
    json_w_key(w, "provenance");
    json_w_obj(w);
    for (; t->label; t++)
        lic_json_row(w, t->label, lic_find(m, t->key));
    if (m->format == MODEL_FMT_GGUF) {
        lic_group(NULL, w, m, "base_model");
        lic_group(NULL, w, m, "dataset");
    }
    json_w_obj_end(w);
    json_w_key(w, "other");
    json_w_obj(w);
    for (uint64_t i = 0; i < m->n_kv; i++) {
        struct slice k = m->kv[i].key;
        if (lic_extra_key(m, k) && !lic_in_table(lic_table(m), k)) {
            json_w_key_n(w, k.p, k.n);
            model_val_to_json(w, &m->kv[i].val, UINT64_MAX);
        }
    }
    json_w_obj_end(w);
    json_w_key(w, "missing");
    json_w_arr(w);
    for (t = lic_table(m); t->label; t++)
        if (!lic_find(m, t->key))
            json_w_str(w, t->label);
    json_w_arr_end(w);
    if (lic_source_view(m, &mt, &sv) == 0) {
        json_w_key(w, "source_provenance");
        json_w_obj(w);
        for (t = lic_gguf; t->label; t++)
            lic_json_row(w, t->label, lic_find(&sv, t->key));
        lic_group(NULL, w, &sv, "base_model");
        lic_group(NULL, w, &sv, "dataset");
        for (uint64_t i = 0; i < sv.n_kv; i++) {
            struct slice k = sv.kv[i].key;
            if (lic_extra_key(&sv, k) && !lic_in_table(lic_gguf, k)) {
                json_w_key_n(w, k.p, k.n);
                model_val_to_json(w, &sv.kv[i].val, UINT64_MAX);
            }
        }
        json_w_obj_end(w);
        meta_free(&mt);
    }
    json_w_obj_end(w);
}

/* ---- --stats and --values: the only paths that read tensor data */

static const char *stats_flag(const struct dq_stats *st)
{
    if (st->n == 0)
        return "empty";
    if (st->n_nan || st->n_inf)
        return "NON-FINITE";
    if (st->n_zero == st->n)
        return "ALL-ZERO";
    return "ok";
}

/*
 * Statistics of t, its bytes streamed (common/stream.h: pread into a reused buffer) in
 * pieces of STATS_SEG elements: no page faults and no RSS growth, whatever the tensor's
 * size.  The pieces are whole DQ_STATS_CHUNKs, so the numbers are dq_tensor_stats's, bit
 * for bit.  APR_Q8/APR_Q4 (one scale for the whole tensor) go through the mapping.
 */
#define STATS_SEG ((int64_t)64 * DQ_STATS_CHUNK)

static int tensor_stats(const struct model *m, const struct model_tensor *t, struct stream *st,
                        int n_threads, struct dq_stats *out, struct err *e)
{
    const struct mfile *mf = t->file < m->n_files ? &m->files[t->file] : NULL;
    const struct dtype_info *di = dtype_get(t->dtype);
    struct dq_stats_acc a;

    if (!mf || !di || !di->blck || STATS_SEG % di->blck || t->dtype == DT_APR_Q8 ||
        t->dtype == DT_APR_Q4)
        return dq_tensor_stats(t, n_threads, out, e);
    if (dq_tensor_check(t, e))
        return -1;
    dq_stats_begin(&a);
    for (int64_t e0 = 0; e0 < t->n_elems; e0 += STATS_SEG) {
        int64_t k = t->n_elems - e0 < STATS_SEG ? t->n_elems - e0 : STATS_SEG;
        uint64_t off = (uint64_t)(e0 / (int64_t)di->blck) * di->type_size, len;
        const uint8_t *p;
        if (dtype_nbytes(t->dtype, k, &len, e))
            return -1;
        p = stream_view(st, mf, t->data + off, (size_t)len, e);
        if (!p || dq_stats_add(&a, t->dtype, p, len, k, n_threads, e))
            return -1;
    }
    dq_stats_end(&a, out);
    return 0;
}

static int stats_one(const struct model *m, const struct model_tensor *t,
                     const struct inspect_opts *o, FILE *out, struct json_w *w, int nw,
                     struct stream *stm, int *n_bad, struct err *e)
{
    struct dq_stats st;
    float *vals = NULL;
    int64_t nv = 0;
    const char *flag = NULL;

    if (o->stats) {
        if (tensor_stats(m, t, stm, o->n_threads > 0 ? o->n_threads : threads_ncpu(), &st, e))
            return -1;
        flag = stats_flag(&st);
        if (strcmp(flag, "ok") != 0 && strcmp(flag, "empty") != 0)
            (*n_bad)++;
    }
    if (o->values >= 0) {
        nv = o->values < t->n_elems ? o->values : t->n_elems;
        vals = malloc((size_t)(nv > 0 ? nv : 1) * sizeof *vals);
        if (!vals)
            return ERR(e, ERR_NOMEM, "out of memory for %lld values", (long long)nv);
        if (dq_tensor_values(t, nv, vals, e)) {
            free(vals);
            return -1;
        }
    }
    if (w) {
        json_w_obj(w);
        json_w_key(w, "name");
        json_w_str_n(w, t->name.p, t->name.n);
        json_w_key(w, "dtype");
        json_w_str(w, dtype_name(t->dtype));
        json_w_key(w, "shape");
        json_w_arr(w);
        for (int d = 0; d < t->n_dims; d++)
            json_w_i64(w, t->shape[d]);
        json_w_arr_end(w);
        if (o->stats) {
            json_w_key(w, "n");      json_w_u64(w, st.n);
            json_w_key(w, "min");    json_w_f64(w, st.min);
            json_w_key(w, "max");    json_w_f64(w, st.max);
            json_w_key(w, "mean");   json_w_f64(w, st.mean);
            json_w_key(w, "std");    json_w_f64(w, st.std);
            json_w_key(w, "l2");     json_w_f64(w, st.l2);
            json_w_key(w, "n_nan");  json_w_u64(w, st.n_nan);
            json_w_key(w, "n_inf");  json_w_u64(w, st.n_inf);
            json_w_key(w, "n_zero"); json_w_u64(w, st.n_zero);
            json_w_key(w, "status"); json_w_str(w, flag);
        }
        if (vals) {
            json_w_key(w, "values");
            json_w_arr(w);
            for (int64_t i = 0; i < nv; i++)
                json_w_f32(w, vals[i]);   /* NaN/Inf become null */
            json_w_arr_end(w);
        }
        json_w_obj_end(w);
    } else {
        if (o->stats) {
            fputs("  ", out);
            put_slice(out, t->name);
            fprintf(out, "%*s  %-7s  %13.6g %13.6g %13.6g %13.6g %13.6g %8" PRIu64 " %8" PRIu64
                    " %10" PRIu64 "  %s\n", nw - (int)t->name.n > 0 ? nw - (int)t->name.n : 0, "",
                    dtype_name(t->dtype), st.min, st.max, st.mean, st.std, st.l2, st.n_nan,
                    st.n_inf, st.n_zero, flag);
        }
        if (vals) {
            if (!o->stats) {
                put_slice(out, t->name);
                fputs(":\n", out);
            }
            for (int64_t i = 0; i < nv; i++) {
                fprintf(out, "    [%lld] ", (long long)i);
                put_f64(out, vals[i], 1);
                fputc('\n', out);
            }
        }
    }
    free(vals);
    return 0;
}

static int stats_run(const struct model *m, const struct inspect_opts *o, FILE *out,
                     struct json_w *w, struct err *e)
{
    int nw = 4, n_bad = 0;
    const struct model_tensor *only = NULL;
    struct stream stm;

    if (o->tensor) {
        only = find_any(m, o->tensor);
        if (!only)
            return ERR(e, ERR_MISMATCH, "%s: no tensor named '%s'", m->path, o->tensor);
    }
    for (uint64_t i = 0; i < m->n_tensors; i++)
        if ((int)m->tensors[i].name.n > nw && m->tensors[i].name.n <= 64)
            nw = (int)m->tensors[i].name.n;
    if (w) {
        json_w_obj(w);
        json_w_key(w, "file");
        json_w_str(w, m->path);
        json_w_key(w, "tensors");
        json_w_arr(w);
    } else if (o->stats) {
        fprintf(out, "  %-*s  %-7s  %13s %13s %13s %13s %13s %8s %8s %10s  %s\n", nw, "name", "dtype",
                "min", "max", "mean", "std", "l2", "nan", "inf", "zeros", "status");
    }
    stream_open(&stm, NULL, 0, 0, e);
    for (uint64_t i = 0; i < m->n_tensors; i++) {
        const struct model_tensor *t = &m->tensors[i];
        if (only && t != only)
            continue;
        if (stats_one(m, t, o, out, w, nw, &stm, &n_bad, e)) {
            err_prefix(e, "%s: tensor '%.*s'", m->path, (int)t->name.n, t->name.p);
            stream_close(&stm);
            return -1;
        }
    }
    stream_close(&stm);
    if (w) {
        json_w_arr_end(w);
        if (o->stats) {
            json_w_key(w, "n_suspicious");
            json_w_u64(w, (uint64_t)n_bad);
        }
        json_w_obj_end(w);
    }
    if (n_bad && !o->strict)
        cli_warn("warning: %s: %d tensor%s all zeros or not finite (same-size corruption?)",
                 m->path, n_bad, n_bad == 1 ? " is" : "s are");
    return n_bad && o->strict ? 1 : 0;
}

/* ---- driver */

static int flush_json(struct sbuf *b, FILE *out, struct err *e)
{
    if (sbuf_check(b, "JSON output", e))
        return -1;
    if (b->len && fwrite(b->p, 1, b->len, out) != b->len)
        return ERR_SYS(e, "write error");
    return 0;
}

int inspect_run(const struct inspect_opts *o, const char *path, FILE *out, struct err *e)
{
    struct model m;
    struct sbuf b = SBUF_INIT((size_t)1 << 34);
    struct json_w w;
    struct stat st;
    int rc = -1;

    /* Header only for big files: the APR footer CRC would read every byte. */
    if (model_open_ex(&m, path, stat(path, &st) == 0 && st.st_size > INSPECT_FULL_READ_MAX ?
                      MODEL_OPEN_HEADER_ONLY : 0, e))
        return -1;
    json_w_init(&w, &b, 1);
    if (o->stats || o->values >= 0) {
        int bad = stats_run(&m, o, out, o->json ? &w : NULL, e);
        if (bad < 0)
            goto done;
        if (o->json && flush_json(&b, out, e))
            goto done;
        if (bad) {   /* --strict: the table is out, then the failure */
            ERR(e, ERR_MISMATCH, "%s: tensors all zeros or not finite (--strict)", path);
            goto done;
        }
        rc = 0;
        goto done;
    }
    if (o->tensor) {
        const struct model_tensor *t = find_any(&m, o->tensor);
        if (!t) {
            ERR(e, ERR_MISMATCH, "%s: no tensor named '%s'", path, o->tensor);
            goto done;
        }
        if (o->json) {
            json_tensor(&w, &m, t, o);
            if (flush_json(&b, out, e))
                goto done;
        } else {
            struct inspect_opts o2 = *o;
            int nw = (int)t->name.n;
            fprintf(out, "  %-*s  %-7s  %-20s", nw, "name", "dtype", "shape");
            if (!o2.no_offsets)
                fprintf(out, "  %12s", "offset");
            fprintf(out, "  %12s\n", "bytes");
            text_tensor_row(out, &m, t, nw, &o2);
        }
        rc = 0;
        goto done;
    }
    if (o->license) {
        if (o->json) {
            license_json(&w, &m);
            if (flush_json(&b, out, e))
                goto done;
        } else {
            license_text(out, &m);
        }
        rc = 0;
        goto done;
    }
    if (o->json) {
        json_report(&w, &m, o);
        if (flush_json(&b, out, e))
            goto done;
    } else {
        text_header(out, &m, o);
        text_metadata(out, &m, o);
        text_tensors(out, &m, o);
    }
    rc = 0;
done:
    sbuf_release(&b);
    model_close(&m);
    return rc;
}
