/* metrics/dlib.c: disentanglement_lib's supervised metric suite and its
 * unsupervised scores (Locatello et al. 2019, evaluation/metrics/, with
 * the sizes of config/unsupervised_study_v1/metric_configs/) on the
 * full-set code table: BetaVAE and FactorVAE scores, DCI, SAP, modularity
 * and explicitness, the Gaussian total and Wasserstein correlations and the
 * discretised mutual_info_score. Each metric is a draw (which observations)
 * and a score (what it computes from their codes), so a reference can
 * recompute the score from the same draws. */
#include "untangle/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the table and its draws ---------------------------------------------------- */

size_t metrics_table_index(const metrics_table *t, const int *f)
{
    size_t idx = 0;
    for (int k = 0; k < t->K; k++)
        idx = idx * (size_t)t->sizes[k] + (size_t)f[k];
    return idx;
}

void metrics_table_factors(const metrics_table *t, size_t index, int *f)
{
    for (int k = t->K - 1; k >= 0; k--) {
        f[k] = (int)(index % (size_t)t->sizes[k]);
        index /= (size_t)t->sizes[k];
    }
}

int metrics_draws_alloc(metrics_draws *d, size_t m, int width, int labelled, err *e)
{
    memset(d, 0, sizeof *d);
    d->idx = malloc(sizeof *d->idx * (m ? m : 1) * (size_t)width);
    d->label = labelled ? malloc(sizeof *d->label * (m ? m : 1)) : NULL;
    if (!d->idx || (labelled && !d->label)) {
        metrics_draws_free(d);
        return err_set(e, ERR_NOMEM, "metrics: out of memory for %zu draws", m);
    }
    d->m = m;
    d->width = width;
    return 0;
}

void metrics_draws_free(metrics_draws *d)
{
    if (!d)
        return;
    free(d->idx);
    free(d->label);
    d->idx = NULL;
    d->label = NULL;
}

static void draw_tuple(const metrics_table *t, rng *r, int *f)
{
    for (int k = 0; k < t->K; k++)
        f[k] = (int)rng_below(r, (uint64_t)t->sizes[k]);
}

void metrics_draw_points(const metrics_table *t, rng *r, metrics_draws *d)
{
    int f[METRICS_DLIB_MAX_K];
    for (size_t i = 0; i < d->m * (size_t)d->width; i++) {
        draw_tuple(t, r, f);
        d->idx[i] = metrics_table_index(t, f);
    }
}

void metrics_draw_beta_vae(const metrics_table *t, rng *r, metrics_draws *d)
{
    const int B = d->width / 2;
    int f1[METRICS_DLIB_MAX_K], f2[METRICS_DLIB_MAX_K];
    for (size_t i = 0; i < d->m; i++) {
        int k = (int)rng_below(r, (uint64_t)t->K);
        d->label[i] = k;
        size_t *row = d->idx + i * (size_t)d->width;
        /* factors1 = B tuples, factors2 = B tuples, factors2[:, k] = factors1[:, k] */
        for (int b = 0; b < B; b++) {
            draw_tuple(t, r, f1);
            row[b] = metrics_table_index(t, f1);
        }
        for (int b = 0; b < B; b++) {
            draw_tuple(t, r, f2);
            metrics_table_factors(t, row[b], f1);
            f2[k] = f1[k];
            row[B + b] = metrics_table_index(t, f2);
        }
    }
}

void metrics_draw_factor_vae(const metrics_table *t, rng *r, metrics_draws *d)
{
    int f[METRICS_DLIB_MAX_K], v = 0;
    for (size_t i = 0; i < d->m; i++) {
        int k = (int)rng_below(r, (uint64_t)t->K);
        d->label[i] = k;
        size_t *row = d->idx + i * (size_t)d->width;
        for (int b = 0; b < d->width; b++) { /* factors[:, k] = factors[0, k] */
            draw_tuple(t, r, f);
            if (b == 0)
                v = f[k];
            f[k] = v;
            row[b] = metrics_table_index(t, f);
        }
    }
}

/* The codes (m * width, D) and (when f) the factor classes (m * width, K) of
 * the draws. */
static void gather(const metrics_table *t, const metrics_draws *d, float *x, int *f)
{
    for (size_t i = 0; i < d->m * (size_t)d->width; i++) {
        memcpy(x + i * (size_t)t->D, t->codes + d->idx[i] * (size_t)t->D,
               sizeof *x * (size_t)t->D);
        if (f)
            metrics_table_factors(t, d->idx[i], f + i * (size_t)t->K);
    }
}

/* Codes and factors of a plain draw set, malloc'd. */
static int gather_alloc(const metrics_table *t, const metrics_draws *d, float **x, int **f,
                        err *e)
{
    size_t m = d->m * (size_t)d->width;
    *x = malloc(sizeof **x * (m ? m : 1) * (size_t)t->D);
    if (f)
        *f = malloc(sizeof **f * (m ? m : 1) * (size_t)t->K);
    if (!*x || (f && !*f)) {
        free(*x);
        if (f)
            free(*f);
        return err_set(e, ERR_NOMEM, "metrics: out of memory for %zu codes", m);
    }
    gather(t, d, *x, f ? *f : NULL);
    return 0;
}

static double accuracy(const int *pred, const int *f, size_t m, int K, int k)
{
    size_t ok = 0;
    for (size_t i = 0; i < m; i++)
        ok += pred[i] == f[i * (size_t)K + (size_t)k];
    return m ? (double)ok / (double)m : NAN;
}

/* ---- BetaVAE ------------------------------------------------------------------- */

/* feature of point i: mean over the batch of |z1 - z2| (D), in double. */
static void beta_vae_features(const metrics_table *t, const metrics_draws *d, double *x)
{
    const int B = d->width / 2, D = t->D;
    for (size_t i = 0; i < d->m; i++) {
        const size_t *row = d->idx + i * (size_t)d->width;
        double *xi = x + i * (size_t)D;
        for (int j = 0; j < D; j++)
            xi[j] = 0.0;
        for (int b = 0; b < B; b++) {
            const float *z1 = t->codes + row[b] * (size_t)D;
            const float *z2 = t->codes + row[B + b] * (size_t)D;
            for (int j = 0; j < D; j++)
                xi[j] += fabs((double)z1[j] - (double)z2[j]);
        }
        for (int j = 0; j < D; j++)
            xi[j] /= B;
    }
}

int metrics_beta_vae(const metrics_table *t, const metrics_draws *train,
                     const metrics_draws *eval, double *train_acc, double *eval_acc, err *e)
{
    size_t mx = train->m > eval->m ? train->m : eval->m;
    double *x = malloc(sizeof *x * (mx ? mx : 1) * (size_t)t->D);
    int *pred = malloc(sizeof *pred * (mx ? mx : 1));
    metrics_linear lr = {0};
    int rc = 0;
    if (!x || !pred) {
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for the BetaVAE score");
        goto done;
    }
    beta_vae_features(t, train, x);
    rc = metrics_logreg_fit(&lr, x, train->label, train->m, t->D, t->K, 1.0, e);
    if (rc)
        goto done;
    metrics_linear_predict(&lr, x, train->m, pred);
    double a = accuracy(pred, train->label, train->m, 1, 0);
    beta_vae_features(t, eval, x);
    metrics_linear_predict(&lr, x, eval->m, pred);
    *eval_acc = accuracy(pred, eval->label, eval->m, 1, 0);
    *train_acc = a;
done:
    metrics_linear_free(&lr);
    free(x);
    free(pred);
    return rc;
}

/* ---- FactorVAE ------------------------------------------------------------------- */

/* Sample variance (ddof 1) of latent j over the codes of idx (n). */
static double var_of(const metrics_table *t, const size_t *idx, size_t n, int j)
{
    double mean = 0.0, ss = 0.0;
    for (size_t i = 0; i < n; i++)
        mean += t->codes[idx[i] * (size_t)t->D + (size_t)j];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        double v = t->codes[idx[i] * (size_t)t->D + (size_t)j] - mean;
        ss += v * v;
    }
    return n > 1 ? ss / (double)(n - 1) : NAN;
}

/* votes (K, D) of the points of d: (fixed factor, argmin_j over active
 * latents of var_batch(z_j) / global_var_j). */
static void factor_vae_votes(const metrics_table *t, const metrics_draws *d, const double *gvar,
                             const unsigned char *active, long *votes)
{
    memset(votes, 0, sizeof *votes * (size_t)t->K * (size_t)t->D);
    for (size_t i = 0; i < d->m; i++) {
        const size_t *row = d->idx + i * (size_t)d->width;
        int best = -1;
        double bv = INFINITY;
        for (int j = 0; j < t->D; j++) {
            if (!active[j])
                continue;
            double v = var_of(t, row, (size_t)d->width, j) / gvar[j];
            if (best < 0 || v < bv) {
                bv = v;
                best = j;
            }
        }
        votes[(size_t)d->label[i] * t->D + best]++;
    }
}

int metrics_factor_vae(const metrics_table *t, const metrics_draws *var_draws,
                       const metrics_draws *train, const metrics_draws *eval, double threshold,
                       double *train_acc, double *eval_acc, int *active, err *e)
{
    const int D = t->D, K = t->K;
    double gvar[D];
    unsigned char act[D];
    int n_active = 0;
    for (int j = 0; j < D; j++) {
        gvar[j] = var_of(t, var_draws->idx, var_draws->m * (size_t)var_draws->width, j);
        act[j] = sqrt(gvar[j]) >= threshold; /* prune_dims */
        n_active += act[j];
    }
    if (n_active == 0) {
        *train_acc = *eval_acc = 0.0;
        if (active)
            *active = 0;
        return 0;
    }
    long *votes = malloc(sizeof *votes * (size_t)K * (size_t)D);
    if (!votes)
        return err_set(e, ERR_NOMEM, "metrics: out of memory for the FactorVAE votes");
    int cls[D];
    factor_vae_votes(t, train, gvar, act, votes);
    long hit = 0, tot = 0;
    for (int j = 0; j < D; j++) { /* the majority vote: argmax over factors, first on ties */
        cls[j] = 0;
        for (int k = 1; k < K; k++)
            if (votes[(size_t)k * D + j] > votes[(size_t)cls[j] * D + j])
                cls[j] = k;
        hit += votes[(size_t)cls[j] * D + j];
        for (int k = 0; k < K; k++)
            tot += votes[(size_t)k * D + j];
    }
    double a = tot ? (double)hit / (double)tot : NAN;
    factor_vae_votes(t, eval, gvar, act, votes);
    hit = tot = 0;
    for (int j = 0; j < D; j++) {
        hit += votes[(size_t)cls[j] * D + j];
        for (int k = 0; k < K; k++)
            tot += votes[(size_t)k * D + j];
    }
    free(votes);
    *train_acc = a;
    *eval_acc = tot ? (double)hit / (double)tot : NAN;
    if (active)
        *active = n_active;
    return 0;
}

/* ---- DCI ---------------------------------------------------------------------------- */

/* 1 - entropy of (v_i + 1e-11) normalised, in base `base` (scipy.stats.entropy
 * as dci.py calls it); v has n entries `stride` apart. */
static double one_minus_entropy(const double *v, int n, size_t stride, int base)
{
    double s = 0.0, h = 0.0;
    for (int i = 0; i < n; i++)
        s += v[(size_t)i * stride] + 1e-11;
    for (int i = 0; i < n; i++) {
        double p = (v[(size_t)i * stride] + 1e-11) / s;
        h -= p * log(p);
    }
    return 1.0 - h / log((double)base);
}

/* disentanglement and completeness of an importance matrix R (D, K). */
static void dci_from_importance(const double *R, int D, int K, metrics_dci *out,
                                double *per_code)
{
    double tot = 0.0;
    for (int i = 0; i < D * K; i++)
        tot += R[i];
    double dis = 0.0, com = 0.0;
    for (int j = 0; j < D; j++) {
        double dj = one_minus_entropy(R + (size_t)j * K, K, 1, K), rho = 0.0;
        for (int k = 0; k < K; k++)
            rho += tot > 0.0 ? R[(size_t)j * K + k] / tot : 1.0 / (D * K);
        dis += rho * dj;
        if (per_code)
            per_code[j] = dj;
    }
    for (int k = 0; k < K; k++) {
        double ck = one_minus_entropy(R + k, D, (size_t)K, D), rho = 0.0;
        for (int j = 0; j < D; j++)
            rho += tot > 0.0 ? R[(size_t)j * K + k] / tot : 1.0 / (D * K);
        com += rho * ck;
        out->completeness_factor[k] = ck;
    }
    out->disentanglement = dis;
    out->completeness = com;
}

int metrics_dci_score(const metrics_table *t, const metrics_draws *train,
                      const metrics_draws *test, metrics_dci *out, double *importance,
                      double *per_code, err *e)
{
    const int D = t->D, K = t->K;
    if (K > METRICS_DLIB_MAX_K || K < 2)
        return err_set(e, ERR_INPUT, "metrics: DCI needs 2..%d factors, not %d",
                       METRICS_DLIB_MAX_K, K);
    float *xtr = NULL, *xte = NULL;
    int *ftr = NULL, *fte = NULL, *ytr = NULL, *pred = NULL;
    double *R = calloc((size_t)D * K, sizeof *R);
    metrics_dci o;
    memset(&o, 0, sizeof o);
    int rc = R ? 0 : err_set(e, ERR_NOMEM, "metrics: out of memory for DCI");
    if (!rc)
        rc = gather_alloc(t, train, &xtr, &ftr, e);
    if (!rc)
        rc = gather_alloc(t, test, &xte, &fte, e);
    size_t mtr = train->m, mte = test->m, mx = mtr > mte ? mtr : mte;
    ytr = rc ? NULL : malloc(sizeof *ytr * (mtr ? mtr : 1));
    pred = rc ? NULL : malloc(sizeof *pred * (mx ? mx : 1));
    if (!rc && (!ytr || !pred))
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for DCI");
    for (int k = 0; !rc && k < K; k++) {
        for (size_t i = 0; i < mtr; i++)
            ytr[i] = ftr[i * (size_t)K + k];
        metrics_gbt g;
        rc = metrics_gbt_fit(&g, xtr, ytr, mtr, D, t->sizes[k], 100, 3, 0.1, pred, e);
        if (rc)
            break;
        for (int j = 0; j < D; j++)
            R[(size_t)j * K + k] = fabs(g.importance[j]);
        o.informativeness_train += accuracy(pred, ftr, mtr, K, k) / K;
        metrics_gbt_predict(&g, xte, mte, pred);
        o.informativeness_factor[k] = accuracy(pred, fte, mte, K, k);
        o.informativeness_test += o.informativeness_factor[k] / K;
        metrics_gbt_free(&g);
    }
    if (!rc) {
        dci_from_importance(R, D, K, &o, per_code);
        if (importance)
            memcpy(importance, R, sizeof *R * (size_t)D * K);
        *out = o;
    }
    free(R);
    free(xtr);
    free(xte);
    free(ftr);
    free(fte);
    free(ytr);
    free(pred);
    return rc;
}

/* ---- SAP -------------------------------------------------------------------------------- */

/* S_jk: test accuracy of LinearSVC(C = 0.01, balanced) on latent j for factor k. */
static int sap_matrix(const metrics_table *t, const float *xtr, const int *ftr, size_t mtr,
                      const float *xte, const int *fte, size_t mte, double *S, err *e)
{
    const int D = t->D, K = t->K;
    size_t mx = mtr > mte ? mtr : mte;
    double *a = malloc(sizeof *a * mtr), *b = malloc(sizeof *b * mte);
    int *y = malloc(sizeof *y * mtr), *pred = malloc(sizeof *pred * mx);
    int rc = 0;
    if (!a || !b || !y || !pred)
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for SAP");
    for (int j = 0; !rc && j < D; j++) {
        for (size_t i = 0; i < mtr; i++)
            a[i] = xtr[i * (size_t)D + j];
        for (size_t i = 0; i < mte; i++)
            b[i] = xte[i * (size_t)D + j];
        for (int k = 0; !rc && k < K; k++) {
            for (size_t i = 0; i < mtr; i++)
                y[i] = ftr[i * (size_t)K + k];
            metrics_linear m;
            rc = metrics_linsvc_fit(&m, a, y, mtr, 1, t->sizes[k], 0.01, 1, e);
            if (rc)
                break;
            metrics_linear_predict(&m, b, mte, pred);
            S[(size_t)j * K + k] = accuracy(pred, fte, mte, K, k);
            metrics_linear_free(&m);
        }
    }
    free(a);
    free(b);
    free(y);
    free(pred);
    return rc;
}

int metrics_sap(const metrics_table *t, const metrics_draws *train, const metrics_draws *test,
                double *sap, double *gap, double *matrix, err *e)
{
    const int D = t->D, K = t->K;
    if (D < 2)
        return err_set(e, ERR_INPUT, "metrics: SAP needs two latents or more");
    float *xtr = NULL, *xte = NULL;
    int *ftr = NULL, *fte = NULL;
    double *S = malloc(sizeof *S * (size_t)D * K);
    int rc = S ? 0 : err_set(e, ERR_NOMEM, "metrics: out of memory for SAP");
    if (!rc)
        rc = gather_alloc(t, train, &xtr, &ftr, e);
    if (!rc)
        rc = gather_alloc(t, test, &xte, &fte, e);
    if (!rc)
        rc = sap_matrix(t, xtr, ftr, train->m, xte, fte, test->m, S, e);
    if (!rc) {
        double mean = 0.0;
        for (int k = 0; k < K; k++) { /* compute_avg_diff_top_two */
            double t1 = -INFINITY, t2 = -INFINITY;
            for (int j = 0; j < D; j++) {
                double v = S[(size_t)j * K + k];
                if (v > t1) {
                    t2 = t1;
                    t1 = v;
                } else if (v > t2) {
                    t2 = v;
                }
            }
            if (gap)
                gap[k] = t1 - t2;
            mean += (t1 - t2) / K;
        }
        *sap = mean;
        if (matrix)
            memcpy(matrix, S, sizeof *S * (size_t)D * K);
    }
    free(S);
    free(xtr);
    free(xte);
    free(ftr);
    free(fte);
    return rc;
}

/* ---- modularity and explicitness ----------------------------------------------------- */

/* Modularity per latent from the MI matrix I (D, K): 1 - (sum I^2 - max I^2)
 * / (max I^2 (K - 1)); 0 where max I^2 = 0. Returns the mean. */
static double modularity_of(const double *I, int D, int K, double *per_code)
{
    double mean = 0.0;
    for (int j = 0; j < D; j++) {
        double sum = 0.0, mx = 0.0;
        for (int k = 0; k < K; k++) {
            double s = I[(size_t)j * K + k] * I[(size_t)j * K + k];
            sum += s;
            mx = s > mx ? s : mx;
        }
        double m = mx == 0.0 ? 0.0 : 1.0 - (sum - mx) / (mx * (K - 1.0));
        if (per_code)
            per_code[j] = m;
        mean += m / D;
    }
    return mean;
}

/* Macro ROC AUC of a fitted logistic regression on x (m, D) for labels of
 * factor k: one column per class of the model, skipping a class that has no
 * positive or no negative in the set. */
static double explicit_auc(const metrics_linear *lr, const double *x, const int *f, size_t m,
                           int K, int k, double *p, unsigned char *pos, double *s, err *e)
{
    const int C = lr->n_classes;
    metrics_logreg_proba(lr, x, m, p);
    double sum = 0.0;
    int cols = 0;
    for (int c = 0; c < C; c++) {
        for (size_t i = 0; i < m; i++) {
            pos[i] = f[i * (size_t)K + k] == lr->classes[c];
            s[i] = p[i * (size_t)C + c];
        }
        double a = metrics_auc(s, pos, m, e);
        if (a == a) {
            sum += a;
            cols++;
        }
    }
    return cols ? sum / cols : NAN;
}

/* standardise x (m, D) floats into z by mean and std (ddof 0) of the
 * training codes; a constant latent stays 0. */
static void standardise(const float *x, size_t m, int D, const double *mu, const double *sd,
                        double *z)
{
    for (size_t i = 0; i < m; i++)
        for (int j = 0; j < D; j++)
            z[i * (size_t)D + j] =
                sd[j] > 0.0 ? ((double)x[i * (size_t)D + j] - mu[j]) / sd[j] : 0.0;
}

static int explicitness(const metrics_table *t, const float *xtr, const int *ftr, size_t mtr,
                        const float *xte, const int *fte, size_t mte, double *tr_out,
                        double *te_out, double *per_factor, err *e)
{
    const int D = t->D, K = t->K;
    size_t mx = mtr > mte ? mtr : mte;
    int max_size = 1;
    for (int k = 0; k < K; k++)
        max_size = t->sizes[k] > max_size ? t->sizes[k] : max_size;
    double mu[D], sd[D];
    double *ztr = malloc(sizeof *ztr * mtr * D), *zte = malloc(sizeof *zte * (mte ? mte : 1) * D);
    double *p = malloc(sizeof *p * mx * (size_t)max_size), *s = malloc(sizeof *s * mx);
    unsigned char *pos = malloc(mx);
    int *y = malloc(sizeof *y * mtr);
    int rc = 0;
    if (!ztr || !zte || !p || !s || !pos || !y) {
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for explicitness");
        goto done;
    }
    for (int j = 0; j < D; j++) {
        double a = 0.0, b = 0.0;
        for (size_t i = 0; i < mtr; i++)
            a += xtr[i * (size_t)D + j];
        mu[j] = a / (double)mtr;
        for (size_t i = 0; i < mtr; i++)
            b += (xtr[i * (size_t)D + j] - mu[j]) * (xtr[i * (size_t)D + j] - mu[j]);
        sd[j] = sqrt(b / (double)mtr);
    }
    standardise(xtr, mtr, D, mu, sd, ztr);
    standardise(xte, mte, D, mu, sd, zte);
    double tr = 0.0, te = 0.0;
    for (int k = 0; k < K && !rc; k++) {
        for (size_t i = 0; i < mtr; i++)
            y[i] = ftr[i * (size_t)K + k];
        metrics_linear lr;
        rc = metrics_logreg_fit(&lr, ztr, y, mtr, D, t->sizes[k], 1.0, e);
        if (rc)
            break;
        tr += explicit_auc(&lr, ztr, ftr, mtr, K, k, p, pos, s, e) / K;
        double a = explicit_auc(&lr, zte, fte, mte, K, k, p, pos, s, e);
        te += a / K;
        if (per_factor)
            per_factor[k] = a;
        metrics_linear_free(&lr);
    }
    *tr_out = tr;
    *te_out = te;
done:
    free(ztr);
    free(zte);
    free(p);
    free(s);
    free(pos);
    free(y);
    return rc;
}

int metrics_modularity_explicitness(const metrics_table *t, const metrics_draws *train,
                                    const metrics_draws *test, double *modularity,
                                    double *expl_train, double *expl_test, double *expl,
                                    double *per_code, err *e)
{
    const int D = t->D, K = t->K;
    if (K < 2)
        return err_set(e, ERR_INPUT, "metrics: modularity needs two factors or more");
    float *xtr = NULL, *xte = NULL;
    int *ftr = NULL, *fte = NULL;
    double *I = malloc(sizeof *I * (size_t)D * K), tr = 0.0, te = 0.0;
    int rc = I ? 0 : err_set(e, ERR_NOMEM, "metrics: out of memory for modularity");
    if (!rc)
        rc = gather_alloc(t, train, &xtr, &ftr, e);
    if (!rc)
        rc = gather_alloc(t, test, &xte, &fte, e);
    if (!rc)
        rc = metrics_mi_hist(xtr, train->m, D, NULL, 0, NULL, ftr, K, t->sizes,
                             METRICS_HIST_BINS, I, NULL, e);
    if (!rc)
        rc = explicitness(t, xtr, ftr, train->m, xte, fte, test->m, &tr, &te, expl, e);
    if (!rc) {
        *modularity = modularity_of(I, D, K, per_code);
        *expl_train = tr;
        *expl_test = te;
    }
    free(I);
    free(xtr);
    free(xte);
    free(ftr);
    free(fte);
    return rc;
}

/* ---- unsupervised scores ------------------------------------------------------------------ */

/* Eigenvalues of the symmetric A (P, P) by cyclic Jacobi rotations; A is
 * destroyed, ev (P) out. */
static void sym_eigenvalues(double *A, int P, double *ev)
{
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0.0, diag = 0.0;
        for (int p = 0; p < P; p++)
            for (int q = 0; q < P; q++)
                *(p == q ? &diag : &off) += A[p * P + q] * A[p * P + q];
        if (off <= 1e-30 * diag || off == 0.0)
            break;
        for (int p = 0; p < P - 1; p++)
            for (int q = p + 1; q < P; q++) {
                double apq = A[p * P + q];
                if (apq == 0.0)
                    continue;
                double theta = (A[q * P + q] - A[p * P + p]) / (2.0 * apq);
                double tt = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(tt * tt + 1.0), s = tt * c;
                for (int k = 0; k < P; k++) { /* columns p, q */
                    double akp = A[k * P + p], akq = A[k * P + q];
                    A[k * P + p] = c * akp - s * akq;
                    A[k * P + q] = s * akp + c * akq;
                }
                for (int k = 0; k < P; k++) { /* rows p, q */
                    double apk = A[p * P + k], aqk = A[q * P + k];
                    A[p * P + k] = c * apk - s * aqk;
                    A[q * P + k] = s * apk + c * aqk;
                }
            }
    }
    for (int p = 0; p < P; p++)
        ev[p] = A[p * P + p];
}

/* mean over j != l of the plug-in MI of the 20-bin histograms of z_j, z_l */
static int mutual_info_score(const float *x, size_t m, int D, double *out, err *e)
{
    int *bins = malloc(sizeof *bins * m * (size_t)D), *col = malloc(sizeof *col * m);
    int sizes[D];
    double mi[D];
    if (!bins || !col) {
        free(bins);
        free(col);
        return err_set(e, ERR_NOMEM, "metrics: out of memory for mutual_info_score");
    }
    for (int j = 0; j < D; j++) {
        sizes[j] = METRICS_HIST_BINS;
        metrics_discretize(x + j, m, (size_t)D, METRICS_HIST_BINS, col);
        for (size_t i = 0; i < m; i++)
            bins[i * (size_t)D + j] = col[i];
    }
    double sum = 0.0;
    int rc = 0;
    for (int j = 0; j < D && !rc; j++) {
        for (size_t i = 0; i < m; i++)
            col[i] = bins[i * (size_t)D + j];
        rc = metrics_discrete_mi(col, m, METRICS_HIST_BINS, bins, D, sizes, mi, e);
        for (int l = 0; l < D && !rc; l++)
            if (l != j)
                sum += mi[l];
    }
    free(bins);
    free(col);
    if (!rc)
        *out = D > 1 ? sum / ((double)D * D - D) : NAN;
    return rc;
}

int metrics_unsupervised_score(const metrics_table *t, const metrics_draws *d,
                               metrics_unsupervised *out, err *e)
{
    const int D = t->D;
    const size_t m = d->m * (size_t)d->width;
    if (m < 2)
        return err_set(e, ERR_INPUT, "metrics: the unsupervised scores need two codes or more");
    float *x = NULL;
    int rc = gather_alloc(t, d, &x, NULL, e);
    if (rc)
        return rc;
    metrics_unsupervised o;
    double mu[D], S[D * D], A[D * D], ev[D];
    for (int j = 0; j < D; j++) {
        double a = 0.0;
        for (size_t i = 0; i < m; i++)
            a += x[i * (size_t)D + j];
        mu[j] = a / (double)m;
    }
    for (int j = 0; j < D; j++) /* np.cov: ddof 1 */
        for (int l = 0; l <= j; l++) {
            double c = 0.0;
            for (size_t i = 0; i < m; i++)
                c += (x[i * (size_t)D + j] - mu[j]) * (x[i * (size_t)D + l] - mu[l]);
            S[j * D + l] = S[l * D + j] = c / (double)(m - 1);
        }
    /* tr sqrtm(diag(S) S) = sum sqrt eig(diag(S)^1/2 S diag(S)^1/2), a similar
     * positive semi-definite matrix */
    double tr = 0.0, trs = 0.0;
    for (int j = 0; j < D; j++) {
        tr += S[j * D + j];
        for (int l = 0; l < D; l++)
            A[j * D + l] = sqrt(S[j * D + j]) * S[j * D + l] * sqrt(S[l * D + l]);
    }
    sym_eigenvalues(A, D, ev);
    for (int j = 0; j < D; j++)
        trs += ev[j] > 0.0 ? sqrt(ev[j]) : 0.0;
    o.gaussian_wasserstein_correlation = 2.0 * tr - 2.0 * trs;
    o.gaussian_wasserstein_correlation_norm = o.gaussian_wasserstein_correlation / tr;
    rc = metrics_gaussian_tc(x, m, D, &o.gaussian_total_correlation, e);
    if (!rc)
        rc = mutual_info_score(x, m, D, &o.mutual_info_score, e);
    free(x);
    if (!rc)
        *out = o;
    return rc;
}

/* ---- the suite ---------------------------------------------------------------------------- */

void metrics_dlib_defaults(metrics_dlib_config *c)
{
    *c = (metrics_dlib_config){
        .beta_vae_train = 10000, .beta_vae_eval = 5000, .beta_vae_batch = 64,
        .factor_vae_train = 10000, .factor_vae_eval = 5000, .factor_vae_var = 10000,
        .factor_vae_batch = 64, .factor_vae_threshold = 0.05,
        .dci_train = 10000, .dci_test = 5000,
        .sap_train = 10000, .sap_test = 5000,
        .modexp_train = 10000, .modexp_test = 5000,
        .unsup_train = 10000,
    };
}

static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Draw sets a (and b, when mb > 0) of one metric from its stream: plain
 * points unless `kind` is METRICS_DLIB_BETA_VAE or _FACTOR_VAE. */
static int draw_pair(const metrics_table *t, rng *r, int kind, size_t ma, size_t mb, int width,
                     metrics_draws *a, metrics_draws *b, err *e)
{
    int labelled = kind == METRICS_DLIB_BETA_VAE || kind == METRICS_DLIB_FACTOR_VAE;
    int rc = metrics_draws_alloc(a, ma, width, labelled, e);
    if (!rc)
        rc = metrics_draws_alloc(b, mb, width, labelled, e);
    if (rc)
        return rc;
    void (*draw)(const metrics_table *, rng *, metrics_draws *) =
        kind == METRICS_DLIB_BETA_VAE     ? metrics_draw_beta_vae
        : kind == METRICS_DLIB_FACTOR_VAE ? metrics_draw_factor_vae
                                          : metrics_draw_points;
    draw(t, r, a);
    draw(t, r, b);
    return 0;
}

/* One metric of the suite on its own stream. */
static int suite_one(const metrics_table *t, uint64_t seed, const metrics_dlib_config *c, int id,
                     metrics_dlib_scores *o, err *e)
{
    rng r;
    rng_seed(&r, seed, (uint64_t)METRICS_DLIB_STREAM + (uint64_t)id);
    metrics_draws a = {0}, b = {0}, v = {0};
    int rc = 0;
    switch (id) {
    case METRICS_DLIB_BETA_VAE:
        rc = draw_pair(t, &r, id, c->beta_vae_train, c->beta_vae_eval, 2 * c->beta_vae_batch,
                       &a, &b, e);
        if (!rc)
            rc = metrics_beta_vae(t, &a, &b, &o->beta_vae_train, &o->beta_vae_eval, e);
        break;
    case METRICS_DLIB_FACTOR_VAE:
        /* variances first, as factor_vae.py draws them */
        rc = metrics_draws_alloc(&v, c->factor_vae_var, 1, 0, e);
        if (!rc) {
            metrics_draw_points(t, &r, &v);
            rc = draw_pair(t, &r, id, c->factor_vae_train, c->factor_vae_eval,
                           c->factor_vae_batch, &a, &b, e);
        }
        if (!rc)
            rc = metrics_factor_vae(t, &v, &a, &b, c->factor_vae_threshold, &o->factor_vae_train,
                                    &o->factor_vae_eval, &o->factor_vae_active, e);
        break;
    case METRICS_DLIB_DCI:
        rc = draw_pair(t, &r, id, c->dci_train, c->dci_test, 1, &a, &b, e);
        if (!rc)
            rc = metrics_dci_score(t, &a, &b, &o->dci, NULL, NULL, e);
        break;
    case METRICS_DLIB_SAP:
        rc = draw_pair(t, &r, id, c->sap_train, c->sap_test, 1, &a, &b, e);
        if (!rc)
            rc = metrics_sap(t, &a, &b, &o->sap, o->sap_factor, NULL, e);
        break;
    case METRICS_DLIB_MODEXP:
        rc = draw_pair(t, &r, id, c->modexp_train, c->modexp_test, 1, &a, &b, e);
        if (!rc)
            rc = metrics_modularity_explicitness(t, &a, &b, &o->modularity,
                                                 &o->explicitness_train, &o->explicitness_test,
                                                 o->explicitness_factor, NULL, e);
        break;
    default:
        rc = metrics_draws_alloc(&a, c->unsup_train, 1, 0, e);
        if (!rc) {
            metrics_draw_points(t, &r, &a);
            rc = metrics_unsupervised_score(t, &a, &o->unsup, e);
        }
    }
    metrics_draws_free(&a);
    metrics_draws_free(&b);
    metrics_draws_free(&v);
    return rc;
}

int metrics_dlib_suite(const metrics_table *t, uint64_t seed, const metrics_dlib_config *cfg,
                       metrics_dlib_scores *out, err *e)
{
    if (t->K < 2 || t->K > METRICS_DLIB_MAX_K || t->D < 2)
        return err_set(e, ERR_INPUT, "metrics: the suite needs 2..%d factors and two latents "
                                     "or more (K = %d, D = %d)", METRICS_DLIB_MAX_K, t->K, t->D);
    size_t n = 1;
    for (int k = 0; k < t->K; k++)
        n *= (size_t)t->sizes[k];
    if (n != t->n)
        return err_set(e, ERR_INPUT, "metrics: a table of %zu codes for %zu factor tuples",
                       t->n, n);
    metrics_dlib_config c;
    if (cfg)
        c = *cfg;
    else
        metrics_dlib_defaults(&c);
    metrics_dlib_scores o;
    memset(&o, 0, sizeof o);
    for (int id = 0; id < METRICS_DLIB_N_METRICS; id++) {
        double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        int rc = suite_one(t, seed, &c, id, &o, e);
        if (rc)
            return err_prefix(e, "disentanglement_lib metric %d: ", id);
        o.seconds[id] = now(CLOCK_MONOTONIC) - t0;
        o.cpu_seconds[id] = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
    *out = o;
    return 0;
}
