/* metrics: the estimators a run's evaluation uses (docs/architecture.md), each
 * a public function on plain arrays (codes, posteriors, factor classes, a codec
 * of callbacks), so that tests can feed synthetic tables with known answers
 * without a model. run_evaluate (run.h) drives them for a trained model; this
 * module includes no model, run or nn header. Shapes: n items, D continuous latents,
 * K factors, U = D + n_discrete code units (one per continuous latent, one
 * per discrete variable), W = code_dim = D + sum(K_i) decoder inputs.
 * Entropies and mutual informations are in nats.
 *
 * Functions that allocate scratch return 0 or ERR_NOMEM (e filled); outputs
 * are written only on success. */
#ifndef UNTANGLE_METRICS_H
#define UNTANGLE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "untangle/data.h"
#include "untangle/err.h"
#include "untangle/rng.h"

enum {
    METRICS_HIST_BINS = 20,       /* bins per latent for mig_hist */
    METRICS_N_CANDIDATES = 113    /* swap accuracy candidates: 3+6+40+32+32 */
};

/* ---- the aggregate posterior and Chen et al.'s estimators ---------------- */

/* The encoded set {q(z|x_n)}: n factorised posteriors, D Gaussian dims
 * N(mu, exp(lv)) and n_discrete categorical variables with probabilities
 * alpha (block i has discrete[i] categories). q(z) = 1/n sum_n q(z|x_n). */
typedef struct metrics_posterior {
    size_t n;
    int D;
    const float *mu, *lv;  /* (n, D) */
    int n_discrete;
    const int *discrete;   /* (n_discrete) category counts; NULL when none */
    const float *alpha;    /* (n, sum K_i) probabilities; NULL when none */
} metrics_posterior;

/* One sample per item, z_n ~ q(z|x_n): z (n, D) with r's normal draws,
 * c (n, n_discrete) categories drawn from alpha (c may be NULL when there is
 * no discrete variable). Item order: n outer, dims inner. */
void metrics_sample_posterior(const metrics_posterior *q, rng *r, float *z, int *c);

/* Chen et al. 2018 (section 4.1, the released estimate_entropies): the
 * entropies of the aggregate posterior estimated with m samples
 * (z (m, D), c (m, n_discrete)) against all n posteriors of q:
 *     H(z)   ~ -1/m sum_s [logsumexp_n log q(z_s|x_n) - log n]
 *     H(z_u) ~ -1/m sum_s [logsumexp_n log q(z_su|x_n) - log n]
 * h_units (U) gets H(z_u), h_joint (may be NULL) H(z). Cost m*n*U
 * log-densities (one exp each, plus m*n for the joint), computed in blocks of
 * posteriors with a running-max log-sum-exp. */
int metrics_entropies(const metrics_posterior *q, const float *z, const int *c, size_t m,
                      double *h_units, double *h_joint, err *e);

/* The data-set-level ELBO decomposition (Chen et al. 2018, eq. 2):
 *   E_x KL(q(z|x)||p(z)) = I(x;z) + KL(q(z)||prod_u q(z_u)) + sum_u KL(q(z_u)||p(z_u)),
 * each term the mean over the first m samples s (rows of z, c; item s is
 * the sample's own x) of
 *   mi   = log q(z_s|x_s) - log q(z_s)
 *   tc   = log q(z_s) - sum_u log q(z_su)              (= sum_u H(z_u) - H(z))
 *   dwkl = sum_u log q(z_su) - log p(z_s)
 * with log q(z_s), log q(z_su) from metrics_entropies (so H(z), H(z_u) are
 * its estimates) and p = N(0, I) x uniform categories. Per sample the three
 * add up to log q(z_s|x_s) - log p(z_s) (docs/architecture.md section 4's identity), so
 * mi + tc + dwkl == kl_mc exactly, a Monte Carlo estimate of the analytic kl.
 * Why per-sample terms rather than the released code's analytic E_x H(q(z|x))
 * and cross-entropy: the terms share the samples' noise, which cancels (on a
 * synthetic 10-dim set with 2,000 samples the spread over sample seeds fell
 * from 0.053 to 0.022 nats for mi and from 0.054 to 0.002 for dwkl, which
 * the analytic form could even make negative); tc is the same either way. */
typedef struct metrics_decomposition {
    double mi, tc, dwkl;
    double kl_mc;    /* mean of log q(z_s|x_s) - log p(z_s) over the samples = mi + tc + dwkl */
    double kl;       /* mean analytic KL over all n items (continuous + discrete) */
    double h_joint;  /* H(z) estimate */
    double h_cond;   /* H(z|x) estimate: -mean log q(z_s|x_s) */
} metrics_decomposition;
int metrics_tc_decompose(const metrics_posterior *q, const float *z, const int *c, size_t m,
                         metrics_decomposition *out, err *e);

/* Chen et al.'s mutual information I(z_u; v_k) = H(z_u) - H(z_u | v_k) for
 * every unit u and factor k (their mutual_info_metric_shapes): H(z_u) with
 * the first min(max_samples, n) samples against all n posteriors; H(z_u|v_k)
 * = sum_v (n_v/n) H(z_u | v_k = v), each group's entropy estimated with its
 * first min(max_samples, n_v) members' samples against the group's own
 * posteriors. z, c: one sample per item (metrics_sample_posterior). f (n, K)
 * factor classes, sizes (K) their counts. mi (U, K) out, not clamped.
 * Cost: U * (min(S, n) * n + sum_k sum_v min(S, n_v) * n_v) log-densities,
 * S = max_samples; about 3x the decomposition's at the defaults.
 *
 * (metrics_chen computes it and the decomposition in one pass.) */
int metrics_mi_chen(const metrics_posterior *q, const float *z, const int *c, const int *f,
                    int K, const int *sizes, size_t max_samples, double *mi, err *e);

/* Chen et al.'s two estimators on one encoded set, as their released code
 * computes them, sharing the marginal pass: the decomposition (dc, may be
 * NULL; as metrics_tc_decompose) and the MI matrix (mi (U, K), may be NULL;
 * as metrics_mi_chen; f (n, K), sizes (K), any K >= 1). The marginal
 * entropies H(z), H(z_u) use min(S, n) samples against all n posteriors,
 * and each conditional group of a factor value min(S, n_v) of its own
 * samples against its posteriors. r NULL: the first samples (a random
 * draw's first items are a random subset: subsample mode; equal, bit for
 * bit, to metrics_tc_decompose and metrics_mi_chen); r set: a uniform random
 * subset without replacement (estimate_entropies' randperm), for a set in
 * canonical factor order (full-set mode). Memory O(n * U) for the
 * posteriors plus O(S * U) running sums, never O(n * S).
 *
 * Cost: U * (S * n + sum_k sum_v min(S, n_v) * n_v) log-densities (+ S * n
 * exps for the joint). The posteriors are walked in cache-sized tiles, each
 * against every sample, so the cost is compute-bound at any n: on all
 * 737,280 dSprites images with S = 2,000 and D = 10 (the marginal plus five
 * factors' groups) 8.8e10 evaluations, measured at ~176 s of one core of
 * the loaded 2-core test machine (~2 ns each; docs/architecture.md
 * section 5). */
int metrics_chen(const metrics_posterior *q, const float *z, const int *c, const int *f,
                 int K, const int *sizes, size_t S, rng *r, metrics_decomposition *dc,
                 double *mi, err *e);

/* MIG from a mutual-information matrix mi (U, K): for each factor k,
 * gap_k = (I_top1 - I_top2) / h_factor[k] over the units (values clamped at
 * 0, as Chen et al.; with one unit I_top2 = 0). gap (K) may be NULL; returns
 * the mean gap over the K factors. */
double metrics_mig(const double *mi, int U, int K, const double *h_factor, double *gap);

/* The mean of gap (K) over the factors with use[k] != 0 (use NULL: all);
 * NaN when none is used. Chen et al.'s mi_metric.py averages over scale,
 * orientation, posX and posY of dSprites (shape left out): data.h's
 * data_factor_in_mig. */
double metrics_mig_mean(const double *gap, int K, const unsigned char *use);

/* ---- factors described by data: any K discrete factors -------------------- */

/* Items of the full factor grid of sizes (K): their product (0 when K < 1). */
size_t metrics_grid_count(int K, const int *sizes);
/* The full grid in canonical order, f (n, K), n = metrics_grid_count: item
 * index = mixed radix over the factor values, the last factor fastest
 * (dSprites: (((shape*6 + scale)*40 + orient)*32 + posX)*32 + posY). */
void metrics_grid_factors(int K, const int *sizes, int *f);

/* ---- chunk-level scores (codes split into one chunk of dims per factor) -- */

/* The mutual information between each factor and each whole chunk of a
 * deterministic code (DSD): codes (n, D), chunk j = dims [o_j, o_j +
 * chunks[j]) (sum of chunks <= D); every dim of a chunk is cut into n_bins
 * equal-width bins (metrics_discretize), the chunk's label is its tuple of
 * bins, and I(chunk; v_k) is the plug-in mutual information of the labels
 * with f[:, k] (nats; sklearn's mutual_info_score on the tuples) -> mi
 * (n_chunks, K); h_factor (K) (may be NULL) gets the factors' plug-in
 * entropies. A chunk whose tuples separate the values of factor k has
 * I = H(v_k). */
int metrics_mi_chunks(const float *codes, size_t n, int D, const int *chunks, int n_chunks,
                      const int *f, int K, const int *sizes, int n_bins, double *mi,
                      double *h_factor, err *e);

/* The MIG over chunks: metrics_mi_chunks with max(METRICS_HIST_BINS, largest
 * factor size) bins per dim (so that a dim copying a factor's equally spaced
 * values separates them), for
 * each factor (I_top1 - I_top2) / H(v_k) over the chunks -> gap (K) (may be
 * NULL), their mean over the factors with use[k] (NULL: all) -> *mig. A
 * perfect chunk (it separates its factor's values; the other chunks carry
 * nothing of the factor) gives a gap of 1. mi (n_chunks, K) may be NULL. */
int metrics_mig_chunks(const float *codes, size_t n, int D, const int *chunks, int n_chunks,
                       const int *f, int K, const int *sizes, const unsigned char *use,
                       double *mi, double *gap, double *mig, err *e);

/* ---- disentanglement_lib's histogram estimators -------------------------- */

/* _histogram_discretize of one latent: x[i*stride] for i < n is cut into
 * n_bins equal-width bins between its min and max, exactly as
 * np.digitize(x, np.histogram(x, n_bins)[1][:-1]) on float32 data; bins (n)
 * gets 0 .. n_bins-1 (numpy's value minus one). A constant latent lands in
 * one bin. */
void metrics_discretize(const float *x, size_t n, size_t stride, int n_bins, int *bins);

/* Plug-in entropy (nats) of labels (n) in 0 .. n_labels-1:
 * sklearn.metrics.mutual_info_score(y, y). */
double metrics_discrete_entropy(const int *labels, size_t n, int n_labels, err *e);

/* Plug-in mutual information (nats) between labels (n) in 0 .. n_labels-1 and
 * each factor's classes f[:, k] (f (n, K), classes < sizes[k]):
 * sklearn.metrics.mutual_info_score, clamped at 0. mi (K) out. */
int metrics_discrete_mi(const int *labels, size_t n, int n_labels, const int *f, int K,
                        const int *sizes, double *mi, err *e);

/* The histogram MI matrix of disentanglement_lib's MIG: codes (n, D) means,
 * each continuous unit discretised into n_bins bins (metrics_discretize);
 * cats (n, n_cat_units) (may be NULL when n_cat_units == 0) are categorical
 * units taken as they are (labels 0 .. cat_sizes[i]-1; JointVAE's argmax).
 * mi (D + n_cat_units, K) out; h_factor (K) (may be NULL) gets each
 * factor's plug-in entropy. */
int metrics_mi_hist(const float *codes, size_t n, int D, const int *cats, int n_cat_units,
                    const int *cat_sizes, const int *f, int K, const int *sizes, int n_bins,
                    double *mi, double *h_factor, err *e);

/* disentanglement_lib's MIG (compute_mig): metrics_mi_hist with
 * METRICS_HIST_BINS bins, gaps normalised by the factors' plug-in entropies,
 * mean over the K factors -> *mig; gap (K) may be NULL. */
int metrics_mig_hist(const float *codes, size_t n, int D, const int *cats, int n_cat_units,
                     const int *cat_sizes, const int *f, int K, const int *sizes,
                     double *gap, double *mig, err *e);

/* Total correlation of a Gaussian fitted to the means, x (n, D):
 * 0.5 * (sum_j log S_jj - log det S), S their covariance (double, Cholesky of
 * the correlation matrix). Constant dims (S_jj == 0) are left out; a
 * singular S gives +inf; n < 2 or no varying dim gives 0. */
int metrics_gaussian_tc(const float *x, size_t n, int D, double *tc, err *e);

/* ---- swap accuracy and traversals ---------------------------------------- */

/* A representation seen through callbacks: the trained model in run_evaluate,
 * an oracle in the tests. */
typedef struct metrics_codec {
    void *ctx;
    int W;  /* code width */
    int S;  /* image side (64 or 32) */
    /* n images x (n, S*S) with factor classes f (n, DATA_K) -> codes
     * (n, W). f is there for oracle codecs; a model must ignore it. */
    void (*encode)(void *ctx, const float *x, const int *f, size_t n, float *code);
    /* n codes (n, W) -> logits (n, S*S). */
    void (*decode)(void *ctx, const float *code, size_t n, float *logits);
} metrics_codec;

/* The swap accuracy candidates of a target t: for every factor k and every
 * value v of it, t with factor k set to v, factor-major -> cand
 * (METRICS_N_CANDIDATES, DATA_K); returns METRICS_N_CANDIDATES = sum_k |V_k|.
 * The target itself appears once per factor (5 times), so 108 entries are
 * its one-factor neighbours; orientation classes 0 and 39 (0 and 2 pi) are
 * the same angle, so one neighbour renders exactly as the target when its
 * orientation is 0 or 39 (and at S = 32 small sprites have further
 * pixel-identical neighbours). Entries whose pixels equal the target's count
 * as the target. */
int metrics_swap_candidates(const int t[DATA_K], int cand[][DATA_K]);

/* Swap accuracy (docs/architecture.md section 5). For each factor k, `pairs` pairs (a, b) are
 * drawn from r: a uniform over the factor grid, b uniform with b[k] != a[k].
 * The code of a gets the dims mask[k*W + w] != 0 from b's code, is decoded,
 * and succeeds when its Bernoulli NLL to the target (a with factor k = b[k])
 * is strictly below its NLL to every candidate (metrics_swap_candidates) that
 * differs from the target in pixels. mask (DATA_K, W). acc (DATA_K) gets the
 * success rate per factor; *mean (may be NULL) their mean. pairs 0: NaN. */
int metrics_swap_accuracy(const metrics_codec *cd, const unsigned char *mask, long pairs,
                          rng *r, double *acc, double *mean, err *e);

/* Latent traversals around code0 (W): one row of `steps` (>= 2) decoded
 * sigmoid images per code unit: continuous unit j (< D) set to
 * linspace(-limit, limit, steps); discrete variable i (category counts
 * discrete[i], its block after the D continuous dims): row shows each
 * category set one-hot in its first min(K_i, steps) cells, the rest black.
 * *img (malloc'd, (*h, *w) = ((D + n_discrete)*S, steps*S), 0..255) is the
 * caller's to free. */
int metrics_traversal(const metrics_codec *cd, const float *code0, int D, int n_discrete,
                      const int *discrete, int steps, double limit, uint8_t **img, int *h,
                      int *w, err *e);

#endif
