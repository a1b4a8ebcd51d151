/* The common Gaussian-latent path (encode, reparameterise, decode, backward)
 * and the two methods that need nothing else: vae and betavae (Higgins et al.
 * 2017). */
#include "model_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void vae_encode_batch(model *m, const data_source *d, rng *dr, rng *nr)
{
    int B = m->B, D = m->D, E = m->enc_out, W = m->code_dim;
    data_sample(d, dr, B, m->x, m->f, NULL);
    const float *h = net_forward(&m->enc, &m->ce, &m->arena, m->x, B); /* (B, E) */
    for (int b = 0; b < B; b++) {
        memcpy(m->mu + (size_t)b * D, h + (size_t)b * E, (size_t)D * sizeof(float));
        memcpy(m->lv + (size_t)b * D, h + (size_t)b * E + D, (size_t)D * sizeof(float));
    }
    for (size_t i = 0; i < (size_t)B * D; i++)
        m->eps[i] = (float)rng_normal(nr);
    nn_reparam_forward(m->z, m->mu, m->lv, m->eps, (size_t)B * D);
    for (int b = 0; b < B; b++)
        memcpy(m->code + (size_t)b * W, m->z + (size_t)b * D, (size_t)D * sizeof(float));
    size_t bd = (size_t)B * D * sizeof(float);
    memset(m->dmu, 0, bd);
    memset(m->dlv, 0, bd);
    memset(m->dz, 0, bd);
    memset(m->dcode, 0, (size_t)B * W * sizeof(float));
    memset(m->dh, 0, (size_t)B * E * sizeof(float));
}

double vae_decode_batch(model *m)
{
    int B = m->B, P = m->P;
    m->logits = net_forward(&m->dec, &m->cd, &m->arena, m->code, B); /* (B, P) */
    double recon = nn_bce_logits_forward(NULL, m->logits, m->x, B, P);
    memset(m->dlogits, 0, (size_t)B * P * sizeof(float));
    nn_bce_logits_backward(m->dlogits, m->logits, m->x, B, P, 1.0f / (float)B);
    return recon;
}

void vae_backward(model *m)
{
    vae_backward_decoder(m);
    vae_backward_encoder(m);
}

void vae_backward_decoder(model *m)
{
    net_backward(&m->dec, &m->cd, &m->arena, m->dlogits, m->dcode, m->B);
}

void vae_backward_encoder(model *m)
{
    int B = m->B, D = m->D, E = m->enc_out, W = m->code_dim;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < D; j++)
            m->dz[(size_t)b * D + j] += m->dcode[(size_t)b * W + j];
    nn_reparam_backward(m->dmu, m->dlv, m->dz, m->lv, m->eps, (size_t)B * D);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < D; j++) {
            m->dh[(size_t)b * E + j] += m->dmu[(size_t)b * D + j];
            m->dh[(size_t)b * E + D + j] += m->dlv[(size_t)b * D + j];
        }
    net_backward(&m->enc, &m->ce, &m->arena, m->dh, NULL, B);
}

double vae_capacity(double c_max, long anneal_steps, long t)
{
    /* C(t) = min(c_max, c_max * t / anneal_steps) */
    double c = c_max * (double)t / (double)anneal_steps;
    return c < c_max ? c : c_max;
}

void vae_gaussian_widths(const run_config *c, int *enc_out, int *code_dim, int *D, int *K)
{
    *D = c->latent_dim;
    *K = 0;
    *enc_out = 2 * c->latent_dim;
    *code_dim = c->latent_dim;
}

/* ---- vae: recon + KL ------------------------------------------------------ */

static const char *const vae_params[] = {"latent_dim", NULL};
static const char *const vae_terms[] = {"loss", "recon", "kl"};

static int vae_resolve(run_config *c, err *e)
{
    (void)c;
    (void)e;
    return 0;
}

static int vae_step(model *m, const data_source *d, rng *dr, rng *nr, long t, double *terms)
{
    (void)t;
    vae_encode_batch(m, d, dr, nr);
    double recon = vae_decode_batch(m);
    double kl = nn_gauss_kl_forward(NULL, NULL, m->mu, m->lv, m->B, m->D);
    nn_gauss_kl_backward(m->dmu, m->dlv, m->mu, m->lv, m->B, m->D, 1.0f / (float)m->B);
    vae_backward(m);
    terms[0] = recon + kl;
    terms[1] = recon;
    terms[2] = kl;
    return 0;
}

const model_method model_vae = {
    .name = "vae",
    .params = vae_params,
    .terms = vae_terms,
    .n_terms = 3,
    .stochastic = 1,
    .resolve = vae_resolve,
    .widths = vae_gaussian_widths,
    .step = vae_step,
};

/* ---- betavae: recon + beta*KL --------------------------------------------------
 * Its schema keeps c_max, gamma and anneal_steps: betavae with c_max set was
 * the capacity form of Burgess et al. 2018 until 2026-11-29, which is now
 * annealedvae (annealedvae.c). Such a configuration (an older sweep file, a
 * results row of that time) resolves to annealedvae, and a plain betavae's
 * run id keeps the lines of those keys (nan) that it always had. */

static const char *const betavae_params[] = {"latent_dim", "beta", "beta64", "c_max", "gamma",
                                             "anneal_steps", NULL};
static const char *const betavae_terms[] = {"loss", "recon", "kl"};

static int betavae_resolve(run_config *c, err *e)
{
    if (!isnan(c->c_max)) {
        if (model_key_set(c, "beta"))
            return err_set(e, ERR_INPUT, "beta: betavae with c_max is annealedvae, which weighs "
                                         "|KL - C| by gamma, not beta");
        snprintf(c->model, sizeof c->model, "annealedvae"); /* model_resolve goes on as it */
        return 0;
    }
    if (model_key_set(c, "gamma") || model_key_set(c, "anneal_steps"))
        return err_set(e, ERR_INPUT, "%s: only used with c_max (betavae with c_max is annealedvae)",
                       model_key_set(c, "gamma") ? "gamma" : "anneal_steps");
    return model_beta64(c, 4, e);
}

static int betavae_step(model *m, const data_source *d, rng *dr, rng *nr, long t, double *terms)
{
    (void)t;
    const run_config *c = &m->cfg;
    vae_encode_batch(m, d, dr, nr);
    double recon = vae_decode_batch(m);
    double kl = nn_gauss_kl_forward(NULL, NULL, m->mu, m->lv, m->B, m->D);
    nn_gauss_kl_backward(m->dmu, m->dlv, m->mu, m->lv, m->B, m->D, (float)(c->beta / m->B));
    vae_backward(m);
    terms[0] = recon + c->beta * kl;
    terms[1] = recon;
    terms[2] = kl;
    return 0;
}

const model_method model_betavae = {
    .name = "betavae",
    .params = betavae_params,
    .terms = betavae_terms,
    .n_terms = 3,
    .stochastic = 1,
    .resolve = betavae_resolve,
    .widths = vae_gaussian_widths,
    .step = betavae_step,
};
