/* betatcvae (Chen et al. 2018): the ELBO's KL term split, as in their
 * decomposition, into index-code mutual information, total correlation and
 * dimension-wise KL, each weighted on its own:
 *     loss = recon + alpha*MI + beta*TC + gamma*DWKL
 * with the minibatch estimates of tc.c (MSS by default, MWS on request). */
#include "model_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const params[] = {"latent_dim", "alpha", "beta", "beta64", "gamma",
                                     "estimator", NULL};
static const char *const terms[] = {"loss", "recon", "kl", "mi", "tc", "dwkl"};

static int resolve(run_config *c, err *e)
{
    if (isnan(c->alpha))
        c->alpha = 1;
    int rc = model_beta64(c, 6, e);
    if (rc < 0)
        return rc;
    if (isnan(c->gamma))
        c->gamma = 1;
    /* MWS: the default of both reference codes (vae_quant.py without --mss,
     * disentanglement_lib's BetaTCVAE); MSS on request */
    if (!c->estimator[0])
        strcpy(c->estimator, "mws");
    if (strcmp(c->estimator, "mss") != 0 && strcmp(c->estimator, "mws") != 0)
        return err_set(e, ERR_INPUT, "estimator: '%s': must be mss or mws", c->estimator);
    return 0;
}

static void widths(const run_config *c, int *enc_out, int *code_dim, int *D, int *K)
{
    *D = c->latent_dim;
    *K = 0;
    *enc_out = 2 * c->latent_dim;
    *code_dim = c->latent_dim;
}

static int init(model *m, err *e)
{
    tc_est *t = calloc(1, sizeof *t);
    if (!t)
        return err_set(e, ERR_NOMEM, "out of memory for the TC estimator");
    m->priv = t;
    return tc_create(t, m->B, m->D, (double)m->n_data, strcmp(m->cfg.estimator, "mws") != 0, e);
}

static void fini(model *m)
{
    tc_free(m->priv);
    free(m->priv);
    m->priv = NULL;
}

static int step(model *m, const data_source *d, rng *dr, rng *nr, long t, double *out)
{
    (void)t;
    const run_config *c = &m->cfg;
    tc_est *est = m->priv;
    const int B = m->B;
    vae_encode_batch(m, d, dr, nr);
    double recon = vae_decode_batch(m);
    double kl = nn_gauss_kl_forward(NULL, NULL, m->mu, m->lv, B, m->D); /* monitoring only */
    tc_forward(est, m->mu, m->lv, m->z);
    /* Chen et al. 2018's decomposition of the KL term, per sample:
     *   MI_i = lqzx - lqz, TC_i = lqz - lqzj, DWKL_i = lqzj - lpz */
    double mi = 0, tc = 0, dwkl = 0;
    for (int i = 0; i < B; i++) {
        mi += est->lqzx[i] - est->lqz[i];
        tc += est->lqz[i] - est->lqzj[i];
        dwkl += est->lqzj[i] - est->lpz[i];
    }
    mi /= B;
    tc /= B;
    dwkl /= B;
    /* alpha*MI + beta*TC + gamma*DWKL, regrouped by estimate:
     * mean_i [alpha*lqzx + (beta-alpha)*lqz + (gamma-beta)*lqzj - gamma*lpz] */
    tc_backward(est, m->mu, m->z, c->alpha / B, (c->beta - c->alpha) / B,
                (c->gamma - c->beta) / B, -c->gamma / B, m->dmu, m->dlv, m->dz);
    vae_backward(m);
    out[0] = recon + c->alpha * mi + c->beta * tc + c->gamma * dwkl;
    out[1] = recon;
    out[2] = kl;
    out[3] = mi;
    out[4] = tc;
    out[5] = dwkl;
    return 0;
}

const model_method model_betatcvae = {
    .name = "betatcvae",
    .params = params,
    .terms = terms,
    .n_terms = 6,
    .stochastic = 1,
    .resolve = resolve,
    .widths = widths,
    .init = init,
    .fini = fini,
    .step = step,
};
