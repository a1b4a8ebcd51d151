/* run: one training run, start to finish. A resolved run_config in (spec.h),
 * a run_result out (status, figures, metrics, detail, curves). Knows nothing
 * of MPI, YAML or HDF5 files of results. */
#ifndef UNTANGLE_RUN_H
#define UNTANGLE_RUN_H

#include "untangle/data.h"
#include "untangle/err.h"
#include "untangle/model.h"
#include "untangle/spec.h"

/* Where run_evaluate_codes hands the encoded full set (spec.h's run_codes)
 * in full-set mode; a negative return (e filled) fails the evaluation. */
typedef int (*run_codes_sink)(void *ctx, const run_codes *codes, err *e);

/* Progress, control and checkpoint hooks; any may be NULL / 0. */
typedef struct run_hooks {
    void *ctx;
    /* called every log_every steps and at the end of training */
    void (*progress)(void *ctx, long step, long steps, int n_terms,
                     const char *const *names, const double *terms, double imgs_per_s);
    /* polled between steps: nonzero asks the run to stop (status interrupted;
     * the run writes its checkpoint first when it has a ckpt_path) */
    int (*should_stop)(void *ctx);
    /* one-line notices the caller should show (a damaged checkpoint) */
    void (*note)(void *ctx, const char *msg);
    /* The run's checkpoint file (RUN_FILE_CKPT): a valid one for this run is
     * continued from; it is written every ckpt_every seconds of training (0:
     * only when stopped) and when the run is stopped, and removed when the
     * run ends ok, diverged or failed. A continued run ends bit-identical to
     * the same run done in one go (same thread count). */
    const char *ckpt_path;
    double ckpt_every;
    /* where an ok run's final parameters go (RUN_FILE_MODEL), NULL: not kept */
    const char *model_path;
} run_hooks;

/* Train and evaluate one run of the resolved configuration c with the data d
 * (NULL: open the data c names). Always fills r (r must be initialised):
 * status OK, or FAILED/DIVERGED/INTERRUPTED with r->error. Returns 0 when the
 * run could be attempted at all (even if it diverged), or a negative code for
 * setup errors (bad data file, no memory) with e filled and r->status FAILED.
 * When eval is 0 the metrics are skipped. */
int run_execute(const run_config *c, const data_source *d, int eval, const run_hooks *h,
                run_result *r, err *e);

/* Evaluate the saved model of run run_id again (`untangle eval`), without
 * training: read model_path (RUN_FILE_MODEL; its .prev when it is damaged),
 * build the model from c (the run's configuration; only its eval keys may
 * differ from the training's), load the saved parameters and call
 * run_evaluate with c's eval sizes. With the training's eval keys and thread
 * count the metrics equal the training's bit for bit. d NULL: open the data c
 * names. Fills r (initialised): status OK with the metrics, steps = c->steps,
 * train_s 0; or FAILED with r->error and a negative code (ERR_INPUT: no saved
 * model, or one that is damaged or belongs to another run, e says which).
 * sink (may be NULL): as run_evaluate_codes's, after the metrics of the full
 * set (eval.encode full). */
int run_reevaluate(const run_config *c, const data_source *d, const char *model_path,
                   const char *run_id, run_codes_sink sink, void *ctx, run_result *r, err *e);

/* ---- a run's files: checkpoints and saved models (src/run/ckpt.c) ---------- */

enum {
    RUN_FILE_FORMAT = 1,
    RUN_FILE_CKPT = 1,  /* the whole training state of a run in progress */
    RUN_FILE_MODEL = 2  /* the final parameters of an ok run and its configuration */
};

/* The path of run_id's file with extension ext ("ckpt", "model") beside the
 * results file: RESULTS.runs/<run_id>.<ext>, where RESULTS is results_path. */
void run_file_paths(const char *results_path, const char *run_id, const char *ext, char *out,
                    size_t n);
/* Create RESULTS.runs/ if missing (ERR_IO when it cannot be, or is not a
 * directory). */
int run_file_mkdir(const char *results_path, err *e);
/* Write payload as the file of kind for run_id at path, atomically (a
 * temporary file created exclusively, never through a link, fsync'ed, then
 * renamed; the previous file stays as PATH.prev). 0 or ERR_IO. */
int run_file_write(const char *path, uint32_t kind, const char *run_id, const void *payload,
                   size_t len, err *e);
/* Read the payload (malloc'd, the caller frees) of path, or of PATH.prev when
 * path is damaged. 1: read (e holds a notice when PATH.prev was used); 0: no
 * file; < 0: no usable file (wrong run, format or kind, bad checksum,
 * truncated, not a regular file), e says which. */
int run_file_read(const char *path, uint32_t kind, const char *run_id, uint8_t **out,
                  size_t *len, err *e);
/* Remove path and its .prev and .tmp companions. */
void run_file_remove(const char *path);

enum {
    RUN_RECON_MAX = 2000 /* eval images for recon and elbo */
};


/* Evaluate the trained model m on d with the eval keys of c: fills
 * r->metric[] (NaN where a metric does not apply), r->mi, r->mig_factor,
 * r->swap_factor, r->chunk_factor and the traversal grid. Deterministic
 * given c->seed (src/run/evaluate.c names the random streams).
 *
 * What it computes (each item below names the estimator that does it):
 * - the draws: max(eval.images (sample mode; RUN_RECON_MAX in full mode),
 *   hist_images, unsup_images) images drawn with rng_seed(seed, RNG_EVAL),
 *   each encoded with one z ~ q(z|x) (and one category c ~ alpha per
 *   discrete variable); the metrics below use prefixes of them, so each
 *   size moves only its own metrics.
 * - eval.encode full: every image of the data set once, in canonical factor
 *   order (data_describe), with one posterior sample each.
 * - recon (decoding the eval code) and elbo (decoding the sample) on the
 *   first min(n, RUN_RECON_MAX) draws; kl (continuous + discrete, analytic)
 *   on the images of Chen's estimators. kl and elbo NaN for dsd.
 * - tc, mi, dwkl and r->mi (U x K): metrics_chen with eval.samples samples
 *   on the first eval.images draws (their first samples), or on the full
 *   set (random sample subsets, as Chen et al.'s estimate_entropies);
 *   eval_images says how many images that was. NaN for dsd.
 *   For deterministic models (dsd) or eval.samples 0, r->mi is
 *   metrics_mi_hist's on the mig_hist draws.
 * - mig, r->mig_factor: metrics_mig on Chen's matrix with H(v_k) = log
 *   |V_k|, all factors' gaps; mig their mean over data_factor_in_mig (Chen
 *   et al.'s four: shape left out). Without the matrix mig is NaN and
 *   r->mig_factor holds the histogram estimator's gaps.
 * - mig_hist: metrics_mig_hist on the first hist_images draws.
 * - gaussian_tc: metrics_gaussian_tc on the first unsup_images draws' means
 *   (dsd: codes).
 * - chunk_mig, r->chunk_factor (codes with one chunk per factor, dsd):
 *   metrics_mig_chunks on the full set, or on the first hist_images draws.
 * - swap_acc, r->swap_factor: metrics_swap_accuracy with eval.pairs pairs
 *   per factor drawn from rng_seed(seed, RNG_PAIRS); the swapped dims of
 *   factor k are chunk k (dsd), else the unit with the highest r->mi[., k]
 *   (a discrete variable's whole one-hot block).
 * - traversal: metrics_traversal around the eval code of the first draw
 *   (RUN_TRAV_STEPS values per unit, spec.h).
 * sink (may be NULL) gets the full set in full-set mode. */
int run_evaluate_codes(model *m, const data_source *d, const run_config *c,
                       run_codes_sink sink, void *ctx, run_result *r, err *e);
/* run_evaluate_codes without a sink. */
int run_evaluate(model *m, const data_source *d, const run_config *c, run_result *r, err *e);

#endif
