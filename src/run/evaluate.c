/* The evaluation driver: a trained model's metrics (docs/architecture.md
 * section 5).
 *
 * Two encoded sets:
 * - the draws: max(eval.images (sample mode), hist_images, unsup_images,
 *   and RUN_RECON_MAX in full-set mode) images drawn with replacement from
 *   rng_seed(seed, RNG_EVAL), their posterior samples from the sub-stream
 *   EVAL_NOISE. recon and elbo use the first min(n, RUN_RECON_MAX), mig_hist
 *   the first hist_images, gaussian_tc the first unsup_images, and in sample
 *   mode Chen's estimators, kl and disc_acc the first eval.images. The first
 *   draws are the same whatever the sizes, so a larger hist_images never
 *   moves the numbers of the other metrics.
 * - the full set (eval.encode full): every image of the data set once, in
 *   canonical factor order, each with one posterior sample from EVAL_FULL:
 *   Chen's estimators (their random sample subsets from EVAL_PICK), kl,
 *   disc_acc and the chunk scores. Only per-image results are kept (factor
 *   classes, mu, lv, alpha, one sample): O(N * D) memory, never O(N * S * S).
 * The swap pairs come from rng_seed(seed, RNG_PAIRS). */
#include "untangle/metrics.h"
#include "untangle/nn.h"
#include "untangle/run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    EVAL_BLOCK = 256,                   /* images per encode/decode block */
    EVAL_NOISE = RNG_EVAL * 1000 + 1,   /* posterior samples of the draws */
    EVAL_FULL = RNG_EVAL * 1000 + 2,    /* posterior samples of the full set */
    EVAL_PICK = RNG_EVAL * 1000 + 3     /* Chen's sample subsets on the full set */
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
    const size_t P = (size_t)info.C * info.S * info.S, W = (size_t)info.code_dim;
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

/* What is kept of n encoded images. */
typedef struct codeset {
    size_t n;
    int *f;         /* (n, K) factor classes */
    float *mu, *lv; /* (n, D) posterior means and log-variances */
    float *z;       /* (n, D) one sample z ~ q(z|x) per image */
    float *alpha;   /* (n, Ks) category probabilities */
    int *cs, *am;   /* (n, nd) sampled and argmax categories */
} codeset;

/* The encoded sets and the scratch of the encode loops. Units U = D + nd;
 * Ks = sum of the category counts. */
typedef struct encoded {
    size_t n_chen, n_kl, n_rec, n_hist, n_unsup; /* prefixes of the draws used */
    int full;                  /* eval.encode full */
    int S, P, D, W, nd, Ks, U; /* P = C*S*S values per image */
    model_info info;
    data_factor_desc fd;       /* the data's factors */
    codeset draw, all;         /* the draws; the full set (full mode) */
    float *code0;              /* (W) the evaluation code of the first draw */
    float *x, *logits, *code;  /* (BLOCK, P), (BLOCK, P), (BLOCK, W) scratch */
} encoded;

static void codeset_free(codeset *s)
{
    free(s->f);
    free(s->mu);
    free(s->lv);
    free(s->z);
    free(s->alpha);
    free(s->cs);
    free(s->am);
    memset(s, 0, sizeof *s);
}

static int codeset_alloc(codeset *s, size_t n, const encoded *es)
{
    const size_t nn = n ? n : 1, D = (size_t)es->D, K = (size_t)es->fd.K;
    const size_t Ks = es->Ks ? (size_t)es->Ks : 1, nd = es->nd ? (size_t)es->nd : 1;
    s->n = n;
    s->f = malloc(sizeof(int) * nn * K);
    s->mu = malloc(sizeof(float) * nn * D);
    s->lv = malloc(sizeof(float) * nn * D);
    s->z = malloc(sizeof(float) * nn * D);
    s->alpha = malloc(sizeof(float) * nn * Ks);
    s->cs = malloc(sizeof(int) * nn * nd);
    s->am = malloc(sizeof(int) * nn * nd);
    return s->f && s->mu && s->lv && s->z && s->alpha && s->cs && s->am ? 0 : -1;
}

static void encoded_free(encoded *es)
{
    codeset_free(&es->draw);
    codeset_free(&es->all);
    free(es->code0);
    free(es->x);
    free(es->logits);
    free(es->code);
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

static int encoded_alloc(encoded *es, const model *m, const data_source *d, const run_config *c,
                         err *e)
{
    memset(es, 0, sizeof *es);
    model_get_info(m, &es->info);
    data_describe(d, &es->fd);
    const model_info *in = &es->info;
    es->full = strcmp(c->encode, "full") == 0;
    const size_t images = c->images > 0 ? (size_t)c->images : 0;
    es->n_hist = c->hist_images > 0 ? (size_t)c->hist_images : 0;
    es->n_unsup = c->unsup_images > 0 ? (size_t)c->unsup_images : 0;
    size_t n = max_sz(es->n_hist, es->n_unsup);
    if (es->full) {
        n = max_sz(n, RUN_RECON_MAX);
        es->n_chen = es->n_kl = es->fd.n_grid;
    } else {
        n = max_sz(n, images);
        es->n_chen = es->n_kl = images;
    }
    es->n_rec = (es->full ? n : images) < RUN_RECON_MAX ? (es->full ? n : images) : RUN_RECON_MAX;
    es->S = in->S;
    es->P = in->C * in->S * in->S;
    es->D = in->D;
    es->W = in->code_dim;
    es->nd = in->n_discrete;
    es->U = in->D + in->n_discrete;
    for (int i = 0; i < es->nd; i++)
        es->Ks += in->discrete[i];
    int bad = codeset_alloc(&es->draw, n, es) < 0 ||
              (es->full && codeset_alloc(&es->all, es->fd.n_grid, es) < 0);
    es->code0 = malloc(sizeof(float) * (size_t)es->W);
    es->x = malloc(sizeof(float) * EVAL_BLOCK * (size_t)es->P);
    es->logits = malloc(sizeof(float) * EVAL_BLOCK * (size_t)es->P);
    es->code = malloc(sizeof(float) * EVAL_BLOCK * (size_t)es->W);
    if (bad || !es->code0 || !es->x || !es->logits || !es->code) {
        encoded_free(es);
        return err_set(e, ERR_NOMEM, "metrics: out of memory for the evaluation of %zu images",
                       es->full ? es->fd.n_grid : n);
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

/* Encode the block of b images in es->x into items i0.. of s: posteriors,
 * one sample each (noise), evaluation code (es->code) and argmax. */
static void encode_block(encoded *es, model *m, codeset *s, size_t i0, size_t b, rng *noise)
{
    const size_t D = (size_t)es->D;
    const int nd = es->nd, Ks = es->Ks;
    float *mu = s->mu + i0 * D, *lv = s->lv + i0 * D, *alpha = s->alpha + i0 * Ks;
    model_encode(m, es->x, b, mu, lv, Ks ? alpha : NULL);
    metrics_posterior qb = {b, es->D, mu, lv, nd, es->info.discrete, Ks ? alpha : NULL};
    if (es->info.stochastic)
        metrics_sample_posterior(&qb, noise, s->z + i0 * D, s->cs + i0 * nd);
    model_eval_code(m, mu, alpha, b, es->code);
    code_argmax(es, es->code, b, s->am + i0 * nd);
}

/* Encode the draws (rng_seed(seed, RNG_EVAL)), drawing one posterior sample
 * each (EVAL_NOISE); recon (decoding the eval code) and the one-sample ELBO
 * on the first n_rec draws, kl on the first n_kl (sample mode) -> metric[]. */
static void encode_draws(encoded *es, model *m, const data_source *d, const run_config *c,
                         double *metric)
{
    codeset *s = &es->draw;
    const size_t n = s->n, n_rec = es->n_rec, D = (size_t)es->D, W = (size_t)es->W;
    const int nd = es->nd, Ks = es->Ks, P = es->P, K = es->fd.K;
    const int *Kd = es->info.discrete;
    rng img_rng, noise_rng;
    rng_seed(&img_rng, (uint64_t)c->seed, RNG_EVAL);
    rng_seed(&noise_rng, (uint64_t)c->seed, EVAL_NOISE);
    double rec_sum = 0.0, rec1_sum = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += EVAL_BLOCK) {
        const size_t b = n - i0 < EVAL_BLOCK ? n - i0 : EVAL_BLOCK;
        data_sample(d, &img_rng, (int)b, es->x, s->f + i0 * K, NULL);
        encode_block(es, m, s, i0, b, &noise_rng);
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
            memcpy(o, s->z + (i0 + i) * D, sizeof(float) * D);
            for (int t = 0, off = es->D; t < nd; off += Kd[t++])
                for (int k = 0; k < Kd[t]; k++)
                    o[off + k] = k == s->cs[(i0 + i) * nd + t] ? 1.0f : 0.0f;
        }
        model_decode(m, es->code, br, es->logits);
        rec1_sum += (double)br * nn_bce_logits_forward(NULL, es->logits, es->x, (int)br, P);
    }
    if (n_rec == 0)
        return;
    metric[RUN_M_RECON] = rec_sum / (double)n_rec;
    if (es->info.stochastic) {
        double kl_rec = 0.0;
        for (size_t i = 0; i < n_rec; i++)
            kl_rec += item_kl(s->mu, s->lv, s->alpha, es->D, &es->info, Ks, i);
        metric[RUN_M_ELBO] = -(rec1_sum + kl_rec) / (double)n_rec;
    }
}

/* Encode every image of the data set once, in canonical factor order (item
 * i = canonical index i), one posterior sample each from EVAL_FULL. The
 * variants' colour or noise of image i comes from (seed, i) alone
 * (data_get_seeded), whatever the thread or block. */
static void encode_full(encoded *es, model *m, const data_source *d, const run_config *c)
{
    codeset *s = &es->all;
    const int K = es->fd.K;
    rng noise_rng;
    rng_seed(&noise_rng, (uint64_t)c->seed, EVAL_FULL);
    int f[DATA_MAX_K];
    for (size_t i0 = 0; i0 < s->n; i0 += EVAL_BLOCK) {
        const size_t b = s->n - i0 < EVAL_BLOCK ? s->n - i0 : EVAL_BLOCK;
        for (size_t i = 0; i < b; i++) {
            data_get_seeded(d, (uint32_t)(i0 + i), (uint64_t)c->seed, es->x + i * (size_t)es->P, f);
            memcpy(s->f + (i0 + i) * K, f, sizeof(int) * (size_t)K);
        }
        encode_block(es, m, s, i0, b, &noise_rng);
    }
}

/* kl: the mean analytic KL over the first n_kl items of the set Chen's
 * estimators use -> metric[] (stochastic codes). */
static void kl_metric(const encoded *es, const codeset *s, double *metric)
{
    if (!es->info.stochastic || es->n_kl == 0)
        return;
    double kl = 0.0;
    for (size_t i = 0; i < es->n_kl; i++)
        kl += item_kl(s->mu, s->lv, s->alpha, es->D, &es->info, es->Ks, i);
    metric[RUN_M_KL] = kl / (double)es->n_kl;
}

/* Chen et al.: the decomposition tc/mi/dwkl and the MI matrix mi (U, K) with
 * `samples` samples on the first n_chen items of s (the draws: their first
 * samples; the full set: random subsets from EVAL_PICK) -> metric[], gap
 * (K). *have_mi = 1 when mi was filled. Stochastic codes only. */
static int chen_metrics(const encoded *es, const codeset *s, const run_config *c,
                        double *metric, double *mi, double *gap, int *have_mi, err *e)
{
    const size_t ms = c->samples > 0 ? (size_t)c->samples : 0;
    const data_factor_desc *fd = &es->fd;
    if (!es->info.stochastic || es->n_chen == 0 || ms == 0)
        return 0;
    metrics_posterior q = {es->n_chen, es->D, s->mu, s->lv, es->nd, es->info.discrete,
                           es->Ks ? s->alpha : NULL};
    rng pick;
    rng_seed(&pick, (uint64_t)c->seed, EVAL_PICK);
    metrics_decomposition dc;
    int rc = metrics_chen(&q, s->z, s->cs, s->f, fd->K, fd->sizes, ms, es->full ? &pick : NULL,
                          &dc, mi, e);
    if (rc < 0)
        return rc;
    metric[RUN_M_TC] = dc.tc;
    metric[RUN_M_MI] = dc.mi;
    metric[RUN_M_DWKL] = dc.dwkl;
    double logv[DATA_MAX_K];
    for (int k = 0; k < fd->K; k++)
        logv[k] = log((double)fd->sizes[k]);
    metrics_mig(mi, es->U, fd->K, logv, gap);
    metric[RUN_M_MIG] = metrics_mig_mean(gap, fd->K, fd->in_mig);
    *have_mi = 1;
    return 0;
}

/* disentanglement_lib's MIG on the first n_hist means (and argmax
 * categories) and the Gaussian TC of the first n_unsup means -> metric[].
 * Without Chen's matrix (deterministic codes), the histogram estimator's
 * matrix and gaps stand in for it: mi (U, K), gap (K), *have_mi = 1. */
static int hist_metrics(const encoded *es, double *metric, double *mi, double *gap,
                        int *have_mi, err *e)
{
    const codeset *s = &es->draw;
    const data_factor_desc *fd = &es->fd;
    const int *Kd = es->info.discrete;
    double hist_gap[DATA_MAX_K];
    int rc = 0;
    if (es->n_hist > 0) {
        rc = metrics_mig_hist(s->mu, es->n_hist, es->D, s->am, es->nd, Kd, s->f, fd->K,
                              fd->sizes, hist_gap, &metric[RUN_M_MIG_HIST], e);
        if (rc == 0 && !*have_mi) {
            rc = metrics_mi_hist(s->mu, es->n_hist, es->D, s->am, es->nd, Kd, s->f, fd->K,
                                 fd->sizes, METRICS_HIST_BINS, mi, NULL, e);
            memcpy(gap, hist_gap, sizeof(double) * (size_t)fd->K);
            *have_mi = rc == 0;
        }
    }
    if (rc == 0 && es->n_unsup > 0)
        rc = metrics_gaussian_tc(s->mu, es->n_unsup, es->D, &metric[RUN_M_GAUSSIAN_TC], e);
    return rc;
}

/* The chunk-level MIG of a code with one chunk per factor (dsd): on the
 * full set in full mode, else on the mig_hist draws -> metric[], gap (K). */
static int chunk_metrics(const encoded *es, double *metric, double *gap, err *e)
{
    const model_info *in = &es->info;
    const data_factor_desc *fd = &es->fd;
    if (in->n_chunks != fd->K)
        return 0;
    const codeset *s = es->full ? &es->all : &es->draw;
    size_t n = es->full ? s->n : es->n_hist;
    if (n == 0)
        return 0;
    return metrics_mig_chunks(s->mu, n, es->D, in->chunks, in->n_chunks, s->f, fd->K, fd->sizes,
                              fd->in_mig, NULL, gap, &metric[RUN_M_CHUNK_MIG], e);
}

/* disc_acc: the accuracy of the first discrete variable's argmax category
 * (am: the argmax of alpha per image) against the data set's factor named
 * "shape", under the best one-to-one map of categories to shape values
 * (metrics_match_accuracy; JointVAE's claim that its discrete latent captures
 * dSprites' shape), on the first n_chen items of s: the images of Chen's
 * estimators -> metric[]. NaN without a discrete variable or such a factor. */
static int disc_metric(const encoded *es, const codeset *s, double *metric, err *e)
{
    const data_factor_desc *fd = &es->fd;
    int shape = 0;
    while (shape < fd->K && strcmp(fd->names[shape], "shape") != 0)
        shape++;
    const size_t n = es->n_chen, nd = (size_t)es->nd, K = (size_t)fd->K;
    if (nd == 0 || shape == fd->K || n == 0)
        return 0;
    int *cat = malloc(sizeof(int) * n), *v = malloc(sizeof(int) * n); /* (n), (n) */
    int rc = 0;
    if (!cat || !v) {
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for disc_acc on %zu images", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        cat[i] = s->am[i * nd];
        v[i] = s->f[i * K + (size_t)shape];
    }
    rc = metrics_match_accuracy(cat, v, n, es->info.discrete[0], fd->sizes[shape],
                                &metric[RUN_M_DISC_ACC], e);
done:
    free(cat);
    free(v);
    return rc;
}

/* disentanglement_lib's suite on the full set's posterior means, in
 * canonical factor order (full mode only) -> metric[]. */
static int dlib_metrics(const encoded *es, const run_config *c, double *metric, err *e)
{
    if (!es->full || es->D == 0 || es->fd.K > METRICS_DLIB_MAX_K)
        return 0;
    const codeset *s = &es->all;
    metrics_table t = {s->mu, s->n, es->D, es->fd.K, es->fd.sizes};
    metrics_dlib_scores sc;
    int rc = metrics_dlib_suite(&t, (uint64_t)c->seed, NULL, &sc, e);
    if (rc < 0)
        return rc;
    metric[RUN_M_BETA_VAE] = sc.beta_vae_eval;
    metric[RUN_M_FACTOR_VAE] = sc.factor_vae_eval;
    metric[RUN_M_DCI_D] = sc.dci.disentanglement;
    metric[RUN_M_DCI_C] = sc.dci.completeness;
    metric[RUN_M_DCI_I] = sc.dci.informativeness_test;
    metric[RUN_M_SAP] = sc.sap;
    metric[RUN_M_MODULARITY] = sc.modularity;
    metric[RUN_M_EXPLICITNESS] = sc.explicitness_test;
    metric[RUN_M_GWC] = sc.unsup.gaussian_wasserstein_correlation_norm;
    metric[RUN_M_MI_SCORE] = sc.unsup.mutual_info_score;
    return 0;
}

/* The dims swapped for each factor, mask (K, W): chunk k (dsd), else the
 * unit with the highest mi[., k] (a discrete variable: its whole one-hot
 * block). 0 when there is no way to choose them. */
static int swap_mask(const encoded *es, const double *mi, int have_mi, unsigned char *mask)
{
    const model_info *in = &es->info;
    const int K = es->fd.K, W = es->W, D = es->D;
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

/* The set Chen's estimators use, handed to the caller's sink (full mode). */
static int give_codes(const encoded *es, run_codes_sink sink, void *ctx, err *e)
{
    if (!sink || !es->full)
        return 0;
    const codeset *s = &es->all;
    run_codes rc = {s->n,  es->fd.K, es->fd.sizes, es->fd.names, s->f,
                    es->D, s->mu,    s->lv,        es->nd,       es->info.discrete,
                    es->Ks ? s->alpha : NULL};
    return sink(ctx, &rc, e);
}

int run_evaluate_codes(model *m, const data_source *d, const run_config *c,
                       run_codes_sink sink, void *ctx, run_result *r, err *e)
{
    encoded es;
    int rc = encoded_alloc(&es, m, d, c, e);
    if (rc < 0)
        return rc;
    const int U = es.U, K = es.fd.K, W = es.W;
    if (K > RUN_MAX_FACTORS) {
        encoded_free(&es);
        return err_set(e, ERR_INTERNAL, "metrics: %d factors, results hold %d", K,
                       RUN_MAX_FACTORS);
    }
    double *mi = malloc(sizeof(double) * (size_t)U * K);  /* (U, K) */
    float *mi_f = malloc(sizeof(float) * (size_t)U * K);  /* (U, K) */
    unsigned char *mask = calloc((size_t)K * W, 1);       /* (K, W) */
    float *cb_mu = malloc(sizeof(float) * EVAL_BLOCK * (size_t)es.D);
    float *cb_alpha = malloc(sizeof(float) * EVAL_BLOCK * (size_t)(es.Ks ? es.Ks : 1));
    uint8_t *trav = NULL;
    if (!mi || !mi_f || !mask || !cb_mu || !cb_alpha) {
        rc = err_set(e, ERR_NOMEM, "metrics: out of memory for the evaluation of %zu images",
                     es.draw.n);
        goto done;
    }
    double metric[RUN_N_METRICS];
    for (int i = 0; i < RUN_N_METRICS; i++)
        metric[i] = i == RUN_M_LOSS ? r->metric[i] : NAN; /* the loss is the run's */
    double mig_gap[RUN_MAX_FACTORS], swap_acc[RUN_MAX_FACTORS], chunk_gap[RUN_MAX_FACTORS];
    for (int k = 0; k < RUN_MAX_FACTORS; k++)
        mig_gap[k] = swap_acc[k] = chunk_gap[k] = NAN;
    int have_mi = 0;

    encode_draws(&es, m, d, c, metric);
    if (es.full)
        encode_full(&es, m, d, c);
    const codeset *chen = es.full ? &es.all : &es.draw;
    metric[RUN_M_EVAL_IMAGES] = (double)es.n_chen;
    kl_metric(&es, chen, metric);
    if ((rc = chen_metrics(&es, chen, c, metric, mi, mig_gap, &have_mi, e)) < 0 ||
        (rc = hist_metrics(&es, metric, mi, mig_gap, &have_mi, e)) < 0 ||
        (rc = chunk_metrics(&es, metric, chunk_gap, e)) < 0 ||
        (rc = disc_metric(&es, chen, metric, e)) < 0 ||
        (rc = dlib_metrics(&es, c, metric, e)) < 0 ||
        (rc = give_codes(&es, sink, ctx, e)) < 0)
        goto done;

    model_codec mc = {m, es.D, es.Ks, cb_mu, cb_alpha};
    metrics_codec cd = {&mc, W, es.S, codec_encode, codec_decode, es.info.C};
    /* Swap accuracy renders its candidates with dSprites' renderer and asks
     * which one the decoded image matches: it exists for dsprites only (the
     * variants' random colour or noise makes no rendered candidate equal to
     * the target, and shapes3d has no renderer): NaN elsewhere. */
    const int swap_ok = strcmp(es.fd.name, "dsprites") == 0;
    if (swap_ok && swap_mask(&es, mi, have_mi, mask) && c->pairs > 0) {
        rng pr;
        rng_seed(&pr, (uint64_t)c->seed, RNG_PAIRS);
        if ((rc = metrics_swap_accuracy(&cd, mask, c->pairs, &pr, swap_acc,
                                        &metric[RUN_M_SWAP_ACC], e)) < 0)
            goto done;
    }
    /* traversals around the first draw's code */
    int th = 0, tw = 0;
    if (es.draw.n > 0 &&
        (rc = metrics_traversal(&cd, es.code0, es.D, es.nd, es.info.discrete, RUN_TRAV_STEPS,
                                RUN_TRAV_LIMIT, &trav, &th, &tw, e)) < 0)
        goto done;

    /* commit */
    memcpy(r->metric, metric, sizeof metric);
    r->n_factors = K;
    memcpy(r->mig_factor, mig_gap, sizeof mig_gap);
    memcpy(r->swap_factor, swap_acc, sizeof swap_acc);
    memcpy(r->chunk_factor, chunk_gap, sizeof chunk_gap);
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

int run_evaluate(model *m, const data_source *d, const run_config *c, run_result *r, err *e)
{
    return run_evaluate_codes(m, d, c, NULL, NULL, r, e);
}
