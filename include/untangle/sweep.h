/* sweep: runs every run of a sweep file and writes the results file. Under
 * mpirun rank 0 is the master and the other ranks are workers (pull
 * scheduling); as a single process it runs `jobs` runs at a time in child
 * processes, handing out the next run as one ends, and writes their rows
 * itself. The only module that includes mpi.h. */
#ifndef UNTANGLE_SWEEP_H
#define UNTANGLE_SWEEP_H

#include <stddef.h>
#include <stdio.h>

#include "untangle/err.h"

typedef struct sweep_options {
    const char *yaml_path;  /* the sweep file */
    const char *out_path;   /* the results file */
    int resume;             /* continue an existing file (start it when missing) */
    int restart;            /* move an existing file aside and start afresh */
    int dry_run;            /* print the expanded grid and exit */
    int shard_i, shard_n;   /* run only indices with index % shard_n == shard_i */
    int retries;            /* extra attempts for failed and timed-out runs */
    int retry_diverged;     /* retry diverged runs too (deterministic: off by default) */
    double run_timeout;     /* seconds per run, 0 = none */
    double deadline;        /* seconds from start by which the sweep ends, 0 = none */
    int threads;            /* threads per run, 0 = default: under MPI the node's cores /
                               its ranks; single process, the cores / jobs */
    int jobs;               /* single process: runs at a time, 0 = the cores available
                               (at most the runs to do); ignored under MPI */
    size_t max_runs;        /* refuse larger grids */
    int no_eval;            /* skip the metrics (benchmarks of the scheduler) */
    int isolate;            /* run each run in a child process (default 1) */
    double checkpoint_every;/* seconds of training between checkpoints (default 600);
                               0: no checkpoints at all */
    double min_start;       /* start no run with less than this left before the
                               deadline (default 120 s) */
    int save_models;        /* keep the final parameters of ok runs (default 1) */
    double stop_grace;      /* seconds a run asked to stop (deadline, timeout, SIGTERM)
                               has to checkpoint before it is killed (default 30) */
    /* `untangle eval`: instead of a sweep file, re-evaluate the saved models
     * of out_path's ok runs (src/sweep/eval.c); yaml_path is unused */
    int eval;
    const char *eval_runs;         /* "id,id,index,..." or NULL: every ok run */
    const char *const *eval_set;   /* n_eval_set "key=value": eval keys only */
    size_t n_eval_set;
    /* --codes: each run's encoded full set goes into this codes file
     * (results_codes_write); implies eval.encode full. NULL: none */
    const char *eval_codes;
} sweep_options;

/* Exit codes of `untangle sweep` (docs/architecture.md section 2).
 * SWEEP_NO_WRITE: the results file or its journal could not be created or
 * written (out of space, quota, an I/O error, an unwritable directory, or in
 * use by another sweep); the sweep stopped, no run failed because of it, and
 * every row written is kept in the file or its journal: --resume with space
 * again completes it. Not worth requeueing as it is. */
enum {
    SWEEP_OK = 0,
    SWEEP_USAGE = 1,
    SWEEP_FAILED_RUNS = 2,
    SWEEP_INTERRUPTED = 3,
    SWEEP_NO_WRITE = 4
};

void sweep_options_defaults(sweep_options *o);

/* Run the sweep; returns one of the SWEEP_* exit codes. Messages go to
 * stderr (progress, per-run lines, summaries); input errors are reported
 * through e and give SWEEP_USAGE with nothing written. Call MPI-free: it
 * initialises and finalises MPI itself when launched by mpirun or srun. */
int sweep_main(const sweep_options *o, err *e);

/* `untangle status`: print where the results file path stands (per method
 * the runs ok, failed, diverged, timed out, interrupted, pending, running;
 * the runs in flight with host, rank, step and latest losses; the time
 * left) to out, as text or as one JSON object. The grid is the sweep file
 * yaml, or the latest sweep YAML stored in the file when yaml is NULL.
 * Reads only: a sweep writing the file is not disturbed. */
int sweep_status(const char *path, const char *yaml, int json, FILE *out, err *e);

#endif
