/* layout.c: the /runs row layout (one column per field, in the order of the
 * format description in results_impl.h), the HDF5 compound types of /runs,
 * /curves and /sweeps, and a row's encoding into the packed bytes of /runs and
 * back. Key columns go through the key table (run_config_format out,
 * run_config_put in), so the values read back are exactly those written. */
#include "results_impl.h"

#include "untangle/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hid_t res_str_type(size_t size)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return t;
    if (H5Tset_size(t, size) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0 ||
        H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

static void lay_add(layout *L, const char *name, col_kind kind, size_t size, col_src src,
                    int arg)
{
    col *c = &L->c[L->n++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->kind = kind;
    c->size = size;
    c->off = L->size;
    c->src = src;
    c->arg = arg;
    L->size += size;
}

static void lay_add_key(layout *L, size_t i)
{
    const run_key *k = &run_keys[i];
    switch (k->type) {
    case RUN_KEY_INT: lay_add(L, k->name, COL_I64, 8, SRC_KEY, (int)i); break;
    case RUN_KEY_REAL: lay_add(L, k->name, COL_F64, 8, SRC_KEY, (int)i); break;
    case RUN_KEY_STR: lay_add(L, k->name, COL_STR, k->size, SRC_KEY, (int)i); break;
    case RUN_KEY_LIST: lay_add(L, k->name, COL_STR, LIST_LEN, SRC_KEY, (int)i); break;
    }
}

void layout_init(layout *L, const char *data_name)
{
    memset(L, 0, sizeof *L);
    _Static_assert(MAX_COLS >= 13 + 64 + RUN_N_METRICS + 3 * DATA_MAX_K, "MAX_COLS too small");
    /* the data set's factors name the per-factor columns; an unknown name
     * (a file of a later untangle) keeps dSprites' and its own name, which
     * the open's check against the sweep's data set then refuses */
    data_factor_desc fd;
    err e;
    if (!data_name || data_describe_name(data_name, &fd, &e) < 0)
        data_describe_name("dsprites", &fd, &e);
    snprintf(L->data, sizeof L->data, "%s", data_name ? data_name : "dsprites");
    L->K = fd.K;
    L->names = fd.names;
    lay_add(L, "index", COL_I64, 8, SRC_INDEX, 0);
    lay_add(L, "run_id", COL_STR, RUN_ID_LEN, SRC_RUN_ID, 0);
    lay_add(L, "attempt", COL_I32, 4, SRC_ATTEMPT, 0);
    const run_key *model = run_key_find("model"), *arch = run_key_find("arch");
    if (model)
        lay_add_key(L, (size_t)(model - run_keys));
    if (arch)
        lay_add_key(L, (size_t)(arch - run_keys));
    for (size_t i = 0; i < run_n_keys; i++)
        if (&run_keys[i] != model && &run_keys[i] != arch)
            lay_add_key(L, i);
    L->status_col = (int)L->n;
    lay_add(L, "status", COL_STR, STATUS_LEN, SRC_STATUS, 0);
    lay_add(L, "error", COL_STR, ERROR_LEN, SRC_ERROR, 0);
    lay_add(L, "rank", COL_I32, 4, SRC_RANK, 0);
    lay_add(L, "host", COL_STR, HOST_LEN, SRC_HOST, 0);
    lay_add(L, "wall_s", COL_F64, 8, SRC_WALL, 0);
    lay_add(L, "train_s", COL_F64, 8, SRC_TRAIN, 0);
    lay_add(L, "eval_s", COL_F64, 8, SRC_EVAL, 0);
    lay_add(L, "imgs_per_s", COL_F64, 8, SRC_IPS, 0);
    lay_add(L, "steps_done", COL_I64, 8, SRC_STEPS, 0);
    for (int m = 0; m < RUN_N_METRICS; m++)
        lay_add(L, run_metric_names[m], COL_F64, 8, SRC_METRIC, m);
    char name[48];
    for (int k = 0; k < L->K; k++) {
        snprintf(name, sizeof name, "mig_%s", L->names[k]);
        lay_add(L, name, COL_F64, 8, SRC_MIG, k);
    }
    for (int k = 0; k < L->K; k++) {
        snprintf(name, sizeof name, "swap_acc_%s", L->names[k]);
        lay_add(L, name, COL_F64, 8, SRC_SWAP, k);
    }
    for (int k = 0; k < L->K; k++) {
        snprintf(name, sizeof name, "chunk_mig_%s", L->names[k]);
        lay_add(L, name, COL_F64, 8, SRC_CHUNK, k);
    }
}

void layout_init_evals(layout *L, const char *data_name)
{
    layout_init(L, data_name);
    lay_add(L, "evaluation", COL_I32, 4, SRC_EVALUATION, 0);
}

/* The compound type of the layout; present (may be NULL = all) selects the
 * members, at their packed offsets (a subset reads an older file). */
hid_t layout_type(const layout *L, const int *present)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, L->size), s = H5I_INVALID_HID;
    if (t < 0)
        return t;
    for (size_t i = 0; i < L->n; i++) {
        const col *c = &L->c[i];
        if (present && !present[i])
            continue;
        herr_t st;
        switch (c->kind) {
        case COL_I64: st = H5Tinsert(t, c->name, c->off, H5T_NATIVE_INT64); break;
        case COL_I32: st = H5Tinsert(t, c->name, c->off, H5T_NATIVE_INT32); break;
        case COL_F64: st = H5Tinsert(t, c->name, c->off, H5T_NATIVE_DOUBLE); break;
        default:
            st = (s = res_str_type(c->size)) < 0 ? -1 : H5Tinsert(t, c->name, c->off, s);
            h5util_close(s);
            s = H5I_INVALID_HID;
            break;
        }
        if (st < 0) {
            H5Tclose(t);
            return H5I_INVALID_HID;
        }
    }
    return t;
}

void res_put_str(uint8_t *dst, size_t size, const char *s, size_t max_src)
{
    memset(dst, 0, size);
    size_t n = strnlen(s, max_src);
    memcpy(dst, s, n < size ? n : size - 1);
}

void res_get_str(char *dst, size_t dst_size, const uint8_t *src, size_t src_size)
{
    size_t n = strnlen((const char *)src, src_size);
    if (n >= dst_size)
        n = dst_size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int status_from_name(const char *s)
{
    for (int st = RUN_OK; st <= RUN_INTERRUPTED; st++)
        if (strcmp(s, run_status_name(st)) == 0)
            return st;
    return RUN_STATUS_NONE;
}

void row_encode(const layout *L, uint8_t *buf, const results_row *row,
                       const run_config *c, const run_result *r)
{
    memset(buf, 0, L->size);
    char text[1200];
    for (size_t i = 0; i < L->n; i++) {
        const col *cl = &L->c[i];
        uint8_t *p = buf + cl->off;
        int64_t i64 = 0;
        int32_t i32 = 0;
        double f64 = NAN;
        switch (cl->src) {
        case SRC_INDEX: i64 = row->index; break;
        case SRC_RUN_ID: res_put_str(p, cl->size, row->run_id, sizeof row->run_id); continue;
        case SRC_ATTEMPT: i32 = row->attempt; break;
        case SRC_KEY: {
            const run_key *k = &run_keys[cl->arg];
            run_config_format(c, k, text, sizeof text);
            if (k->type == RUN_KEY_INT)
                i64 = strtoll(text, NULL, 10);
            else if (k->type == RUN_KEY_REAL)
                f64 = strtod(text, NULL);
            else {
                res_put_str(p, cl->size, text, sizeof text);
                continue;
            }
            break;
        }
        case SRC_STATUS:
            res_put_str(p, cl->size, r->status ? run_status_name(r->status) : "", STATUS_LEN);
            continue;
        case SRC_ERROR: res_put_str(p, cl->size, r->error, sizeof r->error); continue;
        case SRC_RANK: i32 = row->rank; break;
        case SRC_HOST: res_put_str(p, cl->size, row->host, sizeof row->host); continue;
        case SRC_WALL: f64 = r->wall_s; break;
        case SRC_TRAIN: f64 = r->train_s; break;
        case SRC_EVAL: f64 = r->eval_s; break;
        case SRC_IPS: f64 = r->imgs_per_s; break;
        case SRC_STEPS: i64 = r->steps; break;
        case SRC_METRIC: f64 = r->metric[cl->arg]; break;
        case SRC_MIG: f64 = r->mig_factor[cl->arg]; break;
        case SRC_SWAP: f64 = r->swap_factor[cl->arg]; break;
        case SRC_CHUNK: f64 = r->chunk_factor[cl->arg]; break;
        case SRC_EVALUATION: i32 = row->evaluation; break;
        }
        if (cl->kind == COL_I64)
            memcpy(p, &i64, 8);
        else if (cl->kind == COL_I32)
            memcpy(p, &i32, 4);
        else
            memcpy(p, &f64, 8);
    }
}

/* Inverse of row_encode for the present columns; others keep their defaults
 * (run_config_defaults, run_result_init). r must be initialised. */
void row_decode(const layout *L, const uint8_t *buf, const int *present, results_row *row,
                       run_config *c, run_result *r)
{
    memset(row, 0, sizeof *row);
    run_config_defaults(c);
    run_result_free(r);
    r->n_factors = L->K; /* the file's data set's: every per-factor column */
    char text[1200]; /* the longest column: path, S1024 */
    for (size_t i = 0; i < L->n; i++) {
        const col *cl = &L->c[i];
        if (present && !present[i])
            continue;
        const uint8_t *p = buf + cl->off;
        int64_t i64 = 0;
        int32_t i32 = 0;
        double f64 = 0;
        if (cl->kind == COL_I64)
            memcpy(&i64, p, 8);
        else if (cl->kind == COL_I32)
            memcpy(&i32, p, 4);
        else if (cl->kind == COL_F64)
            memcpy(&f64, p, 8);
        switch (cl->src) {
        case SRC_INDEX: row->index = (long)i64; break;
        case SRC_RUN_ID: res_get_str(row->run_id, sizeof row->run_id, p, cl->size); break;
        case SRC_ATTEMPT: row->attempt = i32; break;
        case SRC_KEY: {
            /* through the key table's own parser, in run_config_format's
             * text; a value it refuses keeps its default */
            const run_key *k = &run_keys[cl->arg];
            if (k->type == RUN_KEY_INT)
                snprintf(text, sizeof text, "%lld", (long long)i64);
            else if (k->type == RUN_KEY_REAL)
                snprintf(text, sizeof text, "%.17g", f64);
            else
                res_get_str(text, sizeof text, p, cl->size);
            err ignored;
            run_config_put(c, k, text, &ignored);
            break;
        }
        case SRC_STATUS:
            res_get_str(text, sizeof text, p, cl->size);
            r->status = status_from_name(text);
            break;
        case SRC_ERROR: res_get_str(r->error, sizeof r->error, p, cl->size); break;
        case SRC_RANK: row->rank = i32; break;
        case SRC_HOST: res_get_str(row->host, sizeof row->host, p, cl->size); break;
        case SRC_WALL: r->wall_s = f64; break;
        case SRC_TRAIN: r->train_s = f64; break;
        case SRC_EVAL: r->eval_s = f64; break;
        case SRC_IPS: r->imgs_per_s = f64; break;
        case SRC_STEPS: r->steps = (long)i64; break;
        case SRC_METRIC: r->metric[cl->arg] = f64; break;
        case SRC_MIG: r->mig_factor[cl->arg] = f64; break;
        case SRC_SWAP: r->swap_factor[cl->arg] = f64; break;
        case SRC_CHUNK: r->chunk_factor[cl->arg] = f64; break;
        case SRC_EVALUATION: row->evaluation = i32; break;
        }
    }
}

hid_t curve_type(int packed)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(curve_row)), s = res_str_type(CURVE_NAME_LEN);
    hid_t id = res_str_type(RUN_ID_LEN);
    if (t < 0 || s < 0 || id < 0 ||
        H5Tinsert(t, "index", offsetof(curve_row, index), H5T_NATIVE_INT64) < 0 ||
        H5Tinsert(t, "run_id", offsetof(curve_row, run_id), id) < 0 ||
        H5Tinsert(t, "attempt", offsetof(curve_row, attempt), H5T_NATIVE_INT32) < 0 ||
        H5Tinsert(t, "step", offsetof(curve_row, step), H5T_NATIVE_INT64) < 0 ||
        H5Tinsert(t, "name", offsetof(curve_row, name), s) < 0 ||
        H5Tinsert(t, "value", offsetof(curve_row, value), H5T_NATIVE_DOUBLE) < 0 ||
        (packed && H5Tpack(t) < 0)) {
        h5util_close(s);
        h5util_close(id);
        h5util_close(t);
        return H5I_INVALID_HID;
    }
    h5util_close(s);
    h5util_close(id);
    return t;
}

void sweep_rec_free(sweep_rec *s)
{
    free(s->time);
    free(s->untangle_version);
    free(s->name);
    free(s->yaml);
    free(s->hdf5_version);
    free(s->libs);
    free(s->data);
    memset(s, 0, sizeof *s);
}

int sweep_rec_from_meta(sweep_rec *s, const results_meta *m, const char *time)
{
    char hv[64];
    res_hdf5_version(hv, sizeof hv);
    memset(s, 0, sizeof *s);
    s->format = RESULTS_FORMAT_VERSION;
    s->hash = m->sweep_hash;
    s->time = res_dup_str(time);
    s->untangle_version = res_dup_str(m->untangle_version);
    s->name = res_dup_str(m->sweep_name);
    s->yaml = res_dup_str(m->sweep_yaml);
    s->hdf5_version = res_dup_str(hv);
    s->libs = res_dup_str(m->library_versions);
    s->data = m->data_name && strcmp(m->data_name, "dsprites") != 0 ? res_dup_str(m->data_name)
                                                                    : NULL;
    if (!s->time || !s->untangle_version || !s->name || !s->yaml || !s->hdf5_version || !s->libs ||
        (m->data_name && strcmp(m->data_name, "dsprites") != 0 && !s->data)) {
        sweep_rec_free(s);
        return -1;
    }
    return 0;
}

void sweep_rec_meta(const sweep_rec *s, results_meta *m)
{
    m->sweep_name = s->name;
    m->sweep_yaml = s->yaml;
    m->sweep_hash = s->hash;
    m->untangle_version = s->untangle_version;
    m->library_versions = s->libs;
    m->created = s->time;
    m->data_name = s->data ? s->data : "dsprites";
}

int sweep_rec_same(const sweep_rec *a, const sweep_rec *b)
{
    return a->hash == b->hash && strcmp(a->yaml, b->yaml) == 0 && strcmp(a->name, b->name) == 0;
}

int sweep_rec_copy(sweep_rec *dst, const sweep_rec *src)
{
    sweep_rec_free(dst);
    *dst = *src;
    dst->time = res_dup_str(src->time);
    dst->untangle_version = res_dup_str(src->untangle_version);
    dst->name = res_dup_str(src->name);
    dst->yaml = res_dup_str(src->yaml);
    dst->hdf5_version = res_dup_str(src->hdf5_version);
    dst->libs = res_dup_str(src->libs);
    dst->data = src->data ? res_dup_str(src->data) : NULL;
    if (!dst->time || !dst->untangle_version || !dst->name || !dst->yaml || !dst->hdf5_version ||
        !dst->libs || (src->data && !dst->data)) {
        sweep_rec_free(dst);
        return -1;
    }
    return 0;
}

hid_t sweep_type(int packed)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(sweep_row));
    hid_t s32 = res_str_type(TIME_LEN), s128 = res_str_type(NAME_LEN), sv = res_str_type(H5T_VARIABLE);
    int ok = t >= 0 && s32 >= 0 && s128 >= 0 && sv >= 0 &&
             H5Tinsert(t, "opened", offsetof(sweep_row, opened), s32) >= 0 &&
             H5Tinsert(t, "sweep_name", offsetof(sweep_row, sweep_name), s128) >= 0 &&
             H5Tinsert(t, "sweep_hash", offsetof(sweep_row, sweep_hash), H5T_NATIVE_UINT64) >= 0 &&
             H5Tinsert(t, "untangle_version", offsetof(sweep_row, untangle_version), s32) >= 0 &&
             H5Tinsert(t, "library_versions", offsetof(sweep_row, library_versions), sv) >= 0 &&
             H5Tinsert(t, "sweep_yaml", offsetof(sweep_row, sweep_yaml), sv) >= 0 &&
             (!packed || H5Tpack(t) >= 0);
    h5util_close(s32);
    h5util_close(s128);
    h5util_close(sv);
    if (!ok) {
        h5util_close(t);
        return H5I_INVALID_HID;
    }
    return t;
}
