/* config: sweep YAML -> validated, expanded sweep (docs/architecture.md, the
 * sweep file).
 *
 * Three stages, each reporting the first error at the offending node:
 *
 *  1. parse (tree.c): the YAML text into a small tree of our own nodes.
 *  2. check: the top level in file order (grid last, because it needs seeds),
 *     the fixed sections into s->base, then every grid block is turned into a
 *     plan (its keys grouped into axes), every value is parsed by
 *     run_config_set on a scratch config, and runs are counted without
 *     expanding anything.
 *  3. expand: the same plans again (rebuilding a plan is cheaper than keeping
 *     thousands), an odometer over the axes with the last varying fastest,
 *     seeds innermost, then model_resolve and run_config_id per run. */
#include "config_impl.h"

#include "untangle/model.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- stage 2: check -------------------------------------------------------- */

/* One key of a grid block (or of its zip) with its value. */
typedef struct param {
    const run_key *key;
    const node *key_node;
    const node *val; /* the single value, or the list whose items are the values */
    int axis;        /* 1: val's items are the values */
} param;

/* A set of params that vary together: one key, or a zip group. */
typedef struct axis {
    size_t first, n_params; /* into plan.params */
    size_t len;             /* values */
} axis;

typedef struct plan {
    const node *block;
    param params[CONFIG_MAX_KEYS];
    size_t n_params;
    axis axes[CONFIG_MAX_KEYS];
    size_t n_axes;
    const param *model;
    int has_seed; /* the block sets seed: no seeds loop */
} plan;

typedef struct chk {
    ctx x;
    config_sweep *s;
    size_t max_runs;
    const node *root, *grid_key, *grid;
    int seeds_given;
    size_t n_seeds; /* count form: seed i is i */
    long *seeds;    /* list form (n_seeds), or NULL */
} chk;

static uint64_t key_bit(const run_key *k) { return 1ull << (size_t)(k - run_keys); }

/* Levenshtein distance, for "did you mean"; large for long words. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[SHOW + 1];
    if (la > SHOW || lb > SHOW)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* " (did you mean 'x'?)" for the closest of names (NULL-terminated) and the
 * key table, or "". */
static void suggest(const char *word, const char *const *names, char *buf, size_t n)
{
    const char *best = NULL;
    size_t bd = 3; /* only close misspellings */
    for (size_t i = 0; names && names[i]; i++) {
        size_t dd = edit_distance(word, names[i]);
        if (dd < bd)
            bd = dd, best = names[i];
    }
    for (size_t i = 0; i < run_n_keys; i++) {
        size_t dd = edit_distance(word, run_keys[i].name);
        if (dd < bd)
            bd = dd, best = run_keys[i].name;
    }
    if (best && bd < strlen(word))
        snprintf(buf, n, " (did you mean '%s'?)", best);
    else if (n)
        buf[0] = '\0';
}

/* The text of a mapping key, which must be a plain name. */
static int key_text(const chk *c, const node *k, const char **out)
{
    if (k->kind != N_SCALAR)
        return FAIL(&c->x, k, "expected a key name, got %s", tree_kind_name(k->kind));
    if (!k->text[0])
        return FAIL(&c->x, k, "empty key name");
    *out = k->text;
    return 0;
}

static int unknown_key(const chk *c, const node *k, const char *where, const char *const *extra)
{
    char b[SHOW + 4], hint[SHOW + 32];
    suggest(k->text, extra, hint, sizeof hint);
    return FAIL(&c->x, k, "unknown key '%s'%s%s", tree_shown(k->text, b), where, hint);
}

/* name: the sweep's name. */
static int top_name(chk *c, const node *k, const node *v)
{
    (void)k;
    if (v->kind != N_SCALAR)
        return FAIL(&c->x, v, "name: expected a single value, got %s", tree_kind_name(v->kind));
    if (tree_is_missing(v))
        return FAIL(&c->x, v, "name: missing value");
    if (strlen(v->text) >= sizeof c->s->name)
        return FAIL(&c->x, v, "name: longer than %zu characters", sizeof c->s->name - 1);
    strcpy(c->s->name, v->text);
    return 0;
}

/* data / train / eval: fixed keys of that section, into s->base. */
static int top_section(chk *c, const node *k, const node *v)
{
    const char *sec = k->text;
    if (v->kind != N_MAP)
        return FAIL(&c->x, v, "%s: expected a mapping of %s keys, got %s", sec, sec,
                    tree_kind_name(v->kind));
    uint64_t seen = 0;
    for (size_t i = 0; i + 1 < v->n; i += 2) {
        const node *kn = v->items[i], *vn = v->items[i + 1];
        const char *name;
        int rc = key_text(c, kn, &name);
        if (rc < 0)
            return rc;
        const run_key *rk = run_key_find(name);
        if (!rk) {
            char where[32];
            snprintf(where, sizeof where, " in %s", sec);
            return unknown_key(c, kn, where, NULL);
        }
        if (!strcmp(rk->section, "model"))
            return FAIL(&c->x, kn, "%s: a model parameter, not a %s key: set it in a grid block",
                        name, sec);
        if (!strcmp(rk->section, "seed"))
            return FAIL(&c->x, kn, "seed: not a %s key: use the top-level 'seeds' or a grid block",
                        sec);
        if (strcmp(rk->section, sec) != 0)
            return FAIL(&c->x, kn, "%s: a %s key, not a %s key: move it to %s", name, rk->section,
                        sec, rk->section);
        if (seen & key_bit(rk))
            return FAIL(&c->x, kn, "%s: duplicate key in %s", name, sec);
        seen |= key_bit(rk);
        if (vn->kind != N_SCALAR)
            return FAIL(&c->x, vn, "%s: expected a single value in %s, got %s%s", name, sec,
                        tree_kind_name(vn->kind),
                        vn->kind == N_SEQ ? " (an axis belongs in a grid block)" : "");
        if (tree_is_missing(vn))
            return FAIL(&c->x, vn, "%s: missing value", name);
        if (run_config_set(&c->s->base, name, vn->text, c->x.e) < 0)
            return tree_relocate(&c->x, vn);
    }
    return 0;
}

typedef struct seed_at {
    long seed;
    size_t index; /* in the seeds list */
} seed_at;

static int cmp_seed_at(const void *a, const void *b)
{
    const seed_at *x = a, *y = b;
    if (x->seed != y->seed)
        return (x->seed > y->seed) - (x->seed < y->seed);
    return (x->index > y->index) - (x->index < y->index);
}

/* A non-negative integer seed (or count) in v. */
static int seed_value(const chk *c, const node *v, long *out)
{
    run_config scratch;
    run_config_defaults(&scratch);
    char b[SHOW + 4];
    if (v->kind != N_SCALAR)
        return FAIL(&c->x, v, "seeds: expected non-negative integers, got %s", tree_kind_name(v->kind));
    if (tree_is_missing(v))
        return FAIL(&c->x, v, "seeds: missing value");
    if (run_config_set(&scratch, "seed", v->text, c->x.e) < 0) /* the key table's range */
        return FAIL(&c->x, v, "seeds: '%s' is not a non-negative integer (at most 2^53 - 1)",
                    tree_shown(v->text, b));
    *out = scratch.seed;
    return 0;
}

/* seeds: a count n (0..n-1) or a list of distinct non-negative integers. */
static int top_seeds(chk *c, const node *k, const node *v)
{
    (void)k;
    c->seeds_given = 1;
    if (v->kind == N_SCALAR) {
        long n;
        int rc = seed_value(c, v, &n);
        if (rc < 0)
            return rc;
        if (n < 1)
            return FAIL(&c->x, v, "seeds: a count must be at least 1");
        c->n_seeds = (size_t)n;
        return 0;
    }
    if (v->kind != N_SEQ)
        return FAIL(&c->x, v, "seeds: expected a count or a list of seeds, got %s",
                    tree_kind_name(v->kind));
    if (v->n == 0)
        return FAIL(&c->x, v, "seeds: empty list");
    long *seeds = malloc(v->n * sizeof *seeds);
    seed_at *sorted = malloc(v->n * sizeof *sorted);
    int rc = 0;
    if (!seeds || !sorted) {
        rc = err_set(c->x.e, ERR_NOMEM, "%s: out of memory for seeds", c->x.file);
        goto cleanup;
    }
    for (size_t i = 0; i < v->n; i++) {
        if ((rc = seed_value(c, v->items[i], &seeds[i])) < 0)
            goto cleanup;
        sorted[i] = (seed_at){seeds[i], i};
    }
    /* a repeated seed would repeat runs. Sorted by (seed, index), every entry
     * equal to its predecessor is a repeat: report the first in file order. */
    qsort(sorted, v->n, sizeof *sorted, cmp_seed_at);
    size_t repeat = SIZE_MAX;
    for (size_t i = 1; i < v->n; i++)
        if (sorted[i].seed == sorted[i - 1].seed && sorted[i].index < repeat)
            repeat = sorted[i].index;
    if (repeat != SIZE_MAX) {
        rc = FAIL(&c->x, v->items[repeat], "seeds: %ld appears twice", seeds[repeat]);
        goto cleanup;
    }
    c->seeds = seeds;
    c->n_seeds = v->n;
    seeds = NULL;
cleanup:
    free(seeds);
    free(sorted);
    return rc;
}

static int top_grid(chk *c, const node *k, const node *v)
{
    c->grid_key = k;
    c->grid = v;
    return 0;
}

/* The top-level keys, handled in file order except grid (last: it needs
 * seeds and the fixed sections). */
static const struct top_key {
    const char *name;
    int (*fn)(chk *c, const node *k, const node *v);
} top_keys[] = {
    {"name", top_name},  {"data", top_section}, {"train", top_section},
    {"eval", top_section}, {"grid", top_grid},  {"seeds", top_seeds},
};
enum { N_TOP = sizeof top_keys / sizeof top_keys[0] };
static const char *const top_names[] = {"name", "data", "train", "eval", "grid", "seeds", NULL};
_Static_assert(sizeof top_names / sizeof top_names[0] == N_TOP + 1, "top_names matches top_keys");

/* Check that an axis value list v of key rk has the right shape. */
static int check_list_shape(const chk *c, const run_key *rk, const node *v)
{
    if (v->n == 0)
        return FAIL(&c->x, v, "%s: empty list (an axis needs at least one value)", rk->name);
    for (size_t i = 0; i < v->n; i++) {
        const node *it = v->items[i];
        if (rk->type == RUN_KEY_LIST) {
            if (it->kind == N_SCALAR)
                return FAIL(&c->x, v,
                            "%s: a list value is written as a list of lists: [[3]] is one value, "
                            "[[3], [4]] an axis of two",
                            rk->name);
            if (it->kind == N_MAP)
                return FAIL(&c->x, it, "%s: expected a list of integers, got a mapping", rk->name);
            for (size_t j = 0; j < it->n; j++)
                if (it->items[j]->kind != N_SCALAR)
                    return FAIL(&c->x, it->items[j], "%s: expected an integer, got %s", rk->name,
                                tree_kind_name(it->items[j]->kind));
        } else if (it->kind != N_SCALAR) {
            return FAIL(&c->x, it, "%s: an axis lists single values, got %s", rk->name,
                        tree_kind_name(it->kind));
        }
    }
    return 0;
}

/* Names a block takes besides the key table's, for "did you mean". */
static const char *const block_names[] = {"zip", NULL};

/* A key of a block or of its zip: known, not repeated, not seed beside seeds. */
static int block_key(const chk *c, const node *kn, uint64_t *seen, const run_key **out)
{
    const char *name;
    int rc = key_text(c, kn, &name);
    if (rc < 0)
        return rc;
    const run_key *rk = run_key_find(name);
    if (!rk)
        return unknown_key(c, kn, " in a grid block", block_names);
    if (*seen & key_bit(rk))
        return FAIL(&c->x, kn, "%s: duplicate key in this grid block", name);
    if (!strcmp(rk->section, "seed") && c->seeds_given)
        return FAIL(&c->x, kn,
                    "seed: set in a grid block while the top-level 'seeds' is given (use one)");
    *seen |= key_bit(rk);
    *out = rk;
    return 0;
}

/* Value i of p as text for run_config_set (a list value becomes "[a, b]");
 * *where is its node. */
static int value_text(const chk *c, const param *p, size_t i, char *buf, size_t n,
                      const node **where)
{
    const node *v = p->axis ? p->val->items[i] : p->val;
    *where = v;
    if (v->kind == N_SCALAR) {
        if (tree_is_missing(v))
            return FAIL(&c->x, v, "%s: missing value", p->key->name);
        if (strlen(v->text) >= n)
            return FAIL(&c->x, v, "%s: value too long", p->key->name);
        strcpy(buf, v->text);
        return 0;
    }
    /* a list value, its items checked to be scalars by check_list_shape */
    if (v->n == 0)
        return FAIL(&c->x, v, "%s: empty list (a list value needs at least one entry)",
                    p->key->name);
    size_t used = 0;
    for (size_t j = 0; j < v->n; j++) {
        int k = snprintf(buf + used, n - used, "%s%s", j ? ", " : "[", v->items[j]->text);
        if (k < 0 || (size_t)k >= n - used - 1)
            return FAIL(&c->x, v, "%s: list value too long", p->key->name);
        used += (size_t)k;
    }
    buf[used++] = ']';
    buf[used] = '\0';
    return 0;
}

/* Add the param (key kn, value v) to pl; axis says whether v lists values. */
static void add_param(plan *pl, const run_key *rk, const node *kn, const node *v, int axis)
{
    pl->params[pl->n_params++] = (param){rk, kn, v, axis};
}

/* zip: a mapping of equal-length lists, one axis at its position. */
static int plan_zip(const chk *c, plan *pl, const node *zk, const node *zv, uint64_t *seen)
{
    if (zv->kind != N_MAP)
        return FAIL(&c->x, zv, "zip: expected a mapping of equal-length lists, got %s",
                    tree_kind_name(zv->kind));
    if (zv->n == 0)
        return FAIL(&c->x, zk, "zip: empty (it needs at least one list)");
    axis *ax = &pl->axes[pl->n_axes];
    ax->first = pl->n_params;
    ax->n_params = 0;
    const param *first = NULL;
    for (size_t i = 0; i + 1 < zv->n; i += 2) {
        const node *kn = zv->items[i], *vn = zv->items[i + 1];
        const run_key *rk;
        int rc = block_key(c, kn, seen, &rk);
        if (rc < 0)
            return rc;
        if (vn->kind != N_SEQ)
            return FAIL(&c->x, vn, "zip: %s must be a list of values (zip lists vary together)",
                        rk->name);
        if ((rc = check_list_shape(c, rk, vn)) < 0)
            return rc;
        if (first && vn->n != first->val->n)
            return FAIL(&c->x, vn,
                        "zip: %s has %zu values but %s has %zu (zip lists vary together)",
                        rk->name, vn->n, first->key->name, first->val->n);
        add_param(pl, rk, kn, vn, 1);
        if (!first)
            first = &pl->params[pl->n_params - 1];
        if (!strcmp(rk->section, "seed"))
            pl->has_seed = 1;
        ax->n_params++;
    }
    ax->len = first->val->n;
    pl->n_axes++;
    return 0;
}

/* The axes of block b, checked for shape (and, with validate, every value). */
static int build_plan(const chk *c, const node *b, plan *pl, int validate)
{
    memset(pl, 0, sizeof *pl);
    pl->block = b;
    if (b->kind != N_MAP)
        return FAIL(&c->x, b, "grid: a block is a mapping of keys, got %s", tree_kind_name(b->kind));
    if (b->n == 0)
        return FAIL(&c->x, b, "grid: empty block (every block needs at least 'model')");
    uint64_t seen = 0;
    int zip_seen = 0, rc;
    for (size_t i = 0; i + 1 < b->n; i += 2) {
        const node *kn = b->items[i], *vn = b->items[i + 1];
        if (kn->kind == N_SCALAR && !strcmp(kn->text, "zip")) {
            if (zip_seen)
                return FAIL(&c->x, kn, "zip: duplicate key in this grid block");
            zip_seen = 1;
            if ((rc = plan_zip(c, pl, kn, vn, &seen)) < 0)
                return rc;
            continue;
        }
        const run_key *rk;
        if ((rc = block_key(c, kn, &seen, &rk)) < 0)
            return rc;
        if (vn->kind == N_MAP)
            return FAIL(&c->x, vn, "%s: expected a value or a list of values, got a mapping",
                        rk->name);
        if (vn->kind == N_SEQ && (rc = check_list_shape(c, rk, vn)) < 0)
            return rc;
        pl->axes[pl->n_axes++] = (axis){pl->n_params, 1, vn->kind == N_SEQ ? vn->n : 1};
        add_param(pl, rk, kn, vn, vn->kind == N_SEQ);
        if (!strcmp(rk->section, "seed"))
            pl->has_seed = 1;
    }
    for (size_t i = 0; i < pl->n_params; i++)
        if (!strcmp(pl->params[i].key->name, "model"))
            pl->model = &pl->params[i];
    if (!pl->model)
        return FAIL(&c->x, b, "grid: block without 'model' (every block names its model)");
    if (!validate)
        return 0;

    /* every value parses and is in range */
    run_config scratch;
    char text[2048];
    const node *where;
    for (size_t i = 0; i < pl->n_params; i++) {
        const param *p = &pl->params[i];
        size_t nv = p->axis ? p->val->n : 1;
        for (size_t j = 0; j < nv; j++) {
            run_config_defaults(&scratch);
            if ((rc = value_text(c, p, j, text, sizeof text, &where)) < 0)
                return rc;
            if (run_config_set(&scratch, p->key->name, text, c->x.e) < 0)
                return tree_relocate(&c->x, where);
        }
    }
    /* every model of the block takes every model key the block sets */
    const param *mp = pl->model;
    for (size_t j = 0; j < (mp->axis ? mp->val->n : 1); j++) {
        value_text(c, mp, j, text, sizeof text, &where); /* checked above */
        const char *const *takes = model_params(text);
        for (size_t i = 0; i < pl->n_params; i++) {
            const run_key *rk = pl->params[i].key;
            if (strcmp(rk->section, "model") != 0 || !strcmp(rk->name, "model"))
                continue;
            int ok = 0;
            for (const char *const *t = takes; t && *t && !ok; t++)
                ok = !strcmp(*t, rk->name);
            if (!ok) {
                char list[512];
                size_t used = 0;
                list[0] = '\0';
                for (const char *const *t = takes; t && *t && used < sizeof list; t++)
                    used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
                                             t == takes ? "" : ", ", *t);
                return FAIL(&c->x, pl->params[i].key_node,
                            "%s: model %s does not take this parameter (it takes %s)", rk->name,
                            text, list[0] ? list : "none");
            }
        }
    }
    return 0;
}

static size_t mul_sat(size_t a, size_t b) { return a && b > SIZE_MAX / a ? SIZE_MAX : a * b; }
static size_t add_sat(size_t a, size_t b) { return b > SIZE_MAX - a ? SIZE_MAX : a + b; }

static size_t plan_runs(const chk *c, const plan *pl)
{
    size_t n = pl->has_seed ? 1 : c->n_seeds;
    for (size_t i = 0; i < pl->n_axes; i++)
        n = mul_sat(n, pl->axes[i].len);
    return n;
}

/* ---- stage 3: expand ------------------------------------------------------- */

/* Where a resolve error about key `name` (the message's prefix) belongs. */
static const node *resolve_node(const plan *pl, const char *msg)
{
    size_t n = strcspn(msg, ":");
    for (size_t i = 0; i < pl->n_params; i++)
        if (strlen(pl->params[i].key->name) == n && !strncmp(pl->params[i].key->name, msg, n))
            return pl->params[i].key_node;
    return pl->model->key_node;
}

/* Append the runs of plan pl to s->runs (from *k on); block_of[i] notes the
 * block of run i for later messages. */
static int expand_plan(const chk *c, const plan *pl, size_t *k, const node **block_of)
{
    config_sweep *s = c->s;
    size_t idx[CONFIG_MAX_KEYS] = {0};
    size_t n_seeds = pl->has_seed ? 1 : c->n_seeds;
    char text[2048];
    const node *where;
    int rc;
    for (;;) {
        for (size_t si = 0; si < n_seeds; si++) {
            run_config r = s->base;
            for (size_t a = 0; a < pl->n_axes; a++)
                for (size_t i = 0; i < pl->axes[a].n_params; i++) {
                    const param *p = &pl->params[pl->axes[a].first + i];
                    if ((rc = value_text(c, p, idx[a], text, sizeof text, &where)) < 0)
                        return rc;
                    if (run_config_set(&r, p->key->name, text, c->x.e) < 0)
                        return tree_relocate(&c->x, where);
                }
            if (!pl->has_seed) {
                snprintf(text, sizeof text, "%ld", c->seeds ? c->seeds[si] : (long)si);
                if (run_config_set(&r, "seed", text, c->x.e) < 0)
                    return tree_relocate(&c->x, c->grid_key);
            }
            if (model_resolve(&r, c->x.e) < 0) {
                char msg[sizeof c->x.e->msg];
                memcpy(msg, c->x.e->msg, sizeof msg);
                return FAIL(&c->x, resolve_node(pl, msg), "%s (run %zu)", msg, *k);
            }
            s->runs[*k] = r;
            run_config_id(&r, s->run_ids[*k]);
            block_of[*k] = pl->block;
            ++*k;
        }
        /* odometer: the last axis varies fastest */
        size_t a = pl->n_axes;
        while (a > 0 && ++idx[a - 1] == pl->axes[a - 1].len)
            idx[--a] = 0;
        if (a == 0)
            return 0;
    }
}

typedef struct id_index {
    const char *id;
    size_t index;
} id_index;

static int cmp_id(const void *a, const void *b)
{
    const id_index *x = a, *y = b;
    int r = strcmp(x->id, y->id);
    return r ? r : (x->index > y->index) - (x->index < y->index);
}

/* Two runs with one run id would be one run done twice and ambiguous rows:
 * report the first repeat in expansion order. */
static int check_unique(const chk *c, const node *const *block_of)
{
    const config_sweep *s = c->s;
    id_index *v = malloc(s->n_runs * sizeof *v);
    if (!v)
        return err_set(c->x.e, ERR_NOMEM, "%s: out of memory", c->x.file);
    for (size_t i = 0; i < s->n_runs; i++)
        v[i] = (id_index){s->run_ids[i], i};
    qsort(v, s->n_runs, sizeof *v, cmp_id); /* by id, then index: a group starts at its first run */
    size_t later = SIZE_MAX, earlier = 0, group = 0;
    for (size_t i = 1; i < s->n_runs; i++) {
        if (strcmp(v[i].id, v[group].id) != 0)
            group = i;
        else if (v[i].index < later)
            later = v[i].index, earlier = v[group].index;
    }
    free(v);
    if (later == SIZE_MAX)
        return 0;
    return FAIL(&c->x, block_of[later],
                "grid: run %zu repeats run %zu (run id %s: every key that affects training is "
                "equal)",
                later, earlier, s->run_ids[later]);
}

/* Whether key k applies to c's model (model_resolve refuses the others). */
static int key_applies(const run_config *c, const run_key *k)
{
    if (strcmp(k->section, "model") != 0 || strcmp(k->name, "model") == 0)
        return 1;
    for (const char *const *p = model_params(c->model); p && *p; p++)
        if (strcmp(*p, k->name) == 0)
            return 1;
    return 0;
}

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

/* Whether run c has a value for k: it applies, and a number is not left
 * unset (NaN / -1: betavae's gamma outside the capacity form). */
static int has_value(const run_config *c, const run_key *k)
{
    if (!key_applies(c, k))
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
static void find_varying(config_sweep *s)
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

static int check_grid(chk *c)
{
    const node *g = c->grid;
    if (!g)
        return FAIL(&c->x, c->root, "missing 'grid' (the list of blocks to run)");
    if (tree_is_missing(g) || (g->kind == N_SEQ && g->n == 0))
        return FAIL(&c->x, g, "grid: empty (it needs at least one block with a model)");
    if (g->kind == N_SCALAR)
        return FAIL(&c->x, g, "grid: expected a list of blocks or one block, got a single value");
    const node *const *blocks = g->kind == N_MAP ? &g : (const node *const *)g->items;
    size_t n_blocks = g->kind == N_MAP ? 1 : g->n;
    const node **block_of = NULL;
    plan *pl = malloc(sizeof *pl); /* a few KiB: keep it off the stack */
    int rc = 0;
    if (!pl) {
        rc = err_set(c->x.e, ERR_NOMEM, "%s: out of memory", c->x.file);
        goto cleanup;
    }
    size_t total = 0;
    for (size_t b = 0; b < n_blocks; b++) {
        if ((rc = build_plan(c, blocks[b], pl, 1)) < 0)
            goto cleanup;
        total = add_sat(total, plan_runs(c, pl));
    }
    if (total > c->max_runs) {
        if (total == SIZE_MAX) /* saturated */
            rc = FAIL(&c->x, c->grid_key,
                      "grid: expands to more than 2^64 runs, over the limit of %zu "
                      "(--max-runs raises the limit)",
                      c->max_runs);
        else
            rc = FAIL(&c->x, c->grid_key,
                      "grid: expands to %zu runs, over the limit of %zu "
                      "(--max-runs raises the limit)",
                      total, c->max_runs);
        goto cleanup;
    }
    config_sweep *s = c->s;
    if (total > SIZE_MAX / sizeof *s->runs) {
        rc = err_set(c->x.e, ERR_NOMEM, "%s: %zu runs do not fit in memory", c->x.file, total);
        goto cleanup;
    }
    s->runs = malloc(total * sizeof *s->runs);
    s->run_ids = malloc(total * sizeof *s->run_ids);
    block_of = malloc(total * sizeof *block_of);
    if (!s->runs || !s->run_ids || !block_of) {
        rc = err_set(c->x.e, ERR_NOMEM, "%s: out of memory for %zu runs", c->x.file, total);
        goto cleanup;
    }
    size_t k = 0;
    for (size_t b = 0; b < n_blocks; b++) {
        if ((rc = build_plan(c, blocks[b], pl, 0)) < 0)
            goto cleanup;
        if ((rc = expand_plan(c, pl, &k, block_of)) < 0)
            goto cleanup;
    }
    if (k != total) {
        rc = err_set(c->x.e, ERR_INTERNAL, "%s: expanded %zu runs, counted %zu", c->x.file, k,
                     total);
        goto cleanup;
    }
    s->n_runs = total;
    if ((rc = check_unique(c, block_of)) < 0)
        goto cleanup;
    find_varying(s);
cleanup:
    free(pl);
    free(block_of);
    return rc;
}

static int check_top(chk *c)
{
    const node *r = c->root;
    if (!r || tree_is_missing(r))
        return tree_fail_at(&c->x, 1, 1,
                       "empty file (expected a mapping with name, data, train, eval, grid, seeds)");
    if (r->kind != N_MAP)
        return FAIL(&c->x, r, "expected a mapping with name, data, train, eval, grid, seeds at the "
                              "top level, got %s",
                    tree_kind_name(r->kind));
    int rc;
    unsigned seen = 0;
    /* keys first, so that a misspelt key is reported before what it hides */
    for (size_t i = 0; i + 1 < r->n; i += 2) {
        const node *kn = r->items[i];
        const char *name;
        if ((rc = key_text(c, kn, &name)) < 0)
            return rc;
        size_t t = 0;
        while (t < N_TOP && strcmp(top_keys[t].name, name) != 0)
            t++;
        if (t == N_TOP) {
            const run_key *rk = run_key_find(name);
            char b[SHOW + 4];
            if (rk && strcmp(rk->section, "model") && strcmp(rk->section, "seed"))
                return FAIL(&c->x, kn, "%s: a %s key: put it under '%s:' (or in a grid block)",
                            tree_shown(name, b), rk->section, rk->section);
            if (rk)
                return FAIL(&c->x, kn, "%s: not a top-level key: set it in a grid block%s",
                            tree_shown(name, b), !strcmp(name, "seed") ? " or use 'seeds'" : "");
            return unknown_key(c, kn, " at the top level", top_names);
        }
        if (seen >> t & 1)
            return FAIL(&c->x, kn, "%s: duplicate key", name);
        seen |= 1u << t;
    }
    for (size_t i = 0; i + 1 < r->n; i += 2) {
        const node *kn = r->items[i];
        for (size_t t = 0; t < N_TOP; t++)
            if (!strcmp(top_keys[t].name, kn->text) &&
                (rc = top_keys[t].fn(c, kn, r->items[i + 1])) < 0)
                return rc;
    }
    if (!c->seeds_given)
        c->n_seeds = 1; /* seeds: [0] */
    return check_grid(c);
}

/* ---- public ---------------------------------------------------------------- */

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* "sweeps/quick.yaml" -> "quick". */
static void default_name(const char *path, char *name, size_t n)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strcspn(base, ".");
    if (len == 0) {
        base = "sweep";
        len = 5;
    }
    if (len >= n)
        len = n - 1;
    memcpy(name, base, len);
    name[len] = '\0';
}

void config_free(config_sweep *s)
{
    if (!s)
        return;
    free(s->path);
    free(s->text);
    free(s->runs);
    free(s->run_ids);
    free(s);
}

int config_load_text(config_sweep **out, const char *text, size_t len,
                     const char *name_for_messages, size_t max_runs, err *e)
{
    const char *file = name_for_messages ? name_for_messages : "<text>";
    err scratch_err; /* the checks read back messages: never work without one */
    if (!e)
        e = &scratch_err;
    err_clear(e);
    if (len > CONFIG_MAX_BYTES)
        return err_set(e, ERR_INPUT,
                       "%s: %zu bytes, more than the limit of %d (1 MiB) for a sweep file", file,
                       len, CONFIG_MAX_BYTES);
    doc d = {0};
    chk c = {0};
    int rc = 0;
    config_sweep *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(file)) || !(s->text = malloc(len + 1))) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", file);
        goto cleanup;
    }
    if (len)
        memcpy(s->text, text, len);
    s->text[len] = '\0';
    s->text_len = len;
    s->hash = fnv1a(s->text, len);
    default_name(file, s->name, sizeof s->name);
    run_config_defaults(&s->base);
    c.x = (ctx){s->path, s->text, len, e};
    c.s = s;
    c.max_runs = max_runs ? max_runs : CONFIG_DEFAULT_MAX_RUNS;
    if ((rc = tree_parse(&c.x, &d)) < 0)
        goto cleanup;
    c.root = d.root;
    if ((rc = check_top(&c)) < 0)
        goto cleanup;
    *out = s;
    s = NULL;
cleanup:
    free(c.seeds);
    tree_free(&d);
    config_free(s);
    return rc;
}

int config_load(config_sweep **out, const char *path, size_t max_runs, err *e)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = err_set(e, ERR_INPUT, "cannot read sweep file '%s': %s", path, strerror(errno));
        goto cleanup;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = err_set(e, ERR_INPUT, "cannot read sweep file '%s': %s", path, strerror(EISDIR));
        goto cleanup;
    }
    /* read at most one byte past the limit: enough to refuse a huge file or
     * an endless stream without holding it */
    if (!(buf = malloc((size_t)CONFIG_MAX_BYTES + 1))) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    while (len <= (size_t)CONFIG_MAX_BYTES) {
        ssize_t k = read(fd, buf + len, (size_t)CONFIG_MAX_BYTES + 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = err_set(e, ERR_INPUT, "cannot read sweep file '%s': %s", path, strerror(errno));
            goto cleanup;
        }
        if (k == 0)
            break;
        len += (size_t)k;
    }
    rc = config_load_text(out, buf, len, path, max_runs, e);
cleanup:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}
