/* The minibatch estimators of beta-TCVAE (Chen et al. 2018, "Isolating
 * Sources of Disentanglement in VAEs": minibatch weighted sampling, and
 * minibatch stratified sampling from their appendix), forward and backward,
 * on their own so that tests can check them in isolation.
 *
 * The whole estimate rests on one table L[i,k,j] = log q(z_ij | x_k), the
 * Gaussian log density of sample i's dim j under item k's posterior. It is
 * computed directly as a quadratic form (no exp, no log):
 *     L[i,k,j] = -0.5*(log 2pi + lv_kj + (z_ij - mu_kj)^2 * exp(-lv_kj))
 * with exp(-lv) taken once per (k, j). The log-sum-exps over k subtract their
 * maximum; the softmax weights they produce are kept for the backward pass,
 * which therefore needs no exp either. */
#include "model_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOG_2PI 1.8378770664093453

int tc_create(tc_est *t, int B, int D, double N, int mss, err *e)
{
    memset(t, 0, sizeof *t);
    if (B < 2)
        return err_set(e, ERR_INPUT,
                       "batch_size: the minibatch TC estimators need at least 2 samples, got %d", B);
    if (mss && N < B)
        return err_set(e, ERR_INPUT,
                       "estimator: mss needs a data set (%.0f images) at least as large as the batch (%d)",
                       N, B);
    t->B = B;
    t->D = D;
    t->N = N;
    t->mss = mss;
    size_t bb = (size_t)B * B, bd = (size_t)B * D;
    t->lw = malloc(bb * sizeof(float));
    t->iv = malloc(bd * sizeof(float));
    t->cst = malloc(bd * sizeof(float));
    t->L = malloc(bb * D * sizeof(float));
    t->R = malloc(bb * D * sizeof(float));
    t->r = malloc(bb * sizeof(float));
    t->mx = malloc((size_t)D * sizeof(float));
    t->sj = malloc((size_t)D * sizeof(double));
    t->lqzx = malloc((size_t)B * sizeof(double));
    t->lqz = malloc((size_t)B * sizeof(double));
    t->lqzj = malloc((size_t)B * sizeof(double));
    t->lpz = malloc((size_t)B * sizeof(double));
    if (!t->lw || !t->iv || !t->cst || !t->L || !t->R || !t->r || !t->mx || !t->sj ||
        !t->lqzx || !t->lqz || !t->lqzj || !t->lpz) {
        tc_free(t);
        return err_set(e, ERR_NOMEM, "out of memory for the TC estimator tables (B = %d, D = %d)",
                       B, D);
    }
    if (mss) {
        /* Chen et al. 2018, minibatch stratified sampling (appendix):
         * sample i's own item weighs 1/N, one neighbour (N-M)/(N*M), the
         * other B-2 items 1/M, M = B-1; each row sums to
         * 1/N + (N-M)/(N*M) + (B-2)/M = 1. The weight sits on the diagonal
         * (the intended matrix), not on column 0 as in the released code. */
        double M = B - 1;
        float l_self = (float)-log(N), l_other = (float)-log(M);
        float l_next = (float)(log(N - M) - log(N * M)); /* -inf when N == M: weight 0 */
        for (int i = 0; i < B; i++)
            for (int k = 0; k < B; k++)
                t->lw[(size_t)i * B + k] = k == i ? l_self : k == (i + 1) % B ? l_next : l_other;
    } else {
        /* minibatch weighted sampling: every item 1/(N*B) */
        float l = (float)-log(N * B);
        for (size_t n = 0; n < bb; n++)
            t->lw[n] = l;
    }
    return 0;
}

void tc_free(tc_est *t)
{
    if (!t)
        return;
    void *bufs[] = {t->lw, t->iv, t->cst, t->L, t->R, t->r, t->mx, t->sj,
                    t->lqzx, t->lqz, t->lqzj, t->lpz};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    memset(t, 0, sizeof *t);
}

void tc_forward(tc_est *t, const float *mu, const float *lv, const float *z)
{
    // mu, lv, z (B, D)
    const int B = t->B, D = t->D;
    for (size_t n = 0; n < (size_t)B * D; n++) {
        t->iv[n] = expf(-lv[n]);
        t->cst[n] = (float)(-0.5 * (LOG_2PI + lv[n]));
    }
    for (int i = 0; i < B; i++) {
        const float *zi = z + (size_t)i * D;       /* (D) */
        const float *lwi = t->lw + (size_t)i * B;  /* (B) */
        float *Li = t->L + (size_t)i * B * D;      /* (B, D) */
        float *Ri = t->R + (size_t)i * B * D;      /* (B, D) */
        float *ri = t->r + (size_t)i * B;          /* (B) */
        /* The table row and the joint log density of z_i under each item,
         * S[k] = lw[i,k] + sum_j L[i,k,j], kept in ri until normalised. */
        float smax = -INFINITY;
        for (int k = 0; k < B; k++) {
            const float *mk = mu + (size_t)k * D, *ivk = t->iv + (size_t)k * D;
            const float *ck = t->cst + (size_t)k * D;
            float *Lik = Li + (size_t)k * D;
            float s = 0.0f;
            for (int j = 0; j < D; j++) {
                float d = zi[j] - mk[j];
                Lik[j] = ck[j] - 0.5f * d * d * ivk[j];
                s += Lik[j];
            }
            ri[k] = s + lwi[k];
            smax = fmaxf(smax, ri[k]);
        }
        double lqzx = 0.0;
        for (int j = 0; j < D; j++)
            lqzx += Li[(size_t)i * D + j];
        t->lqzx[i] = lqzx;
        /* log q(z_i) = logsumexp_k S[k] (max-subtracted); ri becomes the
         * softmax over k, which is d log q(z_i) / d L[i,k,j] for every j. */
        double sum = 0.0;
        for (int k = 0; k < B; k++) {
            ri[k] = expf(ri[k] - smax);
            sum += ri[k];
        }
        t->lqz[i] = smax + log(sum);
        float inv = (float)(1.0 / sum);
        for (int k = 0; k < B; k++)
            ri[k] *= inv;
        /* log q(z_ij) = logsumexp_k(lw[i,k] + L[i,k,j]) for each j; Ri gets the
         * per-dim softmax over k. */
        for (int j = 0; j < D; j++) {
            t->mx[j] = -INFINITY;
            t->sj[j] = 0.0;
        }
        for (int k = 0; k < B; k++)
            for (int j = 0; j < D; j++)
                t->mx[j] = fmaxf(t->mx[j], Li[(size_t)k * D + j] + lwi[k]);
        for (int k = 0; k < B; k++)
            for (int j = 0; j < D; j++) {
                float v = expf(Li[(size_t)k * D + j] + lwi[k] - t->mx[j]);
                Ri[(size_t)k * D + j] = v;
                t->sj[j] += v;
            }
        double lqzj = 0.0;
        for (int j = 0; j < D; j++) {
            lqzj += t->mx[j] + log(t->sj[j]);
            t->mx[j] = (float)(1.0 / t->sj[j]); /* reuse as the normaliser */
        }
        t->lqzj[i] = lqzj;
        for (int k = 0; k < B; k++)
            for (int j = 0; j < D; j++)
                Ri[(size_t)k * D + j] *= t->mx[j];
        /* log p(z_i) = sum_j -0.5*(log 2pi + z_ij^2) */
        double lpz = 0.0;
        for (int j = 0; j < D; j++)
            lpz += -0.5 * (LOG_2PI + (double)zi[j] * zi[j]);
        t->lpz[i] = lpz;
    }
}

void tc_backward(const tc_est *t, const float *mu, const float *z, double c_qzx, double c_qz,
                 double c_qzj, double c_pz, float *dmu, float *dlv, float *dz)
{
    // mu, z (B, D); dmu, dlv, dz (B, D) accumulated
    const int B = t->B, D = t->D;
    const float a_qz = (float)c_qz, a_qzj = (float)c_qzj, a_qzx = (float)c_qzx;
    for (int i = 0; i < B; i++) {
        const float *zi = z + (size_t)i * D;
        float *dzi = dz + (size_t)i * D;
        const float *Ri = t->R + (size_t)i * B * D, *ri = t->r + (size_t)i * B;
        for (int k = 0; k < B; k++) {
            const float *mk = mu + (size_t)k * D, *ivk = t->iv + (size_t)k * D;
            const float *Rik = Ri + (size_t)k * D;
            float *dmk = dmu + (size_t)k * D, *dlk = dlv + (size_t)k * D;
            /* d/dL[i,k,j] of the weighted sum: the joint softmax r[i,k] (same for
             * every j), the per-dim softmax R[i,k,j], and lqzx's diagonal. */
            float base = a_qz * ri[k] + (k == i ? a_qzx : 0.0f);
            for (int j = 0; j < D; j++) {
                float g = base + a_qzj * Rik[j];
                /* L = -0.5*(log 2pi + lv + (z - mu)^2 * exp(-lv)):
                 * dL/dz = -(z - mu)*iv, dL/dmu = (z - mu)*iv,
                 * dL/dlv = -0.5 + 0.5*(z - mu)^2*iv */
                float d = zi[j] - mk[j], q = d * ivk[j];
                dzi[j] -= g * q;
                dmk[j] += g * q;
                dlk[j] += g * (0.5f * d * q - 0.5f);
            }
        }
        /* log p(z_i) = sum_j -0.5*(log 2pi + z_ij^2): d/dz_ij = -z_ij */
        for (int j = 0; j < D; j++)
            dzi[j] -= (float)c_pz * zi[j];
    }
}
