/* test_dlib: disentanglement_lib's metric suite (src/metrics/dlib.c) and its
 * classifiers (learn.c, gbt.c) on known answers. The classifiers against
 * hand-solved cases; every metric on a small full-set table (4 factors of
 * sizes 3, 3, 16, 24: 3,456 codes, so that a few hundred draws rarely repeat
 * an observation and a random code cannot be memorised) for three codes:
 *   copy    latent k = factor k: each metric's maximum (or its exact value)
 *   random  latents independent of the factors: near each metric's minimum
 *   mixed   z0 = v0 + v1 (two factors of the same size summed), z1 noise,
 *           z2, z3 copies: factors 0 and 1 cannot be told apart through z0,
 *           so BetaVAE and FactorVAE lose half of their points (0.75), z0's
 *           modularity is 1 - 1/(K-1) = 2/3, and the rest lies in between.
 * The numbers against scikit-learn: tests/py/test_dlib.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "untangle/metrics.h"

/* ---- classifiers on hand-solved cases -------------------------------------- */

static void test_logreg_two_points(void **state)
{
    (void)state;
    /* x = -1 (class 0), +1 (class 1), C = 1: b = 0 by symmetry and w solves
     * d/dw [2 log(1 + e^-w) + w^2 / 2] = 0, i.e. w = 2 sigmoid(-w) */
    double x[2] = {-1.0, 1.0}, lo = 0.0, hi = 2.0;
    int y[2] = {0, 1};
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (mid - 2.0 / (1.0 + exp(mid)) < 0.0)
            lo = mid;
        else
            hi = mid;
    }
    metrics_linear m;
    err e;
    assert_int_equal(metrics_logreg_fit(&m, x, y, 2, 1, 2, 1.0, &e), 0);
    assert_int_equal(m.rows, 1);
    assert_true(fabs(m.w[0] - lo) < 1e-6);
    assert_true(fabs(m.w[1]) < 1e-6);
    double p[4];
    metrics_logreg_proba(&m, x, 2, p);
    /* p (2, 2): row i = (P(class 0 | x_i), P(class 1 | x_i)) */
    assert_true(fabs(p[3] - 1.0 / (1.0 + exp(-lo))) < 1e-6);
    assert_true(fabs(p[1] - 1.0 / (1.0 + exp(lo))) < 1e-6);
    assert_true(fabs(p[0] + p[1] - 1.0) < 1e-15);
    metrics_linear_free(&m);
}

static void test_logreg_multinomial(void **state)
{
    (void)state;
    /* three classes on a line, 0 at -2, 1 at 0, 2 at +2, labels 0, 2, 4 of 5:
     * classes_ = {0, 2, 4}; every point is classified right, the middle
     * class has the mirror-symmetric row w = 0, and each row's gradient is 0 */
    double x[6] = {-2.1, -1.9, -0.1, 0.1, 1.9, 2.1};
    int y[6] = {0, 0, 2, 2, 4, 4}, pred[6];
    metrics_linear m;
    err e;
    assert_int_equal(metrics_logreg_fit(&m, x, y, 6, 1, 5, 1.0, &e), 0);
    assert_int_equal(m.n_classes, 3);
    assert_int_equal(m.rows, 3);
    assert_int_equal(m.classes[2], 4);
    metrics_linear_predict(&m, x, 6, pred);
    for (int i = 0; i < 6; i++)
        assert_int_equal(pred[i], y[i]);
    assert_true(fabs(m.w[2]) < 1e-5); /* middle row's slope */
    assert_true(fabs(m.w[0] + m.w[4]) < 1e-5);
    metrics_linear_free(&m);
}

static void test_linsvc_two_points(void **state)
{
    (void)state;
    /* x = -1, +1, C = 1: 0.5 (w^2 + b^2) + 2 max(0, 1 - w)^2 at b = 0 gives
     * w - 4 (1 - w) = 0: w = 0.8 (liblinear regularises the bias too) */
    double x[2] = {-1.0, 1.0};
    int y[2] = {3, 7}, pred[2];
    metrics_linear m;
    err e;
    assert_int_equal(metrics_linsvc_fit(&m, x, y, 2, 1, 8, 1.0, 0, &e), 0);
    assert_true(fabs(m.w[0] - 0.8) < 1e-12);
    assert_true(fabs(m.w[1]) < 1e-12);
    metrics_linear_predict(&m, x, 2, pred);
    assert_int_equal(pred[0], 3);
    assert_int_equal(pred[1], 7);
    metrics_linear_free(&m);
    /* balanced weights n / (K n_c): one point of class 0 at -1 weighs 3/2, two
     * of class 1 at +1 weigh 3/4 each, so
     *   f = (w^2 + b^2)/2 + 1.5 (1 - w + b)^2 + 1.5 (1 - w - b)^2
     * d/db = 7b = 0, d/dw = w - 6 (1 - w) = 0: w = 6/7 */
    double x3[3] = {-1.0, 1.0, 1.0};
    int y3[3] = {0, 1, 1};
    assert_int_equal(metrics_linsvc_fit(&m, x3, y3, 3, 1, 2, 1.0, 1, &e), 0);
    assert_true(fabs(m.w[0] - 6.0 / 7.0) < 1e-12);
    assert_true(fabs(m.w[1]) < 1e-12);
    metrics_linear_free(&m);
}

static void test_auc(void **state)
{
    (void)state;
    err e;
    /* scikit-learn's roc_auc_score example: 0.75 */
    double s[4] = {0.1, 0.4, 0.35, 0.8};
    unsigned char pos[4] = {0, 0, 1, 1};
    assert_true(fabs(metrics_auc(s, pos, 4, &e) - 0.75) < 1e-15);
    /* a tie between a positive and a negative counts one half */
    double t[2] = {0.5, 0.5};
    unsigned char q[2] = {1, 0};
    assert_true(fabs(metrics_auc(t, q, 2, &e) - 0.5) < 1e-15);
    /* one class only: undefined */
    unsigned char all[2] = {1, 1};
    assert_true(isnan(metrics_auc(t, all, 2, &e)));
}

static void test_gbt_first_stage(void **state)
{
    (void)state;
    err e;
    /* two classes, x = 0, 1, 2, 3, y = 0, 0, 1, 1: prior log-odds 0; the first
     * tree cuts at 1.5; residuals +-1/2, p (1 - p) = 1/4, so each leaf's
     * Newton step is (2 * 1/2) / (2 * 1/4) = 2, times the rate 0.1 */
    float x[4] = {0, 1, 2, 3};
    int y[4] = {0, 0, 1, 1}, pred[4];
    metrics_gbt m;
    assert_int_equal(metrics_gbt_fit(&m, x, y, 4, 1, 2, 100, 3, 0.1, NULL, &e), 0);
    assert_int_equal(m.rows, 1);
    assert_true(m.init[0] == 0.0);
    assert_int_equal(m.nodes[0].feature, 0);
    assert_true(m.nodes[0].threshold == 1.5);
    /* children 1 and 2 are pure: leaves */
    assert_int_equal(m.nodes[1].feature, -1);
    assert_true(fabs(m.nodes[1].value + 0.2) < 1e-15);
    assert_true(fabs(m.nodes[2].value - 0.2) < 1e-15);
    assert_true(m.importance[0] == 1.0);
    metrics_gbt_predict(&m, x, 4, pred);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pred[i], y[i]);
    metrics_gbt_free(&m);

    /* three classes (multinomial), a noise feature that never splits: each
     * class tree's leaf for its own class is (K-1)/K * (2 * 2/3) / (2 * 2/9)
     * = 2, times 0.1; the pure feature gets all the importance */
    float x2[12] = {0, 5, 0.1f, 3, 1, 5, 1.1f, 3, 2, 5, 2.1f, 3};
    int y2[6] = {0, 0, 1, 1, 2, 2}, p2[6];
    int fit_pred[6];
    assert_int_equal(metrics_gbt_fit(&m, x2, y2, 6, 2, 3, 100, 3, 0.1, fit_pred, &e), 0);
    assert_int_equal(m.rows, 3);
    assert_true(fabs(m.init[0] - log(1.0 / 3.0)) < 1e-15);
    assert_int_equal(m.nodes[0].feature, 0);
    assert_true(fabs(m.nodes[0].threshold - 0.55) < 1e-6);
    assert_true(fabs(m.nodes[1].value - 0.2) < 1e-12);
    assert_true(m.importance[0] == 1.0 && m.importance[1] == 0.0);
    metrics_gbt_predict(&m, x2, 6, p2);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(p2[i], y2[i]);
        assert_int_equal(fit_pred[i], y2[i]);
    }
    metrics_gbt_free(&m);
}

/* ---- the metrics on three codes of a small full set ------------------------ */

static const int SIZES[4] = {3, 3, 16, 24};
enum { TK = 4, TD = 4, TN = 3 * 3 * 16 * 24 };

typedef enum { COPY, RANDOM, MIXED } code_kind;

/* codes (TN, TD) of the kind, factors scaled to [0, 1] */
static float *make_codes(code_kind kind, metrics_table *t)
{
    float *z = malloc(sizeof *z * TN * TD);
    assert_non_null(z);
    rng r;
    rng_seed(&r, 7, RNG_TEST);
    *t = (metrics_table){z, TN, TD, TK, SIZES};
    int f[TK];
    for (size_t i = 0; i < TN; i++) {
        metrics_table_factors(t, i, f);
        float *zi = z + i * TD;
        for (int k = 0; k < TK; k++)
            zi[k] = (float)((double)f[k] / (SIZES[k] - 1));
        if (kind == RANDOM)
            for (int k = 0; k < TK; k++)
                zi[k] = (float)rng_normal(&r);
        if (kind == MIXED) {
            zi[0] = (float)(0.5 * ((double)f[0] + f[1]));
            zi[1] = (float)rng_normal(&r);
        }
    }
    return z;
}

/* disentanglement_lib's batches, fewer points; the unsupervised scores on
 * 5,000 codes so that the plug-in MI's bias, (20-1)^2 / (2 n), stays small */
static metrics_dlib_config small_config(void)
{
    metrics_dlib_config c;
    metrics_dlib_defaults(&c);
    c.beta_vae_train = c.beta_vae_eval = 400;
    c.factor_vae_train = c.factor_vae_eval = 400;
    c.factor_vae_var = 2000;
    c.dci_train = c.dci_test = 500;
    c.sap_train = c.sap_test = 500;
    c.modexp_train = c.modexp_test = 500;
    c.unsup_train = 5000;
    return c;
}

static void suite(code_kind kind, metrics_dlib_scores *s)
{
    metrics_table t;
    float *z = make_codes(kind, &t);
    metrics_dlib_config c = small_config();
    err e;
    int rc = metrics_dlib_suite(&t, 11, &c, s, &e);
    if (rc)
        fail_msg("suite: %s", e.msg);
    free(z);
    printf("%-6s beta_vae %.3f/%.3f factor_vae %.3f/%.3f (%d) dci %.3f %.3f %.3f/%.3f sap %.3f "
           "mod %.3f expl %.3f/%.3f gwc %.4f mis %.4f\n",
           kind == COPY ? "copy" : kind == RANDOM ? "random" : "mixed", s->beta_vae_train,
           s->beta_vae_eval, s->factor_vae_train, s->factor_vae_eval, s->factor_vae_active,
           s->dci.disentanglement, s->dci.completeness, s->dci.informativeness_train,
           s->dci.informativeness_test, s->sap, s->modularity, s->explicitness_train,
           s->explicitness_test, s->unsup.gaussian_wasserstein_correlation,
           s->unsup.mutual_info_score);
}

static void test_copy_code(void **state)
{
    (void)state;
    metrics_dlib_scores s;
    suite(COPY, &s);
    /* the fixed factor's latent is the only one with |z1 - z2| = 0 / zero
     * variance in the batch: perfect scores */
    assert_true(s.beta_vae_train == 1.0 && s.beta_vae_eval == 1.0);
    assert_true(s.factor_vae_train == 1.0 && s.factor_vae_eval == 1.0);
    assert_int_equal(s.factor_vae_active, TD);
    /* each factor's trees split on its own latent only */
    assert_true(s.dci.disentanglement > 0.999 && s.dci.completeness > 0.999);
    assert_true(s.dci.informativeness_train == 1.0);
    assert_true(s.dci.informativeness_test > 0.99);
    for (int k = 0; k < TK; k++)
        assert_true(s.dci.completeness_factor[k] > 0.999);
    /* latent k holds factor k's |V_k| <= 20 values in distinct bins: I(z_k;
     * v_k) = H(v_k), the other MI are the plug-in bias only */
    assert_true(s.modularity > 0.995);
    /* linear logits in one standardised latent, C = 1: the 24 ordered
     * classes of factor 3 are ranked well, not perfectly (AUC ~0.9 there) */
    assert_true(s.explicitness_test > 0.93);
    /* SAP: every factor's own latent predicts it best, but a one-vs-rest
     * linear SVM on one latent only finds the two extreme classes of an
     * ordered factor: accuracy ~2/|V_k| (0.67, 0.67, 0.125, 0.083) against
     * chance 1/|V_k| for the other latents, so the gaps are ~1/|V_k| */
    for (int k = 0; k < TK; k++)
        assert_true(s.sap_factor[k] > 0.02);
    assert_true(s.sap_factor[0] > 0.15 && s.sap_factor[1] > 0.15);
    /* independent factors: (almost) diagonal covariance, no shared bins */
    assert_true(s.unsup.gaussian_wasserstein_correlation < 0.01);
    assert_true(s.unsup.mutual_info_score < 0.01);
}

static void test_random_code(void **state)
{
    (void)state;
    metrics_dlib_scores s;
    suite(RANDOM, &s);
    /* chance: 1/K = 0.25 for the fixed factor */
    assert_true(s.beta_vae_eval < 0.35);
    assert_true(s.factor_vae_eval < 0.4);
    /* chance accuracy, mean over factors of 1/|V_k| = 0.191 (+ the majority
     * class's excess) */
    assert_true(s.dci.informativeness_test < 0.35);
    assert_true(s.dci.disentanglement < 0.3 && s.dci.completeness < 0.3);
    assert_true(s.sap < 0.05);
    assert_true(fabs(s.explicitness_test - 0.5) < 0.05);
    assert_true(s.unsup.gaussian_wasserstein_correlation < 0.01);
    /* only the plug-in bias of 20 x 20 bins over 5,000 codes (~0.07 for
     * Gaussian latents, whose outer bins are sparse) */
    assert_true(s.unsup.mutual_info_score < 0.1);
}

static void test_mixed_code(void **state)
{
    (void)state;
    metrics_dlib_scores s, c;
    suite(MIXED, &s);
    suite(COPY, &c);
    /* factors 0 and 1 look the same through z0 = v0 + v1: half of their
     * points (half of all points) go to the wrong one, 1 - 1/4 */
    assert_true(fabs(s.beta_vae_eval - 0.75) < 0.07);
    assert_true(fabs(s.factor_vae_eval - 0.75) < 0.07);
    assert_true(s.dci.disentanglement < c.dci.disentanglement - 0.1);
    assert_true(s.dci.disentanglement > 0.3);
    assert_true(s.sap < c.sap);
    assert_true(s.explicitness_test < c.explicitness_test);
    assert_true(s.explicitness_test > 0.6);

    /* modularity of z0: I(z0; v0) = I(z0; v1), the rest ~0: 1 - 1/(K - 1) */
    metrics_table t;
    float *z = make_codes(MIXED, &t);
    metrics_draws a, b;
    err e;
    rng r;
    rng_seed(&r, 3, RNG_TEST);
    assert_int_equal(metrics_draws_alloc(&a, 5000, 1, 0, &e), 0);
    assert_int_equal(metrics_draws_alloc(&b, 500, 1, 0, &e), 0);
    metrics_draw_points(&t, &r, &a);
    metrics_draw_points(&t, &r, &b);
    double mod, etr, ete, expl[TK], per_code[TD];
    assert_int_equal(metrics_modularity_explicitness(&t, &a, &b, &mod, &etr, &ete, expl, per_code,
                                                     &e), 0);
    assert_true(fabs(per_code[0] - 2.0 / 3.0) < 0.01);
    assert_true(per_code[2] > 0.995 && per_code[3] > 0.995);
    metrics_draws_free(&a);
    metrics_draws_free(&b);
    free(z);
}

/* Gaussian Wasserstein correlation in closed form for two latents:
 * tr sqrt(diag(S) S) = sqrt(a^2 + b^2 + 2 sqrt(a b (a b - c^2))) for
 * S = [[a, c], [c, b]]; mutual_info_score of two copies of one factor = the
 * plug-in entropy of that factor. */
static void test_unsupervised_closed_form(void **state)
{
    (void)state;
    static const int sizes[2] = {4, 5};
    float z[20 * 2];
    metrics_table t = {z, 20, 2, 2, sizes};
    int f[2];
    for (size_t i = 0; i < 20; i++) {
        metrics_table_factors(&t, i, f);
        z[i * 2] = (float)f[0];
        z[i * 2 + 1] = (float)(f[0] + 0.5 * f[1]);
    }
    metrics_draws d;
    err e;
    rng r;
    rng_seed(&r, 5, RNG_TEST);
    assert_int_equal(metrics_draws_alloc(&d, 300, 1, 0, &e), 0);
    metrics_draw_points(&t, &r, &d);
    metrics_unsupervised u;
    assert_int_equal(metrics_unsupervised_score(&t, &d, &u, &e), 0);
    double m0 = 0, m1 = 0, a = 0, b = 0, c = 0;
    for (size_t i = 0; i < d.m; i++) {
        m0 += z[d.idx[i] * 2] / 300.0;
        m1 += z[d.idx[i] * 2 + 1] / 300.0;
    }
    for (size_t i = 0; i < d.m; i++) {
        double u0 = z[d.idx[i] * 2] - m0, u1 = z[d.idx[i] * 2 + 1] - m1;
        a += u0 * u0 / 299.0;
        b += u1 * u1 / 299.0;
        c += u0 * u1 / 299.0;
    }
    double trs = sqrt(a * a + b * b + 2.0 * sqrt(a * b * (a * b - c * c)));
    double gwc = 2.0 * (a + b) - 2.0 * trs;
    assert_true(gwc > 0.1);
    assert_true(fabs(u.gaussian_wasserstein_correlation - gwc) < 1e-9 * gwc);
    assert_true(fabs(u.gaussian_wasserstein_correlation_norm - gwc / (a + b)) < 1e-9);
    assert_true(fabs(u.gaussian_total_correlation + 0.5 * log(1.0 - c * c / (a * b))) < 1e-9);

    /* two copies of factor 0: MI = H(v0) on the draws */
    for (size_t i = 0; i < 20; i++)
        z[i * 2 + 1] = z[i * 2];
    assert_int_equal(metrics_unsupervised_score(&t, &d, &u, &e), 0);
    int lab[300];
    for (size_t i = 0; i < d.m; i++)
        lab[i] = (int)z[d.idx[i] * 2];
    double h = metrics_discrete_entropy(lab, d.m, 4, &e);
    assert_true(fabs(u.mutual_info_score - h) < 1e-12);
    metrics_draws_free(&d);
}

/* The draws: canonical index <-> factors, and each metric's fixed factor. */
static void test_draws(void **state)
{
    (void)state;
    metrics_table t = {NULL, TN, TD, TK, SIZES};
    int f[TK] = {2, 1, 15, 23}, g[TK];
    size_t idx = ((2 * 3 + 1) * 16 + 15) * 24 + 23; /* first factor most significant */
    assert_int_equal(metrics_table_index(&t, f), idx);
    metrics_table_factors(&t, idx, g);
    assert_memory_equal(f, g, sizeof f);
    metrics_draws d;
    err e;
    rng r;
    rng_seed(&r, 1, RNG_TEST);
    assert_int_equal(metrics_draws_alloc(&d, 50, 2 * 8, 1, &e), 0);
    metrics_draw_beta_vae(&t, &r, &d);
    for (size_t i = 0; i < d.m; i++)
        for (int b = 0; b < 8; b++) { /* pair b shares the fixed factor */
            metrics_table_factors(&t, d.idx[i * 16 + b], f);
            metrics_table_factors(&t, d.idx[i * 16 + 8 + b], g);
            assert_int_equal(f[d.label[i]], g[d.label[i]]);
        }
    metrics_draws_free(&d);
    assert_int_equal(metrics_draws_alloc(&d, 50, 8, 1, &e), 0);
    metrics_draw_factor_vae(&t, &r, &d);
    for (size_t i = 0; i < d.m; i++) {
        metrics_table_factors(&t, d.idx[i * 8], f);
        for (int b = 1; b < 8; b++) { /* the whole batch shares it */
            metrics_table_factors(&t, d.idx[i * 8 + b], g);
            assert_int_equal(f[d.label[i]], g[d.label[i]]);
        }
    }
    metrics_draws_free(&d);
}

/* Inputs the suite refuses, each with ERR_INPUT, a message, and the output
 * left as it was. */
static void test_suite_bad_input(void **state)
{
    (void)state;
    static const int one[1] = {4}, two[2] = {4, 5}, many[METRICS_DLIB_MAX_K + 1] = {
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
    float z[20 * 3] = {0};
    const struct {
        metrics_table t;
        const char *msg;
    } cases[] = {
        {{z, 19, 3, 2, two}, "19 codes for 20 factor tuples"},
        {{z, 4, 3, 1, one}, "2..16 factors"},
        {{z, 20, 1, 2, two}, "two latents"},
        {{z, 131072, 3, METRICS_DLIB_MAX_K + 1, many}, "2..16 factors"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        metrics_dlib_scores s;
        memset(&s, 0x5a, sizeof s);
        unsigned char before[sizeof s];
        memcpy(before, &s, sizeof s);
        err e;
        err_clear(&e);
        assert_int_equal(metrics_dlib_suite(&cases[i].t, 1, NULL, &s, &e), ERR_INPUT);
        if (!strstr(e.msg, cases[i].msg))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, e.msg, cases[i].msg);
        assert_memory_equal(&s, before, sizeof s);
    }
    /* labels outside 0..n_labels-1 */
    double x[2] = {0, 1};
    int y[2] = {0, 3};
    metrics_linear m;
    err e;
    assert_int_equal(metrics_logreg_fit(&m, x, y, 2, 1, 3, 1.0, &e), ERR_INPUT);
    assert_non_null(strstr(e.msg, "label 3"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logreg_two_points),
        cmocka_unit_test(test_logreg_multinomial),
        cmocka_unit_test(test_linsvc_two_points),
        cmocka_unit_test(test_auc),
        cmocka_unit_test(test_gbt_first_stage),
        cmocka_unit_test(test_draws),
        cmocka_unit_test(test_unsupervised_closed_form),
        cmocka_unit_test(test_copy_code),
        cmocka_unit_test(test_random_code),
        cmocka_unit_test(test_mixed_code),
        cmocka_unit_test(test_suite_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
