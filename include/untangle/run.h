/* run: one training run, start to finish. A resolved run_config in (spec.h),
 * a run_result out (status, figures, metrics, detail, curves). Knows nothing
 * of MPI, YAML or HDF5 files of results. */
#ifndef UNTANGLE_RUN_H
#define UNTANGLE_RUN_H

#include "untangle/data.h"
#include "untangle/err.h"
#include "untangle/model.h"
#include "untangle/spec.h"

/* Progress and control hooks; any may be NULL. */
typedef struct run_hooks {
    void *ctx;
    /* called every log_every steps and at the end of training */
    void (*progress)(void *ctx, long step, long steps, int n_terms,
                     const char *const *names, const double *terms, double imgs_per_s);
    /* polled between steps: nonzero asks the run to stop (status interrupted) */
    int (*should_stop)(void *ctx);
} run_hooks;

/* Train and evaluate one run of the resolved configuration c with the data d
 * (NULL: open the data c names). Always fills r (r must be initialised):
 * status OK, or FAILED/DIVERGED/INTERRUPTED with r->error. Returns 0 when the
 * run could be attempted at all (even if it diverged), or a negative code for
 * setup errors (bad data file, no memory) with e filled and r->status FAILED.
 * When eval is 0 the metrics are skipped. */
int run_execute(const run_config *c, const data_source *d, int eval, const run_hooks *h,
                run_result *r, err *e);

enum {
    RUN_RECON_MAX = 2000, /* eval images for recon and elbo */
    RUN_HIST_MAX = 10000  /* means for mig_hist (disentanglement_lib's num_train) */
};

/* Evaluate the trained model m on d with the eval sizes of c: fills
 * r->metric[] (NaN where a metric does not apply), r->mi, r->mig_factor,
 * r->swap_factor and the traversal grid. Deterministic given c->seed.
 *
 * What it computes (each item below names the estimator that does it):
 * - eval.images images drawn with rng_seed(seed, RNG_EVAL) are encoded; one
 *   z ~ q(z|x) (and one category c ~ alpha per discrete variable) is drawn
 *   per image from a sub-stream of the eval seed.
 * - recon (decoding the eval code) and elbo (decoding the sample) on the
 *   first min(images, RUN_RECON_MAX) of them; kl (continuous + discrete,
 *   analytic) on all. kl and elbo NaN for dsd.
 * - tc, mi, dwkl: metrics_tc_decompose with eval.samples samples (NaN for
 *   dsd).
 * - r->mi (U x DATA_K): metrics_mi_chen for stochastic models,
 *   metrics_mi_hist (on the mig_hist set) for deterministic ones (dsd) or
 *   when eval.samples is 0. mig, r->mig_factor: metrics_mig on Chen's
 *   matrix with H(v_k) = log |V_k|; without it mig is NaN and
 *   r->mig_factor holds the histogram estimator's gaps.
 * - mig_hist: metrics_mig_hist on the first min(images, RUN_HIST_MAX) eval codes.
 * - gaussian_tc: metrics_gaussian_tc on the continuous means (dsd: codes).
 * - swap_acc, r->swap_factor: metrics_swap_accuracy with eval.pairs pairs
 *   per factor drawn from rng_seed(seed, RNG_PAIRS); the swapped dims of
 *   factor k are chunk k (dsd), else the unit with the highest r->mi[., k]
 *   (a discrete variable's whole one-hot block).
 * - traversal: metrics_traversal around the eval code of the first image
 *   (RUN_TRAV_STEPS values per unit, spec.h). */
int run_evaluate(model *m, const data_source *d, const run_config *c, run_result *r, err *e);

#endif
