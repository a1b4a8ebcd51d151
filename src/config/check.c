/* config/check.c: the checks of a sweep file's keys and values. The top
 * level in file order (name, the fixed sections into s->base, seeds), every
 * key known (else "unknown key", with "did you mean" for a close
 * misspelling) and in its section, not repeated, and every value of the
 * right type and in range; for a grid block, the same for its keys and
 * values and that its model takes each model key it sets. */
#include "config_impl.h"

#include "untangle/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t key_bit(const run_key *k) { return 1ull << (size_t)(k - run_keys); }

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
    run_key_suggest(k->text, extra, hint, sizeof hint);
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
        return FAIL(&c->x, v, "seeds: expected non-negative integers, got %s",
                    tree_kind_name(v->kind));
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

int check_list_shape(const chk *c, const run_key *rk, const node *v)
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

int check_block_key(const chk *c, const node *kn, uint64_t *seen, const run_key **out)
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
    /* one data set per sweep: the results file's per-factor columns are its factors' */
    if (!strcmp(rk->name, "name"))
        return FAIL(&c->x, kn,
                    "name: the data set is fixed for a sweep (its results file has one data "
                    "set's factor columns): set it under 'data:', one sweep file per data set");
    if (!strcmp(rk->section, "seed") && c->seeds_given)
        return FAIL(&c->x, kn,
                    "seed: set in a grid block while the top-level 'seeds' is given (use one)");
    *seen |= key_bit(rk);
    *out = rk;
    return 0;
}

int check_value_text(const chk *c, const param *p, size_t i, char *buf, size_t n,
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

/* Every value of every param parses and is in range (run_config_set on a
 * scratch configuration, which knows each key's type and range). */
static int check_values(const chk *c, const plan *pl)
{
    run_config scratch;
    char text[2048];
    const node *where;
    int rc;
    for (size_t i = 0; i < pl->n_params; i++) {
        const param *p = &pl->params[i];
        size_t nv = p->axis ? p->val->n : 1;
        for (size_t j = 0; j < nv; j++) {
            run_config_defaults(&scratch);
            if ((rc = check_value_text(c, p, j, text, sizeof text, &where)) < 0)
                return rc;
            if (run_config_set(&scratch, p->key->name, text, c->x.e) < 0)
                return tree_relocate(&c->x, where);
        }
    }
    return 0;
}

/* Every model the block names takes every model key the block sets. The runs
 * are not resolved yet, so this asks the methods' parameter schema
 * (model_params) rather than c->takes. */
static int check_takes(const chk *c, const plan *pl)
{
    char text[2048];
    const node *where;
    const param *mp = pl->model;
    for (size_t j = 0; j < (mp->axis ? mp->val->n : 1); j++) {
        check_value_text(c, mp, j, text, sizeof text, &where); /* checked by check_values */
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

int check_block_values(const chk *c, const plan *pl)
{
    int rc = check_values(c, pl);
    return rc < 0 ? rc : check_takes(c, pl);
}

int check_top(chk *c)
{
    const node *r = c->root;
    if (!r || tree_is_missing(r))
        return tree_fail_at(&c->x, 1, 1, "empty file (expected a mapping with name, data, "
                                         "train, eval, grid, seeds)");
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
    return 0;
}
