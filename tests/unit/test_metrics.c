/* test_metrics: every estimator of the metrics module on synthetic tables with
 * known answers (no training), the swap-accuracy candidate set checked by
 * rendering, a numpy cross-check of disentanglement_lib's MIG
 * (tests/unit/metrics_ref.py), and run_evaluate's reproducibility on an
 * untrained model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "untangle/data.h"
#include "untangle/metrics.h"
#include "untangle/model.h"
#include "untangle/rng.h"
#include "untangle/run.h"

enum { K = DATA_K };

/* ---- helpers ---------------------------------------------------------------- */

/* n items drawn uniformly from the factor grid: f (n, K). */
static int *random_factors(size_t n, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed, RNG_TEST);
    int *f = malloc(sizeof(int) * n * K);
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < K; k++)
            f[i * K + k] = (int)rng_below(&r, (uint64_t)data_factor_sizes[k]);
    return f;
}

/* Every item of the grid, in canonical order: f (DATA_N, K). */
static int *grid_factors(void)
{
    int *f = malloc(sizeof(int) * (size_t)DATA_N * K);
    assert_non_null(f);
    for (uint32_t i = 0; i < DATA_N; i++)
        data_factors(i, f + (size_t)i * K);
    return f;
}

/* codes (n, K): latent k = class of factor k mapped to [-1, 1] */
static float *copy_codes(const int *f, size_t n)
{
    float *z = malloc(sizeof(float) * n * K);
    assert_non_null(z);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < K; k++)
            z[i * K + k] = (float)(2.0 * f[i * K + k] / (data_factor_sizes[k] - 1) - 1.0);
    return z;
}

static double factor_log_size(int k) { return log((double)data_factor_sizes[k]); }

/* ---- histogram estimators (disentanglement_lib) ----------------------------- */

static void test_discretize_like_numpy(void **state)
{
    (void)state;
    /* 0..39 into 20 bins of width 1.95: two values per bin */
    float x[40];
    int b[40];
    for (int i = 0; i < 40; i++)
        x[i] = (float)i;
    metrics_discretize(x, 40, 1, 20, b);
    for (int i = 0; i < 40; i++)
        assert_int_equal(b[i], i / 2);
    /* the max goes to the last bin, the min to the first */
    float y[3] = {-1.0f, 3.0f, 0.5f};
    int c[3];
    metrics_discretize(y, 3, 1, 20, c);
    assert_int_equal(c[0], 0);
    assert_int_equal(c[1], 19);
    assert_int_equal(c[2], 7); /* edges -1 + 0.2 i: eight of them (i = 0..7) are <= 0.5 */
    /* constant: one bin (numpy widens the range to [x-0.5, x+0.5]) */
    float k3[3] = {2.0f, 2.0f, 2.0f};
    metrics_discretize(k3, 3, 1, 20, c);
    assert_int_equal(c[0], c[1]);
    assert_int_equal(c[1], c[2]);
}

/* Expected gap of a latent copying factor k on the full grid: the other
 * latents are functions of other factors, independent of v_k on the grid, so
 * their plug-in MI is exactly 0 and gap = H(bin(v_k)) / H(v_k). */
static double copy_gap_expected(int k)
{
    int V = data_factor_sizes[k];
    float x[40] = {0};
    int b[40], cnt[20] = {0};
    for (int v = 0; v < V; v++)
        x[v] = (float)(2.0 * v / (V - 1) - 1.0);
    metrics_discretize(x, (size_t)V, 1, 20, b);
    for (int v = 0; v < V; v++)
        cnt[b[v]]++;
    double h = 0.0;
    for (int i = 0; i < 20; i++)
        if (cnt[i])
            h -= (double)cnt[i] / V * log((double)cnt[i] / V);
    return h / log((double)V);
}

static void test_mig_hist_factor_copies(void **state)
{
    (void)state;
    int *f = grid_factors();
    float *z = copy_codes(f, DATA_N);
    double gap[K], mig;
    err e;
    assert_int_equal(metrics_mig_hist(z, DATA_N, K, NULL, 0, NULL, f, K, data_factor_sizes,
                                      gap, &mig, &e),
                     0);
    /* shape (3) and scale (6) keep one bin per value: gap 1 */
    assert_true(fabs(gap[0] - 1.0) < 1e-12);
    assert_true(fabs(gap[1] - 1.0) < 1e-12);
    /* orientation: 40 values, 20 bins of width 1.95 -> exactly two per bin,
     * gap log(20)/log(40) */
    assert_true(fabs(gap[2] - log(20.0) / log(40.0)) < 1e-12);
    /* positions: 32 values, bins of width 1.55 hold one or two values
     * (12 bins of two, 8 of one): H = 0.75 log 16 + 0.25 log 32, gap
     * 0.8500 rather than log(20)/log(32) = 0.8644 */
    double hp = (0.75 * log(16.0) + 0.25 * log(32.0)) / log(32.0);
    for (int k = 3; k < 5; k++) {
        assert_true(fabs(gap[k] - hp) < 1e-12);
        assert_true(fabs(gap[k] - copy_gap_expected(k)) < 1e-12);
    }
    assert_true(fabs(copy_gap_expected(2) - log(20.0) / log(40.0)) < 1e-12);
    double mean = (2.0 + log(20.0) / log(40.0) + 2.0 * hp) / 5.0;
    assert_true(fabs(mig - mean) < 1e-12);
    free(f);
    free(z);
}

static void test_mig_hist_independent(void **state)
{
    (void)state;
    const size_t n = 10000;
    int *f = random_factors(n, 1);
    float *z = malloc(sizeof(float) * n * 6);
    rng r;
    rng_seed(&r, 2, RNG_TEST);
    for (size_t i = 0; i < n * 6; i++)
        z[i] = (float)rng_normal(&r);
    double gap[K], mig;
    err e;
    assert_int_equal(metrics_mig_hist(z, n, 6, NULL, 0, NULL, f, K, data_factor_sizes, gap,
                                      &mig, &e),
                     0);
    assert_true(mig >= 0.0 && mig < 0.02);
    free(f);
    free(z);
}

static void test_mig_hist_two_copies(void **state)
{
    (void)state;
    /* latents 0..4 copy the factors, latent 5 copies posX again (affinely
     * rescaled: the same bins) -> posX's gap is 0, the others keep theirs */
    const size_t n = 10000;
    int *f = random_factors(n, 3);
    float *c = copy_codes(f, n);
    float *z = malloc(sizeof(float) * n * 6);
    for (size_t i = 0; i < n; i++) {
        memcpy(z + i * 6, c + i * K, sizeof(float) * K);
        z[i * 6 + 5] = 3.0f * c[i * K + 3] + 1.0f;
    }
    double gap[K], mig;
    err e;
    assert_int_equal(metrics_mig_hist(z, n, 6, NULL, 0, NULL, f, K, data_factor_sizes, gap,
                                      &mig, &e),
                     0);
    assert_true(fabs(gap[3]) < 1e-12);
    assert_true(gap[0] > 0.98 && gap[4] > 0.8);
    free(f);
    free(c);
    free(z);
}

static void test_discrete_units_in_hist(void **state)
{
    (void)state;
    /* a categorical unit equal to shape carries all of it */
    const size_t n = 3000;
    int *f = random_factors(n, 4);
    int *cat = malloc(sizeof(int) * n);
    float *z = malloc(sizeof(float) * n);
    rng r;
    rng_seed(&r, 5, RNG_TEST);
    for (size_t i = 0; i < n; i++) {
        cat[i] = f[i * K];
        z[i] = (float)rng_normal(&r);
    }
    int three = 3;
    double mi[2 * K], h[K];
    err e;
    assert_int_equal(metrics_mi_hist(z, n, 1, cat, 1, &three, f, K, data_factor_sizes, 20, mi,
                                     h, &e),
                     0);
    assert_true(fabs(mi[1 * K + 0] - h[0]) < 1e-12);
    assert_true(mi[0 * K + 0] < 0.02);
    free(f);
    free(cat);
    free(z);
}

/* The same table through tests/unit/metrics_ref.py (numpy). */
static void test_mig_hist_matches_numpy(void **state)
{
    (void)state;
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_mig_hist_matches_numpy: SKIPPED: /usr/bin/python3 with numpy "
                        "is not available (apt-get install python3-numpy)\n");
        skip();
    }
    const char *script = "tests/unit/metrics_ref.py";
    if (access(script, R_OK) != 0) {
        fprintf(stderr, "test_mig_hist_matches_numpy: %s not found (run from the repo root)\n",
                script);
        fail();
    }
    const size_t n = 3000;
    const int D = 5;
    int *f = random_factors(n, 6);
    float *z = malloc(sizeof(float) * n * D);
    rng r;
    rng_seed(&r, 7, RNG_TEST);
    for (size_t i = 0; i < n; i++) {
        const int *fi = f + i * K;
        float *zi = z + i * D;
        zi[0] = (float)(fi[3] / 31.0 + 0.05 * rng_normal(&r));           /* noisy posX */
        zi[1] = (float)(fi[2] * 21 / 40);  /* integers 0..20: every value sits on an edge */
        zi[2] = (float)rng_normal(&r);                                     /* noise */
        zi[3] = (float)((double)(int)(4 * rng_uniform(&r)) * 0.25 + fi[1]); /* ties, scale */
        zi[4] = (float)(fi[4] / 31.0 - 0.5 + 0.2 * rng_normal(&r));        /* noisy posY */
    }
    char path[] = "/tmp/test_metrics_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fprintf(fp, "%zu %d %d\n", n, D, K);
    for (int k = 0; k < K; k++)
        fprintf(fp, "%d ", data_factor_sizes[k]);
    fprintf(fp, "\n");
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < D; j++)
            fprintf(fp, "%.9g ", (double)z[i * D + j]); /* float32 round trip */
        for (int k = 0; k < K; k++)
            fprintf(fp, "%d ", f[i * K + k]);
        fprintf(fp, "\n");
    }
    fclose(fp);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", script, path);
    FILE *pp = popen(cmd, "r");
    assert_non_null(pp);
    double ref[K + 1];
    int got = 0;
    while (got < K + 1 && fscanf(pp, "%lf", &ref[got]) == 1)
        got++;
    int st = pclose(pp);
    unlink(path);
    assert_int_equal(st, 0);
    assert_int_equal(got, K + 1);
    double gap[K], mig;
    err e;
    assert_int_equal(metrics_mig_hist(z, n, D, NULL, 0, NULL, f, K, data_factor_sizes, gap,
                                      &mig, &e),
                     0);
    double worst = fabs(mig - ref[K]);
    for (int k = 0; k < K; k++)
        worst = fmax(worst, fabs(gap[k] - ref[k]));
    fprintf(stderr, "numpy reference: mig %.6f, largest difference %.2e\n", ref[K], worst);
    for (int k = 0; k < K; k++) {
        if (fabs(gap[k] - ref[k]) >= 1e-6)
            fprintf(stderr, "factor %d: C %.10f numpy %.10f\n", k, gap[k], ref[k]);
        assert_true(fabs(gap[k] - ref[k]) < 1e-6);
    }
    assert_true(fabs(mig - ref[K]) < 1e-6);
    assert_true(mig > 0.05); /* not a trivial table */
    free(f);
    free(z);
}

/* ---- gaussian_tc ------------------------------------------------------------- */

/* n points whose sample covariance is exactly S (D x D, SPD): standard
 * normals, whitened by their own sample covariance (Cholesky), coloured by
 * chol(S). */
static float *points_with_cov(const double *Sg, int D, size_t n, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed, RNG_TEST);
    double *y = malloc(sizeof(double) * n * D), C[16] = {0}, L[16] = {0}, M[16] = {0},
           mean[4] = {0};
    for (size_t i = 0; i < n * D; i++)
        y[i] = rng_normal(&r);
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < D; a++)
            mean[a] += y[i * D + a] / (double)n;
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < D; a++)
            for (int b = 0; b < D; b++)
                C[a * D + b] += (y[i * D + a] - mean[a]) * (y[i * D + b] - mean[b]) / (double)n;
    /* cholesky of C (L) and of S (M) */
    const double *src[2] = {C, Sg};
    double *dst[2] = {L, M};
    for (int t = 0; t < 2; t++)
        for (int a = 0; a < D; a++)
            for (int b = 0; b <= a; b++) {
                double s = src[t][a * D + b];
                for (int k = 0; k < b; k++)
                    s -= dst[t][a * D + k] * dst[t][b * D + k];
                dst[t][a * D + b] = a == b ? sqrt(s) : s / dst[t][b * D + b];
            }
    float *x = malloc(sizeof(float) * n * D);
    for (size_t i = 0; i < n; i++) {
        double w[4];
        for (int a = 0; a < D; a++) { /* w = L^-1 (y - mean) */
            double s = y[i * D + a] - mean[a];
            for (int k = 0; k < a; k++)
                s -= L[a * D + k] * w[k];
            w[a] = s / L[a * D + a];
        }
        for (int a = 0; a < D; a++) {
            double s = 0;
            for (int k = 0; k <= a; k++)
                s += M[a * D + k] * w[k];
            x[i * D + a] = (float)s;
        }
    }
    free(y);
    return x;
}

static void test_gaussian_tc_closed_form(void **state)
{
    (void)state;
    err e;
    double tc;
    /* bivariate, correlation rho: -0.5 log(1 - rho^2) */
    const double rho = 0.6;
    double S2[4] = {2.0, rho * sqrt(2.0 * 0.5), rho * sqrt(2.0 * 0.5), 0.5};
    float *x = points_with_cov(S2, 2, 5000, 11);
    assert_int_equal(metrics_gaussian_tc(x, 5000, 2, &tc, &e), 0);
    assert_true(fabs(tc - (-0.5 * log(1.0 - rho * rho))) < 1e-5);
    free(x);
    /* 3-D: 0.5*(sum log S_jj - log det S) */
    double S3[9] = {1.0, 0.3, -0.2, 0.3, 2.0, 0.5, -0.2, 0.5, 0.7};
    double det = S3[0] * (S3[4] * S3[8] - S3[5] * S3[7]) - S3[1] * (S3[3] * S3[8] - S3[5] * S3[6]) +
                 S3[2] * (S3[3] * S3[7] - S3[4] * S3[6]);
    double want = 0.5 * (log(S3[0]) + log(S3[4]) + log(S3[8]) - log(det));
    x = points_with_cov(S3, 3, 4000, 12);
    assert_int_equal(metrics_gaussian_tc(x, 4000, 3, &tc, &e), 0);
    assert_true(fabs(tc - want) < 1e-5);
    /* a constant dim is left out; a duplicated dim is singular: +inf */
    float *y = malloc(sizeof(float) * 4000 * 4);
    for (size_t i = 0; i < 4000; i++) {
        memcpy(y + i * 4, x + i * 3, sizeof(float) * 3);
        y[i * 4 + 3] = 1.5f;
    }
    assert_int_equal(metrics_gaussian_tc(y, 4000, 4, &tc, &e), 0);
    assert_true(fabs(tc - want) < 1e-5);
    for (size_t i = 0; i < 4000; i++)
        y[i * 4 + 3] = x[i * 3 + 1];
    assert_int_equal(metrics_gaussian_tc(y, 4000, 4, &tc, &e), 0);
    assert_true(tc > 10.0);
    free(x);
    free(y);
}

/* ---- Chen et al.: entropies, decomposition, MIG ------------------------------ */

/* mu (n, D) ~ N(0, s^2 R) (R: correlation matrix given by its Cholesky
 * factor Lr, D <= 4), lv = log sigma^2. */
static void gaussian_posteriors(float *mu, float *lv, size_t n, int D, const double *Lr,
                                double s, double sigma, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed, RNG_TEST);
    for (size_t i = 0; i < n; i++) {
        double g[4];
        for (int j = 0; j < D; j++)
            g[j] = rng_normal(&r);
        for (int a = 0; a < D; a++) {
            double v = 0;
            for (int b = 0; b <= a; b++)
                v += Lr[a * D + b] * g[b];
            mu[i * D + a] = (float)(s * v);
            lv[i * D + a] = (float)log(sigma * sigma);
        }
    }
}

static void test_tc_independent_near_zero(void **state)
{
    (void)state;
    const size_t n = 4000;
    const int D = 4;
    double I4[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    float *mu = malloc(sizeof(float) * n * D), *lv = malloc(sizeof(float) * n * D),
          *z = malloc(sizeof(float) * n * D);
    gaussian_posteriors(mu, lv, n, D, I4, 0.8, 0.6, 21);
    metrics_posterior q = {n, D, mu, lv, 0, NULL, NULL};
    rng r;
    rng_seed(&r, 22, RNG_TEST);
    metrics_sample_posterior(&q, &r, z, NULL);
    metrics_decomposition d;
    err e;
    assert_int_equal(metrics_tc_decompose(&q, z, NULL, 2000, &d, &e), 0);
    assert_true(fabs(d.tc) < 0.03);
    free(mu);
    free(lv);
    free(z);
}

/* The marginal entropies against a double-precision log-sum-exp with its own
 * max pass, on posteriors whose widths span e^-6 to e^14: the estimator's
 * reference (each block's largest log normaliser, no max pass) loses nothing
 * where terms differ by tens of nats. */
static void test_entropies_of_mixed_widths(void **state)
{
    (void)state;
    const size_t n = 1500, m = 300;
    const int D = 2;
    float *mu = malloc(sizeof(float) * n * D), *lv = malloc(sizeof(float) * n * D),
          *z = malloc(sizeof(float) * n * D);
    rng r;
    rng_seed(&r, 41, RNG_TEST);
    for (size_t i = 0; i < n * D; i++) {
        mu[i] = (float)rng_normal(&r);
        lv[i] = (float)(-12.0 + 40.0 * rng_uniform(&r));
    }
    metrics_posterior q = {n, D, mu, lv, 0, NULL, NULL};
    metrics_sample_posterior(&q, &r, z, NULL);
    double h[2], hj;
    err e;
    assert_int_equal(metrics_entropies(&q, z, NULL, m, h, &hj, &e), 0);
    double *L = malloc(sizeof(double) * n);
    for (int u = 0; u < D; u++) {
        double want = 0.0;
        for (size_t s = 0; s < m; s++) {
            double mx = -INFINITY, sum = 0.0;
            for (size_t i = 0; i < n; i++) {
                double d = (double)z[s * D + u] - mu[i * D + u], v = exp((double)lv[i * D + u]);
                L[i] = -0.5 * (log(2 * M_PI) + lv[i * D + u] + d * d / v);
                mx = L[i] > mx ? L[i] : mx;
            }
            for (size_t i = 0; i < n; i++)
                sum += exp(L[i] - mx);
            want -= (mx + log(sum) - log((double)n)) / (double)m;
        }
        fprintf(stderr, "mixed widths: H(z_%d) %.6f, double reference %.6f\n", u, h[u], want);
        assert_true(fabs(h[u] - want) < 1e-4 * (1.0 + fabs(want)));
    }
    free(L);
    free(mu);
    free(lv);
    free(z);
}

/* q(z) of Gaussian posteriors N(mu_n, sigma^2 I) with Gaussian means is
 * N(0, C + sigma^2 I), C the covariance of the means: mi, tc and dwkl have
 * closed forms; and mi + tc + dwkl equals the analytic KL to rounding. */
static void test_decomposition_closed_form(void **state)
{
    (void)state;
    const size_t n = 5000;
    const int D = 3;
    /* correlation 0.8 between dims 0 and 1, dim 2 independent */
    double Lr[9] = {1, 0, 0, 0.8, 0.6, 0, 0, 0, 1};
    const double s = 0.9, sigma = 0.35;
    float *mu = malloc(sizeof(float) * n * D), *lv = malloc(sizeof(float) * n * D),
          *z = malloc(sizeof(float) * n * D);
    gaussian_posteriors(mu, lv, n, D, Lr, s, sigma, 31);
    metrics_posterior q = {n, D, mu, lv, 0, NULL, NULL};
    rng r;
    rng_seed(&r, 32, RNG_TEST);
    metrics_sample_posterior(&q, &r, z, NULL);
    metrics_decomposition d;
    err e;
    assert_int_equal(metrics_tc_decompose(&q, z, NULL, 2000, &d, &e), 0);

    /* closed forms with the empirical covariance of the means */
    double m[3] = {0}, C[9] = {0};
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < D; a++)
            m[a] += mu[i * D + a] / (double)n;
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < D; a++)
            for (int b = 0; b < D; b++)
                C[a * D + b] += (mu[i * D + a] - m[a]) * (mu[i * D + b] - m[b]) / (double)n;
    double Sg[9];
    for (int a = 0; a < 9; a++)
        Sg[a] = C[a] + (a % 4 == 0 ? sigma * sigma : 0.0);
    double det = Sg[0] * (Sg[4] * Sg[8] - Sg[5] * Sg[7]) - Sg[1] * (Sg[3] * Sg[8] - Sg[5] * Sg[6]) +
                 Sg[2] * (Sg[3] * Sg[7] - Sg[4] * Sg[6]);
    double tc = 0.5 * (log(Sg[0]) + log(Sg[4]) + log(Sg[8]) - log(det));
    double mi = 0.5 * log(det) - D * log(sigma);
    double dwkl = 0.0, kl = 0.0;
    for (int a = 0; a < D; a++) {
        double v = Sg[a * 4], mm = m[a];
        dwkl += 0.5 * (v + mm * mm - 1.0 - log(v)); /* KL(N(m, v) || N(0, 1)) */
    }
    for (size_t i = 0; i < n * D; i++)
        kl += 0.5 * ((double)mu[i] * mu[i] + exp(lv[i]) - lv[i] - 1.0) / (double)n;
    fprintf(stderr, "decomposition: mi %.4f (%.4f) tc %.4f (%.4f) dwkl %.4f (%.4f) sum %.4f kl %.4f\n",
            d.mi, mi, d.tc, tc, d.dwkl, dwkl, d.kl_mc, d.kl);
    assert_true(fabs(d.tc - tc) < 0.04);
    assert_true(fabs(d.mi - mi) < 0.05);
    assert_true(fabs(d.dwkl - dwkl) < 0.05);
    /* the identity: exact up to rounding with the Monte Carlo KL of the
     * samples, which agrees with the analytic KL to its sampling error */
    assert_true(fabs(d.mi + d.tc + d.dwkl - d.kl_mc) < 1e-9 * (1.0 + fabs(d.kl_mc)));
    assert_true(fabs(d.kl - kl) < 1e-6 * kl);
    assert_true(fabs(d.kl_mc - d.kl) < 0.1); /* ~4 sd of the 2,000-sample mean */
    free(mu);
    free(lv);
    free(z);
}

/* JointVAE-shaped: 2 Gaussian dims and a 3-way categorical independent of
 * them; the decomposition includes the discrete KL and tc stays near 0. */
static void test_decomposition_with_discrete(void **state)
{
    (void)state;
    const size_t n = 3000;
    const int D = 2, three = 3;
    double I2[4] = {1, 0, 0, 1};
    float *mu = malloc(sizeof(float) * n * D), *lv = malloc(sizeof(float) * n * D),
          *z = malloc(sizeof(float) * n * D), *al = malloc(sizeof(float) * n * 3);
    int *c = malloc(sizeof(int) * n);
    gaussian_posteriors(mu, lv, n, D, I2, 0.7, 0.5, 41);
    rng r;
    rng_seed(&r, 42, RNG_TEST);
    double kl = 0.0;
    for (size_t i = 0; i < n; i++) {
        int hot = (int)rng_below(&r, 3);
        for (int k = 0; k < 3; k++)
            al[i * 3 + k] = k == hot ? 0.9f : 0.05f;
        kl += log(3.0);
        for (int k = 0; k < 3; k++)
            kl += al[i * 3 + k] * log((double)al[i * 3 + k]);
        for (int j = 0; j < D; j++) {
            double m = mu[i * D + j], v = lv[i * D + j];
            kl += 0.5 * (m * m + exp(v) - v - 1.0);
        }
    }
    kl /= (double)n;
    metrics_posterior q = {n, D, mu, lv, 1, &three, al};
    metrics_sample_posterior(&q, &r, z, c);
    metrics_decomposition d;
    err e;
    assert_int_equal(metrics_tc_decompose(&q, z, c, 2000, &d, &e), 0);
    assert_true(fabs(d.kl - kl) < 1e-6 * kl);
    assert_true(fabs(d.mi + d.tc + d.dwkl - d.kl_mc) < 1e-9 * (1.0 + d.kl_mc));
    fprintf(stderr, "with a categorical: mi %.4f tc %.4f dwkl %.4f, sum %.4f, kl %.4f\n", d.mi,
            d.tc, d.dwkl, d.kl_mc, d.kl);
    assert_true(fabs(d.kl_mc - d.kl) < 0.1); /* ~4 sd of the 2,000-sample mean */
    assert_true(fabs(d.tc) < 0.03);
    /* the categorical's marginal is uniform: H = log 3 */
    double h[3], hj;
    assert_int_equal(metrics_entropies(&q, z, c, 2000, h, &hj, &e), 0);
    assert_true(fabs(h[2] - log(3.0)) < 0.03);
    free(mu);
    free(lv);
    free(z);
    free(al);
    free(c);
}

/* Chen's MIG on posteriors built from the factors. kind 0: latent k copies
 * factor k (narrow posterior); 1: N(0,1)-ish noise independent of the
 * factors; 2: copies plus latent 5 copying posX again. */
static double chen_mig(int kind, double gap[K])
{
    const size_t n = 10000;
    const int D = kind == 2 ? 6 : K;
    int *f = random_factors(n, 50 + (uint64_t)kind);
    float *mu = malloc(sizeof(float) * n * D), *lv = malloc(sizeof(float) * n * D),
          *z = malloc(sizeof(float) * n * D);
    rng r;
    rng_seed(&r, 60 + (uint64_t)kind, RNG_TEST);
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < D; j++) {
            int k = j < K ? j : 3;
            int V = data_factor_sizes[k];
            if (kind == 1) {
                mu[i * D + j] = (float)(0.8 * rng_normal(&r));
                lv[i * D + j] = (float)log(0.3 * 0.3);
            } else {
                mu[i * D + j] = (float)(2.0 * f[i * K + k] / (V - 1) - 1.0);
                lv[i * D + j] = (float)log(0.005 * 0.005);
            }
        }
    metrics_posterior q = {n, D, mu, lv, 0, NULL, NULL};
    metrics_sample_posterior(&q, &r, z, NULL);
    double *mi = malloc(sizeof(double) * (size_t)D * K), logv[K];
    for (int k = 0; k < K; k++)
        logv[k] = factor_log_size(k);
    err e;
    assert_int_equal(metrics_mi_chen(&q, z, NULL, f, K, data_factor_sizes, 2000, mi, &e), 0);
    double mig = metrics_mig(mi, D, K, logv, gap);
    free(f);
    free(mu);
    free(lv);
    free(z);
    free(mi);
    return mig;
}

static void test_mig_chen_known_answers(void **state)
{
    (void)state;
    double gap[K];
    double m0 = chen_mig(0, gap);
    fprintf(stderr, "chen mig copies %.4f (gaps %.3f %.3f %.3f %.3f %.3f)\n", m0, gap[0], gap[1],
            gap[2], gap[3], gap[4]);
    assert_true(m0 > 0.95 && m0 < 1.02);
    double m1 = chen_mig(1, gap);
    fprintf(stderr, "chen mig independent %.4f\n", m1);
    assert_true(m1 >= 0.0 && m1 < 0.02);
    double m2 = chen_mig(2, gap);
    fprintf(stderr, "chen mig two copies of posX: gap %.4f\n", gap[3]);
    /* both copies have the same I; their estimates differ by Monte Carlo noise
     * (~0.02 nats with 2,000 samples, / log 32) */
    assert_true(gap[3] >= 0.0 && gap[3] < 0.03);
    assert_true(gap[0] > 0.95 && gap[4] > 0.95);
    (void)m2;
}

/* A discrete unit equal to shape in Chen's estimator: I = H(shape) ~ log 3. */
static void test_mi_chen_discrete_unit(void **state)
{
    (void)state;
    const size_t n = 3000;
    const int three = 3;
    int *f = random_factors(n, 70);
    float *mu = malloc(sizeof(float) * n), *lv = malloc(sizeof(float) * n),
          *z = malloc(sizeof(float) * n), *al = malloc(sizeof(float) * n * 3);
    int *c = malloc(sizeof(int) * n);
    rng r;
    rng_seed(&r, 71, RNG_TEST);
    for (size_t i = 0; i < n; i++) {
        mu[i] = (float)rng_normal(&r);
        lv[i] = 0.0f;
        for (int k = 0; k < 3; k++)
            al[i * 3 + k] = k == f[i * K] ? 1.0f : 0.0f;
    }
    metrics_posterior q = {n, 1, mu, lv, 1, &three, al};
    metrics_sample_posterior(&q, &r, z, c);
    double mi[2 * K];
    err e;
    assert_int_equal(metrics_mi_chen(&q, z, c, f, K, data_factor_sizes, 1000, mi, &e), 0);
    assert_true(fabs(mi[1 * K + 0] - log(3.0)) < 0.01);
    assert_true(fabs(mi[0 * K + 0]) < 0.02);
    free(f);
    free(mu);
    free(lv);
    free(z);
    free(al);
    free(c);
}

/* ---- full-set mode and the subsample bias ---------------------------------- */

/* Sharp posteriors that copy the factors of items f (n, Kf) with sizes:
 * latent k = factor k's class mapped to [-1, 1], sd a tenth of the spacing
 * of its values. mu, lv (n, Kf). */
static void sharp_copies(const int *f, size_t n, int Kf, const int *sizes, float *mu,
                         float *lv)
{
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < Kf; k++) {
            int V = sizes[k];
            mu[i * Kf + k] = (float)(2.0 * f[i * Kf + k] / (V - 1) - 1.0);
            lv[i * Kf + k] = (float)(2.0 * log(0.1 * 2.0 / (V - 1)));
        }
}

/* The factor-copying code of the full-set test: four sharp latents, one per
 * factor of Chen's MIG (scale, orientation, posX, posY; shape is not
 * encoded), evaluated like run_evaluate does: on the whole dSprites grid in
 * canonical order with random sample subsets (full), or on n random draws
 * with their first samples. tc and the MI matrix (4, K) out. */
enum { NC = 4 };
static void chen_on_copies(int full, size_t n, size_t S, double *tc, double *mi)
{
    int *f = full ? grid_factors() : random_factors(n, 120);
    if (full)
        n = DATA_N;
    float *mu = malloc(sizeof(float) * n * NC), *lv = malloc(sizeof(float) * n * NC),
          *z = malloc(sizeof(float) * n * NC);
    int *f4 = malloc(sizeof(int) * n * NC);
    assert_true(mu && lv && z && f4);
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < NC; j++)
            f4[i * NC + j] = f[i * K + 1 + j];
    sharp_copies(f4, n, NC, data_factor_sizes + 1, mu, lv);
    metrics_posterior q = {n, NC, mu, lv, 0, NULL, NULL};
    rng r;
    rng_seed(&r, 121, RNG_TEST);
    metrics_sample_posterior(&q, &r, z, NULL);
    metrics_decomposition d;
    err e;
    assert_int_equal(metrics_chen(&q, z, NULL, f, K, data_factor_sizes, S, full ? &r : NULL, &d,
                                  mi, &e),
                     0);
    *tc = d.tc;
    free(f);
    free(f4);
    free(mu);
    free(lv);
    free(z);
}

/* The bias of subsample mode and its absence on the full set (the numbers of
 * the issue that asked for full-set mode): independent sharp latents, one
 * per factor, so the true tc is 0 and so is I(z_j; v_k) for j != k. At
 * 5,000 random images a conditional group of posX has ~156 members, whose
 * 32 posY values are unevenly represented: spurious MI (about 0.06 nats
 * between the latents and factors of orientation, posX and posY) and a tc
 * of several nats. On the full set every group holds each value of the
 * other factors equally often: tc within 0.05 of 0, the spurious MI at the
 * Monte Carlo noise of the 1,000-sample entropies (~0.02 nats per latent),
 * and Chen's MIG (four factors) within 0.01 of 1. */
static double spurious_mi(const double *mi)
{
    double s = 0.0;
    for (int j = 1; j < NC; j++)      /* latents of orientation, posX, posY */
        for (int k = 2; k < K; k++)   /* factors orientation, posX, posY */
            if (k != j + 1)
                s += mi[j * K + k];
    return s / 6.0;
}

static void test_full_set_removes_subsample_bias(void **state)
{
    (void)state;
    double tc5, tcf, mi5[NC * K], mif[NC * K], gap[K], logv[K];
    for (int k = 0; k < K; k++)
        logv[k] = factor_log_size(k);
    chen_on_copies(0, 5000, 2000, &tc5, mi5);
    chen_on_copies(1, 0, 1000, &tcf, mif);
    const double spur5 = spurious_mi(mi5), spurf = spurious_mi(mif);
    metrics_mig(mif, NC, K, logv, gap);
    double mig = metrics_mig_mean(gap, K, data_factor_in_mig);
    fprintf(stderr,
            "copies: 5k images tc %.3f, spurious MI %.4f nats; full set tc %.4f, spurious "
            "%.4f, MIG %.4f (gaps %.4f %.4f %.4f %.4f)\n",
            tc5, spur5, tcf, spurf, mig, gap[1], gap[2], gap[3], gap[4]);
    assert_true(tc5 > 0.5);
    assert_true(spur5 > 0.03);
    assert_true(fabs(tcf) < 0.05);
    assert_true(fabs(spurf) < 0.03);
    assert_true(fabs(mig - 1.0) < 0.01);
}

/* Every metric on factors that are not dSprites': K = 3 and K = 6 factor
 * grids (sizes from the caller, as data describes them), codes that copy
 * the factors. Chen's MIG ~ 1 on the full grid; the histogram MIG exactly 1
 * (every size <= 20 bins); the chunk MIG exactly 1 for chunks that copy
 * their factor, with the other chunks exactly independent on the grid; the
 * grid in mixed-radix order. */
static void any_k(int Kf, const int *sizes)
{
    const size_t n = metrics_grid_count(Kf, sizes);
    int *f = malloc(sizeof(int) * n * (size_t)Kf);
    float *mu = malloc(sizeof(float) * n * (size_t)Kf), *lv = malloc(sizeof(float) * n * Kf),
          *z = malloc(sizeof(float) * n * (size_t)Kf);
    float *code = malloc(sizeof(float) * n * 2 * (size_t)Kf);
    double *mi = malloc(sizeof(double) * (size_t)Kf * Kf), gap[8], logv[8];
    assert_true(f && mu && lv && z && code && mi);
    metrics_grid_factors(Kf, sizes, f);
    for (size_t i = 0; i < n; i++) { /* mixed radix, the last factor fastest */
        size_t idx = 0;
        for (int k = 0; k < Kf; k++)
            idx = idx * (size_t)sizes[k] + (size_t)f[i * Kf + k];
        assert_int_equal(idx, i);
    }
    sharp_copies(f, n, Kf, sizes, mu, lv);
    metrics_posterior q = {n, Kf, mu, lv, 0, NULL, NULL};
    rng r;
    rng_seed(&r, 130 + (uint64_t)Kf, RNG_TEST);
    metrics_sample_posterior(&q, &r, z, NULL);
    metrics_decomposition d;
    err e;
    assert_int_equal(metrics_chen(&q, z, NULL, f, Kf, sizes, 4000, &r, &d, mi, &e), 0);
    for (int k = 0; k < Kf; k++)
        logv[k] = log((double)sizes[k]);
    double mig = metrics_mig(mi, Kf, Kf, logv, gap);
    fprintf(stderr, "K = %d (%zu items): tc %.4f, Chen MIG %.4f\n", Kf, n, d.tc, mig);
    assert_true(fabs(d.tc) < 0.05);
    assert_true(fabs(mig - 1.0) < 0.05); /* sampling noise: all n samples, n ~ 4,000 */
    double mh;
    assert_int_equal(metrics_mig_hist(mu, n, Kf, NULL, 0, NULL, f, Kf, sizes, gap, &mh, &e), 0);
    assert_true(fabs(mh - 1.0) < 1e-12);
    /* chunk k = (copy of factor k, its square) */
    int chunks[8];
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < Kf; k++) {
            code[i * 2 * Kf + 2 * k] = mu[i * Kf + k];
            code[i * 2 * Kf + 2 * k + 1] = mu[i * Kf + k] * mu[i * Kf + k];
        }
    for (int k = 0; k < Kf; k++)
        chunks[k] = 2;
    double mc;
    assert_int_equal(metrics_mig_chunks(code, n, 2 * Kf, chunks, Kf, f, Kf, sizes, NULL, NULL,
                                        gap, &mc, &e),
                     0);
    for (int k = 0; k < Kf; k++)
        assert_true(fabs(gap[k] - 1.0) < 1e-9);
    assert_true(fabs(mc - 1.0) < 1e-9);
    free(f);
    free(mu);
    free(lv);
    free(z);
    free(code);
    free(mi);
}

static void test_metrics_any_number_of_factors(void **state)
{
    (void)state;
    const int three[3] = {12, 15, 20}, six[6] = {3, 4, 5, 3, 4, 6};
    any_k(3, three);
    any_k(6, six);
}

/* DSD's chunk-level MIG on the dSprites grid, known answers: chunks that
 * copy their factor (a value and its square; posX and posY in the 40 bins
 * that separate their 32 values) score gap 1 for every factor; with scale
 * also in shape's chunk (the tuple of both) and only half of scale's
 * resolution (3 values) in its own, scale's gap is (log 6 - log 3) / log 6:
 * shape's chunk knows scale fully, scale's own chunk log 3 of it. */
/* Items from a contingency table T (rows: categories, columns: values). */
static size_t items_from_table(const int *T, int rows, int cols, int *labels, int *v)
{
    size_t n = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            for (int t = 0; t < T[r * cols + c]; t++) {
                labels[n] = r;
                v[n++] = c;
            }
    return n;
}

/* The best injective map of the rows into the columns by trying them all. */
static int brute_match(const int *T, int rows, int cols, int r, unsigned used)
{
    if (r == rows)
        return 0;
    int best = 0;
    for (int c = 0; c < cols; c++)
        if (!(used >> c & 1)) {
            int s = T[r * cols + c] + brute_match(T, rows, cols, r + 1, used | 1u << c);
            best = s > best ? s : best;
        }
    return best;
}

static void test_match_accuracy_known_answers(void **state)
{
    (void)state;
    int labels[400], v[400];
    double acc = 0.0;
    err e;
    err_clear(&e);
    /* 3 categories, 3 values: the best one-to-one map pairs 0-0, 1-2, 2-1 for
     * 5 + 4 + 0 = 9 of 16; each category's own best value (0, 2, 0) would
     * count 12, but maps two categories to value 0 */
    static const int T1[9] = {5, 1, 0, 0, 2, 4, 3, 0, 1};
    size_t n = items_from_table(T1, 3, 3, labels, v);
    assert_int_equal(metrics_match_accuracy(labels, v, n, 3, 3, &acc, &e), 0);
    assert_true(fabs(acc - 9.0 / 16.0) < 1e-15);
    /* a relabelled copy of the factor: 1 */
    for (size_t i = 0; i < 30; i++) {
        v[i] = (int)(i % 3);
        labels[i] = (v[i] + 1) % 3;
    }
    assert_int_equal(metrics_match_accuracy(labels, v, 30, 3, 3, &acc, &e), 0);
    assert_true(acc == 1.0);
    /* more categories (4) than values (2): each value takes one category,
     * value 0 category 0 (3), value 1 category 2 (4): 7 of 11 */
    static const int T2[8] = {3, 0, 2, 1, 0, 4, 1, 0};
    n = items_from_table(T2, 4, 2, labels, v);
    assert_int_equal(metrics_match_accuracy(labels, v, n, 4, 2, &acc, &e), 0);
    assert_true(fabs(acc - 7.0 / 11.0) < 1e-15);
    /* random 4 x 6 tables against every injective map */
    rng r;
    rng_seed(&r, 5, RNG_TEST);
    for (int trial = 0; trial < 20; trial++) {
        int T[24];
        for (int i = 0; i < 24; i++)
            T[i] = (int)rng_below(&r, 12);
        n = items_from_table(T, 4, 6, labels, v);
        assert_int_equal(metrics_match_accuracy(labels, v, n, 4, 6, &acc, &e), 0);
        assert_true(fabs(acc - brute_match(T, 4, 6, 0, 0) / (double)n) < 1e-15);
        /* the same table seen from the values' side */
        assert_int_equal(metrics_match_accuracy(v, labels, n, 6, 4, &acc, &e), 0);
        assert_true(fabs(acc - brute_match(T, 4, 6, 0, 0) / (double)n) < 1e-15);
    }
    /* no items: NaN; bad input: ERR_INPUT, acc untouched */
    assert_int_equal(metrics_match_accuracy(labels, v, 0, 3, 3, &acc, &e), 0);
    assert_true(isnan(acc));
    acc = 0.5;
    labels[0] = 3;
    assert_int_equal(metrics_match_accuracy(labels, v, 1, 3, 3, &acc, &e), ERR_INPUT);
    assert_non_null(strstr(e.msg, "category 3 of 3"));
    assert_int_equal(metrics_match_accuracy(labels, v, 1, 17, 20, &acc, &e), ERR_INPUT);
    assert_true(acc == 0.5);
}

static void test_chunk_mig_known_answers(void **state)
{
    (void)state;
    int *f = grid_factors();
    const int D = 2 * K, chunks[K] = {2, 2, 2, 2, 2};
    float *code = malloc(sizeof(float) * (size_t)DATA_N * D);
    double gap[K], mig, mi[K * K];
    err e;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < DATA_N; i++)
            for (int k = 0; k < K; k++) {
                float v = (float)(2.0 * f[i * K + k] / (data_factor_sizes[k] - 1) - 1.0);
                code[i * D + 2 * k] = v;
                code[i * D + 2 * k + 1] = v * v;
            }
        if (pass == 1)
            for (size_t i = 0; i < DATA_N; i++) {
                code[i * D + 1] = (float)f[i * K + 1];          /* shape's chunk: + scale */
                code[i * D + 2] = (float)(f[i * K + 1] / 2);    /* scale's chunk: 3 values */
                code[i * D + 3] = 0.0f;
            }
        assert_int_equal(metrics_mig_chunks(code, DATA_N, D, chunks, K, f, K, data_factor_sizes,
                                            data_factor_in_mig, mi, gap, &mig, &e),
                         0);
        fprintf(stderr, "chunk MIG pass %d: %.4f (gaps %.4f %.4f %.4f %.4f %.4f)\n", pass, mig,
                gap[0], gap[1], gap[2], gap[3], gap[4]);
        if (pass == 0) {
            for (int k = 0; k < K; k++)
                assert_true(fabs(gap[k] - 1.0) < 1e-9);
            assert_true(fabs(mig - 1.0) < 1e-9);
        } else {
            assert_true(fabs(gap[1] - (log(6.0) - log(3.0)) / log(6.0)) < 1e-9);
            assert_true(fabs(gap[0] - 1.0) < 1e-9); /* shape: only its own chunk knows it */
            assert_true(fabs(mig - (3.0 + log(2.0) / log(6.0)) / 4.0) < 1e-9);
        }
    }
    free(f);
    free(code);
}

/* ---- swap accuracy ------------------------------------------------------------ */

static void test_swap_candidates_113(void **state)
{
    (void)state;
    int t[K] = {2, 3, 17, 9, 25};
    int cand[METRICS_N_CANDIDATES][K];
    assert_int_equal(metrics_swap_candidates(t, cand), 113);
    assert_int_equal(3 + 6 + 40 + 32 + 32, 113);
    /* the target once per factor; 108 = 2+5+39+31+31 distinct neighbours,
     * each differing in exactly one factor */
    int self = 0;
    for (int i = 0; i < 113; i++) {
        int diff = 0;
        for (int k = 0; k < K; k++)
            diff += cand[i][k] != t[k];
        assert_true(diff <= 1);
        self += diff == 0;
        for (int j = 0; j < i; j++)
            if (diff == 1)
                assert_true(memcmp(cand[i], cand[j], sizeof cand[i]) != 0);
    }
    assert_int_equal(self, 5);
    /* by rendering at S = 64: a heart (no symmetry) has 5 pixel copies of
     * itself among the candidates (itself, once per factor) for orientations
     * 1..38, and 6 at orientation 0 or 39 (0 and 2 pi are the same angle);
     * the smallest square (half side 5 px) at angle 0 also equals its renders
     * at classes 10, 19, 20 and 29 (92.3, 175.4, 184.6, 267.7 degrees: within
     * 4.6 degrees of its 90-degree symmetry no pixel centre changes side),
     * the largest square only the one at class 39 */
    uint8_t a[64 * 64], b[64 * 64];
    for (int o = 0; o < 40; o++) {
        for (int pos = 0; pos < 32; pos += 7) {
            int h[K] = {2, (o * 7) % 6, o, pos, 31 - pos};
            metrics_swap_candidates(h, cand);
            data_render_u8(a, h, 64);
            int same = 0;
            for (int i = 0; i < 113; i++) {
                data_render_u8(b, cand[i], 64);
                same += memcmp(a, b, sizeof a) == 0;
            }
            assert_int_equal(same, o == 0 || o == 39 ? 6 : 5);
        }
    }
    const int squares[2][K] = {{0, 0, 0, 0, 0}, {0, 5, 0, 16, 16}};
    const int want[2] = {10, 6};
    for (int s = 0; s < 2; s++) {
        metrics_swap_candidates(squares[s], cand);
        data_render_u8(a, squares[s], 64);
        int same = 0;
        for (int i = 0; i < 113; i++) {
            data_render_u8(b, cand[i], 64);
            same += memcmp(a, b, sizeof a) == 0;
        }
        assert_int_equal(same, want[s]);
    }
}

/* Oracle codec: the code is the factor classes (dims 0..4, and a copy in
 * 5..9); the decoder renders dims 0..4 with logits +-20. */
typedef struct oracle {
    int S;
} oracle;

static void oracle_encode(void *ctx, const float *x, const int *f, size_t n, float *code)
{
    (void)ctx;
    (void)x;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < K; k++)
            code[i * 10 + k] = code[i * 10 + K + k] = (float)f[i * K + k];
}

static void oracle_decode(void *ctx, const float *code, size_t n, float *logits)
{
    const oracle *o = ctx;
    const int P = o->S * o->S;
    float img[64 * 64];
    for (size_t i = 0; i < n; i++) {
        int f[K];
        for (int k = 0; k < K; k++) {
            int v = (int)lrintf(code[i * 10 + k]);
            f[k] = v < 0 ? 0 : v >= data_factor_sizes[k] ? data_factor_sizes[k] - 1 : v;
        }
        data_render(img, f, o->S);
        for (int p = 0; p < P; p++)
            logits[i * P + p] = img[p] > 0.5f ? 20.0f : -20.0f;
    }
}

static void test_swap_oracle_and_ignoring_decoder(void **state)
{
    (void)state;
    for (int S = 32; S <= 64; S *= 2) {
        oracle o = {S};
        metrics_codec cd = {&o, 10, S, oracle_encode, oracle_decode, 1};
        unsigned char mask[K * 10] = {0};
        double acc[K], mean;
        err e;
        rng r;
        /* swap the dims the decoder reads: every swap is the counterfactual */
        for (int k = 0; k < K; k++)
            mask[k * 10 + k] = 1;
        rng_seed(&r, 80, RNG_TEST);
        assert_int_equal(metrics_swap_accuracy(&cd, mask, 100, &r, acc, &mean, &e), 0);
        for (int k = 0; k < K; k++)
            assert_true(acc[k] == 1.0);
        assert_true(mean == 1.0);
        /* swap the copies the decoder ignores: the output stays a, a one-factor
         * neighbour of the target; it only "succeeds" when a renders like the
         * target (orientation 0 vs 39, tiny sprites at S = 32) */
        memset(mask, 0, sizeof mask);
        for (int k = 0; k < K; k++)
            mask[k * 10 + K + k] = 1;
        rng_seed(&r, 81, RNG_TEST);
        assert_int_equal(metrics_swap_accuracy(&cd, mask, 200, &r, acc, &mean, &e), 0);
        fprintf(stderr, "S=%d ignoring decoder: %.3f %.3f %.3f %.3f %.3f\n", S, acc[0], acc[1],
                acc[2], acc[3], acc[4]);
        assert_true(acc[0] == 0.0);
        for (int k = 1; k < K; k++)
            assert_true(acc[k] < (S == 64 ? 0.02 : 0.1));
        if (S == 64)
            for (int k = 3; k < K; k++)
                assert_true(acc[k] == 0.0);
    }
}

static void test_traversal_grid(void **state)
{
    (void)state;
    oracle o = {32};
    metrics_codec cd = {&o, 10, 32, oracle_encode, oracle_decode, 1};
    float code0[10] = {1, 2, 3, 4, 5, 1, 2, 3, 4, 5};
    uint8_t *img = NULL;
    int h = 0, w = 0;
    err e;
    assert_int_equal(metrics_traversal(&cd, code0, 10, 0, NULL, RUN_TRAV_STEPS, RUN_TRAV_LIMIT, &img, &h, &w, &e), 0);
    assert_int_equal(h, 10 * 32);
    assert_int_equal(w, 10 * 32);
    /* rows 5..9 traverse ignored dims: every cell equals the code0 render */
    float ref[32 * 32];
    int f0[K] = {1, 2, 3, 4, 5};
    data_render(ref, f0, 32);
    for (int row = 5; row < 10; row++)
        for (int t = 0; t < 10; t++)
            for (int p = 0; p < 32 * 32; p++) {
                uint8_t v = img[((size_t)row * 32 + p / 32) * w + t * 32 + p % 32];
                assert_int_equal(v, ref[p] > 0.5f ? 255 : 0);
            }
    /* row 0 (shape) sweeps -2.5..2.5: clamped classes 0,0,0,0,0,0,0,1,2,2 */
    free(img);
}

/* ---- reproducibility ------------------------------------------------------------ */

static void test_estimators_reproducible(void **state)
{
    (void)state;
    double g1[K], g2[K];
    double a = chen_mig(0, g1), b = chen_mig(0, g2);
    assert_memory_equal(&a, &b, sizeof a);
    assert_memory_equal(g1, g2, sizeof g1);
    oracle o = {32};
    metrics_codec cd = {&o, 10, 32, oracle_encode, oracle_decode, 1};
    unsigned char mask[K * 10] = {0};
    for (int k = 0; k < K; k++)
        mask[k * 10 + K + k] = 1;
    double acc1[K], acc2[K];
    err e;
    rng r;
    rng_seed(&r, 90, RNG_TEST);
    assert_int_equal(metrics_swap_accuracy(&cd, mask, 50, &r, acc1, NULL, &e), 0);
    rng_seed(&r, 90, RNG_TEST);
    assert_int_equal(metrics_swap_accuracy(&cd, mask, 50, &r, acc2, NULL, &e), 0);
    assert_memory_equal(acc1, acc2, sizeof acc1);
}

/* run_evaluate on an untrained model, twice: the same numbers, bit for
 * bit; every column filled for a VAE, NaN where it must be for dsd; disc_acc
 * (3 categories against dSprites' 3 shapes: at least 1/3 under the best map)
 * for jointvae only. */
static void evaluate_twice(const char *method, int stochastic, int n_units)
{
    run_config c;
    run_config_defaults(&c);
    err e;
    assert_int_equal(run_config_set(&c, "model", method, &e), 0);
    assert_int_equal(run_config_set(&c, "image_size", "32", &e), 0);
    assert_int_equal(run_config_set(&c, "images", "600", &e), 0);
    assert_int_equal(run_config_set(&c, "samples", "300", &e), 0);
    assert_int_equal(run_config_set(&c, "pairs", "20", &e), 0);
    if (model_resolve(&c, &e) < 0) {
        fprintf(stderr, "%s: %s\n", method, e.msg);
        fail();
    }
    data_source *d = NULL;
    assert_int_equal(data_open_builtin(&d, 32, &e), 0);
    run_result r[2];
    for (int t = 0; t < 2; t++) {
        model *m = NULL;
        if (model_create(&m, &c, data_count(d), &e) < 0) {
            fprintf(stderr, "%s: %s (skipped)\n", method, e.msg);
            data_close(d);
            if (t == 1)
                run_result_free(&r[0]);
            skip();
        }
        run_result_init(&r[t]);
        if (run_evaluate(m, d, &c, &r[t], &e) < 0) {
            fprintf(stderr, "%s: %s\n", method, e.msg);
            fail();
        }
        model_destroy(m);
    }
    assert_memory_equal(r[0].metric, r[1].metric, sizeof r[0].metric);
    assert_memory_equal(r[0].mig_factor, r[1].mig_factor, sizeof r[0].mig_factor);
    assert_memory_equal(r[0].swap_factor, r[1].swap_factor, sizeof r[0].swap_factor);
    assert_memory_equal(r[0].chunk_factor, r[1].chunk_factor, sizeof r[0].chunk_factor);
    assert_int_equal(r[0].n_units, r[1].n_units);
    assert_memory_equal(r[0].mi, r[1].mi, sizeof(float) * (size_t)r[0].n_units * K);
    assert_int_equal(r[0].trav_h, r[1].trav_h);
    assert_memory_equal(r[0].traversal, r[1].traversal, (size_t)r[0].trav_h * r[0].trav_w);
    const run_result *x = &r[0];
    assert_true(isfinite(x->metric[RUN_M_RECON]));
    assert_true(isfinite(x->metric[RUN_M_MIG_HIST]));
    assert_true(isfinite(x->metric[RUN_M_SWAP_ACC]));
    assert_true(isfinite(x->metric[RUN_M_GAUSSIAN_TC]));
    assert_int_equal(x->trav_w, 10 * 32);
    assert_int_equal(x->n_units, n_units);
    assert_int_equal(x->trav_h, n_units * 32);
    for (int k = 0; k < K; k++)
        assert_true(isfinite(x->mig_factor[k]) && isfinite(x->swap_factor[k]));
    assert_true(x->metric[RUN_M_EVAL_IMAGES] == 600.0);
    /* the discrete latent's shape accuracy: jointvae's discrete [3] only */
    if (strcmp(method, "jointvae") == 0)
        assert_true(x->metric[RUN_M_DISC_ACC] >= 1.0 / 3.0 && x->metric[RUN_M_DISC_ACC] <= 1.0);
    else
        assert_true(isnan(x->metric[RUN_M_DISC_ACC]));
    /* the chunk MIG: dsd's chunks only */
    assert_true(stochastic ? isnan(x->metric[RUN_M_CHUNK_MIG])
                           : isfinite(x->metric[RUN_M_CHUNK_MIG]) &&
                                 isfinite(x->chunk_factor[0]));
    if (stochastic) {
        assert_true(isfinite(x->metric[RUN_M_TC]) && isfinite(x->metric[RUN_M_MIG]));
        double sum = x->metric[RUN_M_MI] + x->metric[RUN_M_TC] + x->metric[RUN_M_DWKL];
        /* mi + tc + dwkl is the Monte Carlo KL of the 300 samples; kl is the
         * analytic KL of all 600 images */
        fprintf(stderr, "%s untrained: mi + tc + dwkl = %.4f, kl = %.4f\n", method, sum,
                x->metric[RUN_M_KL]);
        assert_true(fabs(sum - x->metric[RUN_M_KL]) < 0.05 * (1.0 + x->metric[RUN_M_KL]));
    } else {
        assert_true(isnan(x->metric[RUN_M_TC]) && isnan(x->metric[RUN_M_MI]) &&
                    isnan(x->metric[RUN_M_DWKL]) && isnan(x->metric[RUN_M_KL]) &&
                    isnan(x->metric[RUN_M_MIG]));
    }
    run_result_free(&r[0]);
    run_result_free(&r[1]);
    data_close(d);
}

static void test_evaluate_reproducible_vae(void **state)
{
    (void)state;
    evaluate_twice("betatcvae", 1, 10);
}

static void test_evaluate_reproducible_jointvae(void **state)
{
    (void)state;
    evaluate_twice("jointvae", 1, 7); /* D 6 + one discrete */
}

static void test_evaluate_reproducible_dsd(void **state)
{
    (void)state;
    evaluate_twice("dsd", 0, 10); /* chunks 2 x 5 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discretize_like_numpy),
        cmocka_unit_test(test_mig_hist_factor_copies),
        cmocka_unit_test(test_mig_hist_independent),
        cmocka_unit_test(test_mig_hist_two_copies),
        cmocka_unit_test(test_discrete_units_in_hist),
        cmocka_unit_test(test_mig_hist_matches_numpy),
        cmocka_unit_test(test_gaussian_tc_closed_form),
        cmocka_unit_test(test_tc_independent_near_zero),
        cmocka_unit_test(test_entropies_of_mixed_widths),
        cmocka_unit_test(test_decomposition_closed_form),
        cmocka_unit_test(test_decomposition_with_discrete),
        cmocka_unit_test(test_mig_chen_known_answers),
        cmocka_unit_test(test_mi_chen_discrete_unit),
        cmocka_unit_test(test_full_set_removes_subsample_bias),
        cmocka_unit_test(test_metrics_any_number_of_factors),
        cmocka_unit_test(test_chunk_mig_known_answers),
        cmocka_unit_test(test_match_accuracy_known_answers),
        cmocka_unit_test(test_swap_candidates_113),
        cmocka_unit_test(test_swap_oracle_and_ignoring_decoder),
        cmocka_unit_test(test_traversal_grid),
        cmocka_unit_test(test_estimators_reproducible),
        cmocka_unit_test(test_evaluate_reproducible_vae),
        cmocka_unit_test(test_evaluate_reproducible_jointvae),
        cmocka_unit_test(test_evaluate_reproducible_dsd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
