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
    run_config config;
} sweep_task;

/* Monotonic seconds. */
double sweep_now(void);

/* Run t in a child process with the data d (opened by the caller, shared
 * copy-on-write): fills r with the run's result, or with a failed / timeout /
 * interrupted row when the child crashed, hung past t->timeout or ran past
 * t->deadline. */
void sweep_execute(const sweep_task *t, const data_source *d, run_result *r);

#endif
