/* Milliseconds per training step of each method at the reference setting
 * (mlp, 64x64, batch 64; run with OPENBLAS_NUM_THREADS=1), the cost of the
 * beta-TCVAE estimator on its own, the betatcvae/betavae ratio (the
 * estimator's budget: at most 1.15) and the factorvae/betavae ratio (the
 * cost of its discriminator).
 *
 * Each configuration runs a few warm-up steps, then ROUNDS rounds of STEPS
 * steps interleaved with the other configurations; the figure is the fastest
 * round's mean, which is the least disturbed by whatever else the machine
 * does. Exits 1 when a model cannot be built or a step fails. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../src/model/model_impl.h"

enum { WARMUP = 2, STEPS = 6, ROUNDS = 3, NCONF = 9 };

typedef struct conf {
    const char *label;
    const char *kv[8]; /* key/value pairs, NULL-terminated */
    model *m;
    rng dr, nr;
    long t;
    double best_ms;
} conf;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int build(conf *c, err *e)
{
    run_config rc;
    run_config_defaults(&rc);
    const char *base[] = {"image_size", "64", "arch", "mlp", "batch_size", "64", NULL};
    for (const char **p = base; *p; p += 2)
        if (run_config_set(&rc, p[0], p[1], e) < 0)
            return e->code;
    for (const char *const *p = c->kv; *p; p += 2)
        if (run_config_set(&rc, p[0], p[1], e) < 0)
            return e->code;
    if (model_resolve(&rc, e) < 0 || model_create(&c->m, &rc, DATA_N, e) < 0)
        return e->code;
    rng_seed(&c->dr, 1, RNG_DATA);
    rng_seed(&c->nr, 1, RNG_NOISE);
    c->best_ms = INFINITY;
    return 0;
}

static int run_steps(conf *c, const data_source *d, int n, err *e)
{
    double terms[MODEL_MAX_TERMS];
    for (int i = 0; i < n; i++)
        if (model_step(c->m, d, &c->dr, &c->nr, ++c->t, terms, e) < 0)
            return e->code;
    return 0;
}

/* The estimator alone (forward + backward) at B = 64, D = 10. */
static double bench_estimator(int mss)
{
    enum { B = 64, D = 10, REPS = 200 };
    float mu[B * D], lv[B * D], z[B * D], dmu[B * D] = {0}, dlv[B * D] = {0}, dz[B * D] = {0};
    rng r;
    rng_seed(&r, 2, RNG_TEST);
    for (int n = 0; n < B * D; n++) {
        mu[n] = (float)rng_normal(&r);
        lv[n] = (float)(-2 + rng_uniform(&r));
        z[n] = mu[n] + expf(0.5f * lv[n]) * (float)rng_normal(&r);
    }
    tc_est t;
    err e;
    if (tc_create(&t, B, D, DATA_N, mss, &e) < 0)
        return NAN;
    double t0 = now_s();
    for (int i = 0; i < REPS; i++) {
        tc_forward(&t, mu, lv, z);
        tc_backward(&t, mu, z, 1.0 / B, 5.0 / B, -5.0 / B, -1.0 / B, dmu, dlv, dz);
    }
    double ms = (now_s() - t0) * 1e3 / REPS;
    tc_free(&t);
    return ms;
}

int main(void)
{
    conf confs[NCONF] = {
        {.label = "betavae", .kv = {"model", "betavae", NULL}},
        {.label = "betatcvae mss", .kv = {"model", "betatcvae", "estimator", "mss", NULL}},
        {.label = "betatcvae mws", .kv = {"model", "betatcvae", "estimator", "mws", NULL}},
        {.label = "jointvae", .kv = {"model", "jointvae", NULL}},
        {.label = "dsd", .kv = {"model", "dsd", NULL}},
        {.label = "annealedvae", .kv = {"model", "annealedvae", NULL}},
        {.label = "factorvae", .kv = {"model", "factorvae", NULL}},
        {.label = "dipvae1", .kv = {"model", "dipvae1", NULL}},
        {.label = "dipvae2", .kv = {"model", "dipvae2", NULL}},
    };
    err e;
    err_clear(&e);
    data_source *d = NULL;
    int rc = data_open_builtin(&d, 64, &e);
    for (int i = 0; i < NCONF && rc == 0; i++)
        if ((rc = build(&confs[i], &e)) == 0)
            rc = run_steps(&confs[i], d, WARMUP, &e);
    for (int r = 0; r < ROUNDS && rc == 0; r++)
        for (int i = 0; i < NCONF && rc == 0; i++) {
            double t0 = now_s();
            rc = run_steps(&confs[i], d, STEPS, &e);
            double ms = (now_s() - t0) * 1e3 / STEPS;
            if (ms < confs[i].best_ms)
                confs[i].best_ms = ms;
        }
    if (rc == 0) {
        printf("ms per training step, mlp 64x64, batch 64 (best of %d rounds of %d steps)\n",
               ROUNDS, STEPS);
        for (int i = 0; i < NCONF; i++)
            printf("  %-14s %8.1f ms\n", confs[i].label, confs[i].best_ms);
        printf("  tc estimator alone (forward + backward, B 64, D 10): mss %.3f ms, mws %.3f ms\n",
               bench_estimator(1), bench_estimator(0));
        printf("  betatcvae/betavae: mss %.3f, mws %.3f (budget 1.15)\n",
               confs[1].best_ms / confs[0].best_ms, confs[2].best_ms / confs[0].best_ms);
        printf("  factorvae/betavae: %.3f (its discriminator: 5 passes over 5 M parameters)\n",
               confs[6].best_ms / confs[0].best_ms);
    } else {
        fprintf(stderr, "bench_methods: %s\n", e.msg);
    }
    for (int i = 0; i < NCONF; i++)
        model_destroy(confs[i].m);
    data_close(d);
    return rc == 0 ? 0 : 1;
}
