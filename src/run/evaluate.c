/* The evaluation driver: a trained model's metrics (docs/architecture.md).
 *
 * Streams: the eval images come from rng_seed(seed, RNG_EVAL) (as before);
 * the posterior samples z ~ q(z|x), c ~ alpha from the sub-stream
 * EVAL_NOISE, and the swap pairs from rng_seed(seed, RNG_PAIRS), so that
 * changing one eval size does not move the draws of another metric.
 *
 * The images are encoded in blocks of EVAL_BLOCK and only the per-image
 * results (factor classes, mu, lv, alpha, one sample) are kept: memory is
 * O(images * D), never O(images * S * S). */
#include "untangle/metrics.h"
#include "untangle/nn.h"
#include "untangle/run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    EVAL_BLOCK = 256,                   /* images per encode/decode block */
    EVAL_NOISE = RNG_EVAL * 1000 + 1    /* stream of the posterior samples */
};

/* The model as a metrics_codec: encode = the evaluation code (mu, one-hot
 * argmax alpha); decode = logits. Buffers for EVAL_BLOCK items. */
typedef struct model_codec {
    model *m;
    int D, Ks;
    float *mu, *alpha; /* (EVAL_BLOCK, D), (EVAL_BLOCK, Ks) */
} model_codec;

static void codec_encode(void *ctx, const float *x, const int *f, size_t n, float *code)
{
    (void)f; /* a model sees only the images */
    model_codec *mc = ctx;
    model_info info;
    model_get_info(mc->m, &info);
    const size_t P = (size_t)info.S * info.S, W = (size_t)info.code_dim;
    for (size_t i0 = 0; i0 < n; i0 += EVAL_BLOCK) {
        size_t b = n - i0 < EVAL_BLOCK ? n - i0 : EVAL_BLOCK;
        model_encode(mc->m, x + i0 * P, b, mc->mu, NULL, mc->Ks ? mc->alpha : NULL);
        model_eval_code(mc->m, mc->mu, mc->alpha, b, code + i0 * W);
    }
}

static void codec_decode(void *ctx, const float *code, size_t n, float *logits)
{
    model_codec *mc = ctx;
    model_decode(mc->m, code, n, logits);
}

/* Analytic KL(q(z|x) || p(z)) of item i: Gaussian dims (docs/architecture.md section 4) plus
 * each categorical variable's log K + sum_c a_c log a_c (JointVAE). */
static double item_kl(const float *mu, const float *lv, const float *alpha, int D,
                      const model_info *info, int Ks, size_t i)
{
    double kl = 0.0;
    for (int j = 0; j < D; j++) {
        double m = mu[i * D + j], v = lv[i * D + j];
        kl += 0.5 * (m * m + exp(v) - v - 1.0);
    }
    for (int t = 0, off = 0; t < info->n_discrete; off += info->discrete[t++]) {
        const float *a = alpha + i * (size_t)Ks + (size_t)off;
        kl += log((double)info->discrete[t]);
        for (int k = 0; k < info->discrete[t]; k++)
            if (a[k] > 0.0f)
                kl += (double)a[k] * log((double)a[k]);
    }
    return kl;
}

int run_evaluate(model *m, const data_source *d, const run_config *c, run_result *r, err *e)
{
    model_info info;
    model_get_info(m, &info);
    const size_t n = c->images > 0 ? (size_t)c->images : 0;
    const int S = info.S, P = S * S, D = info.D, W = info.code_dim, nd = info.n_discrete;
    const int U = D + nd, K = DATA_K;
    int Ks = 0;
    for (int i = 0; i < nd; i++)
        Ks += info.discrete[i];
    const size_t nn = n ? n : 1;
    const size_t n_rec = n < RUN_RECON_MAX ? n : RUN_RECON_MAX;
    const size_t n_hist = n < RUN_HIST_MAX ? n : RUN_HIST_MAX;

    float *x = malloc(sizeof(float) * EVAL_BLOCK * (size_t)P);       /* (BLOCK, P) */
    float *logits = malloc(sizeof(float) * EVAL_BLOCK * (size_t)P);  /* (BLOCK, P) */
    float *code = malloc(sizeof(float) * EVAL_BLOCK * (size_t)W);    /* (BLOCK, W) */
    int *f = malloc(sizeof(int) * nn * K);                           /* (n, K) */
    float *mu = malloc(sizeof(float) * nn * D);                      /* (n, D) */
    float *lv = malloc(sizeof(float) * nn * D);                      /* (n, D) */
    float *z = malloc(sizeof(float) * nn * D);                       /* (n, D) */
    float *alpha = malloc(sizeof(float) * nn * (Ks ? Ks : 1));       /* (n, Ks) */
    int *cs = malloc(sizeof(int) * nn * (nd ? nd : 1));              /* (n, nd) sampled */
    int *am = malloc(sizeof(int) * nn * (nd ? nd : 1));              /* (n, nd) argmax */
    float *code0 = malloc(sizeof(float) * (size_t)W);                /* (W) */
    double *mi = malloc(sizeof(double) * (size_t)U * K);             /* (U, K) */
    float *mi_f = malloc(sizeof(float) * (size_t)U * K);             /* (U, K) */
    unsigned char *mask = calloc((size_t)K * W, 1);                  /* (K, W) */
    float *cb_mu = malloc(sizeof(float) * EVAL_BLOCK * (size_t)D);
    float *cb_alpha = malloc(sizeof(float) * EVAL_BLOCK * (size_t)(Ks ? Ks : 1));
    uint8_t *trav = NULL;
    int rc = 0;
    if (!x || !logits || !code || !f || !mu || !lv || !z || !alpha || !cs || !am || !code0 ||
        !mi || !mi_f || !mask || !cb_mu || !cb_alpha) {
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for the evaluation of %zu images",
                     n);
        goto done;
    }
    double metric[RUN_N_METRICS];
    for (int i = 0; i < RUN_N_METRICS; i++)
        metric[i] = i == RUN_M_LOSS ? r->metric[i] : NAN; /* the loss is the run's */
    double mig_gap[DATA_K], swap_acc[DATA_K];
    for (int k = 0; k < K; k++)
        mig_gap[k] = swap_acc[k] = NAN;
    int have_mi = 0;

    /* ---- encode the eval images; recon and the one-sample ELBO ---- */
    rng img_rng, noise_rng;
    rng_seed(&img_rng, (uint64_t)c->seed, RNG_EVAL);
    rng_seed(&noise_rng, (uint64_t)c->seed, EVAL_NOISE);
    double rec_sum = 0.0, rec1_sum = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += EVAL_BLOCK) {
        const size_t b = n - i0 < EVAL_BLOCK ? n - i0 : EVAL_BLOCK;
        data_sample(d, &img_rng, (int)b, x, f + i0 * K, NULL);
        model_encode(m, x, b, mu + i0 * D, lv + i0 * D, Ks ? alpha + i0 * Ks : NULL);
        metrics_posterior qb = {b, D, mu + i0 * D, lv + i0 * D, nd, info.discrete,
                                Ks ? alpha + i0 * Ks : NULL};
        if (info.stochastic)
            metrics_sample_posterior(&qb, &noise_rng, z + i0 * D, cs + i0 * nd);
        model_eval_code(m, mu + i0 * D, alpha + i0 * Ks, b, code);
        for (size_t i = 0; i < b; i++)
            for (int t = 0, off = 0; t < nd; off += info.discrete[t++]) {
                int best = 0;
                for (int k = 1; k < info.discrete[t]; k++)
                    if (code[i * W + D + off + k] > code[i * W + D + off + best])
                        best = k;
                am[(i0 + i) * nd + t] = best;
            }
        if (i0 == 0)
            memcpy(code0, code, sizeof(float) * (size_t)W);
        if (i0 < n_rec) {
            const size_t br = n_rec - i0 < b ? n_rec - i0 : b;
            model_decode(m, code, br, logits);
            rec_sum += (double)br * nn_bce_logits_forward(NULL, logits, x, (int)br, P);
            if (info.stochastic) {
                /* one sample: z, then one-hot of the sampled categories */
                for (size_t i = 0; i < br; i++) {
                    float *o = code + i * W;
                    memcpy(o, z + (i0 + i) * D, sizeof(float) * (size_t)D);
                    for (int t = 0, off = D; t < nd; off += info.discrete[t++])
                        for (int k = 0; k < info.discrete[t]; k++)
                            o[off + k] = k == cs[(i0 + i) * nd + t] ? 1.0f : 0.0f;
                }
                model_decode(m, code, br, logits);
                rec1_sum += (double)br * nn_bce_logits_forward(NULL, logits, x, (int)br, P);
            }
        }
    }
    if (n > 0) {
        metric[RUN_M_RECON] = rec_sum / (double)n_rec;
        if (info.stochastic) {
            double kl_all = 0.0, kl_rec = 0.0;
            for (size_t i = 0; i < n; i++) {
                double v = item_kl(mu, lv, alpha, D, &info, Ks, i);
                kl_all += v;
                if (i < n_rec)
                    kl_rec += v;
            }
            metric[RUN_M_KL] = kl_all / (double)n;
            metric[RUN_M_ELBO] = -(rec1_sum + kl_rec) / (double)n_rec;
        }
    }

    /* ---- Chen et al.: decomposition and the MI matrix ---- */
    metrics_posterior q = {n, D, mu, lv, nd, info.discrete, Ks ? alpha : NULL};
    const size_t ms = c->samples > 0 ? (size_t)c->samples : 0;
    double logv[DATA_K];
    for (int k = 0; k < K; k++)
        logv[k] = log((double)data_factor_sizes[k]);
    if (info.stochastic && n > 0 && ms > 0) {
        metrics_decomposition dc;
        if ((rc = metrics_tc_decompose(&q, z, cs, ms, &dc, e)) < 0)
            goto done;
        metric[RUN_M_TC] = dc.tc;
        metric[RUN_M_MI] = dc.mi;
        metric[RUN_M_DWKL] = dc.dwkl;
        if ((rc = metrics_mi_chen(&q, z, cs, f, K, data_factor_sizes, ms, mi, e)) < 0)
            goto done;
        metric[RUN_M_MIG] = metrics_mig(mi, U, K, logv, mig_gap);
        have_mi = 1;
    }

    /* ---- disentanglement_lib's MIG on the means (and argmax categories) ---- */
    if (n > 0) {
        double hist_gap[DATA_K];
        if ((rc = metrics_mig_hist(mu, n_hist, D, am, nd, info.discrete, f, K,
                                   data_factor_sizes, hist_gap, &metric[RUN_M_MIG_HIST], e)) < 0)
            goto done;
        if (!have_mi) {
            /* deterministic codes: the histogram estimator's MI matrix */
            if ((rc = metrics_mi_hist(mu, n_hist, D, am, nd, info.discrete, f, K,
                                      data_factor_sizes, METRICS_HIST_BINS, mi, NULL, e)) < 0)
                goto done;
            memcpy(mig_gap, hist_gap, sizeof mig_gap);
            have_mi = 1;
        }
        if ((rc = metrics_gaussian_tc(mu, n, D, &metric[RUN_M_GAUSSIAN_TC], e)) < 0)
            goto done;
    }

    /* ---- swap accuracy ---- */
    int have_mask = 0;
    if (info.n_chunks == K) {
        for (int k = 0, off = 0; k < K; off += info.chunks[k++])
            for (int j = 0; j < info.chunks[k]; j++)
                mask[(size_t)k * W + off + j] = 1;
        have_mask = 1;
    } else if (have_mi) {
        for (int k = 0; k < K; k++) {
            int best = 0;
            for (int u = 1; u < U; u++)
                if (mi[u * K + k] > mi[best * K + k])
                    best = u;
            if (best < D) {
                mask[(size_t)k * W + best] = 1;
            } else { /* a discrete variable: its whole one-hot block */
                int off = D;
                for (int t = 0; t < best - D; t++)
                    off += info.discrete[t];
                for (int j = 0; j < info.discrete[best - D]; j++)
                    mask[(size_t)k * W + off + j] = 1;
            }
        }
        have_mask = 1;
    }
    model_codec mc = {m, D, Ks, cb_mu, cb_alpha};
    metrics_codec cd = {&mc, W, S, codec_encode, codec_decode};
    if (have_mask && c->pairs > 0) {
        rng pr;
        rng_seed(&pr, (uint64_t)c->seed, RNG_PAIRS);
        if ((rc = metrics_swap_accuracy(&cd, mask, c->pairs, &pr, swap_acc,
                                        &metric[RUN_M_SWAP_ACC], e)) < 0)
            goto done;
    }

    /* ---- traversals around the first eval image's code ---- */
    int th = 0, tw = 0;
    if (n > 0 && (rc = metrics_traversal(&cd, code0, D, nd, info.discrete, RUN_TRAV_STEPS,
                                         RUN_TRAV_LIMIT, &trav, &th, &tw, e)) < 0)
        goto done;

    /* ---- commit ---- */
    memcpy(r->metric, metric, sizeof metric);
    memcpy(r->mig_factor, mig_gap, sizeof mig_gap);
    memcpy(r->swap_factor, swap_acc, sizeof swap_acc);
    free(r->mi);
    r->mi = NULL;
    r->n_units = 0;
    if (have_mi) {
        for (int i = 0; i < U * K; i++)
            mi_f[i] = (float)mi[i];
        r->mi = mi_f;
        mi_f = NULL;
        r->n_units = U;
    }
    free(r->traversal);
    r->traversal = trav;
    r->trav_h = th;
    r->trav_w = tw;
    trav = NULL;
done:
    free(x);
    free(logits);
    free(code);
    free(f);
    free(mu);
    free(lv);
    free(z);
    free(alpha);
    free(cs);
    free(am);
    free(code0);
    free(mi);
    free(mi_f);
    free(mask);
    free(cb_mu);
    free(cb_alpha);
    free(trav);
    return rc;
}
