/* bench_metrics: what the evaluation of a run costs, against its training.
 *
 * 1. The Chen et al. estimator's kernel: seconds per (sample x posterior x
 *    unit) log-density + exp, measured on a synthetic set, and its cost
 *    extrapolated to the full 737,280-image setting of Chen et al.'s
 *    released code (10,000 samples for each entropy; MIG over all five
 *    factors) and to this project's default eval.samples.
 * 2. A quick-sweep run (betatcvae, mlp, 32x32, batch 64, D = 10): the time of
 *    a training step, then run_evaluate at the eval sizes of
 *    sweeps/quick.yaml and at run_config_defaults', each as a fraction of
 *    the training time of its sweep, with the parts (encode + recon, the
 *    decomposition, Chen's MI matrix, histogram MIG, swap accuracy,
 *    traversal) timed separately.
 * One core (OPENBLAS_NUM_THREADS=1, as make bench sets). About 40 s. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "untangle/data.h"
#include "untangle/metrics.h"
#include "untangle/model.h"
#include "untangle/rng.h"
#include "untangle/run.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(const char *what, const err *e)
{
    fprintf(stderr, "bench_metrics: %s: %s\n", what, e->msg);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "bench_metrics: out of memory\n");
        exit(1);
    }
    return p;
}

/* ---- 1. the Chen estimator's kernel ------------------------------------------ */

static double chen_kernel_ns(void)
{
    const size_t n = 20000, m = 1000;
    const int D = 10;
    float *mu = xmalloc(sizeof(float) * n * D), *lv = xmalloc(sizeof(float) * n * D),
          *z = xmalloc(sizeof(float) * n * D);
    rng r;
    rng_seed(&r, 1, RNG_TEST);
    for (size_t i = 0; i < n * D; i++) {
        mu[i] = (float)rng_normal(&r);
        lv[i] = (float)(-2.0 + rng_uniform(&r));
    }
    metrics_posterior q = {n, D, mu, lv, 0, NULL, NULL};
    metrics_sample_posterior(&q, &r, z, NULL);
    double h[10], hj, best = 1e30;
    err e;
    for (int rep = 0; rep < 5; rep++) { /* best of 5: the machine may be shared */
        double t0 = now();
        if (metrics_entropies(&q, z, NULL, m, h, &hj, &e) < 0)
            die("metrics_entropies", &e);
        double t = now() - t0;
        best = t < best ? t : best;
    }
    /* per (sample, posterior, unit): D unit densities + the joint's exp */
    double ns = best * 1e9 / ((double)m * (double)n * (D + 1));
    printf("chen kernel: %zu samples x %zu posteriors x %d dims: %.3f s, %.3f ns per "
           "sample*posterior*(D+1) = %.2f s per 1e9 log-density evaluations\n",
           m, n, D, best, ns, ns);
    free(mu);
    free(lv);
    free(z);
    return ns;
}

/* Unit-evaluations (sample x posterior x (D+1)) of the decomposition and of
 * the MIG matrix on n images with `samples` samples per entropy, D dims. */
static double chen_work(double n, double samples, int D, double *mig_work)
{
    double dec = fmin(samples, n) * n * (D + 1);
    double mig = fmin(samples, n) * n * D; /* marginals */
    for (int k = 0; k < DATA_K; k++) {
        double V = data_factor_sizes[k], nv = n / V;
        mig += V * fmin(samples, nv) * nv * D;
    }
    *mig_work = mig;
    return dec;
}

/* ---- 2. a quick-sweep run ------------------------------------------------------- */

typedef struct parts {
    double encode, decomp, mi_chen, mig_hist, swap, trav;
} parts;

typedef struct model_codec {
    model *m;
    float *mu, *alpha;
} model_codec;

static void enc_cb(void *ctx, const float *x, const int *f, size_t n, float *code)
{
    (void)f;
    model_codec *mc = ctx;
    model_encode(mc->m, x, n, mc->mu, NULL, NULL);
    model_eval_code(mc->m, mc->mu, mc->alpha, n, code);
}

static void dec_cb(void *ctx, const float *code, size_t n, float *logits)
{
    model_codec *mc = ctx;
    model_decode(mc->m, code, n, logits);
}

/* The parts of run_evaluate, timed one by one (same work, same order). */
static void time_parts(model *m, const data_source *d, const run_config *c, parts *p)
{
    const size_t n = (size_t)c->images, P = 32 * 32, D = 10;
    float *x = xmalloc(sizeof(float) * 256 * P), *lg = xmalloc(sizeof(float) * 256 * P);
    float *mu = xmalloc(sizeof(float) * n * D), *lv = xmalloc(sizeof(float) * n * D),
          *z = xmalloc(sizeof(float) * n * D);
    int *f = xmalloc(sizeof(int) * n * DATA_K);
    err e;
    rng r, nr;
    rng_seed(&r, 0, RNG_EVAL);
    rng_seed(&nr, 0, RNG_EVAL * 1000 + 1);
    double t0 = now();
    for (size_t i0 = 0; i0 < n; i0 += 256) {
        size_t b = n - i0 < 256 ? n - i0 : 256;
        data_sample(d, &r, (int)b, x, f + i0 * DATA_K, NULL);
        model_encode(m, x, b, mu + i0 * D, lv + i0 * D, NULL);
        if (i0 < RUN_RECON_MAX) { /* recon: eval code and one sample */
            model_decode(m, mu + i0 * D, b, lg);
            model_decode(m, mu + i0 * D, b, lg);
        }
    }
    metrics_posterior q = {n, (int)D, mu, lv, 0, NULL, NULL};
    metrics_sample_posterior(&q, &nr, z, NULL);
    double t1 = now();
    metrics_decomposition dc;
    if (metrics_tc_decompose(&q, z, NULL, (size_t)c->samples, &dc, &e) < 0)
        die("tc", &e);
    double t2 = now();
    double mi[10 * DATA_K], gap[DATA_K], mig;
    if (metrics_mi_chen(&q, z, NULL, f, DATA_K, data_factor_sizes, (size_t)c->samples, mi, &e) <
        0)
        die("mi_chen", &e);
    double t3 = now();
    if (metrics_mig_hist(mu, n < 10000 ? n : 10000, (int)D, NULL, 0, NULL, f, DATA_K,
                         data_factor_sizes, gap, &mig, &e) < 0)
        die("mig_hist", &e);
    double gtc;
    if (metrics_gaussian_tc(mu, n, (int)D, &gtc, &e) < 0)
        die("gaussian_tc", &e);
    double t4 = now();
    model_codec mc = {m, xmalloc(sizeof(float) * 2 * 64 * D), NULL};
    metrics_codec cd = {&mc, (int)D, 32, enc_cb, dec_cb, 1};
    unsigned char mask[DATA_K * 10] = {0};
    for (int k = 0; k < DATA_K; k++)
        mask[k * 10 + k] = 1;
    double acc[DATA_K], am;
    rng pr;
    rng_seed(&pr, 0, RNG_PAIRS);
    if (metrics_swap_accuracy(&cd, mask, c->pairs, &pr, acc, &am, &e) < 0)
        die("swap", &e);
    double t5 = now();
    uint8_t *img;
    int h, w;
    if (metrics_traversal(&cd, mu, 10, 0, NULL, RUN_TRAV_STEPS, RUN_TRAV_LIMIT, &img, &h, &w, &e) < 0)
        die("traversal", &e);
    double t6 = now();
    p->encode = t1 - t0;
    p->decomp = t2 - t1;
    p->mi_chen = t3 - t2;
    p->mig_hist = t4 - t3;
    p->swap = t5 - t4;
    p->trav = t6 - t5;
    free(img);
    free(mc.mu);
    free(x);
    free(lg);
    free(mu);
    free(lv);
    free(z);
    free(f);
}

static void eval_case(model *m, const data_source *d, run_config c, const char *label,
                      long images, long samples, long pairs, long steps, double step_s)
{
    c.images = images;
    c.samples = samples;
    c.pairs = pairs;
    run_result r;
    run_result_init(&r);
    err e;
    double t0 = now();
    if (run_evaluate(m, d, &c, &r, &e) < 0)
        die("run_evaluate", &e);
    double ev = now() - t0;
    double train = (double)steps * step_s;
    printf("%s: eval {images %ld, samples %ld, pairs %ld}: %.2f s = %.1f %% of training "
           "(%ld steps x %.1f ms = %.1f s)\n",
           label, images, samples, pairs, ev, 100.0 * ev / train, steps, 1e3 * step_s, train);
    printf("    mig %.3f mig_hist %.3f tc %.3f swap %.3f\n", r.metric[RUN_M_MIG],
           r.metric[RUN_M_MIG_HIST], r.metric[RUN_M_TC], r.metric[RUN_M_SWAP_ACC]);
    parts p;
    time_parts(m, d, &c, &p);
    printf("    parts: encode+recon %.2f s, tc/mi/dwkl %.2f s, chen MI matrix %.2f s, "
           "mig_hist+gaussian_tc %.2f s, swap %.2f s, traversal %.2f s\n",
           p.encode, p.decomp, p.mi_chen, p.mig_hist, p.swap, p.trav);
    run_result_free(&r);
}

int main(void)
{
    double ns = chen_kernel_ns();
    const double N = DATA_N;
    double mig_w, dec_w;
    dec_w = chen_work(N, 10000, 10, &mig_w);
    printf("chen estimator on all %u images, D = 10, 10,000 samples per entropy (the "
           "authors' setting): decomposition %.2e evals = %.0f s, MIG matrix %.2e evals = %.0f "
           "s, total %.1f min on one core\n",
           DATA_N, dec_w, dec_w * ns * 1e-9, mig_w, mig_w * ns * 1e-9,
           (dec_w + mig_w) * ns * 1e-9 / 60.0);
    dec_w = chen_work(N, 2000, 10, &mig_w);
    printf("  same with eval.samples = 2000: %.0f s + %.0f s = %.1f min\n", dec_w * ns * 1e-9,
           mig_w * ns * 1e-9, (dec_w + mig_w) * ns * 1e-9 / 60.0);
    dec_w = chen_work(10000, 2000, 10, &mig_w);
    printf("  defaults (10,000 images, 2,000 samples): %.2e + %.2e evals = %.2f s\n", dec_w,
           mig_w, (dec_w + mig_w) * ns * 1e-9);

    run_config c;
    run_config_defaults(&c);
    err e;
    if (run_config_set(&c, "model", "betatcvae", &e) < 0 ||
        run_config_set(&c, "image_size", "32", &e) < 0 || model_resolve(&c, &e) < 0)
        die("config", &e);
    data_source *d = NULL;
    if (data_open_builtin(&d, 32, &e) < 0)
        die("data", &e);
    model *m = NULL;
    if (model_create(&m, &c, data_count(d), &e) < 0)
        die("model", &e);
    rng dr, nr;
    rng_seed(&dr, 0, RNG_DATA);
    rng_seed(&nr, 0, RNG_NOISE);
    double terms[MODEL_MAX_TERMS];
    for (long t = 1; t <= 20; t++) /* warm-up */
        if (model_step(m, d, &dr, &nr, t, terms, &e) < 0)
            die("step", &e);
    const long steps = 200;
    double t0 = now();
    for (long t = 21; t < 21 + steps; t++)
        if (model_step(m, d, &dr, &nr, t, terms, &e) < 0)
            die("step", &e);
    double step_s = (now() - t0) / (double)steps;
    printf("training: betatcvae mlp 32x32 batch 64 D 10: %.2f ms per step\n", 1e3 * step_s);
    eval_case(m, d, c, "sweeps/quick.yaml (1200 steps)", 5000, 1000, 100, 1200, step_s);
    eval_case(m, d, c, "run_config_defaults (3000 steps)", 10000, 2000, 200, 3000, step_s);
    model_destroy(m);
    data_close(d);
    return 0;
}
