/* results.c: the public face of a results file open for appending: create,
 * open (through recovery.c), append (journal first, then the HDF5 file),
 * flush and close; and the small file-system helpers the other files of
 * src/results share. The file and journal formats are described in
 * results_impl.h. */
#include "results_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ----------------------------------------------------------- */

void res_iso_now(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *res_dup_str(const char *s)
{
    return strdup(s ? s : "");
}

char *res_cat_str(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (s) {
        memcpy(s, a, na);
        memcpy(s + na, b, nb + 1);
    }
    return s;
}

int res_path_exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

void res_free_name(const char *base, const char *suffix, char *out, size_t n)
{
    for (int i = 1;; i++) {
        snprintf(out, n, "%s.%s-%d", base, suffix, i);
        if (!res_path_exists(out) || i > 100000)
            return;
    }
}

int res_create_excl(const char *path, int flags)
{
    return open(path, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, RES_FILE_MODE);
}

int res_rename_noreplace(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return -1;
    /* a file system without RENAME_NOREPLACE: link fails on an existing name */
    if (link(from, to) < 0)
        return -1;
    if (unlink(from) < 0) {
        int keep = errno;
        unlink(to);
        errno = keep;
        return -1;
    }
    return 0;
}

int res_move_free(const char *from, const char *base, const char *suffix, char *out, size_t n)
{
    for (int i = 1; i <= 100000; i++) {
        snprintf(out, n, "%s.%s-%d", base, suffix, i);
        if (res_rename_noreplace(from, out) == 0)
            return 0;
        if (errno != EEXIST)
            return -1;
    }
    errno = EEXIST;
    return -1;
}

int res_clear_tmp(const char *tmp, err *e)
{
    struct stat st;
    if (lstat(tmp, &st) < 0)
        return errno == ENOENT ? 0 : err_set(e, ERR_IO, "%s: %s", tmp, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return err_set(e, ERR_IO, "%s is a directory, not a leftover temporary file: refusing "
                       "to use that name", tmp);
    /* a leftover of an interrupted rebuild, or a planted link: the name goes,
     * whatever it points to is not touched */
    if (unlink(tmp) < 0)
        return err_set(e, ERR_IO, "cannot remove the leftover %s: %s", tmp, strerror(errno));
    return 0;
}

void res_sync_dir(const char *path)
{
    char *d = res_dup_str(path);
    if (!d)
        return;
    char *slash = strrchr(d, '/');
    const char *dir = ".";
    if (slash) {
        *(slash == d ? slash + 1 : slash) = '\0';
        dir = d;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(d);
}

int res_sync_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int res_check_dir(const char *path, err *e)
{
    char *d = res_dup_str(path);
    if (!d)
        return err_set(e, ERR_NOMEM, "out of memory");
    char *slash = strrchr(d, '/');
    const char *dir = ".";
    if (slash) {
        *(slash == d ? slash + 1 : slash) = '\0';
        dir = d;
    }
    struct stat st;
    int rc = 0;
    if (stat(dir, &st) < 0)
        rc = err_set(e, ERR_IO, "cannot create results file %s: directory %s: %s", path, dir,
                     strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        rc = err_set(e, ERR_IO, "cannot create results file %s: %s is not a directory", path,
                     dir);
    else if (access(dir, W_OK | X_OK) < 0)
        rc = err_set(e, ERR_IO, "cannot create results file %s: directory %s is not writable: %s",
                     path, dir, strerror(errno));
    free(d);
    return rc;
}

/* A journal record is safe from a killed process once write() returns (the
 * kernel owns the data); fdatasync adds safety against a node crash or power
 * loss. Syncing every record caps a sweep near 200 rows/s on a disk that takes
 * 5 ms a sync, so appends sync at most every JOURNAL_SYNC_S seconds (and at
 * close): a node crash may lose the rows of the last second, a kill none. */
#define JOURNAL_SYNC_S 1.0

/* H5Fflush costs milliseconds (HDF5 1.10 walks its metadata cache), more than
 * a short run's whole row: when rows arrive faster than every FLUSH_S the
 * flush waits for results_flush (the scheduler calls it when idle) or the
 * next append after FLUSH_S. The journal already holds every row; readers of
 * a running sweep see rows at most FLUSH_S late. */
#define FLUSH_S 0.05
static int flush_file(results *f, err *e);

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void res_add_note(results *f, const char *fmt, const char *a, const char *b)
{
    size_t n = strlen(f->note);
    if (n && n + 2 < sizeof f->note) {
        memcpy(f->note + n, "; ", 3);
        n += 2;
    }
    snprintf(f->note + n, sizeof f->note - n, fmt, a, b);
}

results *res_new(const char *path)
{
    results *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->jfd = -1;
    h5w_init(&f->w);
    layout_init(&f->lay, NULL);
    layout_init_evals(&f->elay, NULL);
    f->path = res_dup_str(path);
    f->jpath = f->path ? res_cat_str(path, ".journal") : NULL;
    if (!f->path || !f->jpath) {
        free(f->path);
        free(f->jpath);
        free(f);
        return NULL;
    }
    return f;
}

void res_free(results *f)
{
    if (!f)
        return;
    h5w_close(&f->w);
    if (f->jfd >= 0)
        close(f->jfd);
    sweep_rec_free(&f->first);
    sweep_rec_free(&f->last);
    sweep_rec_free(&f->pending);
    free(f->rec);
    free(f->att);
    free(f->ev);
    free(f->path);
    free(f->jpath);
    free(f);
}

static int meta_ok(const results_meta *m, err *e)
{
    if (!m || !m->sweep_name || !m->sweep_yaml)
        return err_set(e, ERR_INPUT, "results: the sweep name and YAML are required");
    return 0;
}

/* Remember meta's YAML for the first append when it is not the last one. */
static int set_pending(results *f, const results_meta *meta, err *e)
{
    if (!meta || !meta->sweep_yaml)
        return 0;
    char now[TIME_LEN];
    res_iso_now(now, sizeof now);
    sweep_rec s;
    if (sweep_rec_from_meta(&s, meta, now) < 0)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (sweep_rec_same(&s, &f->last)) {
        sweep_rec_free(&s);
        return 0;
    }
    sweep_rec_free(&f->pending);
    f->pending = s;
    f->has_pending = 1;
    return 0;
}

void res_layout_for_first(results *f)
{
    layout_init(&f->lay, f->first.data);
    layout_init_evals(&f->elay, f->first.data);
}

/* A file holds one data set's results: meta's (the sweep's) must be the file's. */
static int same_data(const results *f, const results_meta *meta, err *e)
{
    const char *want = meta && meta->data_name ? meta->data_name : "dsprites";
    if (!meta || strcmp(want, f->lay.data) == 0)
        return 0;
    return err_set(e, ERR_INPUT,
                   "%s holds results of the data set %s, this sweep's is %s: one data set per "
                   "results file (write to another file)",
                   f->path, f->lay.data, want);
}

/* ---- public: create, open, append, close ------------------------------------------ */

static int do_open(results *f, const results_meta *meta, err *e)
{
    int rc;
    if (!res_path_exists(f->jpath)) {
        if (!res_path_exists(f->path))
            return err_set(e, ERR_IO, "cannot open results file %s: %s", f->path,
                           strerror(ENOENT));
        if ((rc = recover_journal_from_file(f, e)) < 0)
            return rc;
    }
    if ((rc = journal_open(f, e)) < 0 || (rc = journal_scan(f, e)) < 0)
        return rc;
    /* an empty or garbage journal (its bytes, if any, copied aside by the
     * scan) beside an intact file: rewritten from the file */
    if (!f->has_first && res_path_exists(f->path) && (rc = recover_journal_lost(f, e)) < 0)
        return rc;
    if (!f->has_first)
        return err_set(e, ERR_INPUT,
                       "%s: its journal %s has no header record and there is no file: nothing "
                       "was recorded (killed during creation?); remove the journal to start again",
                       f->path, f->jpath);
    if ((rc = same_data(f, meta, e)) < 0 || (rc = recover_and_open(f, e)) < 0)
        return rc;
    return set_pending(f, meta, e);
}

int results_open(results **out, const char *path, const results_meta *meta, err *e)
{
    h5util_quiet q;
    h5util_quiet_begin(&q);
    int rc = 0;
    results *f = NULL;
    if (!path || !*path) {
        rc = err_set(e, ERR_INPUT, "results: empty path");
        goto done;
    }
    if (!(f = res_new(path))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = do_open(f, meta, e)) < 0)
        goto done;
    *out = f;
    f = NULL;
done:
    res_free(f);
    h5util_quiet_end(&q);
    return rc;
}

/* A journal without its file at create: a kill during a rebuild (same sweep:
 * recover the file from it, *mine = 1, *fp open) or a leftover of something
 * else (moved aside to PATH.journal.orphan-N; *fp is a fresh object). */
static int orphan_journal(results **fp, const results_meta *meta, int *mine, err *e)
{
    results *f = *fp;
    char aside[4200];
    err e2;
    err_clear(&e2);
    *mine = journal_open(f, &e2) == 0 && journal_scan(f, &e2) == 0 && f->has_first &&
            f->first.hash == meta->sweep_hash && strcmp(f->first.name, meta->sweep_name) == 0;
    if (*mine) {
        res_add_note(f, "recovered %s from its journal %s", f->path, f->jpath);
        int rc = recover_and_open(f, e);
        return rc < 0 ? rc : set_pending(f, meta, e);
    }
    if (e2.code == ERR_IO && strstr(e2.msg, "in use"))
        return err_set(e, e2.code, "%s", e2.msg);
    char *path = res_dup_str(f->path);
    res_free(f);
    *fp = f = path ? res_new(path) : NULL;
    free(path);
    if (!f)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (res_move_free(f->jpath, f->jpath, "orphan", aside, sizeof aside) < 0)
        return err_set(e, ERR_IO, "cannot move the stale journal %s aside: %s", f->jpath,
                       strerror(errno));
    res_add_note(f, "moved a journal without its file (another sweep's) aside to %s%s", aside, "");
    return 0;
}

int results_create(results **out, const char *path, const results_meta *meta, err *e)
{
    h5util_quiet q;
    h5util_quiet_begin(&q);
    int rc = 0, made = 0;
    results *f = NULL;
    sweep_rec s;
    memset(&s, 0, sizeof s);
    char now[TIME_LEN];
    if (!path || !*path) {
        rc = err_set(e, ERR_INPUT, "results: empty path");
        goto done;
    }
    if ((rc = meta_ok(meta, e)) < 0 || (rc = res_check_dir(path, e)) < 0)
        goto done;
    if (res_path_exists(path)) {
        rc = err_set(e, ERR_IO, "cannot create results file %s: %s", path, strerror(EEXIST));
        goto done;
    }
    if (!(f = res_new(path))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    if (res_path_exists(f->jpath)) {
        int mine = 0;
        if ((rc = orphan_journal(&f, meta, &mine, e)) < 0)
            goto done;
        if (mine) {
            *out = f;
            f = NULL;
            goto done;
        }
    }
    res_iso_now(now, sizeof now);
    if (sweep_rec_from_meta(&s, meta, now) < 0) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = journal_create(f, e)) < 0)
        goto done;
    made = 1;
    if ((rc = journal_put_sweep(f, REC_META, &s, e)) < 0 || (rc = journal_sync(f, e)) < 0)
        goto done;
    res_sync_dir(f->jpath);
    if ((rc = recover_build_file(f, e)) < 0)
        goto done;
    made = 2; /* the file at path is ours */
    if ((rc = h5w_open(&f->w, f->path, &f->lay, e)) < 0)
        goto done;
    *out = f;
    f = NULL;
done:
    if (rc < 0 && made) {
        /* nothing of value was written (no attempt yet): leave nothing behind */
        char *tmp = res_cat_str(f->path, ".rebuild");
        if (tmp)
            unlink(tmp);
        free(tmp);
        if (made == 2)
            unlink(f->path);
        unlink(f->jpath);
    }
    sweep_rec_free(&s);
    res_free(f);
    h5util_quiet_end(&q);
    return rc;
}

int results_last_evaluation(const results *f, const char *run_id)
{
    int last = 0;
    for (size_t i = 0; i < f->n_ev; i++)
        if (strcmp(f->ev[i].run_id, run_id) == 0 && f->ev[i].evaluation > last)
            last = f->ev[i].evaluation;
    return last;
}

/* (run_id, attempt) of a training row, or (run_id, evaluation) of a
 * re-evaluation, is in the journal already. */
int res_recorded(const results *f, const results_row *row)
{
    if (row->evaluation > 0) {
        for (size_t i = 0; i < f->n_ev; i++)
            if (strcmp(f->ev[i].run_id, row->run_id) == 0 &&
                f->ev[i].evaluation == row->evaluation)
                return 1;
        return 0;
    }
    for (size_t i = 0; i < f->n_att; i++)
        if (strcmp(f->att[i].run_id, row->run_id) == 0 && f->att[i].attempt == row->attempt)
            return 1;
    return 0;
}

int results_append(results *f, const results_row *row, const run_config *c, const run_result *r,
                   err *e)
{
    h5util_quiet q;
    h5util_quiet_begin(&q);
    int rc = 0;
    bytes b = {0};
    if (f->broken) {
        rc = err_set(e, ERR_HDF5, "%s: an earlier write failed; reopen the file to rebuild it",
                     f->path);
        goto done;
    }
    if (row->index < 0 || row->attempt < 1) {
        rc = err_set(e, ERR_INPUT,
                     "%s: invalid attempt: index %ld, attempt %d (must be >= 0, >= 1)", f->path,
                     row->index, row->attempt);
        goto done;
    }
    if (r->status < RUN_OK || r->status > RUN_INTERRUPTED) {
        rc = err_set(e, ERR_INPUT, "%s: invalid attempt %ld_%d: status %d is not a final status",
                     f->path, row->index, row->attempt, r->status);
        goto done;
    }
    if (r->n_units < 0 || (r->n_units > 0 && !r->mi)) {
        rc = err_set(e, ERR_INPUT, "%s: invalid attempt %ld_%d: %d units without an mi matrix",
                     f->path, row->index, row->attempt, r->n_units);
        goto done;
    }
    if (strcmp(c->name, f->lay.data) != 0) {
        rc = err_set(e, ERR_INPUT, "%s: invalid attempt %ld_%d: data set %s, the file holds %s",
                     f->path, row->index, row->attempt, c->name, f->lay.data);
        goto done;
    }
    if (r->n_units > 0 && r->n_factors != f->lay.K) {
        rc = err_set(e, ERR_INPUT, "%s: invalid attempt %ld_%d: an mi matrix of %d factors, %s "
                     "has %d",
                     f->path, row->index, row->attempt, r->n_factors, f->lay.data, f->lay.K);
        goto done;
    }
    const int ev = row->evaluation > 0;
    if (res_recorded(f, row)) {
        rc = err_set(e, ERR_INPUT, "%s: run %s %s %d is already recorded", f->path, row->run_id,
                     ev ? "evaluation" : "attempt", ev ? row->evaluation : row->attempt);
        goto done;
    }
    /* 1. the journal: the record of truth, synced */
    off_t jlen0 = f->jlen;
    size_t n_rec0 = f->n_rec;
    if ((rc = ev ? journal_enc_eval(&b, row, c, r, e) : journal_enc_row(&b, row, c, r, e)) < 0)
        goto done;
    if (f->has_pending && (rc = journal_put_sweep(f, REC_SWEEP, &f->pending, e)) < 0)
        goto done;
    int sync = mono_s() - f->last_sync >= JOURNAL_SYNC_S;
    if ((rc = journal_put(f, ev ? REC_EVAL : REC_ROW, &b, sync, e)) < 0) {
        if (f->n_rec != n_rec0 && ftruncate(f->jfd, jlen0) == 0) { /* the SWEEP record */
            fdatasync(f->jfd);
            f->jlen = jlen0;
            f->n_rec = n_rec0;
        }
        goto done;
    }
    if (sync)
        f->last_sync = mono_s();
    if ((ev ? journal_note_eval(f, row) : journal_note_attempt(f, row, c, r)) < 0) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    /* 2. the HDF5 file, flushed */
    if (f->has_pending) {
        f->has_pending = 0;
        if ((rc = h5w_add_sweep(&f->w, &f->pending, f->path, e)) < 0)
            goto hfail;
    }
    if ((rc = ev ? h5w_add_eval(&f->w, &f->elay, row, c, r, f->path, e)
                 : h5w_add_run(&f->w, &f->lay, row, c, r, f->path, e)) < 0)
        goto hfail;
    f->unflushed++;
    if (mono_s() - f->last_flush >= FLUSH_S && (rc = flush_file(f, e)) < 0)
        goto hfail;
    goto done;
hfail:
    f->broken = 1;
    err_prefix(e, "the attempt is kept in %s and the file will be rebuilt when reopened; ",
               f->jpath);
done:
    bytes_free(&b);
    h5util_quiet_end(&q);
    return rc;
}

const results_attempt *results_attempts(const results *f, size_t *n)
{
    *n = f->n_att;
    return f->att;
}

int results_attempt_row(const results *f, size_t i, results_row *row, run_config *c,
                        run_result *r, err *e)
{
    size_t k = 0, rec = 0; /* attempts are the ROW records, in order */
    for (; rec < f->n_rec; rec++)
        if (f->rec[rec].type == REC_ROW && k++ == i)
            break;
    if (rec == f->n_rec)
        return err_set(e, ERR_INTERNAL, "%s: attempt %zu of %zu", f->jpath, i, f->n_att);
    uint8_t *p = NULL;
    int rc = journal_read(f, rec, &p, e);
    run_result_free(r);
    if (rc == 0 && journal_dec_row(p, f->rec[rec].len, row, c, r) < 0)
        rc = err_set(e, ERR_INTERNAL, "%s: record %zu no longer decodes", f->jpath, rec);
    free(p);
    return rc;
}

void res_hdf5_version(char *buf, size_t n)
{
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    snprintf(buf, n, "%u.%u.%u", maj, min, rel);
}

const char *results_library_version(char *buf, size_t n)
{
    char v[64];
    res_hdf5_version(v, sizeof v);
    snprintf(buf, n, "HDF5 %s", v);
    return buf;
}

const char *results_sweep_name(const results *f) { return f->first.name; }
uint64_t results_sweep_hash(const results *f) { return f->first.hash; }
const char *results_sweep_yaml(const results *f) { return f->first.yaml; }
const char *results_recovery(const results *f) { return f->note; }

static int flush_file(results *f, err *e)
{
    if (H5Fflush(f->w.file, H5F_SCOPE_LOCAL) < 0)
        return h5util_err(e, "flushing", f->path);
    f->unflushed = 0;
    f->last_flush = mono_s();
    return 0;
}

int results_flush(results *f, err *e)
{
    if (!f || !f->unflushed || f->broken || f->w.file < 0)
        return 0;
    h5util_quiet q;
    h5util_quiet_begin(&q);
    int rc = flush_file(f, e);
    if (rc < 0)
        f->broken = 1;
    h5util_quiet_end(&q);
    return rc;
}

int results_close(results *f, err *e)
{
    if (!f)
        return 0;
    h5util_quiet q;
    h5util_quiet_begin(&q);
    int rc = 0;
    if (f->jfd >= 0 && fdatasync(f->jfd) < 0)
        rc = err_set(e, ERR_IO, "%s: fdatasync: %s", f->jpath, strerror(errno));
    if (f->w.file >= 0 && !f->broken && H5Fflush(f->w.file, H5F_SCOPE_LOCAL) < 0)
        rc = h5util_err(e, "flushing", f->path);
    h5w_close(&f->w);
    res_free(f);
    h5util_quiet_end(&q);
    return rc;
}
