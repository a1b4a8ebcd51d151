/* config/list.c: the list table (its columns, found once at load, and the
 * table itself) and the fixed-section comparison for resume. */
#include "config_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int same_value(const run_config *a, const run_config *b, const run_key *k)
{
    const char *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;
    if (k->type == RUN_KEY_LIST) {
        int disc = k->offset == offsetof(run_config, discrete);
        int na = disc ? a->n_discrete : a->n_chunks, nb = disc ? b->n_discrete : b->n_chunks;
        return na == nb && memcmp(fa, fb, (size_t)na * sizeof(int)) == 0;
    }
    if (k->type == RUN_KEY_STR)
        return strcmp(fa, fb) == 0;
    return memcmp(fa, fb, k->size) == 0; /* numbers of one text parse to the same bytes */
}

/* Whether run c has a value for k: it applies (run_key_applies: every run is
 * resolved, so model_resolve has filled c->takes), and a number is not left
 * unset (NaN / -1: betavae's gamma outside the capacity form). */
static int has_value(const run_config *c, const run_key *k)
{
    if (!run_key_applies(c, k))
        return 0;
    const char *f = (const char *)c + k->offset;
    if (k->type == RUN_KEY_REAL)
        return !isnan(*(const double *)f);
    if (k->type == RUN_KEY_INT)
        return (k->size == sizeof(int) ? *(const int *)f : *(const long *)f) != -1;
    return 1;
}

/* The list table's columns: keys with two different values among the runs
 * that have one. A key constant wherever it is set (jointvae's default
 * lambda beside betavae blocks) is not a column. Model first, then the key
 * table's order. */
void list_find_varying(config_sweep *s)
{
    s->n_vary = 0;
    /* model first: it is what a reader of the table looks for */
    const run_key *model = run_key_find("model");
    for (size_t i = 0; i <= run_n_keys; i++) {
        const run_key *k = i == 0 ? model : &run_keys[i - 1];
        if (i > 0 && k == model)
            continue;
        const run_config *first = NULL;
        int vary = 0;
        for (size_t r = 0; r < s->n_runs && !vary; r++) {
            if (!has_value(&s->runs[r], k))
                continue;
            if (!first)
                first = &s->runs[r];
            else
                vary = !same_value(first, &s->runs[r], k);
        }
        if (vary)
            s->vary[s->n_vary++] = k;
    }
}


/* A value as the table shows it: shortest text that reads back as the same
 * double (0.1, not run_config_format's 0.10000000000000001), lists without
 * spaces so that columns stay one word, "-" where nothing applies. */
static void show(const run_config *c, const run_key *k, char *buf, size_t n)
{
    if (!run_key_applies(c, k)) {
        snprintf(buf, n, "-");
        return;
    }
    const void *f = (const char *)c + k->offset;
    if (k->type == RUN_KEY_REAL) {
        double v = *(const double *)f;
        if (isnan(v)) {
            snprintf(buf, n, "-");
            return;
        }
        /* enough digits for the integer part, so 150 is not 1.5e+02 */
        int prec = fabs(v) >= 1 && fabs(v) < 1e15 ? (int)floor(log10(fabs(v))) + 1 : 1;
        for (; prec <= 17; prec++) {
            snprintf(buf, n, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                return;
        }
        return;
    }
    if (k->type == RUN_KEY_LIST) {
        const int *v = f;
        int cnt = k->offset == offsetof(run_config, discrete) ? c->n_discrete : c->n_chunks;
        size_t used = (size_t)snprintf(buf, n, "[");
        for (int i = 0; i < cnt && used < n; i++)
            used += (size_t)snprintf(buf + used, n - used, "%s%d", i ? "," : "", v[i]);
        if (used < n)
            snprintf(buf + used, n - used, "]");
        return;
    }
    run_config_format(c, k, buf, n);
    if (!buf[0] || (k->type == RUN_KEY_INT && !strcmp(buf, "-1")))
        snprintf(buf, n, "-"); /* path "" = built-in data; -1 = unset (no key allows it) */
}

int config_write_list(const config_sweep *s, FILE *out)
{
    return config_write_list_some(s, NULL, out);
}

int config_write_list_some(const config_sweep *s, const unsigned char *only, FILE *out)
{
    enum { CELL = 1100 }; /* a path is up to 1023 bytes */
    size_t w[CONFIG_MAX_KEYS + 2];
    char cell[CELL];
    int fail = 0;
    w[0] = strlen("index");
    w[1] = strlen("run_id");
    for (size_t j = 0; j < s->n_vary; j++)
        w[j + 2] = strlen(s->vary[j]->name);
    for (size_t i = 0; i < s->n_runs; i++) {
        size_t iw = (size_t)snprintf(cell, sizeof cell, "%zu", i);
        if (iw > w[0])
            w[0] = iw;
        if (strlen(s->run_ids[i]) > w[1])
            w[1] = strlen(s->run_ids[i]);
        for (size_t j = 0; j < s->n_vary; j++) {
            show(&s->runs[i], s->vary[j], cell, sizeof cell);
            if (strlen(cell) > w[j + 2])
                w[j + 2] = strlen(cell);
        }
    }
    /* header and rows: columns two spaces apart, the last one not padded */
    size_t ncol = s->n_vary + 2;
    fail |= fprintf(out, "%-*s  %-*s", (int)w[0], "index", ncol > 2 ? (int)w[1] : 0, "run_id") < 0;
    for (size_t j = 0; j < s->n_vary; j++)
        fail |= fprintf(out, "  %-*s", j + 3 < ncol ? (int)w[j + 2] : 0, s->vary[j]->name) < 0;
    fail |= fputc('\n', out) == EOF;
    for (size_t i = 0; i < s->n_runs && !fail; i++) {
        if (only && !only[i])
            continue;
        fail |= fprintf(out, "%-*zu  %-*s", (int)w[0], i, ncol > 2 ? (int)w[1] : 0,
                        s->run_ids[i]) < 0;
        for (size_t j = 0; j < s->n_vary; j++) {
            show(&s->runs[i], s->vary[j], cell, sizeof cell);
            fail |= fprintf(out, "  %-*s", j + 3 < ncol ? (int)w[j + 2] : 0, cell) < 0;
        }
        fail |= fputc('\n', out) == EOF;
    }
    /* total and per-model counts, models in order of first appearance (the
     * key table allows a handful of model names) */
    enum { MAX_MODELS = 32 };
    const char *models[MAX_MODELS];
    size_t counts[MAX_MODELS], n_models = 0, n_shown = 0;
    for (size_t i = 0; i < s->n_runs; i++) {
        if (only && !only[i])
            continue;
        n_shown++;
        size_t m = 0;
        while (m < n_models && strcmp(models[m], s->runs[i].model) != 0)
            m++;
        if (m == n_models && n_models < MAX_MODELS) {
            models[n_models] = s->runs[i].model;
            counts[n_models++] = 0;
        }
        if (m < n_models)
            counts[m]++;
    }
    if (only)
        fail |= fprintf(out, "%zu of %zu runs to run (", n_shown, s->n_runs) < 0;
    else
        fail |= fprintf(out, "%zu run%s (", s->n_runs, s->n_runs == 1 ? "" : "s") < 0;
    for (size_t m = 0; m < n_models; m++)
        fail |= fprintf(out, "%s%s %zu", m ? ", " : "", models[m], counts[m]) < 0;
    fail |= fprintf(out, ")\n") < 0;
    fail |= fflush(out) == EOF || ferror(out);
    return fail ? ERR_IO : 0;
}

int config_fixed_diff(const config_sweep *a, const config_sweep *b, char *key, size_t n)
{
    char va[1100], vb[1100];
    for (size_t i = 0; i < run_n_keys; i++) {
        const run_key *k = &run_keys[i];
        if (strcmp(k->section, "data") && strcmp(k->section, "train") && strcmp(k->section, "eval"))
            continue;
        run_config_format(&a->base, k, va, sizeof va);
        run_config_format(&b->base, k, vb, sizeof vb);
        if (strcmp(va, vb) != 0) {
            if (n)
                snprintf(key, n, "%s", k->name);
            return 1;
        }
    }
    return 0;
}
