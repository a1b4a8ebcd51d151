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

/* The accuracy of a categorical code unit against a factor under the best
 * one-to-one map between the unit's categories and the factor's values
 * (JointVAE's claim: the argmax of its discrete variable names the shape, up
 * to a relabelling): labels (n) in 0 .. n_labels-1, v (n) in 0 .. n_values-1;
 * *acc = max over injective maps pi from the smaller side into the larger
 * of 1/n #{i : labels_i and v_i are paired by pi} (NaN when n is 0). A
 * maximum-weight matching of the contingency table, solved exactly by
 * dynamic programming over the subsets of the smaller side, so
 * min(n_labels, n_values) <= METRICS_MATCH_MAX (ERR_INPUT beyond, or for a
 * label or value out of range). */
enum { METRICS_MATCH_MAX = 16 };
int metrics_match_accuracy(const int *labels, const int *v, size_t n, int n_labels, int n_values,
                           double *acc, err *e);

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
    /* n codes (n, W) -> logits (n, C*S*S). */
    void (*decode)(void *ctx, const float *code, size_t n, float *logits);
    int C;  /* channels of an image (0 or 1: one); images are C*S*S, channel-major */
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
 * caller's to free. With C channels a cell shows the mean of the C sigmoid
 * planes (grey). */
int metrics_traversal(const metrics_codec *cd, const float *code0, int D, int n_discrete,
                      const int *discrete, int steps, double limit, uint8_t **img, int *h,
                      int *w, err *e);

/* ---- classifiers for disentanglement_lib's metrics (learn.c, gbt.c) -------
 *
 * Small C equivalents of the scikit-learn estimators disentanglement_lib fits,
 * each reaching the same optimum (or, for boosting, the same trees up to ties)
 * as scikit-learn 1.2 with the settings named. Labels are ints in
 * 0 .. n_labels-1; like scikit-learn, a model knows only the classes present
 * in its training labels (`classes`, ascending) and predicts one of them.
 * Features x are row-major (n, D). */

/* A linear classifier: rows = 1 for two classes (the decision is for
 * classes[1]), n_classes rows otherwise, one per class; w (rows, D + 1):
 * weights then intercept. One class seen: rows = 0, predicts it. */
typedef struct metrics_linear {
    int D, n_classes, rows;
    int *classes; /* (n_classes) */
    double *w;    /* (rows, D + 1) */
} metrics_linear;

/* sklearn.linear_model.LogisticRegression() (L2, C, lbfgs, multinomial for
 * more than two classes, unpenalised intercept): minimises
 *   C * sum_i -log softmax(W x_i + b)_{y_i} + 0.5 * ||W||^2
 * (binary: the logistic loss of one row) by L-BFGS to a gradient of 1e-6 per
 * sample, tighter than scikit-learn's default stop (tol 1e-4, 100 steps).
 * These are the defaults since scikit-learn 0.22; before it (when
 * disentanglement_lib's study ran) LogisticRegression() meant liblinear,
 * one-vs-rest with a penalised intercept, which can differ in the last
 * points of accuracy. m is owned by the caller afterwards
 * (metrics_linear_free). */
int metrics_logreg_fit(metrics_linear *m, const double *x, const int *y, size_t n, int D,
                       int n_labels, double C, err *e);

/* sklearn.svm.LinearSVC(C, class_weight="balanced" when balanced): liblinear's
 * L2-regularised squared hinge loss with the intercept as a constant feature 1
 * (so regularised), one-vs-rest:
 *   0.5 * ||(w, b)||^2 + sum_i C_i max(0, 1 - s_i (w x_i + b))^2
 * where for class c against the rest C_i = C * weight_c for members and C for
 * the rest (liblinear's OvR), and for two classes (s = +1 for classes[1])
 * C * weight of each sample's class; weight_c = n / (n_classes * n_c) when
 * balanced, else 1. Solved exactly by Newton steps on the generalised
 * Hessian. */
int metrics_linsvc_fit(metrics_linear *m, const double *x, const int *y, size_t n, int D,
                       int n_labels, double C, int balanced, err *e);

/* Predicted labels (n) of x (n, D): argmax of the decision rows (first on
 * ties), or for rows = 1 classes[1] when the decision is > 0. */
void metrics_linear_predict(const metrics_linear *m, const double *x, size_t n, int *y);

/* Logistic regression's probabilities p (n, n_classes), columns in the order
 * of classes: softmax, or (1 - s, s) with s the sigmoid for two classes. */
void metrics_logreg_proba(const metrics_linear *m, const double *x, size_t n, double *p);

void metrics_linear_free(metrics_linear *m);

/* Area under the ROC curve of scores s (n) for the positives pos[i] != 0
 * (sklearn.metrics.roc_auc_score of one column: the Mann-Whitney statistic,
 * tied scores counting one half). NaN without a positive or a negative. */
double metrics_auc(const double *s, const unsigned char *pos, size_t n, err *e);

/* sklearn.ensemble.GradientBoostingClassifier(): `stages` rounds (100) of
 * regression trees of depth `depth` (3), learning rate `rate` (0.1),
 * criterion friedman_mse (the split with the largest
 * n_l n_r (mean_l - mean_r)^2; features visited in order 0..D-1, the first
 * best split kept), leaves set by one Newton step; multinomial deviance for
 * more than two classes (one tree per class and stage, leaf value
 * (K-1)/K sum r / sum p(1-p)), the binomial one for two. Thresholds are
 * midpoints of float32 values as scikit-learn's, which casts x to float32.
 * importance (D): feature_importances_ (mean over trees with a split of the
 * trees' variance reductions per feature over the root's count, normalised
 * to sum 1; all 0 when no tree split). pred (n) may be NULL: the training
 * items' predictions, from the raw scores of the fit (what
 * metrics_gbt_predict gives on x, without walking the trees again). */
typedef struct metrics_gbt_node {
    int feature;      /* -1: a leaf */
    double threshold; /* x <= threshold goes left (child 2a+1), else right (2a+2) */
    double value;     /* a leaf's raw-score step (times the rate) */
} metrics_gbt_node;

typedef struct metrics_gbt {
    int D, n_classes, rows, stages, depth;
    int *classes;            /* (n_classes) */
    double *init;            /* (rows) prior raw scores */
    metrics_gbt_node *nodes; /* (stages, rows, 2^(depth+1) - 1) */
    double *importance;      /* (D) */
} metrics_gbt;

int metrics_gbt_fit(metrics_gbt *m, const float *x, const int *y, size_t n, int D, int n_labels,
                    int stages, int depth, double rate, int *pred, err *e);
/* Predicted labels (n) of x (n, D): argmax of the raw scores (two classes:
 * classes[1] when the raw score is > 0). */
void metrics_gbt_predict(const metrics_gbt *m, const float *x, size_t n, int *y);
void metrics_gbt_free(metrics_gbt *m);

/* ---- disentanglement_lib's metric suite (dlib.c) ---------------------------
 *
 * For the evaluation that calls it: the input is the FULL-SET code
 * table, the posterior means of every observation of the data set in
 * canonical factor order (metrics_table: index = mixed radix over the factor
 * classes, first factor most significant; n = product of the sizes). The
 * representation is the deterministic mean and dSprites is discrete and
 * complete, so disentanglement_lib's "sample factors, render, encode" is
 * "draw factor tuples, index the table". Call
 *     metrics_dlib_suite(&table, seed, NULL, &scores, &e)
 * for every metric at disentanglement_lib's default sizes
 * (config/unsupervised_study_v1/metric_configs/), each metric on its own
 * random stream of seed; or one metric at a time: draw its samples
 * (metrics_draw_*), then score them (metrics_beta_vae, ...). A score
 * depends only on the table and the draws, so tests and the Python
 * reference (tests/py/test_dlib.py) recompute it from the same draws.
 *
 * Proposed result columns (one per scalar of metrics_dlib_scores, same names;
 * per-factor arrays as <name>_<factor>, like mig_<f>):
 *   beta_vae_train, beta_vae_eval        BetaVAE score, train/eval accuracy
 *   factor_vae_train, factor_vae_eval    FactorVAE score; factor_vae_active
 *   dci_disentanglement, dci_completeness, dci_informativeness_train,
 *   dci_informativeness_test             per factor: dci_completeness_<f>,
 *                                        dci_informativeness_<f> (test)
 *   sap                                  per factor: sap_<f> (the gap)
 *   modularity, explicitness_train, explicitness_test
 *                                        per factor: explicitness_<f> (test)
 *   gaussian_wasserstein_correlation, gaussian_wasserstein_correlation_norm,
 *   mutual_info_score, gaussian_total_correlation (unsupervised, 10,000 means)
 * Per-latent arrays (dci per code, modularity per code, the D x K
 * importance and SAP matrices) are filled where asked for, for /detail. */

enum { METRICS_DLIB_MAX_K = 16 }; /* factors a suite's fixed arrays hold */

/* The full-set code table. */
typedef struct metrics_table {
    const float *codes; /* (n, D) means, canonical factor order */
    size_t n;           /* = prod sizes */
    int D, K;
    const int *sizes;   /* (K) classes per factor */
} metrics_table;

/* Canonical index of factor classes f (K), and back. */
size_t metrics_table_index(const metrics_table *t, const int *f);
void metrics_table_factors(const metrics_table *t, size_t index, int *f);

/* A set of draws: m points, each `width` table indices (idx (m, width)) and,
 * for the paired metrics, the factor held fixed (label (m), else NULL). */
typedef struct metrics_draws {
    size_t m;
    int width;
    size_t *idx;
    int *label;
} metrics_draws;

/* Allocate d for m points of width indices (and labels when labelled). */
int metrics_draws_alloc(metrics_draws *d, size_t m, int width, int labelled, err *e);
void metrics_draws_free(metrics_draws *d);

/* generate_batch_factor_code / sample_observations: m observations with
 * every factor uniform (width 1, no labels). */
void metrics_draw_points(const metrics_table *t, rng *r, metrics_draws *d);
/* BetaVAE's points: factor k uniform; two batches of B = width/2 uniform
 * tuples, the second taking the first's class of k pairwise; idx row =
 * batch 1 then batch 2. */
void metrics_draw_beta_vae(const metrics_table *t, rng *r, metrics_draws *d);
/* FactorVAE's points: factor k uniform; B = width uniform tuples, all with
 * the first tuple's class of k. */
void metrics_draw_factor_vae(const metrics_table *t, rng *r, metrics_draws *d);

/* BetaVAE score (Higgins et al. 2017; beta_vae.py): the feature of a point is
 * mean_b |z1_b - z2_b| (D), a logistic regression (C = 1) predicts the fixed
 * factor; accuracy on the training and the evaluation points. */
int metrics_beta_vae(const metrics_table *t, const metrics_draws *train,
                     const metrics_draws *eval, double *train_acc, double *eval_acc, err *e);

/* FactorVAE score (Kim and Mnih 2018; factor_vae.py): s_j = the standard
 * deviation of latent j over var_draws (ddof 1); latents with s_j >= threshold
 * (0.05) are active; each point votes (fixed factor, argmin over active j of
 * var_batch(z_j) / s_j^2); each latent is assigned the factor with most
 * training votes (the first on ties); accuracy = share of votes that agree.
 * No active latent: both 0. *active (may be NULL) gets the count. */
int metrics_factor_vae(const metrics_table *t, const metrics_draws *var_draws,
                       const metrics_draws *train, const metrics_draws *eval, double threshold,
                       double *train_acc, double *eval_acc, int *active, err *e);

/* DCI (Eastwood and Williams 2018; dci.py): per factor, gradient-boosted
 * trees (metrics_gbt_fit, scikit-learn defaults) on the training codes; R
 * (D, K) = their feature importances. disentanglement = sum_j rho_j (1 -
 * H_K(P_j.)), P_jk = R_jk / sum_k R_jk, rho_j = sum_k R_jk / sum R;
 * completeness = sum_k rho_k (1 - H_D(P_.k)), both with 1e-11 added to R
 * inside the entropies as scipy.stats.entropy is called there;
 * informativeness = mean accuracy of the trees (train, test). Outputs: the
 * per-factor arrays (K) and importance (D, K), per_code (D) may be NULL. */
typedef struct metrics_dci {
    double disentanglement, completeness, informativeness_train, informativeness_test;
    double completeness_factor[METRICS_DLIB_MAX_K];
    double informativeness_factor[METRICS_DLIB_MAX_K]; /* test accuracy */
} metrics_dci;
int metrics_dci_score(const metrics_table *t, const metrics_draws *train,
                      const metrics_draws *test, metrics_dci *out, double *importance,
                      double *per_code, err *e);

/* SAP (Kumar et al. 2018; sap_score.py with continuous_factors False): S_jk =
 * test accuracy of LinearSVC(C = 0.01, class_weight balanced) on latent j
 * alone predicting factor k; gap_k = top1 - top2 over j; sap = mean gap.
 * gap (K), matrix (D, K) may be NULL. Needs D >= 2. */
int metrics_sap(const metrics_table *t, const metrics_draws *train, const metrics_draws *test,
                double *sap, double *gap, double *matrix, err *e);

/* Modularity and explicitness (Ridgeway and Mozer 2018;
 * modularity_explicitness.py): I (D, K) = plug-in MI of 20-bin histograms
 * of the training codes with the factors; per latent 1 - (sum_k I^2 - max
 * I^2) / (max I^2 (K - 1)) (0 when max I = 0), mean over latents.
 * Explicitness: codes standardised by the training mean and std (ddof 0), a
 * logistic regression (C = 1) per factor, macro ROC AUC of its
 * probabilities over the classes (one-vs-rest), train and test, mean over
 * factors; expl (K) test per factor, per_code (D) modularity per latent,
 * both may be NULL. */
int metrics_modularity_explicitness(const metrics_table *t, const metrics_draws *train,
                                    const metrics_draws *test, double *modularity,
                                    double *expl_train, double *expl_test, double *expl,
                                    double *per_code, err *e);

/* unsupervised_metrics.py on the codes of d: S = covariance (ddof 1);
 * gaussian_total_correlation 0.5 (sum log S_jj - log det S);
 * gaussian_wasserstein_correlation = 2 tr S - 2 tr sqrt(diag(S) S) (the W2
 * distance to the product of the marginals; tr sqrt via the eigenvalues of
 * diag(S)^1/2 S diag(S)^1/2), its _norm = / tr S; mutual_info_score = mean
 * over j != l of the plug-in MI of 20-bin histograms of z_j and z_l. */
typedef struct metrics_unsupervised {
    double gaussian_total_correlation, gaussian_wasserstein_correlation,
        gaussian_wasserstein_correlation_norm, mutual_info_score;
} metrics_unsupervised;
int metrics_unsupervised_score(const metrics_table *t, const metrics_draws *d,
                               metrics_unsupervised *out, err *e);

/* Sample sizes, disentanglement_lib's defaults from metrics_dlib_defaults. */
typedef struct metrics_dlib_config {
    size_t beta_vae_train, beta_vae_eval;     /* 10000, 5000 */
    int beta_vae_batch;                       /* 64 */
    size_t factor_vae_train, factor_vae_eval; /* 10000, 5000 */
    size_t factor_vae_var;                    /* 10000 */
    int factor_vae_batch;                     /* 64 */
    double factor_vae_threshold;              /* 0.05 (prune_dims.threshold) */
    size_t dci_train, dci_test;               /* 10000, 5000 */
    size_t sap_train, sap_test;               /* 10000, 5000 */
    size_t modexp_train, modexp_test;         /* 10000, 5000 */
    size_t unsup_train;                       /* 10000 */
} metrics_dlib_config;
void metrics_dlib_defaults(metrics_dlib_config *c);

/* The metrics in suite order; rng_seed(seed, METRICS_DLIB_STREAM + id) gives
 * each its own stream (draws in the order train, eval/test). */
enum {
    METRICS_DLIB_BETA_VAE, METRICS_DLIB_FACTOR_VAE, METRICS_DLIB_DCI, METRICS_DLIB_SAP,
    METRICS_DLIB_MODEXP, METRICS_DLIB_UNSUP, METRICS_DLIB_N_METRICS,
    METRICS_DLIB_STREAM = 0x646c6962 /* "dlib" */
};

typedef struct metrics_dlib_scores {
    double beta_vae_train, beta_vae_eval;
    double factor_vae_train, factor_vae_eval;
    int factor_vae_active;
    metrics_dci dci;
    double sap, sap_factor[METRICS_DLIB_MAX_K];
    double modularity, explicitness_train, explicitness_test;
    double explicitness_factor[METRICS_DLIB_MAX_K];
    metrics_unsupervised unsup;
    double seconds[METRICS_DLIB_N_METRICS];     /* wall time of each metric (s), by id */
    double cpu_seconds[METRICS_DLIB_N_METRICS]; /* the process's CPU time in it */
} metrics_dlib_scores;

/* Every metric above on its draws from seed (cfg NULL: the defaults);
 * out is written only on success. Wall and CPU time per metric in
 * out->seconds, out->cpu_seconds.
 *
 * Cost at the defaults on a 737,280 x 10 table of dSprites' factors
 * (build/it/dlib_codes --bench, one core of a loaded machine, CPU seconds):
 * BetaVAE 0.3, FactorVAE 0.1, DCI 21 (113 classes x 100 stages of trees on
 * 10,000 codes; scikit-learn takes minutes), SAP 0.6-2, modularity and
 * explicitness 3-4, unsupervised 0.01: about 27 s in all, nearly all DCI.
 * It does not depend on n (draws index the table), only on the sample
 * sizes, D and the factors' sizes. */
int metrics_dlib_suite(const metrics_table *t, uint64_t seed, const metrics_dlib_config *cfg,
                       metrics_dlib_scores *out, err *e);

#endif
