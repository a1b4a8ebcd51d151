/* nn elementwise layers, losses and the Gaussian latent.
 *
 * No restrict here: forward may run in place (out == in). Sums that become
 * losses are accumulated in double, the per-element terms in float. */
#include "untangle/nn.h"

#include <math.h>

/* ---- activations -------------------------------------------------------- */

void nn_relu_forward(float *out, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void nn_relu_backward(float *din, const float *dout, const float *out, size_t n)
{
    /* out = max(in, 0): the slope is 1 where out > 0, else 0 (0 at the kink). */
    for (size_t i = 0; i < n; i++)
        din[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

void nn_tanh_forward(float *out, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = tanhf(in[i]);
}

void nn_tanh_backward(float *din, const float *dout, const float *out, size_t n)
{
    /* out = tanh(in)  =>  dout/din = 1 - tanh(in)^2 = 1 - out^2 */
    for (size_t i = 0; i < n; i++)
        din[i] += dout[i] * (1.0f - out[i] * out[i]);
}

/* ---- Bernoulli with logits ---------------------------------------------- */

double nn_bce_logits_forward(float *per, const float *logits, const float *x, int B, int P)
{
    // per (B) or NULL, logits (B, P), x (B, P)
    /* -x log s(l) - (1-x) log(1 - s(l)) = max(l,0) - x*l + log(1 + exp(-|l|)):
     * exp never overflows and log1p keeps the tail when exp(-|l|) is tiny. */
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *l = logits + (size_t)b * P, *t = x + (size_t)b * P;
        double s = 0.0;
        for (int p = 0; p < P; p++) {
            float li = l[p];
            s += (double)((li > 0.0f ? li : 0.0f) - t[p] * li + log1pf(expf(-fabsf(li))));
        }
        if (per)
            per[b] = (float)s;
        total += s;
    }
    return B > 0 ? total / B : 0.0;
}

void nn_bce_logits_backward(float *dlogits, const float *logits, const float *x,
                            int B, int P, float scale)
{
    // dlogits (B, P), logits (B, P), x (B, P)
    /* d/dl [max(l,0) - x*l + log(1 + exp(-|l|))] = sigmoid(l) - x; sigmoid from
     * exp(-|l|) so that it never overflows. */
    const size_t n = (size_t)B * P;
    for (size_t i = 0; i < n; i++) {
        float l = logits[i];
        float e = expf(-fabsf(l));
        float sig = l >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
        dlogits[i] += scale * (sig - x[i]);
    }
}

/* ---- Gaussian KL and reparameterisation --------------------------------- */

double nn_gauss_kl_forward(float *per, float *per_dim, const float *mu, const float *lv,
                           int B, int D)
{
    // per (B) or NULL, per_dim (D) or NULL, mu (B, D), lv (B, D)
    double total = 0.0;
    if (per_dim)
        for (int j = 0; j < D; j++)
            per_dim[j] = 0.0f;
    for (int b = 0; b < B; b++) {
        const float *m = mu + (size_t)b * D, *v = lv + (size_t)b * D;
        double s = 0.0;
        for (int j = 0; j < D; j++) {
            double kj = 0.5 * ((double)m[j] * m[j] + exp((double)v[j]) - v[j] - 1.0);
            s += kj;
            if (per_dim)
                per_dim[j] += (float)(kj / B);
        }
        if (per)
            per[b] = (float)s;
        total += s;
    }
    return B > 0 ? total / B : 0.0;
}

void nn_gauss_kl_backward(float *dmu, float *dlv, const float *mu, const float *lv,
                          int B, int D, float scale)
{
    // dmu (B, D), dlv (B, D), mu (B, D), lv (B, D)
    /* kl = 0.5*(mu^2 + exp(lv) - lv - 1): d/dmu = mu, d/dlv = 0.5*(exp(lv) - 1) */
    const size_t n = (size_t)B * D;
    for (size_t i = 0; i < n; i++) {
        dmu[i] += scale * mu[i];
        dlv[i] += scale * 0.5f * (expf(lv[i]) - 1.0f);
    }
}

void nn_reparam_forward(float *z, const float *mu, const float *lv, const float *eps, size_t n)
{
    // z (n), mu (n), lv (n), eps (n)
    for (size_t i = 0; i < n; i++)
        z[i] = mu[i] + expf(0.5f * lv[i]) * eps[i];
}

void nn_reparam_backward(float *dmu, float *dlv, const float *dz, const float *lv,
                         const float *eps, size_t n)
{
    // dmu (n), dlv (n), dz (n), lv (n), eps (n)
    /* z = mu + exp(0.5*lv) * eps: dz/dmu = 1, dz/dlv = 0.5 * exp(0.5*lv) * eps */
    for (size_t i = 0; i < n; i++) {
        dmu[i] += dz[i];
        dlv[i] += dz[i] * eps[i] * 0.5f * expf(0.5f * lv[i]);
    }
}
