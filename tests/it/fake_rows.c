/* fake_rows: a results file in the grid shape of a sweep file, without
 * training, for the test that draws the report of every sweep file in sweeps/
 * (tests/py/test_sweeps_report.py).
 *
 *   fake_rows SWEEP.yaml OUT.h5 [SEEDS]
 *
 * Loads SWEEP.yaml as `untangle sweep` does (config_load: every run's
 * resolved configuration and run id), keeps the runs of its first SEEDS
 * seeds (default 2) and appends one row per run through results_append,
 * with the run's own configuration in every key column. The numbers are
 * plausible, not measured: each metric a pseudo-random value in its usual
 * range, derived from the run id, NaN where the method does not compute it
 * (as model_get_info describes the method: Chen's estimators and the KL only
 * for a stochastic code, the chunk MIG only for a code with one chunk per
 * factor, disentanglement_lib's scores only in full-set mode, disc_acc only
 * for a discrete latent on a data set with a factor named shape); per-factor
 * gaps, an MI matrix of the code's units, a traversal grid and a few curve
 * points of the method's loss terms. The last run kept is a failed row
 * (status failed, an error text, no metrics), as a sweep with a crash has.
 * Exit 0, or 1 with a message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "untangle/config.h"
#include "untangle/data.h"
#include "untangle/model.h"
#include "untangle/results.h"
#include "untangle/spec.h"

static int fail(const char *what, const err *e)
{
    fprintf(stderr, "fake_rows: %s: %s\n", what, e->msg);
    return 1;
}

/* A value in [0, 1) that depends on the run id and the slot only. */
static double u01(const char *run_id, int slot)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)slot * 0x9e3779b97f4a7c15ull;
    for (const char *p = run_id; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (double)(h >> 11) / 9007199254740992.0;
}

/* The plausible result of run c (info: its method as model_get_info says). */
static int fake_result(const run_config *c, const char *id, const model_info *in, run_result *r,
                       err *e)
{
    data_factor_desc dd;
    int rc = data_describe_name(c->name, &dd, e);
    if (rc < 0)
        return rc;
    const int K = dd.K, full = strcmp(c->encode, "full") == 0, chunks = in->n_chunks == K;
    int slot = 0;
#define U(lo, hi) ((lo) + ((hi) - (lo)) * u01(id, slot++))
    r->status = RUN_OK;
    r->steps = c->steps;
    r->train_s = U(100, 1000);
    r->eval_s = U(10, 100);
    r->wall_s = r->train_s + r->eval_s;
    r->imgs_per_s = (double)c->steps * c->batch_size / r->train_s;
    double *m = r->metric;
    m[RUN_M_RECON] = U(20, 80);
    m[RUN_M_KL] = in->stochastic ? U(5, 30) : NAN;
    m[RUN_M_ELBO] = in->stochastic ? -(m[RUN_M_RECON] + m[RUN_M_KL]) : NAN;
    m[RUN_M_LOSS] = m[RUN_M_RECON] + (in->stochastic ? m[RUN_M_KL] : U(0, 5));
    if (in->stochastic) {
        m[RUN_M_TC] = U(0.1, 2);
        m[RUN_M_MI] = U(2, 7);
        m[RUN_M_DWKL] = U(0.2, 1.2);
        m[RUN_M_MIG] = U(0.02, 0.5);
        m[RUN_M_EVAL_IMAGES] = full ? 737280.0 : (double)c->images;
    }
    m[RUN_M_MIG_HIST] = U(0.02, 0.5);
    m[RUN_M_GAUSSIAN_TC] = U(0.1, 1.5);
    m[RUN_M_SWAP_ACC] = U(0.2, 0.9);
    if (chunks)
        m[RUN_M_CHUNK_MIG] = U(0.1, 0.9);
    if (full)
        for (int k = RUN_M_BETA_VAE; k <= RUN_M_MI_SCORE; k++)
            m[k] = U(0.1, 0.95);
    int shape = 0;
    while (shape < K && strcmp(dd.names[shape], "shape") != 0)
        shape++;
    if (in->n_discrete > 0 && shape < K)
        m[RUN_M_DISC_ACC] = U(1.0 / 3.0, 1.0);
    r->n_factors = K;
    for (int k = 0; k < K; k++) {
        r->mig_factor[k] = in->stochastic ? U(0, 0.8) : NAN;
        r->swap_factor[k] = U(0.2, 1);
        r->chunk_factor[k] = chunks ? U(0, 1) : NAN;
    }
    /* the MI matrix: unit u carries factor u mod K, a little of the others */
    r->n_units = in->D + in->n_discrete;
    r->mi = malloc(sizeof(float) * (size_t)r->n_units * (size_t)K);
    /* the traversal grid: a row of RUN_TRAV_STEPS cells of S x S per unit */
    r->trav_h = r->n_units * in->S;
    r->trav_w = RUN_TRAV_STEPS * in->S;
    r->traversal = malloc((size_t)r->trav_h * (size_t)r->trav_w);
    if (!r->mi || !r->traversal)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (int u = 0; u < r->n_units; u++)
        for (int k = 0; k < K; k++)
            r->mi[u * K + k] = (float)(k == u % K ? U(0.3, 2) : U(0, 0.1));
    for (int y = 0; y < r->trav_h; y++)
        for (int x = 0; x < r->trav_w; x++)
            r->traversal[(size_t)y * r->trav_w + x] = (uint8_t)((x / in->S * 25 + y) & 0xff);
    for (int t = 0; t < in->n_terms; t++)
        for (int p = 1; p <= 5; p++) {
            long step = (long)p * (c->steps / 5 > 0 ? c->steps / 5 : 1);
            rc = run_result_add_curve(r, step, in->terms[t], U(1, 100) / p, e);
            if (rc < 0)
                return rc;
        }
    /* learning curves (eval_every): a few eval.* and per-factor points */
    for (long step = c->eval_every; c->eval_every > 0 && step <= c->steps; step += c->eval_every) {
        char name[sizeof r->curve[0].name];
        if ((rc = run_result_add_curve(r, step, "eval.mig", U(0, 0.5), e)) < 0 ||
            (rc = run_result_add_curve(r, step, "eval.recon", U(20, 80), e)) < 0)
            return rc;
        for (int k = 0; k < K; k++) {
            snprintf(name, sizeof name, "mi.%s", dd.names[k]);
            if ((rc = run_result_add_curve(r, step, name, U(0, 2), e)) < 0)
                return rc;
        }
    }
#undef U
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: fake_rows SWEEP.yaml OUT.h5 [SEEDS]\n");
        return 1;
    }
    const long n_seeds = argc > 3 ? atol(argv[3]) : 2;
    config_sweep *s = NULL;
    results *f = NULL;
    err e;
    err_clear(&e);
    if (config_load(&s, argv[1], 0, &e) < 0)
        return fail("loading the sweep", &e);
    results_meta meta = {.sweep_name = s->name, .sweep_yaml = s->text, .sweep_hash = s->hash,
                         .data_name = s->base.name, .untangle_version = UNTANGLE_VERSION,
                         .library_versions = "fake rows: nothing was trained"};
    if (results_create(&f, argv[2], &meta, &e) < 0)
        return fail("creating the results file", &e);
    /* the first n_seeds distinct seeds, in expansion order */
    long seeds[64];
    size_t n_kept = 0, last = 0;
    int n_distinct = 0;
    for (size_t i = 0; i < s->n_runs; i++) {
        int known = 0;
        for (int j = 0; j < n_distinct && !known; j++)
            known = seeds[j] == s->runs[i].seed;
        if (!known && n_distinct < n_seeds && n_distinct < 64)
            seeds[n_distinct++] = s->runs[i].seed;
    }
    for (size_t i = 0; i < s->n_runs; i++)
        for (int j = 0; j < n_distinct; j++)
            if (seeds[j] == s->runs[i].seed)
                last = i;
    int rc = 0;
    for (size_t i = 0; i < s->n_runs && rc == 0; i++) {
        const run_config *c = &s->runs[i];
        int keep = 0;
        for (int j = 0; j < n_distinct && !keep; j++)
            keep = seeds[j] == c->seed;
        if (!keep)
            continue;
        model *mod = NULL;
        model_info in;
        if (model_create(&mod, c, DATA_N, &e) < 0) {
            rc = fail("creating the model", &e);
            break;
        }
        model_get_info(mod, &in);
        results_row row;
        memset(&row, 0, sizeof row);
        row.index = (long)i;
        memcpy(row.run_id, s->run_ids[i], sizeof row.run_id);
        row.attempt = 1;
        row.rank = 1 + (int)(i % 4);
        snprintf(row.host, sizeof row.host, "node%02zu", i % 8);
        run_result r;
        run_result_init(&r);
        if (i == last) {
            r.status = RUN_FAILED;
            snprintf(r.error, sizeof r.error, "crashed (signal 11, Segmentation fault)");
        } else if (fake_result(c, s->run_ids[i], &in, &r, &e) < 0) {
            rc = fail("making a row", &e);
        }
        if (rc == 0 && results_append(f, &row, c, &r, &e) < 0)
            rc = fail("appending a row", &e);
        run_result_free(&r);
        model_destroy(mod);
        n_kept++;
    }
    if (results_close(f, &e) < 0 && rc == 0)
        rc = fail("closing the results file", &e);
    config_free(s);
    if (rc == 0)
        printf("fake_rows: %zu rows of %zu runs in %s\n", n_kept, (size_t)s->n_runs, argv[2]);
    return rc;
}
