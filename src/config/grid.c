/* config/grid.c: the grid expansion. Every block becomes a plan (its keys
 * grouped into axes: one key, or a zip group), checked and counted before
 * anything is expanded; then the same plans again (rebuilding a plan is
 * cheaper than keeping thousands) drive an odometer over the axes, the last
 * varying fastest, with seeds innermost; each run is resolved (model_resolve)
 * and gets its run id, and two runs with one run id are refused. */
#include "config_impl.h"

#include "untangle/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        int rc = check_block_key(c, kn, seen, &rk);
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

/* The axes of block b, checked for shape (check_block_values checks the
 * values). */
static int build_plan(const chk *c, const node *b, plan *pl)
{
    memset(pl, 0, sizeof *pl);
    pl->block = b;
    if (b->kind != N_MAP)
        return FAIL(&c->x, b, "grid: a block is a mapping of keys, got %s",
                    tree_kind_name(b->kind));
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
        if ((rc = check_block_key(c, kn, &seen, &rk)) < 0)
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
                    if ((rc = check_value_text(c, p, idx[a], text, sizeof text, &where)) < 0)
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

int grid_expand(chk *c)
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
        if ((rc = build_plan(c, blocks[b], pl)) < 0 || (rc = check_block_values(c, pl)) < 0)
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
        if ((rc = build_plan(c, blocks[b], pl)) < 0)
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
    rc = check_unique(c, block_of);
cleanup:
    free(pl);
    free(block_of);
    return rc;
}
