/* annealedvae (Burgess et al. 2018, "Understanding disentangling in
 * beta-VAE", eq. 8; disentanglement_lib's AnnealedVAE): the KL term is held
 * to a capacity C(t) that rises linearly from 0 to c_max nats over
 * anneal_steps steps:
 *     loss = recon + gamma * |KL - C(t)|,  C(t) = min(c_max, c_max * t / anneal_steps)
 * Until 2026-11-29 this was the capacity form of betavae (betavae with
 * c_max set), which still resolves to it (vae.c); its runs keep the ids they
 * had then (run_config_id in src/spec/keys.c). */
#include "model_impl.h"

#include <math.h>

static const char *const params[] = {"latent_dim", "c_max", "gamma", "anneal_steps", NULL};
static const char *const terms[] = {"loss", "recon", "kl", "C"};

static int resolve(run_config *c, err *e)
{
    (void)e;
    /* Burgess et al.'s dSprites setting: gamma 1000, C to 25 nats over
     * 100,000 steps (disentanglement_lib: gamma 1000, iteration_threshold
     * 100000, c_max swept over 5, 10, 25, 50, 75, 100) */
    if (isnan(c->c_max))
        c->c_max = 25;
    if (isnan(c->gamma))
        c->gamma = 1000;
    if (c->anneal_steps < 0)
        c->anneal_steps = 100000;
    return 0;
}

static int step(model *m, const data_source *d, rng *dr, rng *nr, long t, double *out)
{
    const run_config *c = &m->cfg;
    vae_encode_batch(m, d, dr, nr);
    double recon = vae_decode_batch(m);
    double kl = nn_gauss_kl_forward(NULL, NULL, m->mu, m->lv, m->B, m->D);
    /* d/dKL gamma*|KL - C| = gamma*sign(KL - C) (0 at the kink) */
    double cap = vae_capacity(c->c_max, c->anneal_steps, t);
    double w = c->gamma * (kl > cap ? 1.0 : kl < cap ? -1.0 : 0.0);
    nn_gauss_kl_backward(m->dmu, m->dlv, m->mu, m->lv, m->B, m->D, (float)(w / m->B));
    vae_backward(m);
    out[0] = recon + c->gamma * fabs(kl - cap);
    out[1] = recon;
    out[2] = kl;
    out[3] = cap;
    return 0;
}

const model_method model_annealedvae = {
    .name = "annealedvae",
    .params = params,
    .terms = terms,
    .n_terms = 4,
    .stochastic = 1,
    .resolve = resolve,
    .widths = vae_gaussian_widths,
    .step = step,
};
