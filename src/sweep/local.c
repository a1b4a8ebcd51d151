/* A sweep as a single process (no mpirun): pull scheduling of the master's
 * queue onto up to --jobs child processes at a time (isolate.c), the rows
 * written by this process alone, journal first (sweep.c, master_record). */
#include "sweep_impl.h"
#include "untangle/nn.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A single process: runs at a time (--jobs, else one run per core: the
 * cores / --threads, at most the runs to do), and the threads of each run
 * (--threads, else the cores left to each job). The cores are those of the
 * process's CPU affinity, and no more than SLURM_CPUS_PER_TASK in a SLURM
 * task (whose affinity may not be enforced). A run's numbers depend on
 * neither. */
int master_local_jobs(const master *m)
{
    long cores = nn_cores();
    const char *cpt = getenv("SLURM_CPUS_PER_TASK");
    if (cpt && atol(cpt) > 0 && atol(cpt) < cores)
        cores = atol(cpt);
    long jobs = m->o->jobs;
    if (jobs <= 0) {
        jobs = cores / (m->o->threads > 0 ? m->o->threads : 1);
        if ((size_t)jobs > master_pending(m))
            jobs = (long)master_pending(m);
    }
    if (jobs < 1)
        jobs = 1;
    if (m->o->threads <= 0)
        nn_set_threads(cores / jobs > 1 ? (int)(cores / jobs) : 1);
    return (int)jobs;
}

static int record_local(master *m, const job *j, const char *host, run_result *r, err *e)
{
    result_head h = {.index = j->index, .attempt = j->attempt, .rank = 0};
    memcpy(h.host, host, sizeof h.host);
    return master_record(m, &h, r, e);
}

/* Start runs in the free slots of kids (busy[k] = 0) while the queue and
 * the deadline allow; a run that could not start gets its row at once. */
static int start_local(master *m, sweep_child *kids, job *what, int *busy, int jobs,
                       data_cache *dc, const char *host, int rc, err *e)
{
    for (int k = 0; k < jobs && rc == 0 && !sweep_drain_signal(); k++) {
        job j;
        if (busy[k])
            continue;
        if (master_pending(m) == 0 || master_next_job(m, &j) < 0)
            break;
        /* the rows so far reach the HDF5 file before the next run starts */
        if ((rc = results_flush(m->f, e)) < 0) {
            m->write_failed = 1;
            break;
        }
        sweep_task t;
        master_fill_task(m, &j, &t);
        if (t.deadline > 0)
            t.deadline += sweep_now();
        run_result r;
        if (sweep_child_start(&kids[k], &t, sweep_cached_data(dc, &t.config), m->o->out_path,
                              &r) < 0) {
            rc = record_local(m, &j, host, &r, e);
            run_result_free(&r);
            continue;
        }
        busy[k] = 1;
        what[k] = j;
        m->running++;
    }
    return rc;
}

/* Pull scheduling inside one process: up to `jobs` runs, each in its own
 * child process (isolate.c), and the next run starts as soon as one ends;
 * this process alone writes the rows, journal first, as the MPI master does.
 * Timeouts, the deadline and stop signals act on every running child; a
 * drain starts no new run and lets the running ones finish. After a write
 * failure the running runs are asked to checkpoint and stop. */
int master_run_local(master *m, int jobs, err *e)
{
    data_cache dc = {0};
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    sweep_child *kids = calloc((size_t)jobs, sizeof *kids);
    job *what = calloc((size_t)jobs, sizeof *what);
    int *busy = calloc((size_t)jobs, sizeof *busy), *slot = calloc((size_t)jobs, sizeof *slot);
    struct pollfd *p = calloc((size_t)jobs, sizeof *p);
    int rc = 0;
    if (!kids || !what || !busy || !slot || !p)
        rc = err_set(e, ERR_NOMEM, "out of memory for %d jobs", jobs);
    for (;;) {
        rc = start_local(m, kids, what, busy, jobs, &dc, host, rc, e);
        if (m->running == 0)
            break;
        int n = 0;
        for (int k = 0; k < jobs; k++)
            if (busy[k]) {
                if (rc < 0)
                    sweep_child_stop(&kids[k]);
                p[n] = (struct pollfd){.fd = kids[k].fd, .events = POLLIN};
                slot[n++] = k;
            }
        int pr = poll(p, (nfds_t)n, 200);
        for (int i = 0; i < n; i++) {
            int k = slot[i];
            if (!sweep_child_watch(&kids[k], pr > 0 ? p[i].revents : 0))
                continue;
            run_result r;
            sweep_child_finish(&kids[k], &r);
            busy[k] = 0;
            m->running--;
            if (rc == 0)
                rc = record_local(m, &what[k], host, &r, e);
            run_result_free(&r);
        }
        master_summary(m, 0);
    }
    if (sweep_drain_signal())
        m->draining = 1;
    free(kids), free(what), free(busy), free(slot), free(p);
    data_close(dc.d);
    return rc;
}
