/* dipvae1 and dipvae2 (Kumar et al. 2018, "Variational inference of
 * disentangled latent concepts from unlabeled observations", eqs. 6 and 7;
 * disentanglement_lib's DIPVAE): the ELBO plus a penalty that pulls a
 * covariance of the batch's codes towards the identity:
 *     loss = recon + KL + lambda_od * sum_{i!=j} Cov_ij^2 + lambda_d * sum_i (Cov_ii - 1)^2
 * dipvae1: Cov = Cov_batch[mu], the covariance of the posterior means
 *          (E[mu mu^T] - E[mu] E[mu]^T over the batch, as disentanglement_lib);
 * dipvae2: Cov = Cov_batch[mu] + E_batch[diag(exp(logvar))], the covariance
 *          of z under the batch's aggregate posterior.
 * lambda_d defaults to lambda_d_factor * lambda_od with disentanglement_lib's
 * factors, 10 for dipvae1 and 1 for dipvae2. */
#include "model_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const params[] = {"latent_dim", "lambda_od", "lambda_d", NULL};
static const char *const terms[] = {"loss", "recon", "kl", "dip"};

/* The sums of the penalty, in double, sized at init: D is small (latent_dim). */
typedef struct dip_state {
    double *cov, *g, *mean; /* (D, D), (D, D), (D) */
} dip_state;

double dipvae_penalty(const float *mu, const float *lv, int B, int D, double lambda_od,
                      double lambda_d, float *dmu, float *dlv, double *cov, double *g,
                      double *mean)
{
    // mu, lv (B, D) (lv NULL: dipvae1), dmu, dlv (B, D) or NULL, cov, g (D, D), mean (D)
    for (int j = 0; j < D; j++) {
        double s = 0;
        for (int b = 0; b < B; b++)
            s += mu[(size_t)b * D + j];
        mean[j] = s / B;
    }
    /* Cov_jk = mean_b (mu_bj - m_j)(mu_bk - m_k) [+ delta_jk mean_b exp(lv_bj)] */
    for (int j = 0; j < D; j++)
        for (int k = 0; k <= j; k++) {
            double s = 0;
            for (int b = 0; b < B; b++)
                s += (mu[(size_t)b * D + j] - mean[j]) * (mu[(size_t)b * D + k] - mean[k]);
            cov[j * D + k] = cov[k * D + j] = s / B;
        }
    if (lv)
        for (int j = 0; j < D; j++) {
            double s = 0;
            for (int b = 0; b < B; b++)
                s += exp((double)lv[(size_t)b * D + j]);
            cov[j * D + j] += s / B;
        }
    /* P = lambda_od sum_{j!=k} Cov_jk^2 + lambda_d sum_j (Cov_jj - 1)^2;
     * G = dP/dCov (symmetric): 2 lambda_od Cov_jk off the diagonal,
     * 2 lambda_d (Cov_jj - 1) on it */
    double p = 0;
    for (int j = 0; j < D; j++)
        for (int k = 0; k < D; k++) {
            double v = cov[j * D + k];
            if (j == k) {
                p += lambda_d * (v - 1) * (v - 1);
                g[j * D + k] = 2 * lambda_d * (v - 1);
            } else {
                p += lambda_od * v * v;
                g[j * D + k] = 2 * lambda_od * v;
            }
        }
    if (!dmu)
        return p;
    /* dCov_jk/dmu_bi = (delta_ij c_bk + delta_ik c_bj)/B with c = mu - mean
     * (the mean's own derivative sums to zero over the batch), so
     * dP/dmu_bi = (2/B) sum_k G_ik c_bk; dipvae2: dP/dlv_bj = G_jj exp(lv_bj)/B */
    for (int b = 0; b < B; b++)
        for (int i = 0; i < D; i++) {
            double s = 0;
            for (int k = 0; k < D; k++)
                s += g[i * D + k] * (mu[(size_t)b * D + k] - mean[k]);
            dmu[(size_t)b * D + i] += (float)(2 * s / B);
            if (lv)
                dlv[(size_t)b * D + i] +=
                    (float)(g[i * D + i] * exp((double)lv[(size_t)b * D + i]) / B);
        }
    return p;
}

static int resolve(run_config *c, double factor)
{
    /* lambda_od 10: a value of disentanglement_lib's sweep (1, 2, 5, 10, 20, 50) */
    if (isnan(c->lambda_od))
        c->lambda_od = 10;
    if (isnan(c->lambda_d))
        c->lambda_d = factor * c->lambda_od;
    return 0;
}

static int resolve1(run_config *c, err *e)
{
    (void)e;
    return resolve(c, 10); /* disentanglement_lib's lambda_d_factor for DIP-VAE-I */
}

static int resolve2(run_config *c, err *e)
{
    (void)e;
    return resolve(c, 1); /* and for DIP-VAE-II */
}

static int init(model *m, err *e)
{
    dip_state *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory for the DIP-VAE penalty");
    m->priv = s;
    size_t D = (size_t)m->D;
    s->cov = calloc(D * D, sizeof(double));
    s->g = calloc(D * D, sizeof(double));
    s->mean = calloc(D, sizeof(double));
    if (!s->cov || !s->g || !s->mean)
        return err_set(e, ERR_NOMEM, "out of memory for the DIP-VAE penalty");
    return 0;
}

static void fini(model *m)
{
    dip_state *s = m->priv;
    if (s) {
        free(s->cov);
        free(s->g);
        free(s->mean);
    }
    free(s);
    m->priv = NULL;
}

static int step(model *m, const data_source *d, rng *dr, rng *nr, long t, double *out)
{
    (void)t;
    const run_config *c = &m->cfg;
    dip_state *s = m->priv;
    int two = strcmp(m->method->name, "dipvae2") == 0;
    vae_encode_batch(m, d, dr, nr);
    double recon = vae_decode_batch(m);
    double kl = nn_gauss_kl_forward(NULL, NULL, m->mu, m->lv, m->B, m->D);
    nn_gauss_kl_backward(m->dmu, m->dlv, m->mu, m->lv, m->B, m->D, 1.0f / (float)m->B);
    double dip = dipvae_penalty(m->mu, two ? m->lv : NULL, m->B, m->D, c->lambda_od, c->lambda_d,
                                m->dmu, m->dlv, s->cov, s->g, s->mean);
    vae_backward(m);
    out[0] = recon + kl + dip;
    out[1] = recon;
    out[2] = kl;
    out[3] = dip;
    return 0;
}

const model_method model_dipvae1 = {
    .name = "dipvae1",
    .params = params,
    .terms = terms,
    .n_terms = 4,
    .stochastic = 1,
    .resolve = resolve1,
    .widths = vae_gaussian_widths,
    .init = init,
    .fini = fini,
    .step = step,
};

const model_method model_dipvae2 = {
    .name = "dipvae2",
    .params = params,
    .terms = terms,
    .n_terms = 4,
    .stochastic = 1,
    .resolve = resolve2,
    .widths = vae_gaussian_widths,
    .init = init,
    .fini = fini,
    .step = step,
};
