/* Private to src/config: the stages of config_load_text and what they share.
 *
 *  1. tree.c   YAML text -> a small tree of our own nodes, and the caret
 *              messages every stage reports with (the only file that
 *              includes yaml.h).
 *  2. check.c  the top level in file order, the fixed sections into s->base,
 *              seeds, unknown keys with "did you mean", and the checks of a
 *              grid block's keys and values (types, ranges, the keys its
 *              model takes).
 *  3. grid.c   the grid: blocks into plans (axes, zip groups), runs counted
 *              before anything is expanded, the odometer with seeds
 *              innermost, model_resolve and run ids, repeated runs.
 *  4. list.c   the list table's columns and the table itself.
 *
 * Each stage stops at the first error, reported at the offending node. */
#ifndef UNTANGLE_CONFIG_IMPL_H
#define UNTANGLE_CONFIG_IMPL_H

#include "untangle/config.h"

enum { SHOW = 64 }; /* bytes of user text quoted in a message */

/* ---- the tree (tree.c) --------------------------------------------------------- */

typedef enum node_kind { N_SCALAR, N_SEQ, N_MAP } node_kind;

typedef struct node {
    node_kind kind;
    size_t line, col;    /* 1-based position of the node's first character */
    int plain;           /* scalar written without quotes */
    char *text;          /* scalar value, NUL-terminated, no NUL inside */
    size_t n, cap;       /* items; a mapping stores key, value, key, value, ... */
    struct node **items;
} node;

typedef struct anchor {
    char *name;
    node *target;
} anchor;

/* A parsed document. An alias shares its anchored node, so the tree is a DAG
 * (never a cycle: an anchor is registered only once its node is complete). */
typedef struct doc {
    node **all; /* every node, for freeing */
    size_t n_all, cap_all;
    anchor *anchors;
    size_t n_anchors, cap_anchors;
    node *root; /* NULL for an empty stream */
} doc;

/* Where messages point: the file's name and its full text. */
typedef struct ctx {
    const char *file;
    const char *text;
    size_t len;
    err *e;
} ctx;

/* The YAML text of x -> d (zeroed by the caller). At most CONFIG_MAX_DEPTH
 * nesting, CONFIG_MAX_ALIASES aliases and CONFIG_MAX_NODES nodes, so that
 * hostile input costs bounded time and memory. On error d holds what was
 * built so far: tree_free it either way. */
int tree_parse(const ctx *x, doc *d);
/* Free every node and anchor of d; d becomes empty. */
void tree_free(doc *d);

/* "a single value", "a list" or "a mapping". */
const char *tree_kind_name(node_kind k);
/* A plain scalar that YAML reads as null, or nothing at all. */
int tree_is_missing(const node *v);

/* Fill x->e with ERR_INPUT and `file:line:col: message`, the source line and
 * a caret under the column; returns ERR_INPUT. */
int tree_fail_at(const ctx *x, size_t line, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define FAIL(x, nd, ...) tree_fail_at((x), (nd)->line, (nd)->col, __VA_ARGS__)
/* Re-report the message run_config_set / model_resolve left in x->e at nd. */
int tree_relocate(const ctx *x, const node *nd);
/* User text for a message: s itself, or its first SHOW bytes and "..." in buf. */
const char *tree_shown(const char *s, char buf[SHOW + 4]);

/* ---- checks and expansion (check.c, grid.c) ------------------------------------ */

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

/* A grid block's keys grouped into axes. */
typedef struct plan {
    const node *block;
    param params[CONFIG_MAX_KEYS];
    size_t n_params;
    axis axes[CONFIG_MAX_KEYS];
    size_t n_axes;
    const param *model;
    int has_seed; /* the block sets seed: no seeds loop */
} plan;

/* The loader's state from the top level to the expanded grid. */
typedef struct chk {
    ctx x;
    config_sweep *s;
    size_t max_runs;
    const node *root, *grid_key, *grid;
    int seeds_given;
    size_t n_seeds; /* count form: seed i is i */
    long *seeds;    /* list form (n_seeds), or NULL */
} chk;

/* The top level of c->root: name, the fixed sections into c->s->base, seeds
 * (c->n_seeds is 1 when not given); the grid's nodes are noted, not read. */
int check_top(chk *c);
/* A key of a block or of its zip: known, not repeated (seen), not seed
 * beside the top-level seeds. */
int check_block_key(const chk *c, const node *kn, uint64_t *seen, const run_key **out);
/* An axis value list v of key rk has the right shape (lists of lists for a
 * list-valued key). */
int check_list_shape(const chk *c, const run_key *rk, const node *v);
/* Value i of p as text for run_config_set (a list value becomes "[a, b]");
 * *where is its node. */
int check_value_text(const chk *c, const param *p, size_t i, char *buf, size_t n,
                     const node **where);
/* Every value of a block's plan parses and is in range, and every model the
 * block names takes every model key the block sets (model_params). */
int check_block_values(const chk *c, const plan *pl);

/* Count, then expand the grid (c->grid) into c->s->runs and run_ids,
 * refusing more than c->max_runs runs and two runs with one run id. */
int grid_expand(chk *c);

/* ---- the list table (list.c) --------------------------------------------------- */

/* Fill s->vary from s->runs (resolved). */
void list_find_varying(config_sweep *s);

#endif
