/* spec: the shared vocabulary of every module above nn: a run's configuration
 * (run_config) and the key table that describes each of its keys, what a run
 * gives back (run_result, statuses, metric names), and the version. It uses
 * nothing but err, so that model, metrics, results, config, run and sweep all
 * include it and none of them has to look up to another.
 *
 * The key table (run_keys) is the single description of every configuration
 * key (docs/architecture.md): its name, section, type, range and field.
 * `untangle train --set`, the YAML loader and the results columns all go
 * through it. */
#ifndef UNTANGLE_SPEC_H
#define UNTANGLE_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "untangle/err.h"

enum {
    RUN_MAX_LIST = 16, /* longest list value (discrete, chunks) */
    RUN_MAX_FACTORS = 8 /* the most factors of a data set; data.h's DATA_MAX_K equals it */
};
#define RUN_MAX_IMAGES 737280.0 /* the largest data set: eval sizes are capped by it */

/* The version of untangle, in results files and --version. */
#define UNTANGLE_VERSION "0.1.0"

/* The fully resolved configuration of one run. A real-valued key that is not
 * set (and has no default for this model) is NaN; an integer one is -1. */
typedef struct run_config {
    /* data */
    char name[16];   /* "dsprites" */
    int image_size;  /* 64 or 32 */
    char path[1024]; /* official HDF5 file, "" = built in */
    /* train */
    char arch[8];    /* "mlp", "conv" or "dlib" */
    long steps;
    int batch_size;
    double lr;
    long log_every;
    long eval_every; /* steps between evaluations during training (0: none) */
    /* eval */
    long images, samples, pairs;
    char encode[8];    /* "sample" (eval.images random draws) or "full" (the data set) */
    long hist_images;  /* means for mig_hist (disentanglement_lib's num_train) */
    long unsup_images; /* means for the unsupervised scores (gaussian_tc) */
    /* model */
    char model[16];  /* "vae", "betavae", "annealedvae", ... (model.h's table) */
    int latent_dim;
    double beta, gamma, alpha, lambda, c_max;
    double beta64; /* beta stated at 64x64, one channel: the run's beta follows (model_beta64) */
    long anneal_steps;
    char estimator[8]; /* "mss" or "mws" */
    int n_discrete, discrete[RUN_MAX_LIST];
    double c_z_max, c_c_max;
    int n_chunks, chunks[RUN_MAX_LIST];
    double supervision, w_swap;
    double lambda_od, lambda_d; /* DIP-VAE's covariance penalties */
    /* seed */
    long seed;
    /* bit i set when run_keys[i] was given explicitly (not a default) */
    uint64_t set;
    /* bit i set when the model key run_keys[i] is one the method takes; filled
     * by model_resolve (model.h), which owns the methods' parameter schema */
    uint64_t takes;
} run_config;

typedef enum run_key_type {
    RUN_KEY_INT,  /* long or int field (see size) */
    RUN_KEY_REAL, /* double */
    RUN_KEY_STR,  /* char[] with a fixed set of choices or a path */
    RUN_KEY_LIST  /* list of positive ints (discrete, chunks) */
} run_key_type;

typedef struct run_key {
    const char *name;
    const char *section; /* "data", "train", "eval", "model" or "seed" */
    run_key_type type;
    size_t offset;       /* of the field in run_config */
    size_t size;         /* of the field (int vs long; char[] length) */
    double min, max;     /* inclusive range for numbers */
    int min_open;        /* 1: the minimum itself is out of range (> min) */
    const char *choices; /* STR: "a|b|c" or NULL for free text */
    const char *help;
} run_key;

extern const run_key run_keys[];
extern const size_t run_n_keys;

/* The key called name, or NULL. */
const run_key *run_key_find(const char *name);
/* " (did you mean 'x'?)" into buf for the name closest to word (edit
 * distance under 3 and under its length) among names (NULL-terminated, may
 * be NULL) and the key table; "" when none is close. */
void run_key_suggest(const char *word, const char *const *names, char *buf, size_t n);

/* Defaults: dsprites 64, mlp, 3000 steps, batch 64, lr 1e-3, vae, D 10, seed 0,
 * the eval sizes of docs/architecture.md; every model key NaN / unset. */
void run_config_defaults(run_config *c);

/* Parse text as the value of key (a list is "[3]" or "3,3" or "[2, 2]") and
 * store it in c, setting its bit in c->set. Unknown key, malformed value or a
 * value out of range: ERR_INPUT with a message naming the key and the value
 * (callers prepend file:line:col). */
int run_config_set(run_config *c, const char *key, const char *text, err *e);

/* Store text as key k's value in c, in any form run_config_format writes,
 * including the not-applicable ones ("nan", -1, "", "[]"): no range or
 * choice checks, c->set untouched (run_config_set checks, then calls this).
 * A string longer than the field is cut to it. Malformed text: ERR_INPUT,
 * c untouched. For reading values back (results rows, journals). */
int run_config_put(run_config *c, const run_key *k, const char *text, err *e);

/* Nonzero when key k applies to c's model: every data, train, eval and seed
 * key, "model", and the model keys its method takes (c->takes: c must be
 * resolved). A key that does not apply is NaN / -1 / empty and shows as
 * missing in tables. */
int run_key_applies(const run_config *c, const run_key *k);

/* Text of key's value in c ("nan" / "" when not applicable), as written by
 * run_config_set. */
void run_config_format(const run_config *c, const run_key *k, char *buf, size_t n);

/* The run id of a resolved c: 16 hex digits of a 64-bit hash of the canonical
 * text of every key that applies to the model (sorted by name, independent of
 * YAML order). A method once written under another name (annealedvae: betavae
 * with c_max) is hashed as it was then, so its runs keep their ids. */
void run_config_id(const run_config *c, char id[17]);

/* ---- what a run gives back --------------------------------------------------- */

typedef enum run_status {
    RUN_STATUS_NONE = 0, /* never valid in a results file */
    RUN_OK = 1,
    RUN_FAILED = 2,
    RUN_DIVERGED = 3,
    RUN_TIMEOUT = 4,
    RUN_INTERRUPTED = 5
} run_status;

/* "ok", "failed", ...; "none" for 0. */
const char *run_status_name(int status);

typedef struct run_curve_point {
    long step;
    char name[16]; /* "loss", "recon", "kl", "tc", ... */
    double value;
} run_curve_point;

/* Names of the metric columns (docs/architecture.md section 5), in the results file's
 * order; run_result.metric[i] is metric run_metric_names[i]. */
enum {
    RUN_M_RECON, RUN_M_KL, RUN_M_ELBO, RUN_M_TC, RUN_M_MI, RUN_M_DWKL, RUN_M_MIG,
    RUN_M_MIG_HIST, RUN_M_GAUSSIAN_TC, RUN_M_SWAP_ACC, RUN_M_LOSS,
    RUN_M_CHUNK_MIG,   /* MIG over code chunks (dsd), mean over Chen's factors */
    RUN_M_EVAL_IMAGES, /* images in Chen's estimators: eval.images, or the data set's N */
    /* disentanglement_lib's suite on the full set's means (eval.encode full;
     * NaN in sample mode): metrics_dlib_suite at its default sizes */
    RUN_M_BETA_VAE,    /* BetaVAE score: eval accuracy */
    RUN_M_FACTOR_VAE,  /* FactorVAE score: eval accuracy */
    RUN_M_DCI_D, RUN_M_DCI_C, RUN_M_DCI_I, /* DCI disentanglement, completeness,
                                               informativeness (test) */
    RUN_M_SAP,
    RUN_M_MODULARITY,
    RUN_M_EXPLICITNESS, /* test AUC */
    RUN_M_GWC,          /* gaussian_wasserstein_correlation (normalised) */
    RUN_M_MI_SCORE,     /* mutual_info_score, nats */
    RUN_M_DISC_ACC,     /* accuracy of the first discrete variable's argmax
                           against the factor "shape", best one-to-one map
                           (JointVAE's claim); NaN without either */
    RUN_N_METRICS
};
/* The metrics of results written before chunk_mig and eval_images (their
 * run_result_pack messages and journals carry this many), and before
 * disc_acc (formats "UNT3" and "UNT4"). */
enum { RUN_N_METRICS_V1 = RUN_M_LOSS + 1, RUN_N_METRICS_V4 = RUN_M_MI_SCORE + 1 };
extern const char *const run_metric_names[RUN_N_METRICS];
/* Their units ("nats / image", "nats", "" for scores in [0, 1]), for tables
 * and plot axes (the results file stores them as an attribute). */
extern const char *const run_metric_units[RUN_N_METRICS];

/* The traversal grid of a run_result: each code unit in turn is moved over
 * RUN_TRAV_STEPS values, linspace(-RUN_TRAV_LIMIT, RUN_TRAV_LIMIT), around a
 * fixed code (a discrete variable steps through its categories). */
enum { RUN_TRAV_STEPS = 10 };
#define RUN_TRAV_LIMIT 2.5

typedef struct run_result {
    int status;       /* run_status */
    char error[256];  /* "" when ok */
    long steps;       /* steps done */
    double wall_s, train_s, eval_s, imgs_per_s;
    double metric[RUN_N_METRICS]; /* NaN where not computed / not applicable */
    /* detail: the code's units (D continuous + one per discrete variable) x
     * the data set's n_factors factors (K; 0 = none evaluated) */
    int n_factors;
    int n_units;
    float *mi;                     /* (n_units, n_factors) mutual information, nats */
    double mig_factor[RUN_MAX_FACTORS];  /* Chen et al.'s per-factor gap / H(v_k) */
    double swap_factor[RUN_MAX_FACTORS]; /* per-factor swap accuracy */
    double chunk_factor[RUN_MAX_FACTORS]; /* per-factor chunk MIG gap (dsd) */
    int trav_h, trav_w;
    uint8_t *traversal;            /* (trav_h, trav_w) image grid, 0..255 */
    size_t n_curve, cap_curve;
    run_curve_point *curve;
} run_result;

/* An encoded data set: what run_evaluate hands out in full-set mode (eval.encode
 * full) and `untangle eval --codes` writes (results_codes_write): n = the data set's N items in canonical factor
 * order (item i = canonical index i), f (n, K) their factor classes, sizes
 * (K) and names (K) the factors, mu and lv (n, D) the posterior means and
 * log-variances (dsd: codes and zeros), alpha (n, sum discrete) the category
 * probabilities (NULL when n_discrete is 0). Borrowed for the sink's call. */
typedef struct run_codes {
    size_t n;
    int K;
    const int *sizes;
    const char *const *names;
    const int *f;
    int D;
    const float *mu, *lv;
    int n_discrete;
    const int *discrete;
    const float *alpha;
} run_codes;
/* Empty result: status NONE, every metric NaN, no arrays. */
void run_result_init(run_result *r);
/* Free the arrays; r returns to the empty state. */
void run_result_free(run_result *r);
/* Append a curve point (grows the array). 0 or ERR_NOMEM. */
int run_result_add_curve(run_result *r, long step, const char *name, double value, err *e);

/* Serialise r into a malloc'd buffer (*buf, *len) and back, for pipes and MPI
 * messages. unpack fills an initialised r. */
int run_result_pack(const run_result *r, uint8_t **buf, size_t *len, err *e);
int run_result_unpack(run_result *r, const uint8_t *buf, size_t len, err *e);

#endif
