/* jointvae (Dupont 2018, "Learning Disentangled Joint Continuous and Discrete
 * Representations"): D Gaussian latents plus discrete variables of K_i
 * categories. The encoder's output row is [mu (D), logvar (D), logits (K)],
 * K = sum K_i; alpha_i = softmax(logits_i). Training decodes
 * [z, y_1, y_2, ...] with z reparameterised and y_i the Gumbel-softmax sample
 * (Jang et al. 2017; Maddison et al. 2017)
 *     y_i = softmax((log alpha_i + g)/lambda),  g = -log(-log u)
 * and the loss is Dupont's objective with controlled capacities:
 *     recon + gamma*|KL_z - C_z(t)| + gamma*|KL_c - C_c(t)|
 *     KL_c = sum_i (log K_i + sum_c alpha_ic log alpha_ic)
 * (the KL of each categorical to the uniform prior). */
#include "model_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const params[] = {"latent_dim", "discrete", "lambda", "gamma",
                                     "c_z_max", "c_c_max", "anneal_steps", NULL};
static const char *const terms[] = {"loss", "recon", "kl_z", "kl_c", "C_z", "C_c"};

static int resolve(run_config *c, err *e)
{
    (void)e;
    /* Dupont 2018, dSprites */
    if (!model_key_set(c, "latent_dim"))
        c->latent_dim = 6;
    if (c->n_discrete == 0) {
        c->n_discrete = 1;
        c->discrete[0] = 3;
    }
    if (isnan(c->lambda))
        c->lambda = 0.67;
    if (isnan(c->gamma))
        c->gamma = 150;
    if (isnan(c->c_z_max))
        c->c_z_max = 40;
    if (isnan(c->c_c_max))
        c->c_c_max = 1.1;
    if (c->anneal_steps < 0)
        c->anneal_steps = 300000;
    return 0;
}

static void widths(const run_config *c, int *enc_out, int *code_dim, int *D, int *K)
{
    int k = 0;
    for (int i = 0; i < c->n_discrete; i++)
        k += c->discrete[i];
    *D = c->latent_dim;
    *K = k;
    *enc_out = 2 * c->latent_dim + k;
    *code_dim = c->latent_dim + k;
}

/* ---- one discrete variable ------------------------------------------------ */

void jointvae_log_softmax(float *la, const float *logits, int K)
{
    // la (K), logits (K)
    float mx = logits[0];
    for (int c = 1; c < K; c++)
        mx = fmaxf(mx, logits[c]);
    double s = 0.0;
    for (int c = 0; c < K; c++)
        s += exp((double)logits[c] - mx);
    float lse = mx + (float)log(s);
    for (int c = 0; c < K; c++)
        la[c] = logits[c] - lse;
}

void jointvae_gumbel_softmax(float *y, const float *la, const float *g, int K, double lambda)
{
    // y (K), la (K), g (K)
    /* y = softmax(s), s_c = (la_c + g_c)/lambda, max-subtracted: as lambda -> 0
     * s spreads out and y tends to one-hot(argmax(la + g)), a draw from alpha
     * (the Gumbel-max trick). */
    float mx = -INFINITY;
    for (int c = 0; c < K; c++)
        mx = fmaxf(mx, la[c] + g[c]);
    double s = 0.0;
    for (int c = 0; c < K; c++) {
        y[c] = (float)exp(((double)la[c] + g[c] - mx) / lambda);
        s += y[c];
    }
    float inv = (float)(1.0 / s);
    for (int c = 0; c < K; c++)
        y[c] *= inv;
}

void jointvae_gumbel_softmax_backward(float *dlogits, const float *dy, const float *y,
                                      const float *la, int K, double lambda)
{
    // dlogits (K) accumulated, dy (K), y (K), la (K)
    /* y = softmax(s): ds_c = y_c*(dy_c - sum_k y_k dy_k);
     * s_c = (la_c + g_c)/lambda: dla_c = ds_c/lambda;
     * la = logits - logsumexp(logits): dlogit_c = dla_c - alpha_c*sum_k dla_k
     * (the last sum is zero up to rounding since sum_k ds_k = 0, but it costs
     * nothing to keep the chain exact). */
    double ydy = 0.0;
    for (int c = 0; c < K; c++)
        ydy += (double)y[c] * dy[c];
    double sdla = 0.0;
    for (int c = 0; c < K; c++)
        sdla += y[c] * (dy[c] - ydy) / lambda;
    for (int c = 0; c < K; c++) {
        double dla = y[c] * (dy[c] - ydy) / lambda;
        dlogits[c] += (float)(dla - exp((double)la[c]) * sdla);
    }
}

double jointvae_kl_cat(const float *la, int K)
{
    // la (K)
    /* KL(alpha || U(K)) = sum_c alpha_c (log alpha_c - log(1/K))
     *                   = log K + sum_c alpha_c log alpha_c */
    double s = log((double)K);
    for (int c = 0; c < K; c++)
        s += exp((double)la[c]) * la[c];
    return s;
}

void jointvae_kl_cat_backward(float *dlogits, const float *la, int K, double scale)
{
    // dlogits (K) accumulated, la (K)
    /* d/dlogit_c sum_k alpha_k la_k = alpha_c*(la_c - sum_k alpha_k la_k)
     * (alpha_k' = alpha_k(delta_kc - alpha_c), la_k' = delta_kc - alpha_c,
     *  and sum_k alpha_k (delta_kc - alpha_c) = 0) */
    double mean = 0.0;
    for (int c = 0; c < K; c++)
        mean += exp((double)la[c]) * la[c];
    for (int c = 0; c < K; c++)
        dlogits[c] += (float)(scale * exp((double)la[c]) * (la[c] - mean));
}

static double sign(double v) { return v > 0 ? 1.0 : v < 0 ? -1.0 : 0.0; }

double jointvae_capacity_loss(const run_config *c, const float *mu, const float *lv,
                              const float *la, int B, int D, int K, double C_z, double C_c,
                              double *kl_z, double *kl_c, float *dmu, float *dlv,
                              float *dlogits, int ldl)
{
    // mu, lv, dmu, dlv (B, D); la (B, K); dlogits (B, ldl), columns 0..K-1
    double kz = nn_gauss_kl_forward(NULL, NULL, mu, lv, B, D);
    double kc = 0.0;
    for (int b = 0; b < B; b++)
        for (int i = 0, off = 0; i < c->n_discrete; off += c->discrete[i++])
            kc += jointvae_kl_cat(la + (size_t)b * K + off, c->discrete[i]);
    kc /= B;
    /* d/dKL gamma*|KL - C| = gamma*sign(KL - C) (0 at the kink) */
    double wz = c->gamma * sign(kz - C_z), wc = c->gamma * sign(kc - C_c);
    nn_gauss_kl_backward(dmu, dlv, mu, lv, B, D, (float)(wz / B));
    for (int b = 0; b < B; b++)
        for (int i = 0, off = 0; i < c->n_discrete; off += c->discrete[i++])
            jointvae_kl_cat_backward(dlogits + (size_t)b * ldl + off, la + (size_t)b * K + off,
                                     c->discrete[i], wc / B);
    *kl_z = kz;
    *kl_c = kc;
    return c->gamma * fabs(kz - C_z) + c->gamma * fabs(kc - C_c);
}

/* ---- the method ------------------------------------------------------------ */

typedef struct jv_state {
    float *la; /* (B, K) log alpha, one log_softmax block per discrete variable */
    float *g;  /* (B, K) Gumbel noise of this step */
    float *y;  /* (B, K) relaxed samples (also copied into code[:, D:]) */
} jv_state;

static int init(model *m, err *e)
{
    jv_state *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory for jointvae");
    m->priv = s;
    size_t n = (size_t)m->B * m->K;
    s->la = malloc(n * sizeof(float));
    s->g = malloc(n * sizeof(float));
    s->y = malloc(n * sizeof(float));
    if (!s->la || !s->g || !s->y)
        return err_set(e, ERR_NOMEM, "out of memory for jointvae's buffers");
    return 0;
}

static void fini(model *m)
{
    jv_state *s = m->priv;
    if (!s)
        return;
    free(s->la);
    free(s->g);
    free(s->y);
    free(s);
    m->priv = NULL;
}

/* C_c(t) rises to c_c_max but never beyond sum_i log K_i, the largest KL a
 * set of categoricals can have from the uniform prior. */
static double cap_c(const run_config *c, long t)
{
    double top = 0.0;
    for (int i = 0; i < c->n_discrete; i++)
        top += log((double)c->discrete[i]);
    double v = vae_capacity(c->c_c_max, c->anneal_steps, t);
    return v < top ? v : top;
}

static int step(model *m, const data_source *d, rng *dr, rng *nr, long t, double *out)
{
    const run_config *c = &m->cfg;
    jv_state *s = m->priv;
    const int B = m->B, D = m->D, K = m->K, E = m->enc_out, W = m->code_dim;
    vae_encode_batch(m, d, dr, nr); /* mu, lv, z, code[:, :D]; zeroes the gradients */
    const float *h = m->ce.act[m->enc.n]; /* (B, E) encoder output [mu, lv, logits] */
    for (size_t n = 0; n < (size_t)B * K; n++)
        s->g[n] = (float)rng_gumbel(nr);
    for (int b = 0; b < B; b++)
        for (int i = 0, off = 0; i < c->n_discrete; off += c->discrete[i++]) {
            size_t o = (size_t)b * K + off;
            jointvae_log_softmax(s->la + o, h + (size_t)b * E + 2 * D + off, c->discrete[i]);
            jointvae_gumbel_softmax(s->y + o, s->la + o, s->g + o, c->discrete[i], c->lambda);
            memcpy(m->code + (size_t)b * W + D + off, s->y + o,
                   (size_t)c->discrete[i] * sizeof(float));
        }
    double recon = vae_decode_batch(m);
    double C_z = vae_capacity(c->c_z_max, c->anneal_steps, t), C_c = cap_c(c, t);
    double kl_z, kl_c;
    /* the logits' gradient lives in dh[:, 2D:], zeroed by vae_encode_batch */
    double lat = jointvae_capacity_loss(c, m->mu, m->lv, s->la, B, D, K, C_z, C_c, &kl_z, &kl_c,
                                        m->dmu, m->dlv, m->dh + 2 * D, E);
    /* decoder first: it yields dcode, whose y columns go back through the
     * Gumbel-softmax into dh before the encoder's backward runs */
    vae_backward_decoder(m);
    for (int b = 0; b < B; b++)
        for (int i = 0, off = 0; i < c->n_discrete; off += c->discrete[i++]) {
            size_t o = (size_t)b * K + off;
            jointvae_gumbel_softmax_backward(m->dh + (size_t)b * E + 2 * D + off,
                                             m->dcode + (size_t)b * W + D + off, s->y + o,
                                             s->la + o, c->discrete[i], c->lambda);
        }
    vae_backward_encoder(m);
    out[0] = recon + lat;
    out[1] = recon;
    out[2] = kl_z;
    out[3] = kl_c;
    out[4] = C_z;
    out[5] = C_c;
    return 0;
}

const model_method model_jointvae = {
    .name = "jointvae",
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
