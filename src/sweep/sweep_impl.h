/* Private to src/sweep. */
#ifndef UNTANGLE_SWEEP_IMPL_H
#define UNTANGLE_SWEEP_IMPL_H

#include "untangle/config.h"
#include "untangle/data.h"
#include "untangle/results.h"
#include "untangle/run.h"
#include "untangle/sweep.h"

#include <stdint.h>
#include <sys/types.h>

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

/* One run's child process as its parent watches it: sweep_execute for one
 * run at a time, or several side by side (a single-process sweep's --jobs):
 * start it, then after each poll() of its fd let sweep_child_watch keep its
 * clock and read its output, and once that says the output ended,
 * sweep_child_finish reaps it into a row. */
typedef struct sweep_child {
    sweep_task t;       /* a copy of the task */
    pid_t pid;
    int fd;             /* the read end of the result pipe */
    double t0;          /* sweep_now() at the start */
    uint8_t *buf;       /* what the child wrote so far */
    size_t len, cap;
    int stopped;        /* RUN_TIMEOUT or RUN_INTERRUPTED once asked to stop */
    double kill_at;     /* SIGKILL time once SIGTERM was sent, 0 = none */
    int drain_seen;     /* the drain message was printed */
    char progress[4200];/* the run's progress record, removed when it ends ("": none) */
} sweep_child;

/* Fork the run of t (data d, shared copy-on-write; files beside out_path):
 * 0, or -1 with r filled with a failed row when no process could be made. */
int sweep_child_start(sweep_child *c, const sweep_task *t, const data_source *d,
                      const char *out_path, run_result *r);
/* After a poll() that gave revents on c->fd (0: none, or the poll timed
 * out): past the run's timeout or deadline, or on a stop request, ask the run
 * to checkpoint and stop (SIGTERM), kill it after the grace time; read what
 * is there. 1 once its output has ended (end of file, or killed). */
int sweep_child_watch(sweep_child *c, short revents);
/* Ask the run to checkpoint and stop now (SIGTERM; killed after the grace). */
void sweep_child_stop(sweep_child *c);
/* Reap the ended child: r gets its result, or a failed / timeout /
 * interrupted row; c's buffers are freed. */
void sweep_child_finish(sweep_child *c, run_result *r);

/* The data a worker's runs need, opened once and shared copy-on-write with
 * the run processes (isolate.c). */
typedef struct data_cache {
    data_source *d;
    int S;
    char name[16];
    char path[1024];
} data_cache;
/* The data c needs, from the cache (reopened when c needs other data). NULL
 * on failure: the run then opens it itself and reports the error in its row.
 * shapes3d is never cached: its open HDF5 file would be shared by the forked
 * runs; each run opens it (reading /labels, well under a second). */
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

/* ---- the master's bookkeeping (sweep.c), shared with local.c ---------------- */

typedef struct result_head {
    long index;
    int attempt;
    int rank;
    char host[64];
} result_head;

/* ---- the master's bookkeeping ---------------------------------------------- */

typedef struct job {
    long index;
    int attempt;
    double cost; /* for "longest expected runs first" */
} job;

/* Mean wall time of the ok runs of one model and arch, for --deadline. */
typedef struct estimate {
    char model[16], arch[8];
    double sum;
    long n;
} estimate;
enum { MAX_ESTIMATES = 32 };

typedef struct master {
    const sweep_options *o;
    const config_sweep *s;
    results *f;
    int write_failed;    /* the results could not be written: SWEEP_NO_WRITE */
    double t0;
    double deadline_abs; /* sweep_now() time, 0 = none */
    /* per index */
    int *done;           /* 1 when it has an ok row */
    int *fails;          /* failed / diverged / timeout attempts */
    int *attempts;       /* highest attempt number so far */
    /* the queue of attempts to hand out, in order */
    job *queue;
    size_t q_head, q_len, q_cap;
    size_t n_target;     /* indices of this shard */
    size_t n_ok, n_bad, n_interrupted, running;
    size_t n_lost;       /* workers written off (MPI): they cannot be finalised */
    double last_summary;
    size_t finished_here;
    int draining;
    estimate est[MAX_ESTIMATES];
    int n_est;
    const sweep_eval_row *ev; /* `untangle eval`: where each run's row comes from */
} master;

/* Attempts waiting to be handed out. */
size_t master_pending(const master *m);
/* Next job that fits the deadline into *out, or -1 (the queue keeps it). */
int master_next_job(master *m, job *out);
/* The task of job j. */
void master_fill_task(const master *m, const job *j, sweep_task *t);
/* Record a finished attempt: the row (journal first), the line on stderr,
 * the retry decision. 0 or the write error. */
int master_record(master *m, const result_head *h, const run_result *r, err *e);
/* The progress line, at most every 30 s unless force. */
void master_summary(master *m, int force);

/* ---- one process (local.c) ------------------------------------------------- */

/* Runs at a time for a single process, setting the thread count when
 * --threads was not given (local.c explains the defaults). */
int master_local_jobs(const master *m);
/* Run the queue with up to jobs runs at a time; 0 or the write error. */
int master_run_local(master *m, int jobs, err *e);

#endif
