/* dlib_codes: the shared codes of the disentanglement_lib cross-check
 * (tests/py/test_dlib.py) and the suite's cost on a full dSprites-sized table.
 *
 *   dlib_codes OUT.h5 [SEED]   a synthetic full-set table, every metric's draws
 *                              (the suite's own, from its streams) and every
 *                              score untangle computes from them, in OUT.h5
 *   dlib_codes --bench [D]     the suite at disentanglement_lib's default sizes
 *                              on a 737,280 x D table (default 10): seconds
 *                              (wall and CPU) per metric on stdout
 *
 * OUT.h5 (h5py-readable): codes (n, D) float32, sizes (K) int32, and for each
 * metric its draws <metric>_<set>_idx (m, width) uint64, <metric>_<set>_label
 * (m) int32 where labelled, with set train/eval/test/var, and its scores as
 * float64 datasets named score_<name> (scalars as shape (1,)). The suite is run
 * too, and the program fails unless it reproduces the metric-by-metric
 * scores exactly (same streams, same order). The table: K = 4 factors of
 * sizes 4, 5, 6, 8 (960 codes), D = 6 latents mixing them nonlinearly, with
 * a fixed per-observation jitter (so that few features tie). */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "untangle/metrics.h"

static hid_t out_file = H5I_INVALID_HID;

static void put(const char *name, hid_t type, int rank, const hsize_t *dims, const void *data)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(out_file, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (sp < 0 || d < 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        fprintf(stderr, "dlib_codes: cannot write %s\n", name);
        exit(1);
    }
    H5Dclose(d);
    H5Sclose(sp);
}

static void put_scores(const char *name, const double *v, size_t n)
{
    char full[128];
    snprintf(full, sizeof full, "score_%s", name);
    hsize_t dims[1] = {n};
    put(full, H5T_NATIVE_DOUBLE, 1, dims, v);
}

static void put_draws(const char *metric, const char *set, const metrics_draws *d)
{
    char name[128];
    snprintf(name, sizeof name, "%s_%s_idx", metric, set);
    hsize_t dims[2] = {d->m, (hsize_t)d->width};
    put(name, H5T_NATIVE_UINT64, 2, dims, d->idx);
    if (d->label) {
        snprintf(name, sizeof name, "%s_%s_label", metric, set);
        put(name, H5T_NATIVE_INT, 1, dims, d->label);
    }
}

static void check(int rc, const err *e, const char *what)
{
    if (rc) {
        fprintf(stderr, "dlib_codes: %s: %s\n", what, e->msg);
        exit(1);
    }
}

/* The synthetic table (n, D): latents of the factors u_k = v_k / (|V_k| - 1)
 * in [0, 1] plus a fixed jitter per observation, large enough that no
 * metric is at its maximum. */
static float *synthetic_codes(const metrics_table *t, uint64_t seed)
{
    float *z = malloc(sizeof *z * t->n * (size_t)t->D);
    rng r;
    rng_seed(&r, seed, RNG_TEST);
    int f[8];
    for (size_t i = 0; i < t->n; i++) {
        metrics_table_factors(t, i, f);
        double u[4];
        for (int k = 0; k < 4; k++)
            u[k] = (double)f[k] / (t->sizes[k] - 1);
        double v[6] = {u[0], 0.7 * u[1] + 0.3 * u[2], sin(3.0 * u[2]), u[3] * u[3],
                       0.5 * u[0] - 0.5 * u[3], 0.0};
        static const double jitter[6] = {0.3, 0.1, 0.1, 0.5, 0.2, 1.0};
        for (int j = 0; j < t->D; j++)
            z[i * (size_t)t->D + j] = (float)(v[j % 6] + jitter[j % 6] * rng_normal(&r));
    }
    return z;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The suite at the default sizes on a 737,280 x D table of dSprites' shape. */
static int bench(int D)
{
    static const int sizes[5] = {3, 6, 40, 32, 32};
    metrics_table t = {NULL, 737280, D, 5, sizes};
    float *z = malloc(sizeof *z * t.n * (size_t)D);
    if (!z)
        return 1;
    rng r;
    rng_seed(&r, 1, RNG_TEST);
    int f[5];
    for (size_t i = 0; i < t.n; i++) { /* one latent per factor, the rest noise */
        metrics_table_factors(&t, i, f);
        for (int j = 0; j < D; j++)
            z[i * (size_t)D + j] = (float)((j < 5 ? (double)f[j] / (sizes[j] - 1) : 0.0) +
                                           0.05 * rng_normal(&r));
    }
    t.codes = z;
    metrics_dlib_scores s;
    err e;
    err_clear(&e);
    double t0 = now();
    check(metrics_dlib_suite(&t, 0, NULL, &s, &e), &e, "suite");
    static const char *names[] = {"beta_vae", "factor_vae", "dci", "sap", "modularity_explicitness",
                                  "unsupervised"};
    double cpu = 0.0;
    printf("%-24s %8s %8s\n", "metric", "wall s", "cpu s");
    for (int id = 0; id < METRICS_DLIB_N_METRICS; id++) {
        printf("%-24s %8.2f %8.2f\n", names[id], s.seconds[id], s.cpu_seconds[id]);
        cpu += s.cpu_seconds[id];
    }
    printf("%-24s %8.2f %8.2f\n", "total", now() - t0, cpu);
    printf("beta_vae %.4f factor_vae %.4f dci %.4f/%.4f/%.4f sap %.4f modularity %.4f "
           "explicitness %.4f gwc %.4g mis %.4f\n",
           s.beta_vae_eval, s.factor_vae_eval, s.dci.disentanglement, s.dci.completeness,
           s.dci.informativeness_test, s.sap, s.modularity, s.explicitness_test,
           s.unsup.gaussian_wasserstein_correlation, s.unsup.mutual_info_score);
    free(z);
    return 0;
}

/* The cross-check's sizes: disentanglement_lib's batches, fewer points so
 * that scikit-learn refits them in seconds. */
static const metrics_dlib_config CHECK_SIZES = {
    .beta_vae_train = 1000, .beta_vae_eval = 500, .beta_vae_batch = 64,
    .factor_vae_train = 1000, .factor_vae_eval = 500, .factor_vae_var = 2000,
    .factor_vae_batch = 64, .factor_vae_threshold = 0.05,
    .dci_train = 2000, .dci_test = 1000, .sap_train = 2000, .sap_test = 1000,
    .modexp_train = 2000, .modexp_test = 1000, .unsup_train = 2000,
};

/* Draw metric id's sets from its suite stream, in the suite's order. */
static void draws_of(const metrics_table *t, uint64_t seed, int id, metrics_draws *a,
                     metrics_draws *b, metrics_draws *v)
{
    const metrics_dlib_config *c = &CHECK_SIZES;
    rng r;
    rng_seed(&r, seed, (uint64_t)METRICS_DLIB_STREAM + (uint64_t)id);
    err e;
    err_clear(&e);
    size_t ma = 0, mb = 0;
    int width = 1, labelled = 0;
    void (*draw)(const metrics_table *, rng *, metrics_draws *) = metrics_draw_points;
    switch (id) {
    case METRICS_DLIB_BETA_VAE:
        ma = c->beta_vae_train, mb = c->beta_vae_eval, width = 2 * c->beta_vae_batch;
        labelled = 1, draw = metrics_draw_beta_vae;
        break;
    case METRICS_DLIB_FACTOR_VAE:
        check(metrics_draws_alloc(v, c->factor_vae_var, 1, 0, &e), &e, "draws");
        metrics_draw_points(t, &r, v);
        ma = c->factor_vae_train, mb = c->factor_vae_eval, width = c->factor_vae_batch;
        labelled = 1, draw = metrics_draw_factor_vae;
        break;
    case METRICS_DLIB_DCI: ma = c->dci_train, mb = c->dci_test; break;
    case METRICS_DLIB_SAP: ma = c->sap_train, mb = c->sap_test; break;
    case METRICS_DLIB_MODEXP: ma = c->modexp_train, mb = c->modexp_test; break;
    default: ma = c->unsup_train;
    }
    check(metrics_draws_alloc(a, ma, width, labelled, &e), &e, "draws");
    draw(t, &r, a);
    if (mb) {
        check(metrics_draws_alloc(b, mb, width, labelled, &e), &e, "draws");
        draw(t, &r, b);
    }
}

static int same(double a, double b) { return a == b || (a != a && b != b); }

/* Score every metric from its draws, write draws and scores, and compare
 * with the suite's numbers. */
static int cross_check(const metrics_table *t, uint64_t seed)
{
    const int D = t->D, K = t->K;
    err e;
    err_clear(&e);
    metrics_draws a[METRICS_DLIB_N_METRICS] = {0}, b[METRICS_DLIB_N_METRICS] = {0}, v = {0};
    for (int id = 0; id < METRICS_DLIB_N_METRICS; id++)
        draws_of(t, seed, id, &a[id], &b[id], id == METRICS_DLIB_FACTOR_VAE ? &v : NULL);
    put_draws("beta_vae", "train", &a[0]);
    put_draws("beta_vae", "eval", &b[0]);
    put_draws("factor_vae", "var", &v);
    put_draws("factor_vae", "train", &a[1]);
    put_draws("factor_vae", "eval", &b[1]);
    put_draws("dci", "train", &a[2]);
    put_draws("dci", "test", &b[2]);
    put_draws("sap", "train", &a[3]);
    put_draws("sap", "test", &b[3]);
    put_draws("modexp", "train", &a[4]);
    put_draws("modexp", "test", &b[4]);
    put_draws("unsup", "train", &a[5]);

    double bv[2], fv[3], imp[D * K], per_code[D], sap_m[D * K], gap[K], mod_pc[D], expl[K];
    metrics_dci dci;
    double sap, me[3];
    metrics_unsupervised u;
    int active = 0;
    check(metrics_beta_vae(t, &a[0], &b[0], &bv[0], &bv[1], &e), &e, "beta_vae");
    check(metrics_factor_vae(t, &v, &a[1], &b[1], CHECK_SIZES.factor_vae_threshold, &fv[0],
                             &fv[1], &active, &e), &e, "factor_vae");
    fv[2] = active;
    check(metrics_dci_score(t, &a[2], &b[2], &dci, imp, per_code, &e), &e, "dci");
    check(metrics_sap(t, &a[3], &b[3], &sap, gap, sap_m, &e), &e, "sap");
    check(metrics_modularity_explicitness(t, &a[4], &b[4], &me[0], &me[1], &me[2], expl, mod_pc,
                                          &e), &e, "modularity_explicitness");
    check(metrics_unsupervised_score(t, &a[5], &u, &e), &e, "unsupervised");
    put_scores("beta_vae", bv, 2);
    put_scores("factor_vae", fv, 3);
    double dv[4] = {dci.disentanglement, dci.completeness, dci.informativeness_train,
                    dci.informativeness_test};
    put_scores("dci", dv, 4);
    put_scores("dci_importance", imp, (size_t)D * K);
    put_scores("dci_completeness_factor", dci.completeness_factor, (size_t)K);
    put_scores("dci_informativeness_factor", dci.informativeness_factor, (size_t)K);
    put_scores("dci_per_code", per_code, (size_t)D);
    put_scores("sap", &sap, 1);
    put_scores("sap_gap", gap, (size_t)K);
    put_scores("sap_matrix", sap_m, (size_t)D * K);
    put_scores("modexp", me, 3);
    put_scores("explicitness_factor", expl, (size_t)K);
    put_scores("modularity_per_code", mod_pc, (size_t)D);
    double uv[4] = {u.gaussian_total_correlation, u.gaussian_wasserstein_correlation,
                    u.gaussian_wasserstein_correlation_norm, u.mutual_info_score};
    put_scores("unsupervised", uv, 4);

    metrics_dlib_scores s;
    check(metrics_dlib_suite(t, seed, &CHECK_SIZES, &s, &e), &e, "suite");
    double suite[] = {s.beta_vae_train, s.beta_vae_eval, s.factor_vae_train, s.factor_vae_eval,
                      s.dci.disentanglement, s.dci.completeness, s.dci.informativeness_test,
                      s.sap, s.modularity, s.explicitness_train, s.explicitness_test,
                      s.unsup.gaussian_wasserstein_correlation, s.unsup.mutual_info_score};
    double mine[] = {bv[0], bv[1], fv[0], fv[1], dv[0], dv[1], dv[3], sap, me[0], me[1], me[2],
                     uv[1], uv[3]};
    int bad = 0;
    for (size_t i = 0; i < sizeof suite / sizeof *suite; i++)
        if (!same(suite[i], mine[i])) {
            fprintf(stderr, "dlib_codes: suite value %zu is %.17g, the metric alone %.17g\n", i,
                    suite[i], mine[i]);
            bad = 1;
        }
    for (int id = 0; id < METRICS_DLIB_N_METRICS; id++) {
        metrics_draws_free(&a[id]);
        metrics_draws_free(&b[id]);
    }
    metrics_draws_free(&v);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--bench") == 0)
        return bench(argc >= 3 ? atoi(argv[2]) : 10);
    if (argc < 2) {
        fprintf(stderr, "usage: dlib_codes OUT.h5 [SEED] | dlib_codes --bench [D]\n");
        return 2;
    }
    uint64_t seed = argc >= 3 ? strtoull(argv[2], NULL, 10) : 0;
    static const int sizes[4] = {4, 5, 6, 8};
    metrics_table t = {NULL, 4 * 5 * 6 * 8, 6, 4, sizes};
    float *z = synthetic_codes(&t, seed);
    t.codes = z;
    out_file = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (out_file < 0) {
        fprintf(stderr, "dlib_codes: cannot create %s\n", argv[1]);
        return 1;
    }
    hsize_t dz[2] = {t.n, (hsize_t)t.D}, dk[1] = {(hsize_t)t.K};
    put("codes", H5T_NATIVE_FLOAT, 2, dz, z);
    put("sizes", H5T_NATIVE_INT, 1, dk, sizes);
    int rc = cross_check(&t, seed);
    H5Fclose(out_file);
    free(z);
    return rc;
}
