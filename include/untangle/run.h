/* run: one training run, start to finish. A resolved run_config in (spec.h),
 * a run_result out (status, figures, metrics, detail, curves). Knows nothing
 * of MPI, YAML or HDF5 files of results. */
#ifndef UNTANGLE_RUN_H
#define UNTANGLE_RUN_H

#include "untangle/data.h"
#include "untangle/err.h"
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

#endif
