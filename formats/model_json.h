/*
 * model_json.h - JSON <-> model metadata values (rules in model_json.c).
 */
#ifndef MODEL_JSON_H
#define MODEL_JSON_H

#include "../common/json.h"
#include "model.h"

/* Convert token tok of d into *v; strings are copied into m's arena. */
int  model__json_val(struct model *m, const struct json_doc *d, int tok, struct model_val *v,
                     struct err *e);
/* Convert object obj into a freshly allocated kv array (*n entries; freed by the caller
 * or handed to the model, whose model_close frees it).  On failure *kv holds the *n
 * entries converted so far, for the caller to free through the model. */
int  model__json_obj(struct model *m, const struct json_doc *d, int obj, struct model_kv **kv,
                     uint64_t *n, int depth, struct err *e);
/* Write v as JSON; arrays are cut after max_items elements (UINT64_MAX for all). */
void model_val_to_json(struct json_w *w, const struct model_val *v, uint64_t max_items);

#endif
