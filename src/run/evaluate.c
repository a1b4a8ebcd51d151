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

/* The encoded eval set: what is kept of each of the n eval images, and the
 * scratch of the encode loop. Units U = D + nd; Ks = sum of the category
 * counts. */
typedef struct encoded {
    size_t n, n_rec, n_hist;
    int S, P, D, W, nd, Ks, U;
    model_info info;
    int *f;         /* (n, K) factor classes */
    float *mu, *lv; /* (n, D) posterior means and log-variances */
    float *z;       /* (n, D) one sample z ~ q(z|x) per image */
    float *alpha;   /* (n, Ks) category probabilities */
    int *cs, *am;   /* (n, nd) sampled and argmax categories */
    float *code0;   /* (W) the evaluation code of the first image */
    float *x, *logits, *code; /* (BLOCK, P), (BLOCK, P), (BLOCK, W) scratch */
} encoded;

static void encoded_free(encoded *es)
{
    free(es->f);
    free(es->mu);
    free(es->lv);
    free(es->z);
    free(es->alpha);
    free(es->cs);
    free(es->am);
    free(es->code0);
    free(es->x);
    free(es->logits);
    free(es->code);
}

static int encoded_alloc(encoded *es, const model *m, const run_config *c, err *e)
{
    memset(es, 0, sizeof *es);
    model_get_info(m, &es->info);
    const model_info *in = &es->info;
    es->n = c->images > 0 ? (size_t)c->images : 0;
    es->n_rec = es->n < RUN_RECON_MAX ? es->n : RUN_RECON_MAX;
    es->n_hist = es->n < RUN_HIST_MAX ? es->n : RUN_HIST_MAX;
    es->S = in->S;
    es->P = in->S * in->S;
    es->D = in->D;
    es->W = in->code_dim;
    es->nd = in->n_discrete;
    es->U = in->D + in->n_discrete;
    for (int i = 0; i < es->nd; i++)
        es->Ks += in->discrete[i];
    const size_t nn = es->n ? es->n : 1, D = (size_t)es->D;
    const size_t Ks = es->Ks ? (size_t)es->Ks : 1, nd = es->nd ? (size_t)es->nd : 1;
    es->f = malloc(sizeof(int) * nn * DATA_K);
    es->mu = malloc(sizeof(float) * nn * D);
    es->lv = malloc(sizeof(float) * nn * D);
    es->z = malloc(sizeof(float) * nn * D);
    es->alpha = malloc(sizeof(float) * nn * Ks);
    es->cs = malloc(sizeof(int) * nn * nd);
    es->am = malloc(sizeof(int) * nn * nd);
    es->code0 = malloc(sizeof(float) * (size_t)es->W);
    es->x = malloc(sizeof(float) * EVAL_BLOCK * (size_t)es->P);
    es->logits = malloc(sizeof(float) * EVAL_BLOCK * (size_t)es->P);
    es->code = malloc(sizeof(float) * EVAL_BLOCK * (size_t)es->W);
    if (!es->f || !es->mu || !es->lv || !es->z || !es->alpha || !es->cs || !es->am ||
        !es->code0 || !es->x || !es->logits || !es->code) {
        encoded_free(es);
        return err_set(e, ERR_NOMEM, "metrics: out of memory for the evaluation of %zu images",
                       es->n);
    }
    return 0;
}

/* The argmax category of each discrete variable of the b evaluation codes
 * (b, W) -> am (b, nd). */
static void code_argmax(const encoded *es, const float *code, size_t b, int *am)
{
    const int *K = es->info.discrete;
    for (size_t i = 0; i < b; i++)
        for (int t = 0, off = 0; t < es->nd; off += K[t++]) {
            int best = 0;
            for (int k = 1; k < K[t]; k++)
                if (code[i * es->W + es->D + off + k] > code[i * es->W + es->D + off + best])
                    best = k;
            am[i * es->nd + t] = best;
        }
}

/* Encode the eval images (rng_seed(seed, RNG_EVAL)), drawing one posterior
 * sample each (EVAL_NOISE); recon (decoding the eval code) and the
 * one-sample ELBO on the first n_rec images, kl on all -> metric[]. */
static void encode_set(encoded *es, model *m, const data_source *d, const run_config *c,
                       double *metric)
{
    const size_t n = es->n, n_rec = es->n_rec, D = (size_t)es->D, W = (size_t)es->W;
    const int nd = es->nd, Ks = es->Ks, P = es->P;
    const int *K = es->info.discrete;
    rng img_rng, noise_rng;
    rng_seed(&img_rng, (uint64_t)c->seed, RNG_EVAL);
    rng_seed(&noise_rng, (uint64_t)c->seed, EVAL_NOISE);
    double rec_sum = 0.0, rec1_sum = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += EVAL_BLOCK) {
        const size_t b = n - i0 < EVAL_BLOCK ? n - i0 : EVAL_BLOCK;
        float *mu = es->mu + i0 * D, *lv = es->lv + i0 * D, *z = es->z + i0 * D;
        float *alpha = es->alpha + i0 * Ks;
        data_sample(d, &img_rng, (int)b, es->x, es->f + i0 * DATA_K, NULL);
        model_encode(m, es->x, b, mu, lv, Ks ? alpha : NULL);
        metrics_posterior qb = {b, es->D, mu, lv, nd, K, Ks ? alpha : NULL};
        if (es->info.stochastic)
            metrics_sample_posterior(&qb, &noise_rng, z, es->cs + i0 * nd);
        model_eval_code(m, mu, alpha, b, es->code);
        code_argmax(es, es->code, b, es->am + i0 * nd);
        if (i0 == 0)
            memcpy(es->code0, es->code, sizeof(float) * W);
        if (i0 >= n_rec)
            continue;
        const size_t br = n_rec - i0 < b ? n_rec - i0 : b;
        model_decode(m, es->code, br, es->logits);
        rec_sum += (double)br * nn_bce_logits_forward(NULL, es->logits, es->x, (int)br, P);
        if (!es->info.stochastic)
            continue;
        /* one sample: z, then one-hot of the sampled categories */
        for (size_t i = 0; i < br; i++) {
            float *o = es->code + i * W;
            memcpy(o, z + i * D, sizeof(float) * D);
            for (int t = 0, off = es->D; t < nd; off += K[t++])
                for (int k = 0; k < K[t]; k++)
                    o[off + k] = k == es->cs[(i0 + i) * nd + t] ? 1.0f : 0.0f;
        }
        model_decode(m, es->code, br, es->logits);
        rec1_sum += (double)br * nn_bce_logits_forward(NULL, es->logits, es->x, (int)br, P);
    }
    if (n == 0)
        return;
    metric[RUN_M_RECON] = rec_sum / (double)n_rec;
    if (es->info.stochastic) {
        double kl_all = 0.0, kl_rec = 0.0;
        for (size_t i = 0; i < n; i++) {
            double v = item_kl(es->mu, es->lv, es->alpha, es->D, &es->info, Ks, i);
            kl_all += v;
            if (i < n_rec)
                kl_rec += v;
        }
        metric[RUN_M_KL] = kl_all / (double)n;
        metric[RUN_M_ELBO] = -(rec1_sum + kl_rec) / (double)n_rec;
    }
}

/* Chen et al.: the decomposition tc/mi/dwkl and the MI matrix mi (U, K) with
 * `samples` samples -> metric[], gap (K). *have_mi = 1 when mi was filled.
 * Stochastic codes only. */
static int chen_metrics(const encoded *es, const run_config *c, double *metric, double *mi,
                        double *gap, int *have_mi, err *e)
{
    const size_t ms = c->samples > 0 ? (size_t)c->samples : 0;
    if (!es->info.stochastic || es->n == 0 || ms == 0)
        return 0;
    metrics_posterior q = {es->n, es->D, es->mu, es->lv, es->nd, es->info.discrete,
                           es->Ks ? es->alpha : NULL};
    metrics_decomposition dc;
    int rc = metrics_tc_decompose(&q, es->z, es->cs, ms, &dc, e);
    if (rc < 0)
        return rc;
    metric[RUN_M_TC] = dc.tc;
    metric[RUN_M_MI] = dc.mi;
    metric[RUN_M_DWKL] = dc.dwkl;
    if ((rc = metrics_mi_chen(&q, es->z, es->cs, es->f, DATA_K, data_factor_sizes, ms, mi, e)) < 0)
        return rc;
    double logv[DATA_K];
    for (int k = 0; k < DATA_K; k++)
        logv[k] = log((double)data_factor_sizes[k]);
    metric[RUN_M_MIG] = metrics_mig(mi, es->U, DATA_K, logv, gap);
    *have_mi = 1;
    return 0;
}

/* disentanglement_lib's MIG on the first n_hist means (and argmax
 * categories), and the Gaussian TC of the means -> metric[]. Without Chen's
 * matrix (deterministic codes), the histogram estimator's matrix and gaps
 * stand in for it: mi (U, K), gap (K), *have_mi = 1. */
static int hist_metrics(const encoded *es, double *metric, double *mi, double *gap,
                        int *have_mi, err *e)
{
    if (es->n == 0)
        return 0;
    const int *K = es->info.discrete;
    double hist_gap[DATA_K];
    int rc = metrics_mig_hist(es->mu, es->n_hist, es->D, es->am, es->nd, K, es->f, DATA_K,
                              data_factor_sizes, hist_gap, &metric[RUN_M_MIG_HIST], e);
    if (rc < 0)
        return rc;
    if (!*have_mi) {
        rc = metrics_mi_hist(es->mu, es->n_hist, es->D, es->am, es->nd, K, es->f, DATA_K,
                             data_factor_sizes, METRICS_HIST_BINS, mi, NULL, e);
        if (rc < 0)
            return rc;
        memcpy(gap, hist_gap, sizeof hist_gap);
        *have_mi = 1;
    }
    return metrics_gaussian_tc(es->mu, es->n, es->D, &metric[RUN_M_GAUSSIAN_TC], e);
}

/* The dims swapped for each factor, mask (K, W): chunk k (dsd), else the
 * unit with the highest mi[., k] (a discrete variable: its whole one-hot
 * block). 0 when there is no way to choose them. */
static int swap_mask(const encoded *es, const double *mi, int have_mi, unsigned char *mask)
{
    const model_info *in = &es->info;
    const int K = DATA_K, W = es->W, D = es->D;
    if (in->n_chunks == K) {
        for (int k = 0, off = 0; k < K; off += in->chunks[k++])
            for (int j = 0; j < in->chunks[k]; j++)
                mask[(size_t)k * W + off + j] = 1;
        return 1;
    }
    if (!have_mi)
        return 0;
    for (int k = 0; k < K; k++) {
        int best = 0;
        for (int u = 1; u < es->U; u++)
            if (mi[u * K + k] > mi[best * K + k])
                best = u;
        if (best < D) {
            mask[(size_t)k * W + best] = 1;
            continue;
        }
        int off = D;
        for (int t = 0; t < best - D; t++)
            off += in->discrete[t];
        for (int j = 0; j < in->discrete[best - D]; j++)
            mask[(size_t)k * W + off + j] = 1;
    }
    return 1;
}

int run_evaluate(model *m, const data_source *d, const run_config *c, run_result *r, err *e)
{
    encoded es;
    int rc = encoded_alloc(&es, m, c, e);
    if (rc < 0)
        return rc;
    const int U = es.U, K = DATA_K, W = es.W;
    double *mi = malloc(sizeof(double) * (size_t)U * K);  /* (U, K) */
    float *mi_f = malloc(sizeof(float) * (size_t)U * K);  /* (U, K) */
    unsigned char *mask = calloc((size_t)K * W, 1);       /* (K, W) */
    float *cb_mu = malloc(sizeof(float) * EVAL_BLOCK * (size_t)es.D);
    float *cb_alpha = malloc(sizeof(float) * EVAL_BLOCK * (size_t)(es.Ks ? es.Ks : 1));
    uint8_t *trav = NULL;
    if (!mi || !mi_f || !mask || !cb_mu || !cb_alpha) {
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for the evaluation of %zu images",
                     es.n);
        goto done;
    }
    double metric[RUN_N_METRICS];
    for (int i = 0; i < RUN_N_METRICS; i++)
        metric[i] = i == RUN_M_LOSS ? r->metric[i] : NAN; /* the loss is the run's */
    double mig_gap[DATA_K], swap_acc[DATA_K];
    for (int k = 0; k < K; k++)
        mig_gap[k] = swap_acc[k] = NAN;
    int have_mi = 0;

    encode_set(&es, m, d, c, metric);
    if ((rc = chen_metrics(&es, c, metric, mi, mig_gap, &have_mi, e)) < 0 ||
        (rc = hist_metrics(&es, metric, mi, mig_gap, &have_mi, e)) < 0)
        goto done;

    model_codec mc = {m, es.D, es.Ks, cb_mu, cb_alpha};
    metrics_codec cd = {&mc, W, es.S, codec_encode, codec_decode};
    if (swap_mask(&es, mi, have_mi, mask) && c->pairs > 0) {
        rng pr;
        rng_seed(&pr, (uint64_t)c->seed, RNG_PAIRS);
        if ((rc = metrics_swap_accuracy(&cd, mask, c->pairs, &pr, swap_acc,
                                        &metric[RUN_M_SWAP_ACC], e)) < 0)
            goto done;
    }
    /* traversals around the first eval image's code */
    int th = 0, tw = 0;
    if (es.n > 0 && (rc = metrics_traversal(&cd, es.code0, es.D, es.nd, es.info.discrete,
                                            RUN_TRAV_STEPS, RUN_TRAV_LIMIT, &trav, &th, &tw,
                                            e)) < 0)
        goto done;

    /* commit */
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
    encoded_free(&es);
    free(mi);
    free(mi_f);
    free(mask);
    free(cb_mu);
    free(cb_alpha);
    free(trav);
    return rc;
}
