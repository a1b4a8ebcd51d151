/* Running one run in a child process, so that a crash, a hang or a kill of
 * the run costs only that run: the child trains (or, for `untangle eval`,
 * evaluates the run's saved model again), packs its run_result into a pipe
 * and exits; the parent reads the pipe, enforces the timeout and the
 * deadline, and turns a crash into a row. A parent may watch one child
 * (sweep_execute) or several at once (a single process's --jobs, sweep.c):
 * each child's clock and pipe are its own sweep_child. Also the data a
 * worker's runs share. */
#include "sweep_impl.h"

#include "../util/fileio.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const data_source *sweep_cached_data(data_cache *dc, const run_config *c)
{
    if (dc->d && dc->S == c->image_size && strcmp(dc->name, c->name) == 0 &&
        strcmp(dc->path, c->path) == 0)
        return dc->d;
    data_close(dc->d);
    dc->d = NULL;
    if (data_set_find(c->name) == DATA_SHAPES3D)
        return NULL;
    err e;
    err_clear(&e);
    int rc = data_open(&dc->d, c->name, c->path, c->image_size, &e);
    if (rc < 0)
        return NULL;
    dc->S = c->image_size;
    snprintf(dc->name, sizeof dc->name, "%s", c->name);
    snprintf(dc->path, sizeof dc->path, "%s", c->path);
    return dc->d;
}

double sweep_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Test-only fault injection (documented in README.md, Testing): the
 * environment variable UNTANGLE_INJECT_FAULT="crash@3,nan@5,hang@7" makes the
 * run of index 3 segfault, the run of index 5 diverge (its learning rate is
 * set absurdly high, so the loss really becomes non-finite) and the run of
 * index 7 hang. Returns 'c', 'n', 'h' or 0. */
static int injected_fault(long index)
{
    const char *s = getenv("UNTANGLE_INJECT_FAULT");
    while (s && *s) {
        char kind[16];
        long at;
        int used = 0;
        if (sscanf(s, "%15[a-z]@%ld%n", kind, &at, &used) != 2)
            return 0;
        if (at == index) {
            if (strcmp(kind, "crash") == 0)
                return 'c';
            if (strcmp(kind, "nan") == 0)
                return 'n';
            if (strcmp(kind, "hang") == 0)
                return 'h';
        }
        s += used;
        if (*s == ',')
            s++;
    }
    return 0;
}

/* The child's stop request: SIGTERM from the parent (deadline, timeout, a
 * stop signal) or from the job; the run checkpoints and stops. */
static volatile sig_atomic_t child_stop;
static void on_term(int sig) { child_stop = sig; }
static int should_stop(void *ctx) { (void)ctx; return child_stop != 0; }

/* What the run's process keeps for its hooks. */
typedef struct child_ctx {
    const sweep_task *t;
    char progress_path[4200]; /* the run's progress record */
    sweep_progress p;
    double written;           /* wall clock of the last record */
} child_ctx;

static void note(void *ctx, const char *msg)
{
    const child_ctx *cc = ctx;
    fprintf(stderr, "untangle: run #%ld: %s\n", cc->t->index, msg);
}

/* The progress hook: the latest step and loss terms into the run's progress
 * record, at most once a second (and at the last step). */
static void progress(void *ctx, long step, long steps, int n, const char *const *names,
                     const double *values, double imgs_per_s)
{
    (void)imgs_per_s;
    child_ctx *cc = ctx;
    double now = sweep_wall_clock();
    if (now - cc->written < 1.0 && step < steps)
        return;
    cc->p.step = step;
    cc->p.steps = steps;
    cc->p.updated = now;
    cc->p.n_terms = n < SWEEP_PROGRESS_TERMS ? n : SWEEP_PROGRESS_TERMS;
    for (int i = 0; i < cc->p.n_terms; i++) {
        snprintf(cc->p.names[i], sizeof cc->p.names[i], "%s", names[i]);
        cc->p.values[i] = values[i];
    }
    if (sweep_progress_write(cc->progress_path, &cc->p) == 0)
        cc->written = now;
}

/* The MPI rank of this process from the launcher's environment (the run's
 * process has no MPI of its own), 0 without one. */
static int launcher_rank(void)
{
    const char *names[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (getenv(names[i]))
            return atoi(getenv(names[i]));
    return 0;
}

/* The first record at path (sweep_child_start names it; it removes it). */
static void progress_start(child_ctx *cc, const run_config *c, const char *path)
{
    sweep_progress *p = &cc->p;
    snprintf(cc->progress_path, sizeof cc->progress_path, "%s", path);
    run_config_id(&cc->t->config, p->run_id);
    p->index = cc->t->index;
    p->attempt = cc->t->attempt;
    snprintf(p->model, sizeof p->model, "%s", c->model);
    if (gethostname(p->host, sizeof p->host) < 0)
        snprintf(p->host, sizeof p->host, "?");
    p->host[sizeof p->host - 1] = '\0';
    p->rank = launcher_rank();
    p->pid = (long)getpid();
    p->steps = c->steps;
    p->started = p->updated = sweep_wall_clock();
    if (sweep_progress_write(cc->progress_path, p) == 0)
        cc->written = p->updated;
}

/* The sink of run_reevaluate with --codes: the run's encoded full set into
 * the codes file. */
typedef struct codes_ctx {
    const sweep_task *t;
    const run_config *c;
} codes_ctx;

static int write_codes(void *ctx, const run_codes *codes, err *e)
{
    const codes_ctx *cc = ctx;
    return results_codes_write(cc->t->codes_path, cc->t->run_id, cc->c, codes, e);
}

static void child(int fd, const sweep_task *t, const data_source *d, const char *out_path,
                  const char *progress_path)
{
    /* Die with the parent: a SIGKILLed worker must not leave runs behind. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGINT, SIG_IGN); /* a terminal's Ctrl-C: the parent decides */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    run_config c = t->config;
    switch (injected_fault(t->index)) {
    case 'c':
        raise(SIGSEGV);
        break;
    case 'h':
        for (;;)
            pause();
    case 'n':
        c.lr = 1e30;
        break;
    }
    char id[17], ckpt[4200], model[4200];
    run_config_id(&c, id);
    run_file_paths(out_path, id, "ckpt", ckpt, sizeof ckpt);
    run_file_paths(out_path, id, "model", model, sizeof model);
    child_ctx cc = {.t = t};
    if (!t->reeval)
        progress_start(&cc, &c, progress_path);
    run_hooks h = {.ctx = &cc, .progress = progress, .should_stop = should_stop, .note = note,
                   .ckpt_path = t->ckpt_every >= 0 ? ckpt : NULL,
                   .ckpt_every = t->ckpt_every > 0 ? t->ckpt_every : 0,
                   .model_path = t->save_model ? model : NULL};
    run_result r;
    run_result_init(&r);
    err e;
    err_clear(&e);
    if (t->reeval) {
        /* `untangle eval`: the saved model of the run (named by its own id:
         * c's eval keys may differ from the training's) */
        run_file_paths(out_path, t->run_id, "model", model, sizeof model);
        codes_ctx cc = {t, &c};
        run_reevaluate(&c, d, model, t->run_id, t->codes_path ? write_codes : NULL, &cc, &r, &e);
        r.metric[RUN_M_LOSS] = t->train_loss;
    } else {
        run_execute(&c, d, t->eval, &h, &r, &e);
    }
    uint8_t *buf;
    size_t len;
    if (run_result_pack(&r, &buf, &len, &e) < 0)
        _exit(4);
    uint64_t n = len;
    /* a parent that no longer reads the pipe leaves nothing to do but die
     * (exit code 3, as the parent reports it) */
    if (fileio_write_all(fd, &n, sizeof n) < 0 || fileio_write_all(fd, buf, len) < 0)
        _exit(3);
    _exit(0);
}

static void describe_signal(run_result *r, int sig)
{
    snprintf(r->error, sizeof r->error, "the run crashed: signal %d (%s)", sig, strsignal(sig));
}

int sweep_child_watch(sweep_child *c, short revents)
{
    const sweep_task *t = &c->t;
    double now = sweep_now();
    if (!c->drain_seen && sweep_drain_signal()) {
        c->drain_seen = 1;
        fprintf(stderr, "untangle: run #%ld is finishing%s\n", t->index,
                sweep_drain_signal() == SIGINT
                    ? " (Ctrl-C again to checkpoint it and stop now)" : "");
    }
    if (!c->stopped && t->timeout > 0 && now - c->t0 > t->timeout)
        c->stopped = RUN_TIMEOUT;
    else if (!c->stopped && t->deadline > 0 && now > t->deadline)
        c->stopped = RUN_INTERRUPTED;
    else if (!c->stopped && sweep_stop_requested())
        c->stopped = RUN_INTERRUPTED;
    if (c->stopped && c->kill_at == 0) {
        if (sweep_stop_requested())
            fprintf(stderr, "untangle: run #%ld: checkpointing and stopping\n", t->index);
        kill(c->pid, SIGTERM);
        c->kill_at = now + t->stop_grace;
    }
    if (c->kill_at > 0 && now >= c->kill_at) {
        kill(c->pid, SIGKILL);
        return 1;
    }
    if (!(revents & (POLLIN | POLLHUP | POLLERR)))
        return 0;
    if (c->len == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 65536;
        uint8_t *nb = realloc(c->buf, cap);
        if (!nb) {
            kill(c->pid, SIGKILL);
            return 1;
        }
        c->buf = nb;
        c->cap = cap;
    }
    ssize_t got = read(c->fd, c->buf + c->len, c->cap - c->len);
    if (got < 0 && errno == EINTR)
        return 0;
    if (got <= 0)
        return 1;
    c->len += (size_t)got;
    return 0;
}

void sweep_child_stop(sweep_child *c)
{
    if (c->stopped)
        return;
    c->stopped = RUN_INTERRUPTED;
    kill(c->pid, SIGTERM);
    c->kill_at = sweep_now() + c->t.stop_grace;
}

int sweep_child_start(sweep_child *c, const sweep_task *t, const data_source *d,
                      const char *out_path, run_result *r)
{
    memset(c, 0, sizeof *c);
    c->t = *t;
    c->fd = -1;
    c->t0 = sweep_now();
    if (!t->reeval) {
        char id[17];
        run_config_id(&t->config, id);
        run_file_paths(out_path, id, "progress", c->progress, sizeof c->progress);
    }
    int fds[2];
    if (pipe(fds) < 0) {
        run_result_init(r);
        r->status = RUN_FAILED;
        snprintf(r->error, sizeof r->error, "pipe: %s", strerror(errno));
        r->wall_s = sweep_now() - c->t0;
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        run_result_init(r);
        r->status = RUN_FAILED;
        snprintf(r->error, sizeof r->error, "fork: %s", strerror(errno));
        r->wall_s = sweep_now() - c->t0;
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        child(fds[1], t, d, out_path, c->progress);
    }
    close(fds[1]);
    c->pid = pid;
    c->fd = fds[0];
    return 0;
}

void sweep_child_finish(sweep_child *c, run_result *r)
{
    const sweep_task *t = &c->t;
    const double t0 = c->t0;
    uint8_t *buf = c->buf;
    size_t len = c->len;
    int stopped = c->stopped;
    pid_t pid = c->pid;
    close(c->fd);
    c->fd = -1;
    c->buf = NULL;
    run_result_init(r);
    r->status = RUN_FAILED;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (c->progress[0]) /* the run is no longer in flight */
        unlink(c->progress);
    err e;
    err_clear(&e);
    uint64_t n = 0;
    if (len >= sizeof n)
        memcpy(&n, buf, sizeof n);
    int have = WIFEXITED(status) && WEXITSTATUS(status) == 0 && len >= sizeof n &&
               n == len - sizeof n && run_result_unpack(r, buf + sizeof n, (size_t)n, &e) == 0;
    if (stopped) {
        /* the run's own row when it checkpointed in time (how far it got),
         * with the reason we stopped it */
        if (!have) {
            run_result_free(r);
            r->status = RUN_FAILED;
        }
        if (!have || r->status == RUN_INTERRUPTED) {
            const char *how = have && strstr(r->error, "(checkpointed)") ? "; checkpointed" : "";
            r->status = stopped;
            if (stopped == RUN_TIMEOUT)
                snprintf(r->error, sizeof r->error, "exceeded the run timeout of %.0f s%s",
                         t->timeout, how);
            else if (sweep_stop_requested())
                snprintf(r->error, sizeof r->error, "stopped by a signal%s", how);
            else
                snprintf(r->error, sizeof r->error, "stopped at the sweep's deadline%s", how);
        }
    } else if (WIFSIGNALED(status) &&
               (WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGINT)) {
        /* the job was stopped (scancel, preemption, time limit): not the
         * run's fault, so it does not use up a retry */
        r->status = RUN_INTERRUPTED;
        snprintf(r->error, sizeof r->error, "stopped by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    } else if (WIFSIGNALED(status)) {
        describe_signal(r, WTERMSIG(status));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(r->error, sizeof r->error, "the run's process exited with status %d",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    } else if (!have) {
        r->status = RUN_FAILED;
        snprintf(r->error, sizeof r->error, "the run's result could not be read (%zu bytes)",
                 len);
    }
    free(buf);
    if (!isfinite(r->wall_s))
        r->wall_s = sweep_now() - t0;
}

void sweep_execute(const sweep_task *t, const data_source *d, const char *out_path,
                   run_result *r)
{
    sweep_child c;
    if (sweep_child_start(&c, t, d, out_path, r) < 0)
        return;
    for (;;) {
        struct pollfd p = {.fd = c.fd, .events = POLLIN};
        int pr = poll(&p, 1, 200);
        if (sweep_child_watch(&c, pr > 0 ? p.revents : 0))
            break;
    }
    sweep_child_finish(&c, r);
}
