/* Private to src/config: the stages of config_load_text and what they share.
 *
 *  1. tree.c   YAML text -> a small tree of our own nodes, and the caret
 *              messages every stage reports with (the only file that
 *              includes yaml.h).
 *  2. config.c the checks and the grid expansion.
 *  3. list.c   the list table.
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

#endif
