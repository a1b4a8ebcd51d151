/* The sweep scheduler.
 *
 * Message protocol (MPI_COMM_WORLD; rank 0 is the master and the only writer
 * of the results file; ranks 1..P-1 are workers):
 *
 *   worker -> master  TAG_READY   (no payload)  once, at start
 *   master -> worker  TAG_TASK    sweep_task (raw struct: every rank runs the
 *                                 same binary); deadline travels as seconds
 *                                 left, made absolute on the worker's clock
 *   worker -> master  TAG_RESULT  result_head + run_result_pack bytes
 *                                 (variable length: MPI_Probe + MPI_Get_count);
 *                                 also means "ready for the next task"
 *   master -> worker  TAG_STOP    (no payload)  no more work: free the data,
 *                                 wait for TAG_END
 *   master -> worker  TAG_END     (no payload)  every rank is done: finalise
 *
 * The end has two steps because MPI_Finalize waits for every rank. When a
 * worker was written off (stopped or hung: it will never finalise), the
 * master sends no TAG_END and ends the job with MPI_Abort, which kills the
 * waiting workers. Workers already inside MPI_Finalize at that moment make
 * Open MPI 4.1's mpirun crash or hang in its own teardown (17-28 % of such
 * aborts in a test program), so a worker enters it only after TAG_END.
 *
 * Pull scheduling: a worker gets its next task when it reports a result.
 * When nothing is pending but runs are still going (their retries may come
 * back), idle workers are parked and woken when work appears. Both sides
 * wait with MPI_Iprobe + a short sleep: Open MPI's blocking receive spins a
 * core at 100 %.
 *
 * Signals: SIGUSR1, SIGTERM and SIGINT set a drain flag (the only global of
 * the program, as a signal handler needs one). The master then stops
 * handing out runs; running runs finish (until --deadline), their rows are
 * written, and the sweep exits 3 (resumable). */
#include "sweep_impl.h"
#include "untangle/config.h"
#include "untangle/nn.h"
#include "untangle/results.h"

#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { TAG_READY = 1, TAG_TASK = 2, TAG_RESULT = 3, TAG_STOP = 4, TAG_END = 5 };

static volatile sig_atomic_t drain_signal; /* the first drain signal, set by on_signal */
static volatile sig_atomic_t n_interrupts;  /* SIGINTs so far */
static volatile sig_atomic_t stop_now;      /* SIGTERM or a second SIGINT */

static void on_signal(int sig)
{
    if (!drain_signal)
        drain_signal = sig;
    if (sig == SIGINT)
        n_interrupts++;
    if (sig == SIGTERM || (sig == SIGINT && n_interrupts >= 2))
        stop_now = 1;
}

int sweep_drain_signal(void) { return drain_signal; }
int sweep_stop_requested(void) { return stop_now; }

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* Sleep between polls: *ns doubles from 20 us up to 2 ms while nothing
 * happens (a waiting master costs under 1 % of a core) and the caller resets
 * it to 0 when a message arrives (short runs are not held up). */
static void nap(long *ns)
{
    *ns = *ns < 20000 ? 20000 : *ns * 2 > 2000000 ? 2000000 : *ns * 2;
    struct timespec ts = {0, *ns};
    nanosleep(&ts, NULL);
}

void sweep_options_defaults(sweep_options *o)
{
    memset(o, 0, sizeof *o);
    o->shard_n = 1;
    o->max_runs = CONFIG_DEFAULT_MAX_RUNS;
    o->checkpoint_every = 600;
    o->min_start = 120;
    o->save_models = 1;
    o->stop_grace = 30;
}

static estimate *find_estimate(master *m, const char *model, const char *arch, int add)
{
    for (int i = 0; i < m->n_est; i++)
        if (strcmp(m->est[i].model, model) == 0 && strcmp(m->est[i].arch, arch) == 0)
            return &m->est[i];
    if (!add || m->n_est == MAX_ESTIMATES)
        return NULL;
    estimate *x = &m->est[m->n_est++];
    memset(x, 0, sizeof *x);
    snprintf(x->model, sizeof x->model, "%s", model);
    snprintf(x->arch, sizeof x->arch, "%s", arch);
    return x;
}

static void note_time(master *m, const char *model, const char *arch, double wall)
{
    estimate *x = find_estimate(m, model, arch, 1);
    if (x && isfinite(wall)) {
        x->sum += wall;
        x->n++;
    }
}

/* Expected seconds of a run (mean of finished runs of its model and arch),
 * or 0 when unknown. */
static double expected_time(master *m, const run_config *c)
{
    const estimate *x = find_estimate(m, c->model, c->arch, 0);
    return x && x->n ? x->sum / (double)x->n : 0;
}

/* A cost proxy for "longest expected runs first": steps x batch x pixels. */
static double cost(const run_config *c)
{
    return (double)c->steps * c->batch_size * c->image_size * c->image_size *
           (strcmp(c->arch, "mlp") == 0 ? 1.0 : 2.0);
}

static int push(master *m, long index, int attempt)
{
    if (m->q_len == m->q_cap) {
        size_t cap = m->q_cap ? 2 * m->q_cap : 256;
        job *q = realloc(m->queue, cap * sizeof *q);
        if (!q)
            return -1;
        m->queue = q;
        m->q_cap = cap;
    }
    m->queue[m->q_len++] = (job){index, attempt, cost(&m->s->runs[index])};
    return 0;
}

static int by_cost(const void *a, const void *b)
{
    const job *x = a, *y = b;
    if (x->cost != y->cost)
        return x->cost > y->cost ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Next job that fits the deadline, or -1 (the queue keeps the others). No
 * run starts with less than --min-start left. With checkpoints a run that
 * cannot finish in time still starts and is continued by the next job;
 * without, only runs that finished runs say can end in time start. */
int master_next_job(master *m, job *out)
{
    double left = m->deadline_abs - sweep_now();
    if (m->deadline_abs > 0 && left < m->o->min_start)
        return -1;
    for (size_t i = m->q_head; i < m->q_len; i++) {
        const run_config *c = &m->s->runs[m->queue[i].index];
        double exp = 1.2 * expected_time(m, c); /* run times vary: a margin */
        if (m->deadline_abs > 0 && m->o->checkpoint_every <= 0 && exp > left)
            continue;
        *out = m->queue[i];
        memmove(&m->queue[i], &m->queue[i + 1], (m->q_len - i - 1) * sizeof *m->queue);
        m->q_len--;
        return 0;
    }
    return -1;
}

size_t master_pending(const master *m) { return m->q_len - m->q_head; }

void master_fill_task(const master *m, const job *j, sweep_task *t)
{
    memset(t, 0, sizeof *t);
    t->index = j->index;
    t->attempt = j->attempt;
    t->eval = !m->o->no_eval;
    t->timeout = m->o->run_timeout;
    t->deadline = m->deadline_abs > 0 ? m->deadline_abs - sweep_now() : 0;
    if (m->deadline_abs > 0 && t->deadline <= 0)
        t->deadline = 1e-3;
    t->ckpt_every = m->o->checkpoint_every > 0 ? m->o->checkpoint_every : -1;
    t->save_model = m->o->save_models;
    t->stop_grace = m->o->stop_grace;
    t->config = m->s->runs[j->index];
    t->reeval = m->ev != NULL;
    memcpy(t->run_id, m->s->run_ids[j->index], sizeof t->run_id);
    t->train_loss = m->ev ? m->ev[j->index].train_loss : NAN;
    t->codes_path = m->ev ? m->o->eval_codes : NULL;
}

/* The line of a finished attempt; next_attempt > 0 when it will be retried. */
static void print_run_line(master *m, const result_head *h, const run_result *r,
                           int next_attempt)
{
    const run_config *c = &m->s->runs[h->index];
    char line[1024], val[256];
    int n = snprintf(line, sizeof line, "[%zu/%zu] #%ld %s", m->n_ok + m->n_bad, m->n_target,
                     h->index, c->model);
    for (size_t i = 0; i < m->s->n_vary && n < (int)sizeof line; i++) {
        const run_key *k = m->s->vary[i];
        if (strcmp(k->name, "model") == 0)
            continue;
        run_config_format(c, k, val, sizeof val);
        if (strcmp(val, "nan") != 0)
            n += snprintf(line + n, sizeof line - (size_t)n, " %s=%s", k->name, val);
    }
    if (n < (int)sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, "  %s", run_status_name(r->status));
    static const int shown[] = {RUN_M_RECON, RUN_M_KL, RUN_M_TC, RUN_M_MIG, RUN_M_SWAP_ACC};
    for (size_t i = 0; i < sizeof shown / sizeof shown[0] && n < (int)sizeof line; i++)
        if (isfinite(r->metric[shown[i]]))
            n += snprintf(line + n, sizeof line - (size_t)n, "  %s %.4g",
                          run_metric_names[shown[i]], r->metric[shown[i]]);
    fprintf(stderr, "%s  %.1f s  rank %d%s%s", line, r->wall_s, h->rank,
            r->error[0] ? "  error: " : "", r->error);
    if (next_attempt > 0)
        fprintf(stderr, "  (retried: attempt %d queued)", next_attempt);
    fputc('\n', stderr);
}

void master_summary(master *m, int force)
{
    double now = sweep_now();
    if (!force && now - m->last_summary < 30)
        return;
    m->last_summary = now;
    double hours = (now - m->t0) / 3600;
    double rate = hours > 0 ? (double)m->finished_here / hours : 0;
    size_t left = master_pending(m) + m->running;
    fprintf(stderr, "-- done %zu, failed %zu, running %zu, pending %zu; %.1f runs/h", m->n_ok,
            m->n_bad, m->running, master_pending(m), rate);
    if (rate > 0 && left > 0)
        fprintf(stderr, "; ETA %.1f min", 60.0 * (double)left / rate);
    fputc('\n', stderr);
}

/* Record a finished attempt: the row first (journal + HDF5, flushed), then
 * the line on stderr (a reported run is on disk), then the retry decision. */
int master_record(master *m, const result_head *h, const run_result *r, err *e)
{
    results_row row;
    memset(&row, 0, sizeof row);
    row.index = h->index;
    memcpy(row.run_id, m->s->run_ids[h->index], sizeof row.run_id);
    row.attempt = h->attempt;
    row.rank = h->rank;
    snprintf(row.host, sizeof row.host, "%s", h->host);
    if (m->ev) { /* a re-evaluation: of the training's row, numbered; only ok ones are kept */
        row.index = m->ev[h->index].index;
        row.attempt = m->ev[h->index].attempt;
        row.evaluation = results_last_evaluation(m->f, row.run_id) + 1;
        if (r->status != RUN_OK)
            fprintf(stderr, "untangle eval: run %s (index %ld): not evaluated: %s\n",
                    row.run_id, row.index, r->error);
    }
    if ((!m->ev || r->status == RUN_OK) &&
        results_append(m->f, &row, &m->s->runs[h->index], r, e) < 0) {
        m->write_failed = e->code != ERR_INPUT && e->code != ERR_NOMEM;
        return e->code;
    }
    m->finished_here++;
    const run_config *c = &m->s->runs[h->index];
    if (r->status == RUN_OK) {
        m->done[h->index] = 1;
        m->n_ok++;
        note_time(m, c->model, c->arch, r->wall_s);
    } else if (r->status == RUN_INTERRUPTED) {
        m->n_interrupted++;
    } else {
        m->n_bad++;
        m->fails[h->index]++;
    }
    /* A retry reruns the same configuration and seed: a run that diverged
     * diverges again, bit for bit, so it is retried only when asked. */
    int retry = r->status == RUN_FAILED || r->status == RUN_TIMEOUT ||
                (r->status == RUN_DIVERGED && m->o->retry_diverged);
    retry = retry && m->fails[h->index] <= m->o->retries && !m->draining;
    if (retry)
        m->n_bad--; /* it is pending again: the counter does not count it */
    print_run_line(m, h, r, retry ? m->attempts[h->index] + 1 : 0);
    if (retry && push(m, h->index, ++m->attempts[h->index]) < 0)
        return err_set(e, ERR_NOMEM, "out of memory for the run queue");
    return 0;
}

/* ---- what a resumed sweep runs --------------------------------------------------- */

enum { FATE_DONE, FATE_GIVEN_UP, FATE_TO_RUN };

/* What a resumed sweep does with run run_id, from the attempts of the file:
 * done (an ok attempt), given up (failed more than --retries times, or a
 * deterministic divergence without --retry-diverged) or to run; *attempts
 * gets the highest attempt number, *fails the failed attempts. */
static int run_fate(const sweep_options *o, const results_attempt *a, size_t na,
                    const char *run_id, int *attempts, int *fails)
{
    int done = 0, last = 0, diverged = 0; /* the latest attempt that was not interrupted */
    for (size_t j = 0; j < na; j++) {
        if (strcmp(a[j].run_id, run_id) != 0)
            continue;
        if (a[j].attempt > *attempts)
            *attempts = a[j].attempt;
        if (a[j].status == RUN_OK)
            done = 1;
        else if (a[j].status != RUN_INTERRUPTED)
            (*fails)++;
        if (a[j].status != RUN_INTERRUPTED && a[j].attempt > last) {
            last = a[j].attempt;
            diverged = a[j].status == RUN_DIVERGED;
        }
    }
    if (done)
        return FATE_DONE;
    if (*fails > o->retries || (diverged && !o->retry_diverged))
        return FATE_GIVEN_UP;
    return FATE_TO_RUN;
}

/* --dry-run: the grid, or with --resume and an existing file the runs that
 * would run (read only: nothing is opened for writing). */
static int dry_run(const sweep_options *o, const config_sweep *s, err *e)
{
    if (!o->resume || access(o->out_path, F_OK) != 0)
        return config_write_list(s, stdout);
    results_reader *rd = NULL;
    if (results_reader_open(&rd, o->out_path, e) < 0)
        return -1;
    size_t na = results_reader_count(rd);
    results_attempt *a = calloc(na ? na : 1, sizeof *a);
    unsigned char *todo = calloc(s->n_runs, 1);
    run_result r;
    run_result_init(&r);
    int rc = a && todo ? 0 : err_set(e, ERR_NOMEM, "out of memory");
    for (size_t j = 0; j < na && rc == 0; j++) {
        results_row row;
        run_config c;
        if ((rc = results_reader_row(rd, j, &row, &c, &r, e)) == 0) {
            memcpy(a[j].run_id, row.run_id, sizeof a[j].run_id);
            a[j].attempt = row.attempt;
            a[j].status = r.status;
        }
    }
    for (size_t i = 0; i < s->n_runs && rc == 0; i++) {
        int attempts = 0, fails = 0;
        todo[i] = (long)(i % (size_t)o->shard_n) == o->shard_i &&
                  run_fate(o, a, na, s->run_ids[i], &attempts, &fails) == FATE_TO_RUN;
    }
    if (rc == 0)
        rc = config_write_list_some(s, todo, stdout);
    run_result_free(&r);
    results_reader_close(rd);
    free(a);
    free(todo);
    return rc;
}

/* ---- set-up: the file, the queue ----------------------------------------------- */

static int open_results(master *m, err *e)
{
    const sweep_options *o = m->o;
    char vers[1024], blas[256], hdf5[64], config_lib[64];
    nn_library_version(blas, sizeof blas);
    int mpi_len = 0;
    char mpi_ver[MPI_MAX_LIBRARY_VERSION_STRING];
    MPI_Get_library_version(mpi_ver, &mpi_len);
    mpi_ver[strcspn(mpi_ver, ",\n")] = '\0';
    snprintf(vers, sizeof vers, "%s; %s; %s; %s", results_library_version(hdf5, sizeof hdf5),
             blas, mpi_ver, config_library_version(config_lib, sizeof config_lib));
    results_meta meta = {
        .sweep_name = m->s->name,
        .sweep_yaml = m->s->text,
        .sweep_hash = m->s->hash,
        .untangle_version = UNTANGLE_VERSION,
        .library_versions = vers,
        .data_name = m->s->base.name, /* fixed for a sweep (config refuses it in a grid) */
    };
    char bak[4200];
    if (o->restart && results_move_aside(o->out_path, bak, sizeof bak, e) < 0)
        return e->code;
    if (o->restart && bak[0])
        fprintf(stderr, "untangle: previous results kept as %s\n", bak);
    struct stat st;
    int exists = stat(o->out_path, &st) == 0;
    int rc;
    if (!exists)
        rc = results_create(&m->f, o->out_path, &meta, e);
    else if (!o->resume)
        return err_set(e, ERR_INPUT,
                       "%s already exists: pass --resume to continue it or --restart to start "
                       "afresh (the old file is kept)",
                       o->out_path);
    else
        rc = results_open(&m->f, o->out_path, &meta, e);
    if (rc == 0 && results_recovery(m->f)[0])
        fprintf(stderr, "untangle: %s: %s\n", o->out_path, results_recovery(m->f));
    return rc;
}

/* A resumed file must hold the same sweep: same name, and unless the YAML is
 * byte-identical, the same fixed sections (a grown grid is fine). */
static int check_same_sweep(master *m, err *e)
{
    const char *name = results_sweep_name(m->f);
    if (strcmp(name, m->s->name) != 0)
        return err_set(e, ERR_INPUT,
                       "%s belongs to sweep '%s', not '%s': use another results file, or "
                       "--restart to replace it",
                       m->o->out_path, name, m->s->name);
    const char *old_yaml = results_sweep_yaml(m->f);
    if (!old_yaml || results_sweep_hash(m->f) == m->s->hash)
        return 0;
    config_sweep *old = NULL;
    err e2;
    err_clear(&e2);
    if (config_load_text(&old, old_yaml, strlen(old_yaml), m->o->out_path, 0, &e2) < 0)
        return 0; /* an old YAML we cannot read any more: nothing to compare */
    char key[64];
    int diff = config_fixed_diff(old, m->s, key, sizeof key);
    config_free(old);
    if (diff)
        return err_set(e, ERR_INPUT,
                       "%s: the sweep's fixed key '%s' changed since the file was started; "
                       "its runs would not be comparable: use --restart (the old file is kept) "
                       "or another results file",
                       m->o->out_path, key);
    return 0;
}

static int build_queue(master *m, err *e)
{
    const config_sweep *s = m->s;
    size_t n = s->n_runs;
    m->done = calloc(n, sizeof *m->done);
    m->fails = calloc(n, sizeof *m->fails);
    m->attempts = calloc(n, sizeof *m->attempts);
    if (!m->done || !m->fails || !m->attempts)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; m->ev && i < n; i++, m->n_target++) /* `untangle eval`: all, once */
        if (push(m, (long)i, 1) < 0)
            return err_set(e, ERR_NOMEM, "out of memory for the run queue");
    if (m->ev)
        return 0;
    /* What the file already holds, matched by run id (indices move when a
     * grid grows; run ids do not). */
    size_t na = 0;
    const results_attempt *a = results_attempts(m->f, &na);
    for (size_t i = 0; i < n; i++) {
        if ((long)(i % (size_t)m->o->shard_n) != m->o->shard_i)
            continue;
        m->n_target++;
        int fate = run_fate(m->o, a, na, s->run_ids[i], &m->attempts[i], &m->fails[i]);
        if (fate == FATE_DONE)
            m->done[i] = 1, m->n_ok++;
        else if (fate == FATE_GIVEN_UP)
            m->n_bad++;
        else if (push(m, (long)i, ++m->attempts[i]) < 0)
            return err_set(e, ERR_NOMEM, "out of memory for the run queue");
    }
    for (size_t j = 0; j < na; j++)
        if (a[j].status == RUN_OK)
            note_time(m, a[j].model, a[j].arch, a[j].wall_s);
    if (m->q_len) /* an empty queue has no array: qsort(NULL) is undefined */
        qsort(m->queue, m->q_len, sizeof *m->queue, by_cost);
    if (m->n_ok || m->n_bad)
        fprintf(stderr, "untangle: %s holds %zu ok and %zu given-up runs of this sweep; %zu to run\n",
                m->o->out_path, m->n_ok, m->n_bad, master_pending(m));
    return 0;
}

static void master_free(master *m)
{
    free(m->done);
    free(m->fails);
    free(m->attempts);
    free(m->queue);
}

static int exit_code(const master *m)
{
    if (master_pending(m) > 0 || m->n_interrupted > 0 || m->draining) {
        size_t left = 0;
        for (size_t i = 0; i < m->s->n_runs; i++)
            if ((long)(i % (size_t)m->o->shard_n) == m->o->shard_i && !m->done[i] &&
                m->fails[i] <= m->o->retries)
                left++;
        if (left > 0) {
            fprintf(stderr, "untangle: stopped with %zu runs left; run again with --resume\n",
                    left);
            return SWEEP_INTERRUPTED;
        }
    }
    return m->n_bad ? SWEEP_FAILED_RUNS : SWEEP_OK;
}

/* ---- MPI: master and workers ---------------------------------------------------- */

static int recv_result(int src, result_head *h, run_result *r, err *e)
{
    MPI_Status st;
    MPI_Probe(src, TAG_RESULT, MPI_COMM_WORLD, &st);
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    uint8_t *buf = malloc((size_t)count ? (size_t)count : 1);
    if (!buf)
        return err_set(e, ERR_NOMEM, "out of memory for a result message");
    MPI_Recv(buf, count, MPI_BYTE, src, TAG_RESULT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    int rc = 0;
    if ((size_t)count < sizeof *h) {
        rc = err_set(e, ERR_MPI, "result message from rank %d too short (%d bytes)", src, count);
    } else {
        memcpy(h, buf, sizeof *h);
        run_result_init(r);
        rc = run_result_unpack(r, buf + sizeof *h, (size_t)count - sizeof *h, e);
    }
    free(buf);
    return rc;
}

/* What the master knows of each worker. */
typedef struct worker_state {
    int idle;        /* parked: waiting for work */
    int busy;        /* running the task below */
    int lost;        /* written off: missed its time (stopped or hung) */
    job task;
    double must_end; /* sweep_now() by which its result must have come, 0 = none */
    int by_deadline; /* must_end comes from the deadline, not the run timeout */
} worker_state;

/* Give worker v its next run; 1 when it got one. The worker must answer
 * within the run's timeout or the deadline plus twice the stop grace (the
 * run's checkpoint, then the messages and the row); a worker that does not is
 * written off (lose_worker). */
static int dispatch(master *m, worker_state *w, int v)
{
    job j;
    if (m->draining || master_pending(m) == 0 || master_next_job(m, &j) < 0)
        return 0;
    sweep_task t;
    master_fill_task(m, &j, &t);
    MPI_Send(&t, (int)sizeof t, MPI_BYTE, v, TAG_TASK, MPI_COMM_WORLD);
    m->running++;
    double now = sweep_now(), slack = 2 * m->o->stop_grace, end = 0;
    int by_deadline = 0;
    if (m->o->run_timeout > 0)
        end = now + m->o->run_timeout + slack;
    if (m->deadline_abs > 0 && (end == 0 || m->deadline_abs + slack < end)) {
        end = m->deadline_abs + slack;
        by_deadline = 1;
    }
    w[v] = (worker_state){.busy = 1, .task = j, .must_end = end, .by_deadline = by_deadline};
    return 1;
}

/* Worker v missed its time: its run gets a row (timeout when the run's
 * timeout passed, retried like any timeout; interrupted when the deadline
 * passed, run again on resume), and the worker gets no more work; whatever it
 * sends later is dropped. */
static int lose_worker(master *m, worker_state *w, int v, err *e)
{
    w[v].lost = 1;
    w[v].busy = 0;
    m->running--;
    m->n_lost++;
    fprintf(stderr, "untangle: rank %d did not report run #%ld in time (stopped or hung): "
            "written off\n", v, w[v].task.index);
    result_head h = {.index = w[v].task.index, .attempt = w[v].task.attempt, .rank = v};
    snprintf(h.host, sizeof h.host, "?");
    run_result r;
    run_result_init(&r);
    r.status = w[v].by_deadline ? RUN_INTERRUPTED : RUN_TIMEOUT;
    snprintf(r.error, sizeof r.error, "rank %d stopped answering; written off by the master", v);
    int rc = master_record(m, &h, &r, e);
    run_result_free(&r);
    return rc;
}

/* One message from worker w (a READY or a RESULT). */
static int master_receive(master *m, worker_state *ws, const MPI_Status *st, int rc, err *e)
{
    int w = st->MPI_SOURCE;
    if (st->MPI_TAG == TAG_READY) {
        MPI_Recv(NULL, 0, MPI_BYTE, w, TAG_READY, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        ws[w].idle = 1;
        return rc;
    }
    if (st->MPI_TAG != TAG_RESULT) {
        /* no other message goes to the master: drop it */
        MPI_Recv(NULL, 0, MPI_BYTE, w, st->MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        return rc;
    }
    result_head h;
    run_result r;
    run_result_init(&r);
    int got = recv_result(w, &h, &r, e);
    if (ws[w].lost) {
        /* a written-off worker came back: its run has its row already */
        run_result_free(&r);
        ws[w].idle = 1;
        return rc;
    }
    m->running--;
    ws[w].busy = 0;
    /* the worker's next run first, so that it trains while the master
     * writes this row */
    ws[w].idle = rc < 0 || !dispatch(m, ws, w);
    if (got == 0 && rc == 0) {
        h.rank = w;
        rc = master_record(m, &h, &r, e);
    }
    run_result_free(&r);
    return rc;
}

static int run_master(master *m, int size, err *e)
{
    worker_state *ws = calloc((size_t)size, sizeof *ws);
    if (!ws)
        return err_set(e, ERR_NOMEM, "out of memory");
    int stopped = 0, rc = 0;
    long wait_ns = 0;
    while (stopped + (int)m->n_lost < size - 1) {
        if (drain_signal && !m->draining) {
            m->draining = 1;
            fprintf(stderr, "untangle: signal %d: draining (no new runs; %zu running)\n",
                    (int)drain_signal, m->running);
        }
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (flag) {
            wait_ns = 0;
            rc = master_receive(m, ws, &st, rc, e);
        }
        double now = sweep_now();
        for (int v = 1; v < size; v++)
            if (ws[v].busy && ws[v].must_end > 0 && now > ws[v].must_end && rc == 0)
                rc = lose_worker(m, ws, v, e);
        /* Parked workers: work when there is some (a retry), STOP when
         * nothing is left to run or to come back. */
        for (int v = 1; v < size; v++) {
            if (!ws[v].idle)
                continue;
            if (rc == 0 && !ws[v].lost && dispatch(m, ws, v)) {
                ws[v].idle = 0;
            } else if (rc < 0 || m->draining || m->running == 0 || ws[v].lost) {
                MPI_Send(NULL, 0, MPI_BYTE, v, TAG_STOP, MPI_COMM_WORLD);
                ws[v].idle = 0;
                if (ws[v].lost)
                    m->n_lost--; /* it came back and stops like the others */
                ws[v].lost = 0;
                stopped++;
            }
        }
        master_summary(m, 0);
        if (!flag) {
            if (rc == 0)
                if ((rc = results_flush(m->f, e)) < 0)
                    m->write_failed = 1;
            nap(&wait_ns);
        }
    }
    free(ws);
    return rc;
}

/* The next message from the master, without receiving it. */
static MPI_Status wait_master(void)
{
    long wait_ns = 0;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (flag)
            return st;
        nap(&wait_ns);
    }
}

static void run_worker(int rank, const char *out_path)
{
    data_cache dc = {0};
    result_head h = {.rank = rank};
    gethostname(h.host, sizeof h.host - 1);
    MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_READY, MPI_COMM_WORLD);
    for (;;) {
        MPI_Status st = wait_master();
        if (st.MPI_TAG == TAG_STOP) {
            MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            break;
        }
        sweep_task t;
        MPI_Recv(&t, (int)sizeof t, MPI_BYTE, 0, TAG_TASK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (t.deadline > 0)
            t.deadline += sweep_now();
        run_result r;
        sweep_execute(&t, sweep_cached_data(&dc, &t.config), out_path, &r);
        h.index = t.index;
        h.attempt = t.attempt;
        uint8_t *buf = NULL;
        size_t len = 0;
        err e;
        err_clear(&e);
        if (run_result_pack(&r, &buf, &len, &e) < 0) {
            /* cannot even pack: report a bare failure */
            run_result_free(&r);
            r.status = RUN_FAILED;
            snprintf(r.error, sizeof r.error, "rank %d: %.200s", rank, e.msg);
            run_result_pack(&r, &buf, &len, &e);
        }
        uint8_t *msg = malloc(sizeof h + len);
        if (msg) {
            memcpy(msg, &h, sizeof h);
            memcpy(msg + sizeof h, buf, len);
            MPI_Send(msg, (int)(sizeof h + len), MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
        }
        free(msg);
        free(buf);
        run_result_free(&r);
    }
    data_close(dc.d);
    wait_master(); /* TAG_END, or the job's abort */
    MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_END, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

/* ---- entry ------------------------------------------------------------------------- */

static int launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") ||
           getenv("PMI_SIZE");
}

/* Threads per run under MPI: the cores of this rank's node shared among
 * its ranks. */
static int default_threads(void)
{
    long cores = nn_cores();
    const char *ls = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!ls)
        ls = getenv("SLURM_NTASKS_PER_NODE");
    long local = ls ? atol(ls) : 1;
    if (local < 1)
        local = 1;
    long t = cores / local;
    return t < 1 ? 1 : (int)t;
}

/* An MPI launched without PMI support starts N single-rank copies: refuse,
 * rather than run N independent sweeps into one file. */
static int check_single_rank(int size, err *e)
{
    const char *nt = getenv("SLURM_STEP_NUM_TASKS");
    if (!nt)
        nt = getenv("SLURM_NTASKS");
    long n = nt ? atol(nt) : 0;
    if (size == 1 && n > 1 && getenv("OMPI_COMM_WORLD_SIZE"))
        return err_set(e, ERR_INPUT,
                       "mpirun started 1 rank but SLURM allocated %ld tasks: give mpirun no "
                       "-np (it takes the allocation) or -np %ld",
                       n, n);
    if (size == 1 && n > 1)
        return err_set(e, ERR_INPUT,
                       "this is a single process but SLURM started %ld tasks: the MPI library "
                       "did not get the job's layout (launch with `srun --mpi=pmix` or "
                       "`mpirun`); refusing to run %ld independent copies of the sweep",
                       n, n);
    return 0;
}

/* The directory of path exists (a write there failed for another reason). */
static int out_dir_exists(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return 1;
    *(slash == dir ? slash + 1 : slash) = '\0';
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

int sweep_main(const sweep_options *o, err *e)
{
    config_sweep *s = NULL;
    master m;
    memset(&m, 0, sizeof m);
    int mpi = launched_by_mpi(), rank = 0, size = 1, rc = 0, code = SWEEP_USAGE, started = 0;
    if (mpi) {
        MPI_Init(NULL, NULL);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
    }
    install_signals();
    nn_set_threads(o->threads > 0 ? o->threads : default_threads());
    if (rank > 0) {
        run_worker(rank, o->out_path);
        MPI_Finalize();
        return SWEEP_OK;
    }
    m.o = o;
    m.t0 = sweep_now();
    m.last_summary = m.t0;
    if (o->deadline > 0)
        m.deadline_abs = m.t0 + o->deadline;
    sweep_eval_row *ev = NULL;
    if ((rc = check_single_rank(size, e)) < 0 ||
        (rc = o->eval ? sweep_eval_plan(o, &m.f, &s, &ev, e)
                      : config_load(&s, o->yaml_path, o->max_runs, e)) < 0)
        goto stop;
    m.s = s;
    m.ev = ev;
    if (o->dry_run) {
        rc = dry_run(o, s, e);
        code = rc < 0 ? SWEEP_USAGE : SWEEP_OK;
        goto stop;
    }
    if (!o->eval && (rc = open_results(&m, e)) < 0) {
        /* a missing output directory is a usage error (1), as before */
        if ((e->code == ERR_IO || e->code == ERR_HDF5) && out_dir_exists(o->out_path))
            code = SWEEP_NO_WRITE;
        goto stop;
    }
    if ((!o->eval && (rc = check_same_sweep(&m, e)) < 0) || (rc = build_queue(&m, e)) < 0)
        goto stop;
    if (!o->eval && (o->checkpoint_every > 0 || o->save_models) &&
        (rc = run_file_mkdir(o->out_path, e)) < 0)
        goto stop;
    int jobs = size > 1 ? 1 : master_local_jobs(&m);
    if (size > 1)
        fprintf(stderr, "untangle: sweep %s: %zu runs (%zu to run) on %d workers -> %s\n",
                s->name, m.n_target, master_pending(&m), size - 1, o->out_path);
    else
        fprintf(stderr, "untangle: sweep %s: %zu runs (%zu to run) on 1 process, %d at a time, "
                "%d thread%s each -> %s\n", s->name, m.n_target, master_pending(&m), jobs,
                nn_threads(), nn_threads() > 1 ? "s" : "", o->out_path);
    started = 1;
    rc = size > 1 ? run_master(&m, size, e) : master_run_local(&m, jobs, e);
    if (rc == 0) {
        master_summary(&m, 1);
        code = exit_code(&m);
    } else {
        code = m.write_failed ? SWEEP_NO_WRITE : SWEEP_FAILED_RUNS;
    }
stop:
    if (mpi && size > 1 && !started) {
        /* set-up failed before any work: release the workers */
        for (int w = 1; w < size; w++) {
            MPI_Recv(NULL, 0, MPI_BYTE, w, TAG_READY, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(NULL, 0, MPI_BYTE, w, TAG_STOP, MPI_COMM_WORLD);
        }
    }
    err ce;
    err_clear(&ce);
    if (m.f && results_close(m.f, &ce) < 0 && rc == 0) {
        *e = ce;
        code = SWEEP_NO_WRITE;
    }
    if (code == SWEEP_NO_WRITE)
        err_prefix(e, "cannot write the results (exit %d; the rows written so far are kept in "
                   "%s or its journal: free space and run again with --resume): ", code,
                   o->out_path);
    size_t lost = m.n_lost;
    master_free(&m);
    free(ev);
    config_free(s);
    if (mpi && lost > 0) {
        /* a written-off worker cannot take part in MPI_Finalize: end the job
         * with the sweep's exit code (mpirun returns it); the other workers
         * wait for a TAG_END that does not come */
        fprintf(stderr, "untangle: %zu rank(s) written off; ending the job (exit %d)\n", lost,
                code);
        fflush(NULL);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
    for (int w = 1; mpi && w < size; w++)
        MPI_Send(NULL, 0, MPI_BYTE, w, TAG_END, MPI_COMM_WORLD);
    if (mpi)
        MPI_Finalize();
    return code;
}
