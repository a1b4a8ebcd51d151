/* config: a sweep's YAML file (docs/architecture.md, the sweep file) -> a
 * validated sweep description: the fixed sections, the grid expanded into
 * resolved runs in expansion order, their run ids, and what the list table
 * shows.
 *
 * Every input error is ERR_INPUT with a message
 *     file:line:col: key: what is wrong
 *       <the source line>
 *       <caret under the column>
 * (1-based line and column of the offending node), except for errors about
 * the file as a whole (unreadable path, size limit) which carry no line.
 * Nothing is printed; out-parameters are written only on success. */
#ifndef UNTANGLE_CONFIG_H
#define UNTANGLE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "untangle/err.h"
#include "untangle/spec.h"

enum {
    CONFIG_MAX_BYTES = 1 << 20,        /* largest YAML document accepted */
    CONFIG_MAX_DEPTH = 16,             /* deepest nesting of collections */
    CONFIG_MAX_ALIASES = 64,           /* alias (*name) uses per document */
    CONFIG_MAX_NODES = 100000,         /* scalars + collections per document */
    CONFIG_DEFAULT_MAX_RUNS = 100000,  /* grid size limit when max_runs is 0 */
    CONFIG_MAX_KEYS = 64               /* >= run_n_keys (src/spec/keys.c asserts <= 64) */
};

typedef struct config_sweep {
    char *path;          /* the source path (config_load) or name_for_messages */
    char *text;          /* the full YAML text, NUL-terminated, for the results file */
    size_t text_len;     /* bytes of text without the NUL */
    uint64_t hash;       /* 64-bit FNV-1a of text: the sweep hash */
    char name[128];      /* `name:`, or the file's base name without extension */
    run_config base;     /* run_config_defaults + data/train/eval (not resolved) */
    size_t n_runs;       /* >= 1 */
    run_config *runs;    /* (n_runs) resolved configurations, in expansion order */
    char (*run_ids)[17]; /* (n_runs) run_config_id of runs[i] */
    /* the list table's columns: keys with two different values among the runs
     * that have a value for them (the key applies to the run's model and is
     * not left unset): model first, then run_keys order; pointers into run_keys */
    size_t n_vary;
    const run_key *vary[CONFIG_MAX_KEYS];
} config_sweep;

/* Read and validate the sweep file at path and expand its grid. A grid of
 * more than max_runs runs (0: CONFIG_DEFAULT_MAX_RUNS) is refused before
 * anything is expanded. *out is a new sweep for config_free. ERR_INPUT for
 * anything wrong with the file (including an unreadable path or a
 * directory: the message names the path and strerror), ERR_NOMEM. */
int config_load(config_sweep **out, const char *path, size_t max_runs, err *e);

/* config_load on len bytes of text (not necessarily NUL-terminated, may hold
 * any bytes); name_for_messages stands for the file name in messages and in
 * s->path. For tests and fuzzing. */
int config_load_text(config_sweep **out, const char *text, size_t len,
                     const char *name_for_messages, size_t max_runs, err *e);

/* Free s and everything it owns. NULL is a no-op. */
void config_free(config_sweep *s);

/* The YAML library config reads with and its version ("libyaml 0.2.5"), for
 * the library versions a results file records: written into buf (n bytes,
 * cut to fit), which is returned. */
const char *config_library_version(char *buf, size_t n);

/* The list table: a header `index  run_id  <each varying key>`, one aligned
 * row per run ("-" where a key does not apply to the run's model), then
 * `N runs (model count, ...)` with the models in order of first appearance.
 * 0, or ERR_IO when writing to out failed. */
int config_write_list(const config_sweep *s, FILE *out);
/* The same table for the runs i with only[i] set (all when only is NULL),
 * ending `N of M runs to run (model count, ...)`. */
int config_write_list_some(const config_sweep *s, const unsigned char *only, FILE *out);

/* Compare the fixed sections (the data, train and eval keys of a->base and
 * b->base, in run_keys order). 0 when every value is equal; otherwise 1 with
 * the first differing key's name copied into key (n bytes, may be 0). Used to
 * refuse resuming a results file whose sweep changed its fixed sections. */
int config_fixed_diff(const config_sweep *a, const config_sweep *b, char *key, size_t n);

#endif
