/* Private to src/sweep. */
#ifndef UNTANGLE_SWEEP_IMPL_H
#define UNTANGLE_SWEEP_IMPL_H

#include "untangle/data.h"
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

#endif
