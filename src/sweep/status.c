/* `untangle status RESULTS.h5 [SWEEP.yaml] [--json]`: where a results file
 * stands, read without disturbing a sweep that is writing it
 * (docs/architecture.md section 7): per method the runs that are ok,
 * failed, diverged, timed out, interrupted, pending (in the grid, no row
 * yet) and running; the runs in flight from their progress records
 * (progress.c); and an estimate of the time left. The grid is SWEEP.yaml or,
 * without it, the YAML of the latest sweep stored in the file. */
#include "sweep_impl.h"

#include "untangle/model.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A progress record older than this, with no local writer to vouch for it,
 * is left behind by a killed job. */
enum { STALE_S = 600, MAX_METHODS = 32 };

enum { C_OK, C_FAILED, C_DIVERGED, C_TIMEOUT, C_INTERRUPTED, C_PENDING, C_RUNNING, N_COUNTS };
static const char *const count_names[N_COUNTS] = {"ok", "failed", "diverged", "timeout",
                                                  "interrupted", "pending", "running"};

/* One run of the grid or the file: its latest status. */
typedef struct run_state {
    char run_id[17];
    char model[16];
    long index;
    int count;      /* C_* */
    int attempts;
} run_state;

typedef struct status {
    run_state *runs;
    size_t n, cap;
    sweep_progress *flight;
    size_t n_flight;
    double ok_wall_sum;
    size_t n_ok_wall;
    long writer;    /* pid holding the journal's lock on this host, 0 if none */
} status;

static run_state *find_run(status *st, const char *id)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->runs[i].run_id, id) == 0)
            return &st->runs[i];
    return NULL;
}

static run_state *add_run(status *st, const char *id, const char *model, long index, err *e)
{
    run_state *r = find_run(st, id);
    if (r)
        return r;
    if (st->n == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 64;
        run_state *nr = realloc(st->runs, cap * sizeof *nr);
        if (!nr) {
            err_set(e, ERR_NOMEM, "out of memory");
            return NULL;
        }
        st->runs = nr, st->cap = cap;
    }
    r = &st->runs[st->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->run_id, sizeof r->run_id, "%s", id);
    snprintf(r->model, sizeof r->model, "%s", model);
    r->index = index;
    r->count = C_PENDING;
    return r;
}

/* The rows of the file: each run's latest status (an ok attempt wins). */
static int read_rows(status *st, results_reader *rd, err *e)
{
    run_result res;
    run_result_init(&res);
    int rc = 0;
    for (size_t i = 0; i < results_reader_count(rd) && rc == 0; i++) {
        results_row row;
        run_config c;
        if ((rc = results_reader_row(rd, i, &row, &c, &res, e)) < 0)
            break;
        /* a row written under an older method name (betavae with c_max)
         * counts as the method it resolves to now (annealedvae) */
        run_config now = c;
        err ignored;
        const char *model = model_resolve(&now, &ignored) == 0 ? now.model : c.model;
        run_state *r = add_run(st, row.run_id, model, row.index, e);
        if (!r) {
            rc = -1;
            break;
        }
        r->attempts++;
        if (res.status == RUN_OK && isfinite(res.wall_s))
            st->ok_wall_sum += res.wall_s, st->n_ok_wall++;
        if (r->count != C_OK)
            r->count = res.status == RUN_OK          ? C_OK
                       : res.status == RUN_DIVERGED ? C_DIVERGED
                       : res.status == RUN_TIMEOUT  ? C_TIMEOUT
                       : res.status == RUN_INTERRUPTED ? C_INTERRUPTED
                                                       : C_FAILED;
    }
    run_result_free(&res);
    return rc;
}

/* The pid that holds the flock of path.journal on this host (from
 * /proc/locks, which takes no lock), 0 if none. */
static long journal_writer(const char *path)
{
    char jpath[4200];
    snprintf(jpath, sizeof jpath, "%s.journal", path);
    struct stat sj;
    FILE *f = fopen("/proc/locks", "r");
    if (stat(jpath, &sj) < 0 || !f) {
        if (f)
            fclose(f);
        return 0;
    }
    char line[256];
    long pid = 0;
    while (!pid && fgets(line, sizeof line, f)) {
        char kind[16];
        long p;
        unsigned maj, min;
        unsigned long long ino;
        /* "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" */
        if (sscanf(line, "%*d: %15s %*s %*s %ld %x:%x:%llu", kind, &p, &maj, &min, &ino) == 5 &&
            strcmp(kind, "FLOCK") == 0 && ino == (unsigned long long)sj.st_ino)
            pid = p;
    }
    fclose(f);
    return pid;
}

/* The progress records of RESULTS.h5.runs/: the runs in flight. */
static int read_flight(status *st, const char *path, err *e)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s.runs", path);
    DIR *d = opendir(dir);
    if (!d)
        return 0; /* no run has started */
    double now = sweep_wall_clock();
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 10 || strcmp(de->d_name + len - 9, ".progress") != 0)
            continue;
        char file[8500];
        snprintf(file, sizeof file, "%s/%s", dir, de->d_name);
        sweep_progress p;
        if (sweep_progress_read(file, &p) < 0 || (!st->writer && now - p.updated > STALE_S))
            continue;
        sweep_progress *nf = realloc(st->flight, (st->n_flight + 1) * sizeof *nf);
        if (!nf) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            break;
        }
        st->flight = nf;
        st->flight[st->n_flight++] = p;
        run_state *r = add_run(st, p.run_id, p.model, p.index, e);
        if (!r)
            rc = -1;
        else if (r->count != C_OK)
            r->count = C_RUNNING;
    }
    closedir(d);
    return rc;
}

/* Methods in order of first appearance, and each one's counts. */
typedef struct tally {
    size_t n;
    char model[MAX_METHODS][16];
    long count[MAX_METHODS + 1][N_COUNTS]; /* the last row: every method */
} tally;

static void count(const status *st, tally *t)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < st->n; i++) {
        const run_state *r = &st->runs[i];
        size_t m = 0;
        while (m < t->n && strcmp(t->model[m], r->model) != 0)
            m++;
        if (m == t->n && t->n < MAX_METHODS)
            snprintf(t->model[t->n++], sizeof t->model[0], "%s", r->model);
        if (m < t->n)
            t->count[m][r->count]++;
        t->count[MAX_METHODS][r->count]++;
    }
}

/* Seconds left: the runs not yet done, at the mean wall time of an ok run,
 * on as many workers as runs are in flight (at least one); < 0 unknown. */
static double eta(const status *st, const tally *t)
{
    const long *all = t->count[MAX_METHODS];
    if (!st->n_ok_wall)
        return -1;
    double mean = st->ok_wall_sum / (double)st->n_ok_wall;
    double left = (double)(all[C_PENDING] + all[C_INTERRUPTED]) + 0.5 * (double)all[C_RUNNING];
    double workers = st->n_flight ? (double)st->n_flight : 1.0;
    return left * mean / workers;
}

static void print_text(FILE *out, const char *path, const char *sweep, const status *st,
                       const tally *t)
{
    double now = sweep_wall_clock();
    fprintf(out, "%s: sweep '%s', %zu runs", path, sweep, st->n);
    if (st->writer)
        fprintf(out, "; being written by pid %ld", st->writer);
    fprintf(out, "\n\n%-12s", "method");
    for (int k = 0; k < N_COUNTS; k++)
        fprintf(out, " %11s", count_names[k]);
    fputc('\n', out);
    for (size_t m = 0; m <= t->n; m++) {
        if (m == t->n && t->n < 2)
            break;
        fprintf(out, "%-12s", m < t->n ? t->model[m] : "all");
        for (int k = 0; k < N_COUNTS; k++)
            fprintf(out, " %11ld", t->count[m < t->n ? m : MAX_METHODS][k]);
        fputc('\n', out);
    }
    if (st->n_flight)
        fprintf(out, "\nin flight:\n");
    for (size_t i = 0; i < st->n_flight; i++) {
        const sweep_progress *p = &st->flight[i];
        fprintf(out, "  #%ld %s %s attempt %d on %s rank %d: step %ld / %ld (%.0f %%),", p->index,
                p->model, p->run_id, p->attempt, p->host, p->rank, p->step, p->steps,
                p->steps > 0 ? 100.0 * (double)p->step / (double)p->steps : 0.0);
        for (int k = 0; k < p->n_terms; k++)
            if (isfinite(p->values[k]))
                fprintf(out, " %s %.4g", p->names[k], p->values[k]);
        fprintf(out, " (%.0f s ago)\n", now - p->updated);
    }
    double left = eta(st, t);
    const long *all = t->count[MAX_METHODS];
    if (all[C_PENDING] + all[C_RUNNING] + all[C_INTERRUPTED] == 0)
        fprintf(out, "\nnothing left to run\n");
    else if (left < 0)
        fprintf(out, "\ntime left: unknown (no run has finished ok yet)\n");
    else
        fprintf(out, "\ntime left: about %.0f min (%ld to run at %.0f s each on %zu worker%s)\n",
                left / 60.0, all[C_PENDING] + all[C_INTERRUPTED] + all[C_RUNNING],
                st->ok_wall_sum / (double)st->n_ok_wall, st->n_flight ? st->n_flight : 1,
                st->n_flight > 1 ? "s" : "");
}

/* JSON string of s (the names here are plain; quotes and controls escaped). */
static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(out, "\\u%04x", *s);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

static void print_counts(FILE *out, const long *c)
{
    fputc('{', out);
    for (int k = 0; k < N_COUNTS; k++)
        fprintf(out, "%s\"%s\": %ld", k ? ", " : "", count_names[k], c[k]);
    fputc('}', out);
}

static void print_json(FILE *out, const char *path, const char *sweep, const status *st,
                       const tally *t)
{
    fputs("{\"file\": ", out);
    json_str(out, path);
    fputs(", \"sweep\": ", out);
    json_str(out, sweep);
    fprintf(out, ", \"runs\": %zu, \"writer_pid\": ", st->n);
    if (st->writer)
        fprintf(out, "%ld", st->writer);
    else
        fputs("null", out);
    fputs(", \"methods\": {", out);
    for (size_t m = 0; m < t->n; m++) {
        fputs(m ? ", " : "", out);
        json_str(out, t->model[m]);
        fputs(": ", out);
        print_counts(out, t->count[m]);
    }
    fputs("}, \"total\": ", out);
    print_counts(out, t->count[MAX_METHODS]);
    fputs(", \"in_flight\": [", out);
    for (size_t i = 0; i < st->n_flight; i++) {
        const sweep_progress *p = &st->flight[i];
        fprintf(out, "%s{\"index\": %ld, \"run_id\": \"%s\", \"model\": ", i ? ", " : "", p->index,
                p->run_id);
        json_str(out, p->model);
        fprintf(out, ", \"attempt\": %d, \"host\": ", p->attempt);
        json_str(out, p->host);
        fprintf(out, ", \"rank\": %d, \"step\": %ld, \"steps\": %ld, \"updated\": %.3f, \"losses\": {",
                p->rank, p->step, p->steps, p->updated);
        for (int k = 0; k < p->n_terms; k++) {
            fputs(k ? ", " : "", out);
            json_str(out, p->names[k]);
            if (isfinite(p->values[k]))
                fprintf(out, ": %.9g", p->values[k]);
            else
                fputs(": null", out);
        }
        fputs("}}", out);
    }
    double left = eta(st, t);
    fputs("], \"eta_s\": ", out);
    if (left >= 0)
        fprintf(out, "%.0f}\n", left);
    else
        fputs("null}\n", out);
}

int sweep_status(const char *path, const char *yaml, int json, FILE *out, err *e)
{
    status st = {0};
    results_reader *rd = NULL;
    config_sweep *grid = NULL;
    int rc = results_reader_open(&rd, path, e);
    if (rc == 0) {
        if (yaml)
            rc = config_load(&grid, yaml, 0, e);
        else {
            size_t n = results_reader_n_sweeps(rd);
            const char *y = n ? results_reader_sweep(rd, n - 1)->sweep_yaml
                              : results_reader_meta(rd)->sweep_yaml;
            rc = config_load_text(&grid, y, strlen(y), path, 0, e);
        }
    }
    for (size_t i = 0; rc == 0 && i < grid->n_runs; i++)
        if (!add_run(&st, grid->run_ids[i], grid->runs[i].model, (long)i, e))
            rc = -1;
    if (rc == 0)
        rc = read_rows(&st, rd, e);
    st.writer = rc == 0 ? journal_writer(path) : 0;
    if (rc == 0)
        rc = read_flight(&st, path, e);
    if (rc == 0) {
        tally t;
        count(&st, &t);
        if (json)
            print_json(out, path, grid->name, &st, &t);
        else
            print_text(out, path, grid->name, &st, &t);
    }
    results_reader_close(rd);
    config_free(grid);
    free(st.runs);
    free(st.flight);
    return rc;
}
