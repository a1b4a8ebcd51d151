/* nn elementwise layers, losses and the Gaussian latent.
 *
 * No restrict here: forward may run in place (out == in). Sums that become
 * losses are accumulated in double, the per-element terms in float.
 *
 * Threads (nn_impl.h): the activations and the Bernoulli loss run on the
 * pool in fixed blocks (elementwise maps: no float depends on the cut); the
 * loss's sum is taken per image, each image's sum in pixel order, and the
 * images' sums are added in batch order. The Gaussian terms are B x D, too
 * small to share. */
#include "nn_impl.h"
#include "untangle/nn.h"
#include "../util/vmath.h"

#include <math.h>
#include <string.h>

/* ---- activations -------------------------------------------------------- */

/* The operands of an elementwise kernel, named as its arguments. */
typedef struct elem_job {
    float *out;
    const float *a, *b;
    float scale;
} elem_job;

static void zero_range(void *ctx, size_t lo, size_t hi)
{
    const elem_job *j = ctx;
    memset(j->out + lo, 0, (hi - lo) * sizeof *j->out);
}

void nn_zero(float *x, size_t n)
{
    // x (n)
    elem_job j = {x, NULL, NULL, 0.0f};
    nn_parallel_range(n, zero_range, &j);
}

static void relu_fwd_range(void *ctx, size_t lo, size_t hi)
{
    const elem_job *j = ctx;
    float *out = j->out;
    const float *in = j->a;
    for (size_t i = lo; i < hi; i++)
        out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void nn_relu_forward(float *out, const float *in, size_t n)
{
    // out (n), in (n)
    elem_job j = {out, in, NULL, 0.0f};
    nn_parallel_range(n, relu_fwd_range, &j);
}

static void relu_bwd_range(void *ctx, size_t lo, size_t hi)
{
    const elem_job *j = ctx;
    float *din = j->out;
    const float *dout = j->a, *out = j->b;
    /* out = max(in, 0): the slope is 1 where out > 0, else 0 (0 at the kink). */
    for (size_t i = lo; i < hi; i++)
        din[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

void nn_relu_backward(float *din, const float *dout, const float *out, size_t n)
{
    // din (n), dout (n), out (n)
    elem_job j = {din, dout, out, 0.0f};
    nn_parallel_range(n, relu_bwd_range, &j);
}

static void lrelu_fwd_range(void *ctx, size_t lo, size_t hi)
{
    const elem_job *j = ctx;
    float *out = j->out;
    const float *in = j->a;
    const float slope = j->scale;
    for (size_t i = lo; i < hi; i++)
        out[i] = in[i] > 0.0f ? in[i] : slope * in[i];
}

void nn_leaky_relu_forward(float *out, const float *in, float slope, size_t n)
{
    // out (n), in (n)
    elem_job j = {out, in, NULL, slope};
    nn_parallel_range(n, lrelu_fwd_range, &j);
}

static void lrelu_bwd_range(void *ctx, size_t lo, size_t hi)
{
    const elem_job *j = ctx;
    float *din = j->out;
    const float *dout = j->a, *out = j->b;
    const float slope = j->scale;
    /* out = in > 0 ? in : slope*in: the slope is 1 where out > 0, else slope */
    for (size_t i = lo; i < hi; i++)
        din[i] += out[i] > 0.0f ? dout[i] : slope * dout[i];
}

void nn_leaky_relu_backward(float *din, const float *dout, const float *out, float slope,
                            size_t n)
{
    // din (n), dout (n), out (n)
    elem_job j = {din, dout, out, slope};
    nn_parallel_range(n, lrelu_bwd_range, &j);
}

static void tanh_fwd_range(void *ctx, size_t lo, size_t hi)
{
    const elem_job *j = ctx;
    float *out = j->out;
    const float *in = j->a;
    /* tanh|x| = -t / (2 + t), t = expm1(-2|x|): no cancellation near 0 */
    for (size_t i = lo; i < hi; i++) {
        float t = expm1_le0(-2.0f * fabsf(in[i]));
        out[i] = copysignf(-t / (2.0f + t), in[i]);
    }
}

void nn_tanh_forward(float *out, const float *in, size_t n)
{
    // out (n), in (n)
    elem_job j = {out, in, NULL, 0.0f};
    nn_parallel_range(n, tanh_fwd_range, &j);
}

static void tanh_bwd_range(void *ctx, size_t lo, size_t hi)
{
    const elem_job *j = ctx;
    float *din = j->out;
    const float *dout = j->a, *out = j->b;
    /* out = tanh(in)  =>  dout/din = 1 - tanh(in)^2 = 1 - out^2 */
    for (size_t i = lo; i < hi; i++)
        din[i] += dout[i] * (1.0f - out[i] * out[i]);
}

void nn_tanh_backward(float *din, const float *dout, const float *out, size_t n)
{
    // din (n), dout (n), out (n)
    elem_job j = {din, dout, out, 0.0f};
    nn_parallel_range(n, tanh_bwd_range, &j);
}

/* ---- Bernoulli with logits ---------------------------------------------- */

/* Images per pass of the loss: their sums wait in a double array on the
 * stack, and are added in batch order after the pass. */
enum { BCE_PASS = 1024, BCE_TASK_ROWS = 4 };

typedef struct bce_job {
    double *rows;              /* (BCE_PASS) each image's sum */
    const float *logits, *x;   /* from the pass's first image */
    int nb, P;
} bce_job;

/* Pixels whose terms are taken in one vectorised pass before their sum. */
enum { BCE_CHUNK = 256 };

static void bce_rows(void *ctx, int t, int slot)
{
    (void)slot;
    const bce_job *j = ctx;
    const int P = j->P;
    int b1 = (t + 1) * BCE_TASK_ROWS < j->nb ? (t + 1) * BCE_TASK_ROWS : j->nb;
    float term[BCE_CHUNK];
    for (int b = t * BCE_TASK_ROWS; b < b1; b++) {
        const float *l = j->logits + (size_t)b * P, *x = j->x + (size_t)b * P;
        double s = 0.0;
        for (int p0 = 0; p0 < P; p0 += BCE_CHUNK) {
            const int n = P - p0 < BCE_CHUNK ? P - p0 : BCE_CHUNK;
            for (int p = 0; p < n; p++) {
                float li = l[p0 + p];
                term[p] = (li > 0.0f ? li : 0.0f) - x[p0 + p] * li +
                          log1p_01(exp_le0(-fabsf(li)));
            }
            for (int p = 0; p < n; p++) /* in pixel order, in double */
                s += (double)term[p];
        }
        j->rows[b] = s;
    }
}

double nn_bce_logits_forward(float *per, const float *logits, const float *x, int B, int P)
{
    // per (B) or NULL, logits (B, P), x (B, P)
    /* -x log s(l) - (1-x) log(1 - s(l)) = max(l,0) - x*l + log(1 + exp(-|l|)):
     * exp never overflows and log1p keeps the tail when exp(-|l|) is tiny. */
    double total = 0.0, rows[BCE_PASS];
    for (int b0 = 0; b0 < B; b0 += BCE_PASS) {
        bce_job j = {rows, logits + (size_t)b0 * P, x + (size_t)b0 * P,
                     B - b0 < BCE_PASS ? B - b0 : BCE_PASS, P};
        nn_parallel((j.nb + BCE_TASK_ROWS - 1) / BCE_TASK_ROWS, bce_rows, &j);
        for (int b = 0; b < j.nb; b++) {
            if (per)
                per[b0 + b] = (float)rows[b];
            total += rows[b];
        }
    }
    return B > 0 ? total / B : 0.0;
}

static void bce_bwd_range(void *ctx, size_t lo, size_t hi)
{
    const elem_job *j = ctx;
    float *dlogits = j->out;
    const float *logits = j->a, *x = j->b;
    const float scale = j->scale;
    /* d/dl [max(l,0) - x*l + log(1 + exp(-|l|))] = sigmoid(l) - x; sigmoid from
     * exp(-|l|) so that it never overflows. */
    for (size_t i = lo; i < hi; i++) {
        float l = logits[i];
        float e = exp_le0(-fabsf(l));
        float sig = (l >= 0.0f ? 1.0f : e) / (1.0f + e);
        dlogits[i] += scale * (sig - x[i]);
    }
}

void nn_bce_logits_backward(float *dlogits, const float *logits, const float *x,
                            int B, int P, float scale)
{
    // dlogits (B, P), logits (B, P), x (B, P)
    elem_job j = {dlogits, logits, x, scale};
    nn_parallel_range((size_t)B * P, bce_bwd_range, &j);
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
