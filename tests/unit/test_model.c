/* Tests of the model module's training methods: beta-TCVAE's minibatch
 * estimators, JointVAE's discrete latent and capacities, DSD's pairs and
 * swap stages. Gradient checks are central differences in double with an
 * absolute and a relative tolerance, restoring every perturbed value; a
 * failing element is printed with its name. Known answers come from
 * docs/architecture.md section 4. Correctness only: nothing here measures time. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/model/model_impl.h"

/* ---- helpers ------------------------------------------------------------- */

/* |a - n| <= abs_tol + rel_tol*max(|a|, |n|); prints the element otherwise. */
static int close_enough(const char *what, int idx, double analytic, double numeric,
                        double abs_tol, double rel_tol)
{
    double err = fabs(analytic - numeric);
    double tol = abs_tol + rel_tol * fmax(fabs(analytic), fabs(numeric));
    if (err > tol) {
        fprintf(stderr, "gradient mismatch: %s[%d]: analytic %.8g numeric %.8g (err %.3g > %.3g)\n",
                what, idx, analytic, numeric, err, tol);
        return 0;
    }
    return 1;
}

static data_source *open_data(int S)
{
    data_source *d = NULL;
    err e;
    err_clear(&e);
    int rc = data_open_builtin(&d, S, &e);
    if (rc)
        fprintf(stderr, "data_open_builtin: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return d;
}

/* A resolved config: 32x32 mlp plus the NULL-terminated key/value pairs kv. */
static void make_config(run_config *c, const char *const *kv)
{
    err e;
    err_clear(&e);
    run_config_defaults(c);
    static const char *const base[] = {"image_size", "32", "arch", "mlp", NULL};
    for (const char *const *p = base; *p; p += 2)
        assert_int_equal(run_config_set(c, p[0], p[1], &e), 0);
    for (const char *const *p = kv; *p; p += 2) {
        int rc = run_config_set(c, p[0], p[1], &e);
        if (rc)
            fprintf(stderr, "run_config_set %s=%s: %s\n", p[0], p[1], e.msg);
        assert_int_equal(rc, 0);
    }
    int rc = model_resolve(c, &e);
    if (rc)
        fprintf(stderr, "model_resolve: %s\n", e.msg);
    assert_int_equal(rc, 0);
}

static model *make_model(const char *const *kv)
{
    run_config c;
    make_config(&c, kv);
    model *m = NULL;
    err e;
    err_clear(&e);
    int rc = model_create(&m, &c, DATA_N, &e);
    if (rc)
        fprintf(stderr, "model_create: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return m;
}

/* ---- beta-TCVAE estimators ----------------------------------------------- */

/* Random posteriors whose samples overlap several items (so every softmax
 * over k has several non-negligible weights). mu, lv, z (B, D). */
static void random_posteriors(rng *r, int B, int D, float *mu, float *lv, float *z)
{
    for (int n = 0; n < B * D; n++) {
        mu[n] = (float)(0.5 * rng_normal(r));
        lv[n] = (float)(-1.5 + 1.5 * rng_uniform(r));
        z[n] = mu[n] + expf(0.5f * lv[n]) * (float)rng_normal(r);
    }
}

static void test_tc_mss_weights(void **state)
{
    (void)state;
    const int Bs[] = {2, 3, 8, 64};
    for (size_t q = 0; q < sizeof Bs / sizeof Bs[0]; q++) {
        int B = Bs[q];
        tc_est t;
        err e;
        assert_int_equal(tc_create(&t, B, 3, DATA_N, 1, &e), 0);
        double N = DATA_N, M = B - 1;
        for (int i = 0; i < B; i++) {
            double row = 0;
            for (int k = 0; k < B; k++)
                row += exp((double)t.lw[i * B + k]);
            assert_true(fabs(row - 1.0) < 1e-5);
            /* the weight 1/N sits on the diagonal, not in column 0 */
            assert_true(fabs(exp((double)t.lw[i * B + i]) * N - 1.0) < 1e-5);
            double next = exp((double)t.lw[i * B + (i + 1) % B]);
            assert_true(fabs(next / ((N - M) / (N * M)) - 1.0) < 1e-5);
            for (int k = 0; k < B; k++)
                if (k != i && k != (i + 1) % B)
                    assert_true(fabs(exp((double)t.lw[i * B + k]) * M - 1.0) < 1e-5);
        }
        tc_free(&t);
    }
    /* batches the estimators cannot handle */
    tc_est t;
    err e;
    assert_int_equal(tc_create(&t, 1, 3, DATA_N, 1, &e), ERR_INPUT);
    assert_int_equal(tc_create(&t, 8, 3, 4, 1, &e), ERR_INPUT);
}

static void test_tc_identity(void **state)
{
    (void)state;
    enum { B = 16, D = 6 };
    float mu[B * D], lv[B * D], z[B * D];
    rng r;
    rng_seed(&r, 1, RNG_TEST);
    for (int mss = 0; mss <= 1; mss++) {
        tc_est t;
        err e;
        assert_int_equal(tc_create(&t, B, D, DATA_N, mss, &e), 0);
        for (int rep = 0; rep < 5; rep++) {
            random_posteriors(&r, B, D, mu, lv, z);
            tc_forward(&t, mu, lv, z);
            for (int i = 0; i < B; i++) {
                double mi = t.lqzx[i] - t.lqz[i], tc = t.lqz[i] - t.lqzj[i];
                double dwkl = t.lqzj[i] - t.lpz[i];
                assert_true(fabs(mi + tc + dwkl - (t.lqzx[i] - t.lpz[i])) < 1e-4);
                /* log q(z_i|x_i) against a direct evaluation of the density */
                double ref = 0;
                for (int j = 0; j < D; j++) {
                    double d = (double)z[i * D + j] - mu[i * D + j];
                    ref += -0.5 * (log(2 * M_PI) + lv[i * D + j] + d * d * exp(-lv[i * D + j]));
                }
                assert_true(fabs(ref - t.lqzx[i]) < 1e-4);
            }
        }
        tc_free(&t);
    }
}

/* The estimator against a brute-force double evaluation of docs/architecture.md's
 * formulas (naive log of a sum of exps). */
static void test_tc_reference(void **state)
{
    (void)state;
    enum { B = 8, D = 3 };
    float mu[B * D], lv[B * D], z[B * D];
    rng r;
    rng_seed(&r, 2, RNG_TEST);
    random_posteriors(&r, B, D, mu, lv, z);
    for (int mss = 0; mss <= 1; mss++) {
        tc_est t;
        err e;
        assert_int_equal(tc_create(&t, B, D, 1000, mss, &e), 0);
        tc_forward(&t, mu, lv, z);
        double N = 1000, M = B - 1;
        for (int i = 0; i < B; i++) {
            double q = 0, qj[D] = {0};
            for (int k = 0; k < B; k++) {
                double w = !mss ? 1 / (N * B) : k == i ? 1 / N : k == (i + 1) % B ? (N - M) / (N * M) : 1 / M;
                double joint = 1;
                for (int j = 0; j < D; j++) {
                    double d = (double)z[i * D + j] - mu[k * D + j], v = exp((double)lv[k * D + j]);
                    double p = exp(-0.5 * d * d / v) / sqrt(2 * M_PI * v);
                    joint *= p;
                    qj[j] += w * p;
                }
                q += w * joint;
            }
            double sj = 0;
            for (int j = 0; j < D; j++)
                sj += log(qj[j]);
            assert_true(fabs(log(q) - t.lqz[i]) < 1e-4);
            assert_true(fabs(sj - t.lqzj[i]) < 1e-4);
        }
        tc_free(&t);
    }
}

/* F = sum_i (a0*lqzx + a1*lqz + a2*lqzj + a3*lpz) */
static double tc_objective(tc_est *t, const float *mu, const float *lv, const float *z,
                           const double *a)
{
    tc_forward(t, mu, lv, z);
    double f = 0;
    for (int i = 0; i < t->B; i++)
        f += a[0] * t->lqzx[i] + a[1] * t->lqz[i] + a[2] * t->lqzj[i] + a[3] * t->lpz[i];
    return f;
}

static void tc_gradcheck(int mss)
{
    enum { B = 8, D = 4 };
    float mu[B * D], lv[B * D], z[B * D], dmu[B * D], dlv[B * D], dz[B * D];
    const double a[4] = {0.7, -1.3, 0.9, 0.4}; /* all four paths, mixed signs */
    rng r;
    rng_seed(&r, 3 + (uint64_t)mss, RNG_TEST);
    random_posteriors(&r, B, D, mu, lv, z);
    tc_est t;
    err e;
    assert_int_equal(tc_create(&t, B, D, DATA_N, mss, &e), 0);
    tc_objective(&t, mu, lv, z, a);
    memset(dmu, 0, sizeof dmu);
    memset(dlv, 0, sizeof dlv);
    memset(dz, 0, sizeof dz);
    tc_backward(&t, mu, z, a[0], a[1], a[2], a[3], dmu, dlv, dz);
    float *vars[3] = {mu, lv, z}, *grads[3] = {dmu, dlv, dz};
    const char *names[3] = {"mu", "logvar", "z"};
    int ok = 1;
    for (int v = 0; v < 3; v++)
        for (int n = 0; n < B * D; n++) {
            float keep = vars[v][n];
            const double h = 1e-2;
            vars[v][n] = (float)(keep + h);
            double xp = vars[v][n];
            double fp = tc_objective(&t, mu, lv, z, a);
            vars[v][n] = (float)(keep - h);
            double xm = vars[v][n];
            double fm = tc_objective(&t, mu, lv, z, a);
            vars[v][n] = keep;
            double num = (fp - fm) / (xp - xm);
            char what[32];
            snprintf(what, sizeof what, "%s %s", mss ? "mss" : "mws", names[v]);
            ok &= close_enough(what, n, grads[v][n], num, 2e-3, 1e-2);
        }
    tc_free(&t);
    assert_true(ok);
}

static void test_tc_grad_mss(void **state)
{
    (void)state;
    tc_gradcheck(1);
}

static void test_tc_grad_mws(void **state)
{
    (void)state;
    tc_gradcheck(0);
}

/* Independent posteriors: D = 5, mu ~ N(0,1), sigma = 0.1, B = 64,
 * N = 737,280. The aggregate posterior factorises, so the true TC is ~0.
 * MSS stays close; MWS, whose every weight is 1/(N*B), is biased upwards by
 * tens of nats (Chen et al. 2018, appendix C; docs/architecture.md section 4). */
static void test_tc_bias(void **state)
{
    (void)state;
    enum { B = 64, D = 5, REPS = 200 };
    float mu[B * D], lv[B * D], z[B * D];
    rng r;
    rng_seed(&r, 4, RNG_TEST);
    tc_est mss, mws;
    err e;
    assert_int_equal(tc_create(&mss, B, D, DATA_N, 1, &e), 0);
    assert_int_equal(tc_create(&mws, B, D, DATA_N, 0, &e), 0);
    double tc_mss = 0, tc_mws = 0;
    for (int rep = 0; rep < REPS; rep++) {
        for (int n = 0; n < B * D; n++) {
            mu[n] = (float)rng_normal(&r);
            lv[n] = (float)log(0.01);
            z[n] = mu[n] + 0.1f * (float)rng_normal(&r);
        }
        tc_forward(&mss, mu, lv, z);
        tc_forward(&mws, mu, lv, z);
        for (int i = 0; i < B; i++) {
            tc_mss += mss.lqz[i] - mss.lqzj[i];
            tc_mws += mws.lqz[i] - mws.lqzj[i];
        }
    }
    tc_mss /= (double)REPS * B;
    tc_mws /= (double)REPS * B;
    printf("[ tc bias  ] independent posteriors (true TC 0), %d batches of %d: "
           "MSS TC %.3f nats, MWS TC %.3f nats\n", REPS, B, tc_mss, tc_mws);
    tc_free(&mss);
    tc_free(&mws);
    assert_true(fabs(tc_mss) < 2.0);
    assert_true(tc_mws > 10.0);
}

/* ---- JointVAE's discrete latent ------------------------------------------ */

static void test_gumbel_max_frequencies(void **state)
{
    (void)state;
    enum { K = 4, N = 100000 };
    const float logits[K] = {1.0f, 0.0f, -1.0f, 0.5f};
    float la[K], g[K], y[K];
    jointvae_log_softmax(la, logits, K);
    long count[K] = {0};
    rng r;
    rng_seed(&r, 5, RNG_TEST);
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < K; c++)
            g[c] = (float)rng_gumbel(&r);
        /* argmax of the relaxed sample = argmax(log alpha + g), any lambda */
        jointvae_gumbel_softmax(y, la, g, K, 0.67);
        int best = 0;
        for (int c = 1; c < K; c++)
            if (y[c] > y[best])
                best = c;
        count[best]++;
    }
    printf("[ gumbel   ] %d Gumbel-max draws: category  alpha  frequency  z-score\n", N);
    for (int c = 0; c < K; c++) {
        double a = exp((double)la[c]), f = (double)count[c] / N;
        double zs = (f - a) / sqrt(a * (1 - a) / N);
        printf("[ gumbel   ]   %d  %.4f  %.4f  %+.2f\n", c, a, f, zs);
        assert_true(fabs(zs) < 4.5);
    }
}

static void test_gumbel_softmax_relaxation(void **state)
{
    (void)state;
    enum { K = 5, N = 2000 };
    const float logits[K] = {0.3f, -0.2f, 1.1f, 0.0f, -0.7f};
    const double lambdas[] = {2.0, 1.0, 0.5, 0.1, 0.01};
    float la[K], g[K], y[K];
    jointvae_log_softmax(la, logits, K);
    double prev = 0;
    for (size_t q = 0; q < sizeof lambdas / sizeof lambdas[0]; q++) {
        rng r;
        rng_seed(&r, 6, RNG_TEST);
        double mean_max = 0;
        for (int n = 0; n < N; n++) {
            for (int c = 0; c < K; c++)
                g[c] = (float)rng_gumbel(&r);
            jointvae_gumbel_softmax(y, la, g, K, lambdas[q]);
            double s = 0, mx = 0;
            for (int c = 0; c < K; c++) {
                assert_true(y[c] >= 0.0f && y[c] <= 1.0f);
                s += y[c];
                mx = fmax(mx, y[c]);
            }
            assert_true(fabs(s - 1.0) < 1e-5);
            mean_max += mx / N;
        }
        printf("[ gumbel   ] lambda %.2f: mean max_c y_c = %.4f\n", lambdas[q], mean_max);
        assert_true(mean_max > prev); /* sharper as lambda falls */
        prev = mean_max;
    }
    assert_true(prev > 0.99); /* lambda 0.01: one-hot in practice */
}

static void test_kl_cat(void **state)
{
    (void)state;
    rng r;
    rng_seed(&r, 7, RNG_TEST);
    for (int K = 2; K <= 10; K++) {
        float logits[10], la[10];
        for (int c = 0; c < K; c++)
            logits[c] = (float)(2 * rng_normal(&r));
        jointvae_log_softmax(la, logits, K);
        double H = 0, s = 0;
        for (int c = 0; c < K; c++) {
            double a = exp((double)la[c]);
            s += a;
            H -= a * log(a);
        }
        assert_true(fabs(s - 1) < 1e-5);
        assert_true(fabs(jointvae_kl_cat(la, K) - (log(K) - H)) < 1e-5);
    }
    /* uniform: KL 0 */
    float zero[3] = {0, 0, 0}, la[3];
    jointvae_log_softmax(la, zero, 3);
    assert_true(fabs(jointvae_kl_cat(la, 3)) < 1e-6);
}

/* F(logits) = sum_c w_c y_c (Gumbel-softmax) + s * KL_c, both through the
 * log_softmax. */
static double cat_objective(const float *logits, const float *g, const float *w, int K,
                            double lambda, double s)
{
    float la[8], y[8];
    jointvae_log_softmax(la, logits, K);
    jointvae_gumbel_softmax(y, la, g, K, lambda);
    double f = s * jointvae_kl_cat(la, K);
    for (int c = 0; c < K; c++)
        f += (double)w[c] * y[c];
    return f;
}

static void test_gumbel_softmax_grad(void **state)
{
    (void)state;
    enum { K = 5 };
    rng r;
    rng_seed(&r, 8, RNG_TEST);
    int ok = 1;
    const double lambdas[] = {0.67, 1.0, 2.0};
    for (int rep = 0; rep < 6; rep++) {
        double lambda = lambdas[rep % 3], s = rep < 3 ? 0.0 : 1.7;
        float logits[K], g[K], w[K], la[K], y[K], dl[K] = {0};
        for (int c = 0; c < K; c++) {
            logits[c] = (float)rng_normal(&r);
            g[c] = (float)rng_gumbel(&r);
            w[c] = (float)rng_normal(&r);
        }
        jointvae_log_softmax(la, logits, K);
        jointvae_gumbel_softmax(y, la, g, K, lambda);
        jointvae_gumbel_softmax_backward(dl, w, y, la, K, lambda);
        jointvae_kl_cat_backward(dl, la, K, s);
        for (int c = 0; c < K; c++) {
            float keep = logits[c];
            logits[c] = keep + 1e-2f;
            double xp = logits[c], fp = cat_objective(logits, g, w, K, lambda, s);
            logits[c] = keep - 1e-2f;
            double xm = logits[c], fm = cat_objective(logits, g, w, K, lambda, s);
            logits[c] = keep;
            ok &= close_enough(s ? "gumbel+kl_c logits" : "gumbel logits", c, dl[c],
                               (fp - fm) / (xp - xm), 1e-4, 1e-3);
        }
    }
    assert_true(ok);
}

/* The capacity terms gamma*|KL_z - C_z| + gamma*|KL_c - C_c| w.r.t. mu, lv
 * and logits, with C placed on either side of KL (away from the kink). */
static double cap_objective(const run_config *c, const float *mu, const float *lv,
                            const float *logits, float *la, int B, int D, int K, double C_z,
                            double C_c, float *scratch)
{
    for (int b = 0; b < B; b++)
        for (int i = 0, off = 0; i < c->n_discrete; off += c->discrete[i++])
            jointvae_log_softmax(la + b * K + off, logits + b * K + off, c->discrete[i]);
    double kz, kc;
    return jointvae_capacity_loss(c, mu, lv, la, B, D, K, C_z, C_c, &kz, &kc, scratch,
                                  scratch + B * D, scratch + 2 * B * D, K);
}

static void test_capacity_grad(void **state)
{
    (void)state;
    enum { B = 4, D = 3, K = 5 };
    run_config c;
    make_config(&c, (const char *const[]){"model", "jointvae", "latent_dim", "3", "discrete",
                                          "[3, 2]", "gamma", "7", NULL});
    float mu[B * D], lv[B * D], logits[B * K], la[B * K];
    float scratch[3 * B * D + B * K]; /* the FD evaluations' throw-away gradients */
    rng r;
    rng_seed(&r, 9, RNG_TEST);
    for (int n = 0; n < B * D; n++) {
        mu[n] = (float)rng_normal(&r);
        lv[n] = (float)(0.5 * rng_normal(&r));
    }
    for (int n = 0; n < B * K; n++)
        logits[n] = (float)rng_normal(&r);
    /* KL values at this point, to place the capacities on either side */
    for (int b = 0; b < B; b++)
        for (int i = 0, off = 0; i < c.n_discrete; off += c.discrete[i++])
            jointvae_log_softmax(la + b * K + off, logits + b * K + off, c.discrete[i]);
    double kz0, kc0;
    jointvae_capacity_loss(&c, mu, lv, la, B, D, K, 0, 0, &kz0, &kc0, scratch, scratch + B * D,
                           scratch + 2 * B * D, K);
    int ok = 1;
    for (int side = 0; side < 4; side++) {
        double C_z = kz0 + (side & 1 ? 0.5 : -0.5), C_c = kc0 + (side & 2 ? 0.1 : -0.1);
        float dmu[B * D] = {0}, dlv[B * D] = {0}, dl[B * K] = {0};
        double kz, kc;
        cap_objective(&c, mu, lv, logits, la, B, D, K, C_z, C_c, scratch);
        jointvae_capacity_loss(&c, mu, lv, la, B, D, K, C_z, C_c, &kz, &kc, dmu, dlv, dl, K);
        float *vars[3] = {mu, lv, logits}, *grads[3] = {dmu, dlv, dl};
        const int sizes[3] = {B * D, B * D, B * K};
        const char *names[3] = {"capacity mu", "capacity logvar", "capacity logits"};
        for (int v = 0; v < 3; v++)
            for (int n = 0; n < sizes[v]; n++) {
                float keep = vars[v][n];
                vars[v][n] = keep + 1e-3f;
                double xp = vars[v][n];
                double fp = cap_objective(&c, mu, lv, logits, la, B, D, K, C_z, C_c, scratch);
                vars[v][n] = keep - 1e-3f;
                double xm = vars[v][n];
                double fm = cap_objective(&c, mu, lv, logits, la, B, D, K, C_z, C_c, scratch);
                vars[v][n] = keep;
                ok &= close_enough(names[v], n, grads[v][n], (fp - fm) / (xp - xm), 2e-3, 2e-3);
            }
    }
    assert_true(ok);
}

/* ---- whole-model gradient checks ----------------------------------------- */

/* One forward + backward of the method with the batch and noise of seed 11
 * (the same for every evaluation); returns the loss. */
static double model_loss(model *m, const data_source *d, long t)
{
    rng dr, nr;
    rng_seed(&dr, 11, RNG_DATA);
    rng_seed(&nr, 11, RNG_NOISE);
    double terms[MODEL_MAX_TERMS];
    int rc = m->method->step(m, d, &dr, &nr, t, terms);
    assert_int_equal(rc, 0);
    return terms[0];
}

/* Check dloss/dparam for a sample of parameters: in every dense and conv
 * layer of the encoder and decoder, the weights with the largest analytic
 * gradients among random candidates, and one bias; in the encoder's output layer one weight
 * per output unit (every head: mu, logvar, logits or code). */
static void check_model_grad(model *m, const data_source *d, long t, const char *label)
{
    /* Steps of the central difference: a conv weight or bias moves every
     * position of a map, where a step of 1e-2 flips ReLUs (the loss has
     * kinks within it); 1e-3 keeps clear of them and still far above the
     * float rounding of the loss. The encoder's conv gradients are small
     * (1e-3), so their absolute tolerance is 1e-6 of the loss instead of
     * 5e-3, with which a swapped tap in a conv's input gradient went
     * unnoticed; the difference quotients' error, measured, was up to 3e-4
     * at a loss of 660 (32x32) and 6e-4 at 2958 (64x64). */
    const double STEP_DENSE = 1e-2, STEP_CONV = 1e-3;
    enum { MAXC = 256 };
    size_t idx[MAXC];
    double an[MAXC], step[MAXC];
    int nc = 0;
    nn_arena_zero_grad(&m->arena);
    double f0 = model_loss(m, d, t);
    assert_true(isfinite(f0));
    const double ABS_CONV = 1e-6 * fabs(f0);
    const float *g = m->arena.grad;
    rng r;
    rng_seed(&r, 12, RNG_TEST);
    const net *nets[2] = {&m->enc, &m->dec};
    for (int q = 0; q < 2; q++)
        for (int li = 0; li < nets[q]->n; li++) {
            const net_layer *l = &nets[q]->layer[li];
            if (l->kind == NET_CONV || l->kind == NET_CONVT) {
                /* two of the largest of random candidates of the kernel, one bias */
                const nn_conv *cd = &l->conv;
                size_t nw = (size_t)cd->C * cd->O * cd->K * cd->K;
                for (int p = 0; p < 2 && nc < MAXC - 1; p++) {
                    size_t best = l->w;
                    double bg = -1;
                    for (int s = 0; s < 64; s++) {
                        size_t cand = l->w + rng_below(&r, (uint64_t)nw);
                        if (fabs(g[cand]) > bg) {
                            bg = fabs(g[cand]);
                            best = cand;
                        }
                    }
                    idx[nc] = best;
                    step[nc] = STEP_CONV;
                    an[nc++] = g[best];
                }
                size_t bi = l->b + rng_below(&r, (uint64_t)cd->O);
                idx[nc] = bi;
                step[nc] = STEP_CONV;
                an[nc++] = g[bi];
                continue;
            }
            if (l->kind != NET_DENSE)
                continue;
            int last_enc = q == 0 && li == nets[q]->n - 1;
            int rows = last_enc ? l->out : 2; /* picks from this layer */
            for (int p = 0; p < rows && nc < MAXC - 1; p++) {
                size_t best = 0;
                double bg = -1;
                for (int s = 0; s < 64; s++) {
                    size_t o = last_enc ? (size_t)p : (size_t)rng_below(&r, (uint64_t)l->out);
                    size_t cand = l->w + o * (size_t)l->in + rng_below(&r, (uint64_t)l->in);
                    if (fabs(g[cand]) > bg) {
                        bg = fabs(g[cand]);
                        best = cand;
                    }
                }
                idx[nc] = best;
                step[nc] = STEP_DENSE;
                an[nc++] = g[best];
            }
            size_t bi = l->b + rng_below(&r, (uint64_t)l->out);
            idx[nc] = bi;
            step[nc] = STEP_DENSE;
            an[nc++] = g[bi];
        }
    int ok = 1;
    for (int c = 0; c < nc; c++) {
        float *p = &m->arena.param[idx[c]];
        float keep = *p;
        const double h = step[c] * fmax(1.0, fabs(keep));
        *p = (float)(keep + h);
        double xp = *p, fp = model_loss(m, d, t);
        *p = (float)(keep - h);
        double xm = *p, fm = model_loss(m, d, t);
        *p = keep;
        char what[96];
        snprintf(what, sizeof what, "%s param %zu", label, idx[c]);
        ok &= close_enough(what, c, an[c], (fp - fm) / (xp - xm),
                           step[c] == STEP_CONV ? ABS_CONV : 5e-3, 3e-2);
    }
    nn_arena_zero_grad(&m->arena);
    printf("[ gradcheck] %s: %d parameters checked, loss %.3f\n", label, nc, f0);
    assert_true(ok);
}

static void test_grad_betavae(void **state)
{
    (void)state;
    data_source *d = open_data(32);
    model *m = make_model((const char *const[]){"model", "betavae", "batch_size", "8",
                                                "latent_dim", "4", NULL});
    check_model_grad(m, d, 1, "betavae");
    model_destroy(m);
    data_close(d);
}

/* The dlib arch (disentanglement_lib's conv_encoder: 4x4 and 2x2 stride-2
 * convolutions) through a whole betavae step, at both image sizes; its
 * layer shapes are the ones docs/architecture.md section 4 gives. */
static void test_grad_dlib(void **state)
{
    (void)state;
    const char *sizes[2] = {"32", "64"};
    for (int q = 0; q < 2; q++) {
        data_source *d = open_data(atoi(sizes[q]));
        model *m = make_model((const char *const[]){"image_size", sizes[q], "arch", "dlib",
                                                    "model", "betavae", "batch_size", "4",
                                                    "latent_dim", "4", NULL});
        /* encoder: conv 32 4x4, [conv 32 4x4,] conv 64 2x2, conv 64 2x2 (ReLU
         * after each), dense 1024-256 ReLU, dense 256-2D */
        const int S = atoi(sizes[q]), nconv = S == 64 ? 4 : 3;
        assert_int_equal(m->enc.n, 2 * nconv + 3);
        for (int i = 0; i < nconv; i++) {
            const net_layer *l = &m->enc.layer[2 * i];
            assert_int_equal(l->kind, NET_CONV);
            assert_int_equal(l->conv.K, i >= nconv - 2 ? 2 : 4);
            assert_int_equal(l->conv.P, i >= nconv - 2 ? 0 : 1);
            assert_int_equal(l->conv.OH, S >> (i + 1));
            assert_int_equal(m->enc.layer[2 * i + 1].kind, NET_RELU);
        }
        assert_int_equal(m->enc.layer[2 * nconv].in, 1024);
        assert_int_equal(m->enc.layer[2 * nconv].out, 256);
        assert_int_equal(m->enc.out, 8);
        char label[32];
        snprintf(label, sizeof label, "betavae dlib %sx%s", sizes[q], sizes[q]);
        check_model_grad(m, d, 1, label);
        model_destroy(m);
        data_close(d);
    }
}

static void test_grad_betatcvae(void **state)
{
    (void)state;
    data_source *d = open_data(32);
    const char *est[2] = {"mss", "mws"};
    for (int q = 0; q < 2; q++) {
        model *m = make_model((const char *const[]){"model", "betatcvae", "batch_size", "8",
                                                    "latent_dim", "4", "estimator", est[q],
                                                    "alpha", "0.5", "beta", "6", "gamma", "2",
                                                    NULL});
        char label[32];
        snprintf(label, sizeof label, "betatcvae %s", est[q]);
        check_model_grad(m, d, 1, label);
        model_destroy(m);
    }
    data_close(d);
}

static void test_grad_jointvae(void **state)
{
    (void)state;
    data_source *d = open_data(32);
    /* capacities far above the initial KLs (no kink near), two discrete
     * variables so the blocks' offsets are exercised */
    model *m = make_model((const char *const[]){"model", "jointvae", "batch_size", "8",
                                                "latent_dim", "3", "discrete", "[3, 4]",
                                                "gamma", "5", "c_z_max", "30", "c_c_max", "2",
                                                "anneal_steps", "10", NULL});
    check_model_grad(m, d, 10, "jointvae");
    model_destroy(m);
    data_close(d);
}

static void test_grad_dsd(void **state)
{
    (void)state;
    data_source *d = open_data(32);
    const char *sup[3] = {"1", "0", "0.5"};
    const char *label[3] = {"dsd primary", "dsd dual", "dsd both"};
    for (int q = 0; q < 3; q++) {
        model *m = make_model((const char *const[]){"model", "dsd", "batch_size", "8",
                                                    "chunks", "[1, 1, 2, 1, 1]", "supervision",
                                                    sup[q], "w_swap", "1.5", NULL});
        /* Train first: at initialisation every decoded hybrid is ~0.5
         * everywhere, which hides the dual stage's paths through the second
         * encoder pass and the swap back. */
        rng dr, nr;
        rng_seed(&dr, 16, RNG_DATA);
        rng_seed(&nr, 16, RNG_NOISE);
        double terms[MODEL_MAX_TERMS];
        err e;
        for (long t = 1; t <= 60; t++)
            assert_int_equal(model_step(m, d, &dr, &nr, t, terms, &e), 0);
        check_model_grad(m, d, 61, label[q]);
        model_destroy(m);
    }
    data_close(d);
}

/* ---- DSD pairs ----------------------------------------------------------- */

static void test_dsd_pairs(void **state)
{
    (void)state;
    enum { NP = 500, S = 32, P = S * S };
    data_source *d = open_data(S);
    float *x = malloc((size_t)2 * NP * P * sizeof(float)), img[P];
    int *f = malloc((size_t)2 * NP * DATA_K * sizeof(int)), k[NP];
    assert_non_null(x);
    assert_non_null(f);
    rng r;
    rng_seed(&r, 13, RNG_TEST);
    /* all labeled: every pair shares exactly the value of its factor */
    int per_k[DATA_K] = {0}, same_other = 0, others = 0;
    for (int rep = 0; rep < 4; rep++) {
        assert_int_equal(dsd_sample_pairs(d, &r, NP, 1.0, x, f, k), NP);
        for (int p = 0; p < NP; p++) {
            const int *fa = f + 2 * p * DATA_K, *fb = fa + DATA_K;
            assert_true(k[p] >= 0 && k[p] < DATA_K);
            assert_int_equal(fa[k[p]], fb[k[p]]);
            per_k[k[p]]++;
            for (int j = 0; j < DATA_K; j++)
                if (j != k[p] && j >= 3) { /* positions: 32 values */
                    others++;
                    same_other += fa[j] == fb[j];
                }
            /* the images are the renders of their factors */
            for (int h = 0; h < 2; h++) {
                data_get(d, data_index(fa + h * DATA_K), img, NULL);
                assert_memory_equal(img, x + (size_t)(2 * p + h) * P, sizeof img);
            }
        }
    }
    for (int j = 0; j < DATA_K; j++)
        assert_true(per_k[j] > 4 * NP / DATA_K / 2); /* every factor is chosen */
    /* other factors coincide only by chance (1/32 for positions) */
    double rate = (double)same_other / others;
    printf("[ dsd pairs] labeled: factor k always shared; positions shared by chance "
           "%.4f (1/32 = %.4f)\n", rate, 1.0 / 32);
    assert_true(rate < 0.06);
    /* mixed: labeled pairs first, about `supervision` of them */
    long labeled = 0;
    for (int rep = 0; rep < 4; rep++) {
        int nl = dsd_sample_pairs(d, &r, NP, 0.3, x, f, k);
        labeled += nl;
        for (int p = 0; p < nl; p++)
            assert_int_equal(f[2 * p * DATA_K + k[p]], f[(2 * p + 1) * DATA_K + k[p]]);
    }
    double frac = (double)labeled / (4 * NP);
    assert_true(fabs(frac - 0.3) < 0.05);
    assert_int_equal(dsd_sample_pairs(d, &r, NP, 0.0, x, f, k), 0);
    free(x);
    free(f);
    data_close(d);
}

/* ---- short trainings ----------------------------------------------------- */

static void test_jointvae_capacity_tracking(void **state)
{
    (void)state;
    enum { T = 400 };
    data_source *d = open_data(32);
    model *m = make_model((const char *const[]){"model", "jointvae", "batch_size", "32",
                                                "latent_dim", "6", "discrete", "[3]", "gamma",
                                                "30", "c_z_max", "8", "c_c_max", "1.0",
                                                "anneal_steps", "250", "lr", "1e-3", NULL});
    rng dr, nr;
    rng_seed(&dr, 14, RNG_DATA);
    rng_seed(&nr, 14, RNG_NOISE);
    err e;
    double terms[MODEL_MAX_TERMS];
    /* windows of 50 steps: mean KL_z, C_z, KL_c, C_c */
    double w[4] = {0};
    double gap_z_late = 0, gap_c_late = 0;
    int ok = 1;
    for (long t = 1; t <= T; t++) {
        int rc = model_step(m, d, &dr, &nr, t, terms, &e);
        if (rc)
            fprintf(stderr, "model_step: %s\n", e.msg);
        assert_int_equal(rc, 0);
        w[0] += terms[2] / 50;
        w[1] += terms[4] / 50;
        w[2] += terms[3] / 50;
        w[3] += terms[5] / 50;
        if (t % 50 == 0) {
            printf("[ jointvae ] steps %3ld-%3ld: KL_z %6.3f C_z %6.3f | KL_c %6.3f C_c %6.3f | recon %.1f\n",
                   t - 49, t, w[0], w[1], w[2], w[3], terms[1]);
            if (t >= 150) {
                /* past the first rise the KLs follow their capacities */
                ok &= fabs(w[0] - w[1]) < 1.0;
                ok &= fabs(w[2] - w[3]) < 0.15;
            }
            if (t > 300) {
                gap_z_late = fabs(w[0] - w[1]);
                gap_c_late = fabs(w[2] - w[3]);
            }
            memset(w, 0, sizeof w);
        }
    }
    printf("[ jointvae ] last window: |KL_z - C_z| %.3f, |KL_c - C_c| %.3f\n", gap_z_late,
           gap_c_late);
    assert_true(ok);
    model_destroy(m);
    data_close(d);
}

/* Train m for `steps` steps (seed 15); *first and *last get the mean of
 * terms[idx] over the first and the last `window` steps. */
static void train(model *m, const data_source *d, long steps, double *first, double *last,
                  int idx, int window)
{
    rng dr, nr;
    rng_seed(&dr, 15, RNG_DATA);
    rng_seed(&nr, 15, RNG_NOISE);
    err e;
    double terms[MODEL_MAX_TERMS];
    *first = *last = 0;
    for (long t = 1; t <= steps; t++) {
        int rc = model_step(m, d, &dr, &nr, t, terms, &e);
        if (rc)
            fprintf(stderr, "model_step: %s\n", e.msg);
        assert_int_equal(rc, 0);
        for (int q = 0; q < 4; q++)
            if (q == 0 || q == idx)
                assert_true(isfinite(terms[q]));
        if (t <= window)
            *first += terms[idx] / window;
        if (t > steps - window)
            *last += terms[idx] / window;
    }
}

static void test_dsd_train_supervised(void **state)
{
    (void)state;
    data_source *d = open_data(32);
    model *m = make_model((const char *const[]){"model", "dsd", "batch_size", "32",
                                                "supervision", "1", NULL});
    double first, last;
    train(m, d, 150, &first, &last, 2, 15);
    printf("[ dsd      ] supervision 1: primary %.1f (first 15 steps) -> %.1f (last 15)\n",
           first, last);
    assert_true(last < 0.8 * first);
    model_destroy(m);
    data_close(d);
}

static void test_dsd_train_unsupervised(void **state)
{
    (void)state;
    data_source *d = open_data(32);
    model *m = make_model((const char *const[]){"model", "dsd", "batch_size", "32",
                                                "supervision", "0", NULL});
    double first, last;
    train(m, d, 100, &first, &last, 1, 15);
    printf("[ dsd      ] supervision 0: recon %.1f (first 15 steps) -> %.1f (last 15)\n",
           first, last);
    assert_true(last < 0.8 * first);
    model_destroy(m);
    data_close(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tc_mss_weights),
        cmocka_unit_test(test_tc_identity),
        cmocka_unit_test(test_tc_reference),
        cmocka_unit_test(test_tc_grad_mss),
        cmocka_unit_test(test_tc_grad_mws),
        cmocka_unit_test(test_tc_bias),
        cmocka_unit_test(test_gumbel_max_frequencies),
        cmocka_unit_test(test_gumbel_softmax_relaxation),
        cmocka_unit_test(test_kl_cat),
        cmocka_unit_test(test_gumbel_softmax_grad),
        cmocka_unit_test(test_capacity_grad),
        cmocka_unit_test(test_grad_betavae),
        cmocka_unit_test(test_grad_dlib),
        cmocka_unit_test(test_grad_betatcvae),
        cmocka_unit_test(test_grad_jointvae),
        cmocka_unit_test(test_grad_dsd),
        cmocka_unit_test(test_dsd_pairs),
        cmocka_unit_test(test_jointvae_capacity_tracking),
        cmocka_unit_test(test_dsd_train_supervised),
        cmocka_unit_test(test_dsd_train_unsupervised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
