/* factorvae (Kim and Mnih 2018, "Disentangling by factorising", eq. 2;
 * disentanglement_lib's FactorVAE): the ELBO plus gamma times the total
 * correlation of q(z), estimated by a discriminator D that tells samples of
 * q(z) from samples of prod_j q(z_j) (the batch's codes with each dimension
 * permuted across the batch on its own):
 *     loss   = recon + KL + gamma * TC,  TC = mean_b (D(z_b)_0 - D(z_b)_1)
 *     loss_D = -(0.5 mean_b log p(z_b)_0 + 0.5 mean_b log p(zperm_b)_1),
 *              p = clip(softmax(D(.)), 1e-6, 1 - 1e-6)
 * (logit 0: "from q(z)"; at D's optimum logit_0 - logit_1 = log q(z) -
 * log prod_j q(z_j), whose mean is the TC). As disentanglement_lib, both
 * losses are computed on the same batch with the parameters before the
 * step; the VAE's gradient goes through D into z but not into D's
 * parameters, D's gradient into its parameters but not into z; the networks
 * take their Adam step (lr from the configuration), then D takes its own:
 * Adam lr 1e-4, beta1 0.5, beta2 0.9, eps 1e-8 (disentanglement_lib's
 * discriminator optimizer).
 *
 * D (disentanglement_lib's fc_discriminator, the paper's appendix A): six
 * dense layers of 1000 units with leaky ReLU (slope 0.2), then a dense
 * layer to 2 logits. Its parameters and Adam moments live in an arena of
 * their own, and are the method's part of a checkpoint (model_state_get),
 * not of a saved model: evaluation needs only the encoder and decoder.
 * Threads: dense layers and activations are nn's kernels (fixed cuts);
 * the losses and the permutation are sums and draws in batch order. */
#include "model_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DISC_SLOPE 0.2f   /* leaky ReLU (tf.nn.leaky_relu's default alpha) */
#define DISC_LR 1e-4f     /* discriminator/AdamOptimizer of disentanglement_lib */
#define DISC_BETA1 0.5f
#define DISC_BETA2 0.9f
#define DISC_EPS 1e-8f
#define DISC_CLIP 1e-6    /* make_discriminator's clip of the probabilities */

static const char *const params[] = {"latent_dim", "gamma", NULL};
static const char *const terms[] = {"loss", "recon", "kl", "tc", "disc"};

/* ---- the discriminator ------------------------------------------------------ */

int factorvae_disc_create(fvae_disc *d, int D, int max_b, uint64_t seed, err *e)
{
    memset(d, 0, sizeof *d);
    d->D = D;
    d->max_b = max_b;
    d->width[0] = D;
    for (int l = 1; l < FVAE_LAYERS; l++)
        d->width[l] = FVAE_HIDDEN;
    d->width[FVAE_LAYERS] = 2;
    nn_arena_init(&d->arena);
    for (int l = 0; l < FVAE_LAYERS; l++) {
        char name[32];
        snprintf(name, sizeof name, "disc.fc%d.w", l + 1);
        d->w[l] = nn_arena_reserve(&d->arena, name, (size_t)d->width[l] * d->width[l + 1], e);
        snprintf(name, sizeof name, "disc.fc%d.b", l + 1);
        d->b[l] = nn_arena_reserve(&d->arena, name, (size_t)d->width[l + 1], e);
        if (d->w[l] == (size_t)-1 || d->b[l] == (size_t)-1)
            return e->code;
    }
    int rc = nn_arena_alloc(&d->arena, e);
    if (rc < 0)
        return rc;
    /* PyTorch's default initialisation, as net_init: U(+-1/sqrt(fan_in)) */
    rng r;
    rng_seed(&r, seed, RNG_INIT_DISC);
    for (int l = 0; l < FVAE_LAYERS; l++) {
        float bound = 1.0f / sqrtf((float)d->width[l]);
        nn_init_uniform(d->arena.param + d->w[l], (size_t)d->width[l] * d->width[l + 1], bound, &r);
        nn_init_uniform(d->arena.param + d->b[l], (size_t)d->width[l + 1], bound, &r);
    }
    size_t mb = (size_t)max_b;
    for (int s = 0; s < 2; s++)
        for (int l = 1; l <= FVAE_LAYERS; l++)
            if (!(d->h[s][l] = calloc(mb * d->width[l], sizeof(float))))
                return err_set(e, ERR_NOMEM, "out of memory for the discriminator");
    for (int q = 0; q < 3; q++)
        if (!(d->g[q] = calloc(mb * FVAE_HIDDEN, sizeof(float))))
            return err_set(e, ERR_NOMEM, "out of memory for the discriminator");
    return 0;
}

void factorvae_disc_free(fvae_disc *d)
{
    if (!d)
        return;
    nn_arena_free(&d->arena);
    for (int s = 0; s < 2; s++)
        for (int l = 1; l <= FVAE_LAYERS; l++)
            free(d->h[s][l]);
    for (int q = 0; q < 3; q++)
        free(d->g[q]);
    memset(d, 0, sizeof *d);
}

const float *factorvae_disc_forward(fvae_disc *d, int slot, const float *z, int B)
{
    // z (B, D) borrowed until the backward of this slot; returns logits (B, 2)
    float *const *h = d->h[slot];
    d->in[slot] = z;
    const float *in = z;
    for (int l = 0; l < FVAE_LAYERS; l++) {
        const float *p = d->arena.param;
        nn_dense_forward(h[l + 1], in, p + d->w[l], p + d->b[l], B, d->width[l], d->width[l + 1]);
        if (l + 1 < FVAE_LAYERS) /* hidden: leaky ReLU in place */
            nn_leaky_relu_forward(h[l + 1], h[l + 1], DISC_SLOPE, (size_t)B * d->width[l + 1]);
        in = h[l + 1];
    }
    return h[FVAE_LAYERS];
}

void factorvae_disc_backward(fvae_disc *d, int slot, const float *dlogits, float *dz,
                             int train_params, int B)
{
    // dlogits (B, 2); dz (B, D) += d/dz or NULL; parameter gradients into
    // d->arena.grad only with train_params
    float *const *h = d->h[slot];
    const float *dout = dlogits; /* gradient of layer l's output, before its activation's backward */
    float *gpre = d->g[0];
    for (int l = FVAE_LAYERS - 1; l >= 0; l--) {
        size_t no = (size_t)B * d->width[l + 1];
        const float *dpre = dout;
        if (l + 1 < FVAE_LAYERS) {
            /* h = lrelu(pre): dpre = dout * lrelu'(pre), from the output h */
            nn_zero(gpre, no);
            nn_leaky_relu_backward(gpre, dout, h[l + 1], DISC_SLOPE, no);
            dpre = gpre;
        }
        const float *in = l ? h[l] : d->in[slot];
        float *din = NULL;
        if (l) {
            din = dout == d->g[1] ? d->g[2] : d->g[1];
            nn_zero(din, (size_t)B * d->width[l]);
        } else {
            din = dz;
        }
        float *grad = d->arena.grad;
        nn_dense_backward(din, train_params ? grad + d->w[l] : NULL,
                          train_params ? grad + d->b[l] : NULL, dpre, in,
                          d->arena.param + d->w[l], B, d->width[l], d->width[l + 1]);
        dout = din;
    }
}

/* log(clip(softmax(l)_c, DISC_CLIP, 1 - DISC_CLIP)) of one row l (2) and its
 * derivative with respect to l_0 (that of l_1 is its negative): 0 where the
 * clip holds. */
static double log_prob(const float *l, int c, double *dl0)
{
    /* softmax over two logits: p_0 = sigmoid(l_0 - l_1) */
    double a = (double)l[0] - l[1];
    double p0 = a >= 0 ? 1 / (1 + exp(-a)) : exp(a) / (1 + exp(a));
    double p = c == 0 ? p0 : 1 - p0;
    if (p < DISC_CLIP || p > 1 - DISC_CLIP) {
        *dl0 = 0;
        return log(p < DISC_CLIP ? DISC_CLIP : 1 - DISC_CLIP);
    }
    /* d log p_0 / d l_0 = 1 - p_0; d log p_1 / d l_0 = -p_0 */
    *dl0 = c == 0 ? 1 - p0 : -p0;
    /* log p without the cancellation of 1 - p0 near 1 */
    return c == 0 ? -log1p(exp(-a)) : -log1p(exp(a));
}

double factorvae_disc_loss(const float *lq, const float *lp, int B, float *dlq, float *dlp)
{
    // lq, lp (B, 2): logits of z and of zperm; dlq, dlp (B, 2) += gradients
    double sq = 0, sp = 0;
    for (int b = 0; b < B; b++) {
        double g;
        sq += log_prob(lq + 2 * b, 0, &g);
        /* loss_D = -0.5 mean log p_0(z) - 0.5 mean log p_1(zperm) */
        dlq[2 * b] += (float)(-0.5 * g / B);
        dlq[2 * b + 1] += (float)(0.5 * g / B);
        sp += log_prob(lp + 2 * b, 1, &g);
        dlp[2 * b] += (float)(-0.5 * g / B);
        dlp[2 * b + 1] += (float)(0.5 * g / B);
    }
    return -(0.5 * sq / B + 0.5 * sp / B);
}

void factorvae_permute(float *zp, const float *z, int B, int D, rng *r)
{
    // zp, z (B, D): column j of zp is column j of z in a random order of its
    // own (Fisher-Yates, dimension by dimension, in order)
    memcpy(zp, z, sizeof(float) * (size_t)B * D);
    for (int j = 0; j < D; j++)
        for (int b = B - 1; b > 0; b--) {
            int k = (int)rng_below(r, (uint64_t)b + 1);
            float t = zp[(size_t)b * D + j];
            zp[(size_t)b * D + j] = zp[(size_t)k * D + j];
            zp[(size_t)k * D + j] = t;
        }
}

/* ---- the method -------------------------------------------------------------- */

typedef struct fvae {
    fvae_disc disc;
    float *zperm;     /* (B, D) */
    float *dlq, *dlp; /* (B, 2) gradients at the logits of z and of zperm */
} fvae;

static int resolve(run_config *c, err *e)
{
    (void)e;
    /* 30: a value of disentanglement_lib's sweep (10, 20, 30, 40, 50, 100) */
    if (isnan(c->gamma))
        c->gamma = 30;
    return 0;
}

static int init(model *m, err *e)
{
    fvae *f = calloc(1, sizeof *f);
    if (!f)
        return err_set(e, ERR_NOMEM, "out of memory for the discriminator");
    m->priv = f;
    int rc = factorvae_disc_create(&f->disc, m->D, m->B, (uint64_t)m->cfg.seed, e);
    if (rc < 0)
        return rc;
    f->zperm = calloc((size_t)m->B * m->D, sizeof(float));
    f->dlq = calloc((size_t)m->B * 2, sizeof(float));
    f->dlp = calloc((size_t)m->B * 2, sizeof(float));
    if (!f->zperm || !f->dlq || !f->dlp)
        return err_set(e, ERR_NOMEM, "out of memory for the discriminator");
    return 0;
}

static void fini(model *m)
{
    fvae *f = m->priv;
    if (f) {
        factorvae_disc_free(&f->disc);
        free(f->zperm);
        free(f->dlq);
        free(f->dlp);
    }
    free(f);
    m->priv = NULL;
}

static int step(model *m, const data_source *d, rng *dr, rng *nr, long t, double *out)
{
    (void)t;
    const run_config *c = &m->cfg;
    fvae *f = m->priv;
    const int B = m->B, D = m->D;
    vae_encode_batch(m, d, dr, nr);
    double recon = vae_decode_batch(m);
    double kl = nn_gauss_kl_forward(NULL, NULL, m->mu, m->lv, B, D);
    nn_gauss_kl_backward(m->dmu, m->dlv, m->mu, m->lv, B, D, 1.0f / (float)B);
    /* TC = mean_b (l_b0 - l_b1): d(gamma*TC)/dl = (gamma/B, -gamma/B), into
     * z only (D's parameters are not the VAE's) */
    const float *lq = factorvae_disc_forward(&f->disc, 0, m->z, B);
    double tc = 0;
    for (int b = 0; b < B; b++) {
        tc += (double)lq[2 * b] - lq[2 * b + 1];
        f->dlq[2 * b] = (float)(c->gamma / B);
        f->dlq[2 * b + 1] = (float)(-c->gamma / B);
    }
    tc /= B;
    factorvae_disc_backward(&f->disc, 0, f->dlq, m->dz, 0, B);
    vae_backward(m);
    /* D's loss on z (detached) and on its permutation: parameters only */
    factorvae_permute(f->zperm, m->z, B, D, nr);
    const float *lp = factorvae_disc_forward(&f->disc, 1, f->zperm, B);
    memset(f->dlq, 0, sizeof(float) * 2 * (size_t)B);
    memset(f->dlp, 0, sizeof(float) * 2 * (size_t)B);
    double disc = factorvae_disc_loss(lq, lp, B, f->dlq, f->dlp);
    factorvae_disc_backward(&f->disc, 0, f->dlq, NULL, 1, B);
    factorvae_disc_backward(&f->disc, 1, f->dlp, NULL, 1, B);
    out[0] = recon + kl + c->gamma * tc;
    out[1] = recon;
    out[2] = kl;
    out[3] = tc;
    out[4] = disc;
    return 0;
}

static void update(model *m)
{
    fvae *f = m->priv;
    nn_adam_step(&f->disc.arena, DISC_LR, DISC_BETA1, DISC_BETA2, DISC_EPS);
}

static void discard(model *m)
{
    fvae *f = m->priv;
    nn_arena_zero_grad(&f->disc.arena);
}

/* A checkpoint carries D and its Adam state; a saved model does not need D. */
static size_t state_size(const model *m, int optimizer)
{
    const fvae *f = m->priv;
    return optimizer ? model_arena_state_size(&f->disc.arena, 1) : 0;
}

static void state_get(const model *m, int optimizer, void *out)
{
    const fvae *f = m->priv;
    if (optimizer)
        model_arena_state_get(&f->disc.arena, 1, out);
}

static void state_set(model *m, int optimizer, const void *in)
{
    fvae *f = m->priv;
    if (optimizer)
        model_arena_state_set(&f->disc.arena, 1, in);
}

const model_method model_factorvae = {
    .name = "factorvae",
    .params = params,
    .terms = terms,
    .n_terms = 5,
    .stochastic = 1,
    .resolve = resolve,
    .widths = vae_gaussian_widths,
    .init = init,
    .fini = fini,
    .step = step,
    .update = update,
    .discard = discard,
    .state_size = state_size,
    .state_get = state_get,
    .state_set = state_set,
};
