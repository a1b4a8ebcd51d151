/* reader.c: a results file read back (results_reader_*, and recovery and
 * merge through reader_open / reader_get): the root attributes, /sweeps, the
 * valid rows of /runs (all-zero rows that a kill left are skipped), /curves
 * sorted by attempt, and a row's /detail group on demand. The layout is
 * described in results_impl.h. */
#include "results_impl.h"

#include "untangle/data.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A string attribute, variable or fixed length, as a malloc'd string. */
static int attr_get_str(hid_t loc, const char *name, char **out)
{
    int rc = -1;
    hid_t a = H5I_INVALID_HID, ft = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    char *s = NULL;
    if ((a = H5Aopen(loc, name, H5P_DEFAULT)) < 0 || (ft = H5Aget_type(a)) < 0 ||
        H5Tget_class(ft) != H5T_STRING)
        goto done;
    if (H5Tis_variable_str(ft) > 0) {
        char *v = NULL;
        if ((mt = res_str_type(H5T_VARIABLE)) < 0 || H5Aread(a, mt, &v) < 0)
            goto done;
        s = res_dup_str(v);
        H5free_memory(v);
    } else {
        size_t n = H5Tget_size(ft);
        if (n == 0 || n > (1u << 26) || (mt = res_str_type(n + 1)) < 0 || !(s = calloc(n + 1, 1)) ||
            H5Aread(a, mt, s) < 0)
            goto done;
    }
    if (!s)
        goto done;
    *out = s;
    s = NULL;
    rc = 0;
done:
    free(s);
    h5util_close(mt);
    h5util_close(ft);
    h5util_close(a);
    return rc;
}

/* Read the dataset name of loc (rank dims, element type memtype) into a
 * malloc'd buffer; dims gets its shape. Absent: 1 with *out NULL. */
static int ds_get(hid_t loc, const char *name, hid_t memtype, int rank, hsize_t *dims,
                  hsize_t max_elems, void **out)
{
    *out = NULL;
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return 1;
    int rc = -1;
    hid_t ds = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    void *buf = NULL;
    if ((ds = H5Dopen2(loc, name, H5P_DEFAULT)) < 0 || (sp = H5Dget_space(ds)) < 0 ||
        H5Sget_simple_extent_ndims(sp) != rank || H5Sget_simple_extent_dims(sp, dims, NULL) < 0)
        goto done;
    hsize_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] > max_elems)
            goto done;
        n *= dims[i];
    }
    if (n > max_elems || !(buf = malloc(n ? n * H5Tget_size(memtype) : 1)))
        goto done;
    if (n && H5Dread(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        goto done;
    *out = buf;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    h5util_close(sp);
    h5util_close(ds);
    return rc;
}

static int cmp_curve(const void *a, const void *b)
{
    const curve_row *x = a, *y = b;
    int c = strncmp(x->run_id, y->run_id, RUN_ID_LEN);
    if (c)
        return c < 0 ? -1 : 1;
    if (x->attempt != y->attempt)
        return x->attempt < y->attempt ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

void reader_free(results_reader *r)
{
    if (!r)
        return;
    h5util_close(r->detail);
    h5util_close(r->file);
    free(r->rows);
    free(r->erows);
    free(r->curves);
    sweep_rec_free(&r->root);
    for (size_t i = 0; i < r->n_sw; i++)
        sweep_rec_free(&r->sw[i]);
    free(r->sw);
    free(r->swm);
    free(r->path);
    free(r);
}

static int read_root(results_reader *r, err *e)
{
    int32_t fmt = 0;
    hid_t a = H5I_INVALID_HID;
    if (H5Aexists(r->file, "format_version") <= 0 ||
        (a = H5Aopen(r->file, "format_version", H5P_DEFAULT)) < 0 ||
        H5Aread(a, H5T_NATIVE_INT32, &fmt) < 0) {
        h5util_close(a);
        return err_set(e, ERR_INPUT, "%s is not an untangle results file (no format_version "
                       "attribute)", r->path);
    }
    h5util_close(a);
    if (fmt < 1 || fmt > RESULTS_FORMAT_VERSION)
        return err_set(e, ERR_INPUT, "%s has results format %d; this untangle reads format %d",
                       r->path, (int)fmt, RESULTS_FORMAT_VERSION);
    sweep_rec *s = &r->root;
    s->format = (uint32_t)fmt;
    if ((a = H5Aopen(r->file, "sweep_hash", H5P_DEFAULT)) < 0 ||
        H5Aread(a, H5T_NATIVE_UINT64, &s->hash) < 0 ||
        attr_get_str(r->file, "untangle_version", &s->untangle_version) < 0 ||
        attr_get_str(r->file, "sweep_name", &s->name) < 0 ||
        attr_get_str(r->file, "sweep_yaml", &s->yaml) < 0 ||
        attr_get_str(r->file, "created", &s->time) < 0 ||
        attr_get_str(r->file, "hdf5_version", &s->hdf5_version) < 0 ||
        attr_get_str(r->file, "library_versions", &s->libs) < 0) {
        h5util_close(a);
        return h5util_err(e, "reading the root attributes of", r->path);
    }
    h5util_close(a);
    /* data_name: absent from files before data sets (dSprites') */
    if (H5Aexists(r->file, "data_name") > 0) {
        if (attr_get_str(r->file, "data_name", &s->data) < 0)
            return h5util_err(e, "reading the root attributes of", r->path);
        if (strcmp(s->data, "dsprites") == 0) {
            free(s->data);
            s->data = NULL;
        }
    }
    layout_init(&r->lay, s->data);
    layout_init_evals(&r->elay, s->data);
    sweep_rec_meta(s, &r->meta);
    return 0;
}

static int read_sweeps(results_reader *r, err *e)
{
    int rc = 0;
    hid_t ds = H5I_INVALID_HID, mt = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    sweep_row *rows = NULL;
    hsize_t n = 0;
    if (H5Lexists(r->file, "sweeps", H5P_DEFAULT) <= 0) {
        rc = err_set(e, ERR_INPUT, "%s is not an untangle results file (no /sweeps)", r->path);
        goto done;
    }
    if ((ds = H5Dopen2(r->file, "sweeps", H5P_DEFAULT)) < 0 || (mt = sweep_type(0)) < 0 ||
        (sp = H5Dget_space(ds)) < 0 || H5Sget_simple_extent_dims(sp, &n, NULL) < 0) {
        rc = h5util_err(e, "reading /sweeps of", r->path);
        goto done;
    }
    if (n > 100000 || !(rows = calloc(n ? n : 1, sizeof *rows)) ||
        !(r->sw = calloc(n ? n : 1, sizeof *r->sw)) ||
        !(r->swm = calloc(n ? n : 1, sizeof *r->swm))) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory reading /sweeps", r->path);
        goto done;
    }
    if (n && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0) {
        rc = h5util_err(e, "reading /sweeps of", r->path);
        free(rows);
        rows = NULL;
        goto done;
    }
    for (hsize_t i = 0; i < n; i++) {
        sweep_rec *s = &r->sw[i];
        s->format = r->root.format;
        s->hash = rows[i].sweep_hash;
        rows[i].opened[TIME_LEN - 1] = rows[i].sweep_name[NAME_LEN - 1] = '\0';
        rows[i].untangle_version[VERSION_LEN - 1] = '\0';
        s->time = res_dup_str(rows[i].opened);
        s->name = res_dup_str(rows[i].sweep_name);
        s->untangle_version = res_dup_str(rows[i].untangle_version);
        s->libs = res_dup_str(rows[i].library_versions);
        s->yaml = res_dup_str(rows[i].sweep_yaml);
        s->hdf5_version = res_dup_str(r->root.hdf5_version);
        r->n_sw++;
        if (!s->time || !s->name || !s->untangle_version || !s->libs || !s->yaml ||
            !s->hdf5_version) {
            rc = err_set(e, ERR_NOMEM, "%s: out of memory reading /sweeps", r->path);
            break;
        }
        sweep_rec_meta(s, &r->swm[i]);
    }
    H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, rows);
done:
    free(rows);
    h5util_close(sp);
    h5util_close(mt);
    h5util_close(ds);
    return rc;
}

/* The valid rows of the table name (/runs or /evals) with layout L, the
 * columns present in the file, whether its type is exactly L's. */
typedef struct table {
    const char *name;
    const layout *L;
    int *present;
    uint8_t **rows;
    size_t *n, *n_skipped;
    int *same_layout;
} table;

static int read_table(results_reader *r, const table *t, err *e)
{
    int rc = 0;
    const layout *L = t->L;
    int *present = t->present;
    hid_t ds = H5I_INVALID_HID, ft = H5I_INVALID_HID, mt = H5I_INVALID_HID, full = H5I_INVALID_HID;
    hsize_t n = 0;
    uint8_t *all = NULL;
    if ((ds = H5Dopen2(r->file, t->name, H5P_DEFAULT)) < 0 || (ft = H5Dget_type(ds)) < 0 ||
        H5Tget_class(ft) != H5T_COMPOUND) {
        rc = h5util_err(e, t->name[0] == 'r' ? "opening /runs of" : "opening /evals of", r->path);
        goto done;
    }
    for (size_t i = 0; i < L->n; i++) {
        int idx = H5Tget_member_index(ft, L->c[i].name);
        if (idx < 0)
            continue;
        H5T_class_t cls = H5Tget_member_class(ft, (unsigned)idx);
        H5T_class_t want = L->c[i].kind == COL_STR   ? H5T_STRING
                           : L->c[i].kind == COL_F64 ? H5T_FLOAT
                                                     : H5T_INTEGER;
        present[i] = cls == want;
    }
    if (!present[L->status_col]) {
        rc = err_set(e, ERR_INPUT, "%s is not an untangle results file (/%s has no status)",
                     r->path, t->name);
        goto done;
    }
    if ((full = layout_type(L, NULL)) < 0 || (mt = layout_type(L, present)) < 0) {
        rc = h5util_err(e, "building the row type for", r->path);
        goto done;
    }
    *t->same_layout = H5Tequal(full, ft) > 0;
    n = res_ds_len(ds);
    if (n > ((size_t)1 << 40) / L->size || !(all = malloc(n ? n * L->size : 1))) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory reading /%s (%llu rows)", r->path,
                     t->name, (unsigned long long)n);
        goto done;
    }
    memset(all, 0, n * L->size);
    if (n && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, all) < 0) {
        rc = h5util_err(e, t->name[0] == 'r' ? "reading /runs of" : "reading /evals of", r->path);
        goto done;
    }
    /* A row is valid when its status is not empty (a kill can leave rows of
     * zeros at the end): keep the valid ones, in order. */
    size_t soff = L->c[L->status_col].off, *nv = t->n;
    for (hsize_t i = 0; i < n; i++) {
        const uint8_t *row = all + i * L->size;
        if (row[soff] == 0) {
            (*t->n_skipped)++;
            continue;
        }
        if (*nv != i)
            memcpy(all + *nv * L->size, row, L->size);
        (*nv)++;
    }
    *t->rows = all;
    all = NULL;
done:
    free(all);
    h5util_close(full);
    h5util_close(mt);
    h5util_close(ft);
    h5util_close(ds);
    return rc;
}

/* /runs (required) and /evals (when the file has it). */
static int read_runs(results_reader *r, err *e)
{
    if (H5Lexists(r->file, "runs", H5P_DEFAULT) <= 0)
        return err_set(e, ERR_INPUT, "%s is not an untangle results file (no /runs)", r->path);
    table runs = {"runs", &r->lay, r->present, &r->rows, &r->n, &r->n_skipped, &r->same_layout};
    int rc = read_table(r, &runs, e), same = 0;
    if (rc < 0 || H5Lexists(r->file, "evals", H5P_DEFAULT) <= 0)
        return rc;
    table evals = {"evals", &r->elay, r->epresent, &r->erows, &r->n_ev, &r->n_ev_skipped, &same};
    return read_table(r, &evals, e);
}

static int read_curves(results_reader *r, err *e)
{
    int rc = 0;
    hid_t ds = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    if (H5Lexists(r->file, "curves", H5P_DEFAULT) <= 0)
        return 0;
    if ((ds = H5Dopen2(r->file, "curves", H5P_DEFAULT)) < 0 || (mt = curve_type(0)) < 0) {
        rc = h5util_err(e, "opening /curves of", r->path);
        goto done;
    }
    hsize_t n = res_ds_len(ds);
    if (n > ((size_t)1 << 40) / sizeof(curve_row) ||
        !(r->curves = calloc(n ? n : 1, sizeof *r->curves))) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory reading /curves", r->path);
        goto done;
    }
    if (n && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, r->curves) < 0) {
        rc = h5util_err(e, "reading /curves of", r->path);
        goto done;
    }
    for (hsize_t i = 0; i < n; i++) {
        r->curves[i].pos = i;
        r->curves[i].name[CURVE_NAME_LEN - 1] = '\0';
    }
    r->n_curves = n;
    qsort(r->curves, n, sizeof *r->curves, cmp_curve);
done:
    h5util_close(mt);
    h5util_close(ds);
    return rc;
}

static int open_file(results_reader **out, const char *path, err *e);

/* HDF5 1.10 trusts what a file says in places that no check before the open
 * reaches: a variable-length string whose global-heap reference names an
 * object its collection does not hold sends H5HG_read through a wild pointer
 * (SIGSEGV; tests/fuzz/fuzz_results.c found it in a root attribute). So a
 * child process reads the file first, as fully as any caller will (the root,
 * /sweeps, /runs, /evals, /curves, every row's detail), and always exits 0
 * on its own, whatever it found: a child killed by a signal (its fatal
 * signals are reset to their default), or ended by a runtime's non-zero
 * exit, means the read crashed, and the file is damaged
 * (why says how). A read that merely fails is left to the caller's own open,
 * which reports it. When no child can be made (fork fails), the caller reads
 * unprobed, as before the probe existed. */
static int probe_read(const char *path, char *why, size_t n)
{
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return 0;
    if (pid == 0) {
        /* a crash must end the child, never run a handler of the parent's
         * (a test framework's longjmp, a sanitizer's report) */
        static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
        for (size_t k = 0; k < sizeof fatal / sizeof fatal[0]; k++)
            signal(fatal[k], SIG_DFL);
        /* The child holds none of the parent's files: the journal's flock
         * (one writer per file) lives as long as any copy of its descriptor,
         * so a child still reading after its parent was killed would keep
         * the next writer out. And it dies with its parent. */
        close_range(3, ~0u, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0);
        results_reader *r = NULL;
        err e;
        err_clear(&e);
        h5util_quiet q;
        h5util_quiet_begin(&q);
        if (open_file(&r, path, &e) == 0) {
            for (size_t i = 0; i < r->n + r->n_ev; i++) {
                results_row row;
                run_config c;
                run_result res;
                run_result_init(&res);
                int found;
                if (i < r->n)
                    reader_get(r, i, &row, &c, &res, &found, &e);
                else
                    reader_get_eval(r, i - r->n, &row, &c, &res, &found, &e);
                run_result_free(&res);
            }
        }
        _exit(0); /* no atexit handlers, no stdio flush: the parent's state is its own */
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    if (WIFSIGNALED(st))
        snprintf(why, n, "reading it crashed the HDF5 library (signal %d, %s): the file is damaged",
                 WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(why, n, "reading it crashed the HDF5 library (exit status %d): the file is "
                 "damaged", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return -1;
}

int reader_open(results_reader **out, const char *path, err *e)
{
    struct stat st;
    char why[300];
    if (stat(path, &st) < 0)
        return err_set(e, ERR_IO, "cannot open results file %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return err_set(e, ERR_INPUT, "%s is not a results file (not a regular file)", path);
    if (h5util_heaps_sane(path, why, sizeof why) < 0) /* before HDF5 loops on it */
        return err_set(e, ERR_HDF5, "cannot open %s: %s", path, why);
    if (probe_read(path, why, sizeof why) < 0)
        return err_set(e, ERR_HDF5, "cannot open %s: %s", path, why);
    return open_file(out, path, e);
}

/* reader_open once the file passed its checks (the probe's child calls it). */
static int open_file(results_reader **out, const char *path, err *e)
{
    int rc = 0;
    hid_t fapl = H5I_INVALID_HID;
    results_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = res_dup_str(path))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    r->file = r->detail = H5I_INVALID_HID;
    layout_init(&r->lay, NULL); /* then the file's data set's, in read_root */
    layout_init_evals(&r->elay, NULL);
    if ((fapl = res_make_fapl(0)) < 0 || (r->file = H5Fopen(path, H5F_ACC_RDONLY, fapl)) < 0) {
        char msg[600];
        h5util_message(msg, sizeof msg);
        if (H5Fis_hdf5(path) == 0)
            rc = err_set(e, ERR_INPUT, "%s is not an HDF5 file (so not an untangle results file)",
                         path);
        else if (strstr(msg, "unable to lock"))
            rc = err_set(e, ERR_IO, "cannot open %s: it is locked by another process (%s)", path,
                         msg);
        else
            rc = err_set(e, ERR_HDF5, "cannot open %s: %s", path, msg);
        goto done;
    }
    if ((rc = read_root(r, e)) < 0 || (rc = read_sweeps(r, e)) < 0 ||
        (rc = read_runs(r, e)) < 0 || (rc = read_curves(r, e)) < 0)
        goto done;
    if (H5Lexists(r->file, "detail", H5P_DEFAULT) > 0 &&
        (r->detail = H5Gopen2(r->file, "detail", H5P_DEFAULT)) < 0) {
        rc = h5util_err(e, "opening /detail of", path);
        goto done;
    }
    *out = r;
    r = NULL;
done:
    h5util_close(fapl);
    reader_free(r);
    return rc;
}

/* The curves of row's (run_id, attempt): a run of the sorted array. */
static int get_curves(const results_reader *rd, const results_row *row, run_result *r, err *e)
{
    size_t lo = 0, hi = rd->n_curves;
    curve_row key = {.attempt = row->attempt, .pos = 0};
    memcpy(key.run_id, row->run_id, RUN_ID_LEN);
    key.run_id[RUN_ID_LEN - 1] = '\0';
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_curve(&rd->curves[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < rd->n_curves && strcmp(rd->curves[lo].run_id, key.run_id) == 0 &&
           rd->curves[lo].attempt == row->attempt;
         lo++) {
        int rc = run_result_add_curve(r, (long)rd->curves[lo].step, rd->curves[lo].name,
                                      rd->curves[lo].value, e);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The /detail group of row (named by run_id, attempt and, for a
 * re-evaluation, evaluation) into r, when it exists. */
static int get_detail(results_reader *rd, const results_row *row, run_result *r,
                      int *found_detail, err *e)
{
    int rc = 0;
    hid_t g = H5I_INVALID_HID;
    void *buf = NULL;
    *found_detail = 0;
    char name[64];
    if (row->evaluation > 0)
        snprintf(name, sizeof name, "%.16s_%d_e%d", row->run_id, row->attempt, row->evaluation);
    else
        snprintf(name, sizeof name, "%.16s_%d", row->run_id, row->attempt);
    if (rd->detail < 0 || H5Lexists(rd->detail, name, H5P_DEFAULT) <= 0)
        goto done;
    if ((g = H5Gopen2(rd->detail, name, H5P_DEFAULT)) < 0)
        goto h5fail;
    *found_detail = 1;
    hsize_t d[2] = {0, 0};
    int got;
    const hsize_t K = (hsize_t)rd->lay.K; /* the file's data set's factors */
    r->n_factors = (int)K;
    if ((got = ds_get(g, "mig", H5T_NATIVE_DOUBLE, 1, d, K, &buf)) < 0 ||
        (got == 0 && d[0] != K))
        goto h5fail;
    if (buf)
        memcpy(r->mig_factor, buf, sizeof(double) * K);
    free(buf);
    buf = NULL;
    if ((got = ds_get(g, "swap_acc", H5T_NATIVE_DOUBLE, 1, d, K, &buf)) < 0 ||
        (got == 0 && d[0] != K))
        goto h5fail;
    if (buf)
        memcpy(r->swap_factor, buf, sizeof(double) * K);
    free(buf);
    buf = NULL;
    if ((got = ds_get(g, "mi", H5T_NATIVE_FLOAT, 2, d, (hsize_t)MAX_UNITS * K, &buf)) < 0 ||
        (got == 0 && (d[1] != K || d[0] > MAX_UNITS)))
        goto h5fail;
    if (buf) {
        r->mi = buf;
        r->n_units = (int)d[0];
        buf = NULL;
    }
    if ((got = ds_get(g, "traversal", H5T_NATIVE_UINT8, 2, d, MAX_TRAVERSAL, &buf)) < 0 ||
        (got == 0 && (d[0] > INT_MAX || d[1] > INT_MAX)))
        goto h5fail;
    if (buf) {
        r->traversal = buf;
        r->trav_h = (int)d[0];
        r->trav_w = (int)d[1];
        buf = NULL;
    }
    goto done;
h5fail:
    rc = h5util_err(e, "reading /detail of", rd->path);
    err_prefix(e, "row %ld_%d: ", row->index, row->attempt);
done:
    free(buf);
    h5util_close(g);
    if (rc < 0)
        run_result_free(r);
    return rc;
}

int reader_get(results_reader *rd, size_t i, results_row *row, run_config *c, run_result *r,
               int *found_detail, err *e)
{
    int rc;
    if (i >= rd->n)
        return err_set(e, ERR_INTERNAL, "%s: row %zu of %zu", rd->path, i, rd->n);
    row_decode(&rd->lay, rd->rows + i * rd->lay.size, rd->present, row, c, r);
    if ((rc = get_curves(rd, row, r, e)) < 0 || (rc = get_detail(rd, row, r, found_detail, e)) < 0)
        run_result_free(r);
    return rc;
}

int reader_get_eval(results_reader *rd, size_t i, results_row *row, run_config *c,
                    run_result *r, int *found_detail, err *e)
{
    if (i >= rd->n_ev)
        return err_set(e, ERR_INTERNAL, "%s: /evals row %zu of %zu", rd->path, i, rd->n_ev);
    row_decode(&rd->elay, rd->erows + i * rd->elay.size, rd->epresent, row, c, r);
    return get_detail(rd, row, r, found_detail, e);
}

int results_reader_open(results_reader **out, const char *path, err *e)
{
    h5util_quiet q;
    h5util_quiet_begin(&q);
    int rc = reader_open(out, path, e);
    h5util_quiet_end(&q);
    return rc;
}

const results_meta *results_reader_meta(const results_reader *r) { return &r->meta; }
size_t results_reader_n_sweeps(const results_reader *r) { return r->n_sw; }
const results_meta *results_reader_sweep(const results_reader *r, size_t i)
{
    return i < r->n_sw ? &r->swm[i] : NULL;
}
size_t results_reader_count(const results_reader *r) { return r->n; }
size_t results_reader_skipped(const results_reader *r) { return r->n_skipped; }

int results_reader_row(results_reader *r, size_t i, results_row *row, run_config *c,
                       run_result *res, err *e)
{
    h5util_quiet q;
    h5util_quiet_begin(&q);
    int found;
    int rc = reader_get(r, i, row, c, res, &found, e);
    h5util_quiet_end(&q);
    return rc;
}

size_t results_reader_count_evals(const results_reader *r) { return r->n_ev; }

int results_reader_eval(results_reader *r, size_t i, results_row *row, run_config *c,
                        run_result *res, err *e)
{
    h5util_quiet q;
    h5util_quiet_begin(&q);
    int found;
    int rc = reader_get_eval(r, i, row, c, res, &found, e);
    h5util_quiet_end(&q);
    return rc;
}

void results_reader_close(results_reader *r)
{
    h5util_quiet q;
    h5util_quiet_begin(&q);
    reader_free(r);
    h5util_quiet_end(&q);
}
