/* config/tree.c: YAML text -> a small tree of our own nodes, and the caret
 * messages (`file:line:col: key: problem`, the source line, a caret under the
 * column; netplan / libcyaml style) that every stage of the loader reports
 * with. The only file of the project that includes yaml.h.
 *
 * libyaml's event API rather than yaml_parser_load, because events let us
 * stop at the first alias beyond CONFIG_MAX_ALIASES, the first collection
 * deeper than CONFIG_MAX_DEPTH or the node after CONFIG_MAX_NODES, so alias
 * bombs and deeply nested input cost little time and bounded memory. An
 * alias shares the anchored node (nothing is copied); an anchor is registered
 * only when its node is complete, so an alias can never point at its own
 * ancestor and the tree stays acyclic. */
#include "config_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

enum { MAX_ANCHORS = 1000 }; /* distinct anchor definitions; bounds alias look-up */

/* ---- messages -------------------------------------------------------------- */

/* Length in bytes of the line break at p (\n, \r\n, \r, NEL, LS, PS: the
 * breaks libyaml counts in its marks), 0 when p is not at a break. */
static size_t line_break(const char *p, const char *end)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t left = (size_t)(end - p);
    if (left == 0)
        return 0;
    if (u[0] == '\n')
        return 1;
    if (u[0] == '\r')
        return left > 1 && u[1] == '\n' ? 2 : 1;
    if (left > 1 && u[0] == 0xC2 && u[1] == 0x85)
        return 2;
    if (left > 2 && u[0] == 0xE2 && u[1] == 0x80 && (u[2] == 0xA8 || u[2] == 0xA9))
        return 3;
    return 0;
}

/* Bytes of the UTF-8 character at p (1 for anything malformed), within end. */
static size_t char_len(const char *p, const char *end)
{
    unsigned char c = (unsigned char)*p;
    size_t w = c < 0x80               ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 1;
    size_t left = (size_t)(end - p);
    return w <= left ? w : left;
}

/* Whether the w bytes at p are one well-formed UTF-8 character (the excerpt
 * copies only those, so messages stay valid text). */
static int utf8_ok(const char *p, size_t w)
{
    const unsigned char *u = (const unsigned char *)p;
    if (w == 1)
        return u[0] < 0x80;
    if (u[0] < 0xC2 || u[0] > 0xF4)
        return 0;
    if ((w == 2) != ((u[0] & 0xE0) == 0xC0) || (w == 3) != ((u[0] & 0xF0) == 0xE0))
        return 0;
    for (size_t i = 1; i < w; i++)
        if ((u[i] & 0xC0) != 0x80)
            return 0;
    return 1;
}

/* The start of the text, past a UTF-8 byte order mark (libyaml's marks do not
 * count it). */
static const char *text_start(const ctx *x)
{
    if (x->len >= 3 && memcmp(x->text, "\xEF\xBB\xBF", 3) == 0)
        return x->text + 3;
    return x->text;
}

/* 1-based line and column of byte offset off, counted as libyaml does. */
static void offset_mark(const ctx *x, size_t off, size_t *line, size_t *col)
{
    const char *p = text_start(x), *end = x->text + (off < x->len ? off : x->len);
    *line = 1;
    *col = 1;
    while (p < end) {
        size_t b = line_break(p, x->text + x->len);
        if (b) {
            p += b;
            ++*line;
            *col = 1;
        } else {
            p += char_len(p, x->text + x->len);
            ++*col;
        }
    }
}

/* Write the source line `line` and a caret under column col into buf as
 * "\n  <line>\n  <pad>^" (empty when the line does not exist). Long lines
 * are shown as a window around the column. */
static void excerpt(const ctx *x, size_t line, size_t col, char *buf, size_t n)
{
    enum { BEFORE = 50, WIDTH = 100 };
    const char *end = x->text + x->len, *p = text_start(x);
    buf[0] = '\0';
    for (size_t l = 1; l < line; l++) {
        size_t b = 0;
        while (p < end && !(b = line_break(p, end)))
            p++;
        if (p >= end)
            return; /* the line is past the end of the text */
        p += b;
    }
    const char *eol = p;
    while (eol < end && !line_break(eol, end))
        eol++;
    size_t skip = col > BEFORE + 20 ? col - 1 - BEFORE : 0; /* characters left out */
    for (size_t i = 0; i < skip && p < eol; i++)
        p += char_len(p, eol);
    char src[4 * WIDTH + 8], pad[WIDTH + 8];
    size_t ns = 0, np = 0, shown = 0;
    if (skip) {
        memcpy(src, "...", 3);
        memset(pad, ' ', 3);
        ns = np = 3;
    }
    for (size_t c = skip + 1; p < eol && shown < WIDTH; c++, shown++) {
        size_t w = char_len(p, eol);
        unsigned char u = (unsigned char)*p;
        if (!utf8_ok(p, w) || (w == 1 && (u < 0x20 || u == 0x7f) && u != '\t')) {
            src[ns++] = '?'; /* keep the message printable */
            w = 1;
        } else {
            memcpy(src + ns, p, w);
            ns += w;
        }
        if (c < col)
            pad[np++] = u == '\t' ? '\t' : ' '; /* a tab keeps the caret aligned */
        p += w;
    }
    if (p < eol) {
        memcpy(src + ns, "...", 3);
        ns += 3;
    }
    for (size_t c = skip + shown + 1; c < col && np < WIDTH + 4; c++)
        pad[np++] = ' '; /* a column past the line's end (a missing value) */
    snprintf(buf, n, "\n  %.*s\n  %.*s^", (int)ns, src, (int)np, pad);
}

int tree_fail_at(const ctx *x, size_t line, size_t col, const char *fmt, ...)
{
    char msg[sizeof x->e->msg], ex[sizeof x->e->msg / 2 + 64]; /* ex fits excerpt()'s worst */
    excerpt(x, line, col, ex, sizeof ex);
    /* the first line gets what the excerpt leaves */
    size_t room = sizeof msg - strlen(ex);
    int k = snprintf(msg, room, "%s:%zu:%zu: ", x->file, line, col);
    size_t used = k < 0 ? 0 : (size_t)k < room ? (size_t)k : room - 1;
    va_list ap;
    va_start(ap, fmt);
    k = vsnprintf(msg + used, room - used, fmt, ap);
    va_end(ap);
    used = k < 0 ? used : used + (size_t)k < room ? used + (size_t)k : room - 1;
    for (size_t i = 0; i < used; i++)
        if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
            msg[i] = '?'; /* quoted user text must not break the line */
    memcpy(msg + used, ex, strlen(ex) + 1);
    return err_set(x->e, ERR_INPUT, "%s", msg);
}

int tree_relocate(const ctx *x, const node *nd)
{
    char old[sizeof x->e->msg];
    memcpy(old, x->e->msg, sizeof old);
    return FAIL(x, nd, "%s", old);
}

const char *tree_shown(const char *s, char buf[SHOW + 4])
{
    size_t len = strlen(s);
    if (len <= SHOW)
        return s;
    size_t cut = SHOW;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--; /* do not split a UTF-8 character */
    memcpy(buf, s, cut);
    memcpy(buf + cut, "...", 4);
    return buf;
}

/* ---- the tree --------------------------------------------------------------- */

const char *tree_kind_name(node_kind k)
{
    return k == N_SCALAR ? "a single value" : k == N_SEQ ? "a list" : "a mapping";
}

int tree_is_missing(const node *v)
{
    return v->kind == N_SCALAR && v->plain &&
           (!v->text[0] || !strcmp(v->text, "~") || !strcmp(v->text, "null") ||
            !strcmp(v->text, "Null") || !strcmp(v->text, "NULL"));
}

static node *new_node(const ctx *x, doc *d, node_kind kind, const yaml_mark_t *m)
{
    if (d->n_all == CONFIG_MAX_NODES) {
        tree_fail_at(x, m->line + 1, m->column + 1,
                     "document has more than %d values and collections", CONFIG_MAX_NODES);
        return NULL;
    }
    if (d->n_all == d->cap_all) {
        size_t cap = d->cap_all ? 2 * d->cap_all : 64;
        node **p = realloc(d->all, cap * sizeof *p);
        if (!p)
            goto nomem;
        d->all = p;
        d->cap_all = cap;
    }
    node *nd = calloc(1, sizeof *nd);
    if (!nd)
        goto nomem;
    nd->kind = kind;
    nd->line = m->line + 1;
    nd->col = m->column + 1;
    d->all[d->n_all++] = nd;
    return nd;
nomem:
    err_set(x->e, ERR_NOMEM, "%s: out of memory while reading the YAML", x->file);
    return NULL;
}

/* Attach child to parent (NULL: it becomes the root). */
static int attach(const ctx *x, doc *d, node *parent, node *child)
{
    if (!parent) {
        d->root = child;
        return 0;
    }
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? 2 * parent->cap : 8;
        node **p = realloc(parent->items, cap * sizeof *p);
        if (!p)
            return err_set(x->e, ERR_NOMEM, "%s: out of memory while reading the YAML", x->file);
        parent->items = p;
        parent->cap = cap;
    }
    parent->items[parent->n++] = child;
    return 0;
}

/* Register anchor name (ownership moves to d, even on failure) for target. */
static int add_anchor(const ctx *x, doc *d, char *name, node *target)
{
    if (d->n_anchors == MAX_ANCHORS) {
        free(name);
        return FAIL(x, target, "more than %d anchors (&name) in the document", MAX_ANCHORS);
    }
    if (d->n_anchors == d->cap_anchors) {
        size_t cap = d->cap_anchors ? 2 * d->cap_anchors : 8;
        anchor *p = realloc(d->anchors, cap * sizeof *p);
        if (!p) {
            free(name);
            return err_set(x->e, ERR_NOMEM, "%s: out of memory while reading the YAML", x->file);
        }
        d->anchors = p;
        d->cap_anchors = cap;
    }
    d->anchors[d->n_anchors++] = (anchor){name, target};
    return 0;
}

static int syntax_error(const ctx *x, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_MEMORY_ERROR)
        return err_set(x->e, ERR_NOMEM, "%s: out of memory while reading the YAML", x->file);
    if (p->error == YAML_READER_ERROR) {
        /* the reader knows a byte offset, not a mark */
        size_t line, col;
        offset_mark(x, p->problem_offset, &line, &col);
        return tree_fail_at(x, line, col, "invalid input: %s", problem);
    }
    if (p->context)
        return tree_fail_at(x, p->problem_mark.line + 1, p->problem_mark.column + 1,
                       "YAML syntax error: %s (%s at line %zu, column %zu)", problem, p->context,
                       p->context_mark.line + 1, p->context_mark.column + 1);
    return tree_fail_at(x, p->problem_mark.line + 1, p->problem_mark.column + 1,
                   "YAML syntax error: %s", problem);
}

void tree_free(doc *d)
{
    for (size_t i = 0; i < d->n_all; i++) {
        free(d->all[i]->text);
        free(d->all[i]->items);
        free(d->all[i]);
    }
    for (size_t i = 0; i < d->n_anchors; i++)
        free(d->anchors[i].name);
    free(d->all);
    free(d->anchors);
    memset(d, 0, sizeof *d);
}

/* ---- parse: one step per kind of event ----------------------------------------- */

/* The parse in progress: the open collections, innermost last. */
typedef struct parser {
    const ctx *x;
    doc *d;
    struct frame {
        node *nd;
        char *anchor; /* registered when the collection ends */
    } stack[CONFIG_MAX_DEPTH];
    size_t depth, n_docs, n_alias;
} parser;

/* The collection a new node goes into (NULL: it becomes the root). */
static node *parent_of(const parser *ps) { return ps->depth ? ps->stack[ps->depth - 1].nd : NULL; }

static int fail_at_mark(const parser *ps, const yaml_mark_t *m, const char *what)
{
    return tree_fail_at(ps->x, m->line + 1, m->column + 1, "%s", what);
}

static int on_document_start(parser *ps, const yaml_event_t *ev)
{
    if (++ps->n_docs > 1)
        return fail_at_mark(ps, &ev->start_mark,
                            "a second YAML document: a sweep file holds exactly one");
    return 0;
}

/* A scalar: a new node with a copy of its text, and its anchor if any. */
static int on_scalar(parser *ps, const yaml_event_t *ev)
{
    const ctx *x = ps->x;
    size_t len = ev->data.scalar.length;
    if (memchr(ev->data.scalar.value, 0, len))
        return fail_at_mark(ps, &ev->start_mark, "a value contains a NUL character");
    node *nd = new_node(x, ps->d, N_SCALAR, &ev->start_mark);
    if (!nd)
        return x->e->code;
    nd->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (!(nd->text = malloc(len + 1)))
        return err_set(x->e, ERR_NOMEM, "%s: out of memory while reading the YAML", x->file);
    memcpy(nd->text, ev->data.scalar.value, len);
    nd->text[len] = '\0';
    int rc = attach(x, ps->d, parent_of(ps), nd);
    if (rc < 0 || !ev->data.scalar.anchor)
        return rc;
    char *name = strdup((const char *)ev->data.scalar.anchor);
    if (!name)
        return err_set(x->e, ERR_NOMEM, "%s: out of memory", x->file);
    return add_anchor(x, ps->d, name, nd);
}

/* A sequence or mapping opens: a new node, pushed; its anchor waits for the
 * end of the collection. */
static int on_collection_start(parser *ps, const yaml_event_t *ev)
{
    const ctx *x = ps->x;
    int seq = ev->type == YAML_SEQUENCE_START_EVENT;
    const yaml_char_t *a = seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
    if (ps->depth == CONFIG_MAX_DEPTH)
        return tree_fail_at(x, ev->start_mark.line + 1, ev->start_mark.column + 1,
                            "nesting deeper than %d levels", CONFIG_MAX_DEPTH);
    node *nd = new_node(x, ps->d, seq ? N_SEQ : N_MAP, &ev->start_mark);
    if (!nd)
        return x->e->code;
    int rc = attach(x, ps->d, parent_of(ps), nd);
    if (rc < 0)
        return rc;
    struct frame *f = &ps->stack[ps->depth];
    f->nd = nd;
    f->anchor = NULL;
    if (a && !(f->anchor = strdup((const char *)a)))
        return err_set(x->e, ERR_NOMEM, "%s: out of memory", x->file);
    ps->depth++;
    return 0;
}

/* The innermost collection is complete: pop it and register its anchor. */
static int on_collection_end(parser *ps)
{
    if (ps->depth == 0) /* libyaml never does this; keep the stack sound */
        return err_set(ps->x->e, ERR_INTERNAL, "%s: unbalanced YAML events", ps->x->file);
    struct frame *f = &ps->stack[--ps->depth];
    if (!f->anchor)
        return 0;
    char *name = f->anchor;
    f->anchor = NULL;
    return add_anchor(ps->x, ps->d, name, f->nd);
}

/* An alias: the anchored node is attached again, not copied. */
static int on_alias(parser *ps, const yaml_event_t *ev)
{
    const ctx *x = ps->x;
    const yaml_mark_t *m = &ev->start_mark;
    if (++ps->n_alias > CONFIG_MAX_ALIASES)
        return tree_fail_at(x, m->line + 1, m->column + 1,
                            "more than %d aliases (*name) in the document", CONFIG_MAX_ALIASES);
    const char *name = (const char *)ev->data.alias.anchor;
    const doc *d = ps->d;
    node *target = NULL;
    for (size_t i = d->n_anchors; i-- > 0 && !target;) /* the latest definition wins */
        if (strcmp(d->anchors[i].name, name) == 0)
            target = d->anchors[i].target;
    if (!target) {
        char b[SHOW + 4];
        return tree_fail_at(x, m->line + 1, m->column + 1,
                            "alias *%s: no complete node has this anchor before it",
                            tree_shown(name, b));
    }
    return attach(x, ps->d, parent_of(ps), target);
}

/* One event into the tree; *done at the end of the stream. */
static int on_event(parser *ps, const yaml_event_t *ev, int *done)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        return on_document_start(ps, ev);
    case YAML_STREAM_END_EVENT:
        *done = 1;
        return 0;
    case YAML_SCALAR_EVENT:
        return on_scalar(ps, ev);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        return on_collection_start(ps, ev);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_collection_end(ps);
    case YAML_ALIAS_EVENT:
        return on_alias(ps, ev);
    default:
        return 0;
    }
}

int tree_parse(const ctx *x, doc *d)
{
    parser ps = {.x = x, .d = d};
    int rc = 0, done = 0;
    yaml_parser_t p;
    yaml_event_t ev;
    if (!yaml_parser_initialize(&p))
        return err_set(x->e, ERR_NOMEM, "%s: out of memory for the YAML parser", x->file);
    yaml_parser_set_input_string(&p, (const unsigned char *)x->text, x->len);
    while (!done && rc == 0) {
        if (!yaml_parser_parse(&p, &ev)) {
            rc = syntax_error(x, &p);
            break;
        }
        rc = on_event(&ps, &ev, &done);
        yaml_event_delete(&ev);
    }
    for (size_t i = 0; i < ps.depth; i++)
        free(ps.stack[i].anchor);
    yaml_parser_delete(&p);
    return rc;
}

const char *config_library_version(char *buf, size_t n)
{
    snprintf(buf, n, "libyaml %s", yaml_get_version_string());
    return buf;
}
