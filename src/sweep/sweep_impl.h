/* Private to src/sweep. */
#ifndef UNTANGLE_SWEEP_IMPL_H
#define UNTANGLE_SWEEP_IMPL_H

#include "untangle/config.h"
#include "untangle/data.h"
#include "untangle/results.h"
#include "untangle/run.h"
#include "untangle/sweep.h"

/* One attempt of one run, as the master hands it to a worker. */
typedef struct sweep_task {
    long index;
    int attempt;
    int eval;           /* compute the metrics */
    double timeout;     /* seconds, 0 = none */
    double deadline;    /* absolute sweep_now() time on the executing host, 0 = none */
    double ckpt_every;  /* checkpoint interval (run_hooks.ckpt_every); < 0: no checkpoints */
    double stop_grace;  /* seconds between asking the run to stop and killing it */
    int save_model;     /* keep the final parameters of an ok run */
    int reeval;         /* `untangle eval`: evaluate the saved model of run_id */
    char run_id[17];    /* the run's id (its saved model's name) */
    double train_loss;  /* reeval: the training's final loss, copied into the row */
    const char *codes_path; /* reeval: write the encoded full set here (--codes), or NULL */
    run_config config;
} sweep_task;

/* Monotonic seconds. */
double sweep_now(void);

/* The signal that asked for a drain (SIGUSR1, SIGTERM, SIGINT), 0 if none. */
int sweep_drain_signal(void);
/* Nonzero once running runs must stop now (checkpointed): SIGTERM, or a
 * second SIGINT. */
int sweep_stop_requested(void);

/* Run t in a child process with the data d (opened by the caller, shared
 * copy-on-write): fills r with the run's result, or with a failed / timeout /
 * interrupted row when the child crashed, hung past t->timeout or ran past
 * t->deadline. The run's checkpoint and saved model live beside the results
 * file out_path (run_file_paths). A run past its timeout or the deadline, or
 * running when a stop is requested, is asked to checkpoint and stop
 * (SIGTERM), and killed t->stop_grace seconds later. */
void sweep_execute(const sweep_task *t, const data_source *d, const char *out_path,
                   run_result *r);

/* The data a worker's runs need, opened once and shared copy-on-write with
 * the run processes (isolate.c). */
typedef struct data_cache {
    data_source *d;
    int S;
    char path[1024];
} data_cache;
/* The data c needs, from the cache (reopened when c needs other data). NULL
 * on failure: the run then opens it itself and reports the error in its row. */
const data_source *sweep_cached_data(data_cache *dc, const run_config *c);

/* ---- progress records of runs in flight (progress.c) -------------------------- */

enum { SWEEP_PROGRESS_TERMS = 8 };

/* What RESULTS.h5.runs/<run_id>.progress says of a run in flight. */
typedef struct sweep_progress {
    char run_id[17];
    long index;
    int attempt;
    char model[16];
    char host[64];
    int rank;
    long pid;
    long step, steps;         /* optimiser steps done, configured */
    double started, updated;  /* wall-clock seconds (epoch) */
    int n_terms;              /* the latest logged loss terms */
    char names[SWEEP_PROGRESS_TERMS][16];
    double values[SWEEP_PROGRESS_TERMS];
} sweep_progress;

/* Wall-clock seconds since the epoch (progress records compare across hosts). */
double sweep_wall_clock(void);
/* Replace the record at path (a temporary of this process, renamed). 0 or -1. */
int sweep_progress_write(const char *path, const sweep_progress *p);
/* Read the record at path. 0, or -1 when missing or incomplete. */
int sweep_progress_read(const char *path, sweep_progress *p);

/* ---- `untangle eval` (eval.c) ----------------------------------------------- */

/* Where run i of an eval plan comes from: its training row. */
typedef struct sweep_eval_row {
    long index;         /* the row's index and attempt */
    int attempt;
    double train_loss;  /* its loss metric */
} sweep_eval_row;

/* Open o->out_path for appending (recovering it like a resume) and plan the
 * re-evaluation of its ok runs: a sweep whose runs[i] is the configuration of
 * a run's latest ok attempt with the --set eval keys applied and whose
 * run_ids[i] is the run's id, and rows[i] its origin. ERR_INPUT for an
 * unknown or non-eval --set key or a --runs entry without an ok run. */
int sweep_eval_plan(const sweep_options *o, results **f, config_sweep **s,
                    sweep_eval_row **rows, err *e);

#endif
