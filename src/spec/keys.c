/* The key table: one row per configuration key of docs/architecture.md section 6, and
 * the parsing, formatting and hashing that go through it. */
#include "untangle/spec.h"

#include "../util/hash.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F(field) offsetof(run_config, field), sizeof(((run_config *)0)->field)
#define BIG 1e18

const run_key run_keys[] = {
    {"name", "data", RUN_KEY_STR, F(name), 0, 0, 0, "dsprites|color_dsprites|noisy_dsprites|shapes3d", "data set: dsprites, its colour and noise variants (disentanglement_lib's), or DeepMind's 3dshapes (data.path)"},
    {"image_size", "data", RUN_KEY_INT, F(image_size), 32, 64, 0, NULL, "image side: 64 or 32"},
    {"path", "data", RUN_KEY_STR, F(path), 0, 0, 0, NULL, "HDF5 file: the official dSprites file (dSprites and its variants; default: built in) or 3dshapes.h5 (shapes3d, required)"},
    {"arch", "train", RUN_KEY_STR, F(arch), 0, 0, 0, "mlp|conv|dlib", "network architecture: mlp (Chen et al.), conv (Burgess et al.), dlib (disentanglement_lib's conv)"},
    {"steps", "train", RUN_KEY_INT, F(steps), 0, BIG, 0, NULL, "optimiser steps"},
    {"batch_size", "train", RUN_KEY_INT, F(batch_size), 2, 65536, 0, NULL, "images per step"},
    {"lr", "train", RUN_KEY_REAL, F(lr), 0, 1, 1, NULL, "Adam learning rate"},
    {"log_every", "train", RUN_KEY_INT, F(log_every), 1, BIG, 0, NULL, "steps between progress lines and curve points"},
    {"eval_every", "train", RUN_KEY_INT, F(eval_every), 0, BIG, 0, NULL, "steps between evaluations during training, kept as eval.*, mi.* and gap.* curve points (learning curves); 0: only the final one"},
    {"images", "eval", RUN_KEY_INT, F(images), 0, RUN_MAX_IMAGES, 0, NULL, "images encoded for tc/mi/mig"},
    {"samples", "eval", RUN_KEY_INT, F(samples), 0, RUN_MAX_IMAGES, 0, NULL, "samples for the entropy estimates"},
    {"pairs", "eval", RUN_KEY_INT, F(pairs), 0, 1e7, 0, NULL, "pairs per factor for swap accuracy"},
    {"encode", "eval", RUN_KEY_STR, F(encode), 0, 0, 0, "sample|full", "images for tc/mi/mig: sample = eval.images random draws; full = every image of the data set once, in canonical order (Chen et al.'s setting)"},
    {"hist_images", "eval", RUN_KEY_INT, F(hist_images), 1, RUN_MAX_IMAGES, 0, NULL, "random images for mig_hist (disentanglement_lib's num_train)"},
    {"unsup_images", "eval", RUN_KEY_INT, F(unsup_images), 1, RUN_MAX_IMAGES, 0, NULL, "random images for the unsupervised scores (gaussian_tc; disentanglement_lib's num_train)"},
    {"model", "model", RUN_KEY_STR, F(model), 0, 0, 0, "vae|betavae|annealedvae|betatcvae|factorvae|dipvae1|dipvae2|jointvae|dsd", "method: vae, betavae, annealedvae, betatcvae, factorvae, dipvae1, dipvae2, jointvae, dsd (README, Methods)"},
    {"latent_dim", "model", RUN_KEY_INT, F(latent_dim), 1, 1024, 0, NULL, "continuous latents D"},
    {"beta", "model", RUN_KEY_REAL, F(beta), 0, BIG, 0, NULL, "KL weight (betavae), TC weight (betatcvae)"},
    {"beta64", "model", RUN_KEY_REAL, F(beta64), 0, BIG, 0, NULL, "beta at 64x64, 1 channel: beta = beta64 x C x S x S / 4096"},
    {"gamma", "model", RUN_KEY_REAL, F(gamma), 0, BIG, 0, NULL, "weight of |KL - C| (annealedvae, jointvae), of the discriminator's TC (factorvae), of DWKL (betatcvae)"},
    {"alpha", "model", RUN_KEY_REAL, F(alpha), 0, BIG, 0, NULL, "MI weight (betatcvae)"},
    {"lambda", "model", RUN_KEY_REAL, F(lambda), 0, BIG, 1, NULL, "Gumbel-softmax temperature (jointvae)"},
    {"c_max", "model", RUN_KEY_REAL, F(c_max), 0, BIG, 0, NULL, "capacity (nats) that KL is held to (annealedvae; betavae with c_max is annealedvae)"},
    {"anneal_steps", "model", RUN_KEY_INT, F(anneal_steps), 1, BIG, 0, NULL, "steps over which capacities rise"},
    {"estimator", "model", RUN_KEY_STR, F(estimator), 0, 0, 0, "mss|mws", "minibatch estimator (betatcvae)"},
    {"discrete", "model", RUN_KEY_LIST, F(discrete), 2, 1000, 0, NULL, "categories of each discrete latent (jointvae)"},
    {"c_z_max", "model", RUN_KEY_REAL, F(c_z_max), 0, BIG, 0, NULL, "continuous capacity (jointvae)"},
    {"c_c_max", "model", RUN_KEY_REAL, F(c_c_max), 0, BIG, 0, NULL, "discrete capacity (jointvae)"},
    {"chunks", "model", RUN_KEY_LIST, F(chunks), 1, 1024, 0, NULL, "code chunk per factor (dsd)"},
    {"supervision", "model", RUN_KEY_REAL, F(supervision), 0, 1, 0, NULL, "fraction of labeled pairs (dsd)"},
    {"w_swap", "model", RUN_KEY_REAL, F(w_swap), 0, BIG, 0, NULL, "weight of the swap losses (dsd)"},
    {"lambda_od", "model", RUN_KEY_REAL, F(lambda_od), 0, BIG, 0, NULL, "weight of the off-diagonal covariance penalty (dipvae1, dipvae2)"},
    {"lambda_d", "model", RUN_KEY_REAL, F(lambda_d), 0, BIG, 0, NULL, "weight of the diagonal covariance penalty (dipvae1, dipvae2; default 10*lambda_od for dipvae1, lambda_od for dipvae2)"},
    {"seed", "seed", RUN_KEY_INT, F(seed), 0, 9007199254740991.0, 0, NULL, "random seed"},
};
const size_t run_n_keys = sizeof run_keys / sizeof run_keys[0];
_Static_assert(sizeof run_keys / sizeof run_keys[0] <= 64, "run_config.set is a 64-bit mask");

const run_key *run_key_find(const char *name)
{
    for (size_t i = 0; i < run_n_keys; i++)
        if (strcmp(run_keys[i].name, name) == 0)
            return &run_keys[i];
    return NULL;
}

static void *field(run_config *c, const run_key *k) { return (char *)c + k->offset; }
static const void *cfield(const run_config *c, const run_key *k)
{
    return (const char *)c + k->offset;
}

/* The count that goes with a list field. */
static int *list_count(run_config *c, const run_key *k)
{
    return k->offset == offsetof(run_config, discrete) ? &c->n_discrete : &c->n_chunks;
}

static void set_int(run_config *c, const run_key *k, long v)
{
    if (k->size == sizeof(int))
        *(int *)field(c, k) = (int)v;
    else
        *(long *)field(c, k) = v;
}

static long get_int(const run_config *c, const run_key *k)
{
    return k->size == sizeof(int) ? *(const int *)cfield(c, k) : *(const long *)cfield(c, k);
}

void run_config_defaults(run_config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < run_n_keys; i++) {
        const run_key *k = &run_keys[i];
        if (k->type == RUN_KEY_REAL)
            *(double *)field(c, k) = NAN;
        else if (k->type == RUN_KEY_INT)
            set_int(c, k, -1);
    }
    strcpy(c->name, "dsprites");
    c->image_size = 64;
    strcpy(c->arch, "mlp");
    c->steps = 3000;
    c->batch_size = 64;
    c->lr = 1e-3;
    c->log_every = 200;
    c->eval_every = 0;
    c->images = 10000;
    c->samples = 2000;
    c->pairs = 200;
    strcpy(c->encode, "sample");
    c->hist_images = 10000;
    c->unsup_images = 10000;
    strcpy(c->model, "vae");
    c->latent_dim = 10;
    c->seed = 0;
    c->set = 0;
}

static int in_range(const run_key *k, double v)
{
    if (v < k->min || v > k->max)
        return 0;
    return !(k->min_open && v == k->min);
}

static int range_error(const run_key *k, const char *text, err *e)
{
    if (k->min_open)
        return err_set(e, ERR_INPUT, "%s: %s is out of range (must be > %.17g and <= %.17g)", k->name,
                       text, k->min, k->max);
    return err_set(e, ERR_INPUT, "%s: %s is out of range (must be %.17g..%.17g)", k->name, text,
                   k->min, k->max);
}

/* An integer as "3000", "-1", "1e4" or "3000.0". A plain integer is read
 * exactly (strtol); other forms go through strtod and must be whole. 0, or
 * -1 when text is not a whole number, or -2 when it is one beyond a long. */
static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end != s && !*end && !errno) {
        *out = v;
        return 0;
    }
    errno = 0;
    double d = strtod(s, &end); /* accept 1e4 and 3000.0 for integers */
    while (isspace((unsigned char)*end))
        end++;
    if (end == s || *end || !isfinite(d) || d != floor(d))
        return -1;
    if (errno || fabs(d) > 9.2e18)
        return -2;
    *out = (long)d;
    return 0;
}

/* A real as strtod reads it, trailing blanks allowed. NaN, infinities and
 * out-of-range magnitudes are accepted here (run_config_put stores them);
 * *range_err tells whether strtod reported ERANGE. */
static int parse_real(const char *s, double *out, int *range_err)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    *range_err = errno != 0;
    while (isspace((unsigned char)*end))
        end++;
    if (end == s || *end)
        return -1;
    *out = v;
    return 0;
}

/* The list syntax: "[3]", "3,3", "[2, 2]", "[]". With check, each value must
 * be in k's range (refused at the first one that is not); without, in int's. */
static int parse_list(const run_key *k, const char *text, int check, int *vals, int *n_out,
                      err *e)
{
    int n = 0;
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    int bracket = *p == '[';
    if (bracket)
        p++;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (bracket && *p == ']' && n == 0) {
            p++;
            break;
        }
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || (!check && (v < INT_MIN || v > INT_MAX)))
            return err_set(e, ERR_INPUT, "%s: expected a list of integers like [3] or [2, 2], got '%s'",
                           k->name, text);
        if (n == RUN_MAX_LIST)
            return err_set(e, ERR_INPUT, "%s: more than %d values", k->name, RUN_MAX_LIST);
        if (check && (v < k->min || v > k->max))
            return err_set(e, ERR_INPUT, "%s: value %ld is out of range (must be %g..%g)", k->name,
                           v, k->min, k->max);
        vals[n++] = (int)v;
        p = end;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == ',') {
            p++;
            continue;
        }
        if (bracket) {
            if (*p != ']')
                return err_set(e, ERR_INPUT, "%s: expected ',' or ']' in '%s'", k->name, text);
            p++;
        }
        break;
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p)
        return err_set(e, ERR_INPUT, "%s: trailing text in '%s'", k->name, text);
    *n_out = n;
    return 0;
}

static int is_choice(const run_key *k, const char *text)
{
    size_t len = strlen(text);
    for (const char *p = k->choices; *p;) {
        size_t n = strcspn(p, "|");
        if (n == len && strncmp(p, text, n) == 0)
            return 1;
        p += n + (p[n] == '|');
    }
    return 0;
}

/* What run_config_set refuses before storing: malformed, out of range, not
 * one of the choices, empty. */
static int check_value(const run_key *k, const char *text, err *e)
{
    switch (k->type) {
    case RUN_KEY_INT: {
        long v;
        int pr = parse_long(text, &v);
        if (pr == -2)
            return range_error(k, text, e);
        if (pr < 0)
            return err_set(e, ERR_INPUT, "%s: expected an integer, got '%s'", k->name, text);
        if (!in_range(k, (double)v))
            return range_error(k, text, e);
        if (k->offset == offsetof(run_config, image_size) && v != 32 && v != 64)
            return err_set(e, ERR_INPUT, "image_size: %s is not supported (must be 64 or 32)", text);
        return 0;
    }
    case RUN_KEY_REAL: {
        double v;
        int range_err;
        if (parse_real(text, &v, &range_err) < 0 || range_err || !isfinite(v))
            return err_set(e, ERR_INPUT, "%s: expected a number, got '%s'", k->name, text);
        if (!in_range(k, v))
            return range_error(k, text, e);
        return 0;
    }
    case RUN_KEY_STR: {
        size_t len = strlen(text);
        if (len == 0 || len >= k->size)
            return err_set(e, ERR_INPUT, "%s: '%s' is %s", k->name, text,
                           len ? "too long" : "empty");
        if (k->choices && !is_choice(k, text))
            return err_set(e, ERR_INPUT, "%s: '%s' is not one of %s", k->name, text, k->choices);
        return 0;
    }
    case RUN_KEY_LIST: {
        int vals[RUN_MAX_LIST], n;
        return parse_list(k, text, 1, vals, &n, e);
    }
    }
    return err_set(e, ERR_INTERNAL, "%s: unknown key type", k->name);
}

int run_config_put(run_config *c, const run_key *k, const char *text, err *e)
{
    switch (k->type) {
    case RUN_KEY_INT: {
        long v;
        if (parse_long(text, &v) < 0)
            return err_set(e, ERR_INPUT, "%s: expected an integer, got '%s'", k->name, text);
        set_int(c, k, v);
        return 0;
    }
    case RUN_KEY_REAL: {
        double v;
        int range_err;
        if (parse_real(text, &v, &range_err) < 0)
            return err_set(e, ERR_INPUT, "%s: expected a number, got '%s'", k->name, text);
        *(double *)field(c, k) = v;
        return 0;
    }
    case RUN_KEY_STR:
        snprintf(field(c, k), k->size, "%s", text);
        return 0;
    case RUN_KEY_LIST: {
        int vals[RUN_MAX_LIST], n = 0;
        int rc = parse_list(k, text, 0, vals, &n, e);
        if (rc < 0)
            return rc;
        memcpy(field(c, k), vals, sizeof(int) * (size_t)n);
        *list_count(c, k) = n;
        return 0;
    }
    }
    return err_set(e, ERR_INTERNAL, "%s: unknown key type", k->name);
}

/* Levenshtein distance, for "did you mean"; large for long words. */
static size_t edit_distance(const char *a, const char *b)
{
    enum { LONGEST = 64 };
    size_t la = strlen(a), lb = strlen(b), row[LONGEST + 1];
    if (la > LONGEST || lb > LONGEST)
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

void run_key_suggest(const char *word, const char *const *names, char *buf, size_t n)
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

int run_config_set(run_config *c, const char *key, const char *text, err *e)
{
    const run_key *k = run_key_find(key);
    if (!k) {
        char hint[96];
        run_key_suggest(key, NULL, hint, sizeof hint);
        return err_set(e, ERR_INPUT, "unknown key '%s'%s", key, hint);
    }
    int rc = check_value(k, text, e);
    if (rc == 0)
        rc = run_config_put(c, k, text, e);
    if (rc < 0)
        return rc;
    c->set |= 1ull << (size_t)(k - run_keys);
    return 0;
}

void run_config_format(const run_config *c, const run_key *k, char *buf, size_t n)
{
    switch (k->type) {
    case RUN_KEY_INT:
        snprintf(buf, n, "%ld", get_int(c, k));
        break;
    case RUN_KEY_REAL: {
        double v = *(const double *)cfield(c, k);
        if (isnan(v))
            snprintf(buf, n, "nan");
        else
            snprintf(buf, n, "%.17g", v);
        break;
    }
    case RUN_KEY_STR:
        snprintf(buf, n, "%s", (const char *)cfield(c, k));
        break;
    case RUN_KEY_LIST: {
        const int *v = cfield(c, k);
        int cnt = k->offset == offsetof(run_config, discrete) ? c->n_discrete : c->n_chunks;
        size_t used = 0;
        used += (size_t)snprintf(buf, n, "[");
        for (int i = 0; i < cnt && used < n; i++)
            used += (size_t)snprintf(buf + used, n - used, "%s%d", i ? ", " : "", v[i]);
        if (used < n)
            snprintf(buf + used, n - used, "]");
        break;
    }
    }
}

int run_key_applies(const run_config *c, const run_key *k)
{
    if (strcmp(k->section, "model") != 0 || strcmp(k->name, "model") == 0)
        return 1;
    return (int)(c->takes >> (size_t)(k - run_keys) & 1);
}

/* Keys added after results files existed: left out of the run id while they
 * hold the value every earlier run had, so that the ids of earlier files
 * (and of runs that do not set them) stay what they were. */
static const struct {
    const char *name, *value;
} id_since[] = {
    {"encode", "sample"},
    {"hist_images", "10000"},
    {"unsup_images", "10000"},
    {"beta64", "nan"},
};

static int id_omits(const run_config *c, const run_key *k)
{
    char buf[64];
    for (size_t i = 0; i < sizeof id_since / sizeof id_since[0]; i++)
        if (strcmp(k->name, id_since[i].name) == 0) {
            run_config_format(c, k, buf, sizeof buf);
            return strcmp(buf, id_since[i].value) == 0;
        }
    return 0;
}

/* Keys that only say when to report (progress lines, curve points): the
 * trained model and its final metrics are the same whatever they are, so
 * they are no part of the run id. */
static int takes_no_part(const run_key *k)
{
    return strcmp(k->name, "log_every") == 0 || strcmp(k->name, "eval_every") == 0;
}

/* Methods that were once written under another method's name: their runs
 * keep the ids they had then, so that results files and checkpoints of that
 * time still name them. annealedvae was the capacity form of betavae (model
 * betavae with c_max set, beta unset) until 2026-11-29: its canonical text
 * says model=betavae and carries betavae's beta=nan line. */
static const struct {
    const char *model, *as_model, *key, *value;
} id_as[] = {
    {"annealedvae", "betavae", "beta", "nan"},
};

void run_config_id(const run_config *c, char id[17])
{
    /* Canonical text: "key=value\n" for every applicable key, in sorted key
     * order, so that neither YAML order nor table order changes the id. */
    const run_key *order[64];
    size_t n = 0;
    const char *as_model = NULL, *as_key = NULL, *as_value = NULL;
    for (size_t i = 0; i < sizeof id_as / sizeof id_as[0]; i++)
        if (strcmp(c->model, id_as[i].model) == 0) {
            as_model = id_as[i].as_model;
            as_key = id_as[i].key;
            as_value = id_as[i].value;
        }
    for (size_t i = 0; i < run_n_keys; i++)
        if ((run_key_applies(c, &run_keys[i]) || (as_key && !strcmp(run_keys[i].name, as_key))) &&
            !takes_no_part(&run_keys[i]) && !id_omits(c, &run_keys[i]))
            order[n++] = &run_keys[i];
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(order[j - 1]->name, order[j]->name) > 0; j--) {
            const run_key *t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    uint64_t h = HASH_FNV1A_INIT;
    char buf[1200];
    for (size_t i = 0; i < n; i++) {
        if (as_model && !strcmp(order[i]->name, "model"))
            snprintf(buf, sizeof buf, "%s", as_model);
        else if (as_key && !strcmp(order[i]->name, as_key))
            snprintf(buf, sizeof buf, "%s", as_value);
        else
            run_config_format(c, order[i], buf, sizeof buf);
        h = hash_fnv1a_str(h, order[i]->name);
        h = hash_fnv1a_str(h, "=");
        h = hash_fnv1a_str(h, buf);
        h = hash_fnv1a_str(h, "\n");
    }
    snprintf(id, 17, "%016llx", (unsigned long long)h);
}
