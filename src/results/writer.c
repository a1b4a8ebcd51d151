/* writer.c: the HDF5 side of appending (h5w_*): creating a results file with
 * its root attributes and empty datasets, opening one for appending, and
 * writing an attempt's curves, detail group and /runs row. No flushing here
 * (results.c decides when). The layout is described in results_impl.h. */
#include "results_impl.h"

#include "untangle/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* File access: closing the file closes everything in it. Readers use HDF5's
 * file locking (ignored where the file system has none: Lustre, some NFS).
 * The writer does not: the flock on its journal already keeps a second
 * writer out, and without HDF5's lock an analysis notebook that holds the
 * file open with h5py does not block a resume. */
hid_t res_make_fapl(int writer)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return fapl;
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
#if H5_VERSION_GE(1, 10, 7)
    H5Pset_file_locking(fapl, writer ? 0 : 1, 1);
#else
    (void)writer;
#endif
    return fapl;
}

static int attr_put(hid_t loc, const char *name, hid_t type, const void *val)
{
    int rc = -1;
    hid_t sp = H5I_INVALID_HID, a = H5I_INVALID_HID;
    if ((sp = H5Screate(H5S_SCALAR)) < 0 ||
        (a = H5Acreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, type, val) < 0)
        goto done;
    rc = 0;
done:
    h5util_close(a);
    h5util_close(sp);
    return rc;
}

static int attr_put_str(hid_t loc, const char *name, const char *val)
{
    hid_t t = res_str_type(H5T_VARIABLE);
    const char *v = val ? val : "";
    int rc = t < 0 ? -1 : attr_put(loc, name, t, &v);
    h5util_close(t);
    return rc;
}

/* A 1-D extendible chunked dataset of type, empty. */
static hid_t ds_create(hid_t loc, const char *name, hid_t type, hsize_t chunk)
{
    hsize_t dim = 0, max = H5S_UNLIMITED;
    hid_t sp = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    if ((sp = H5Screate_simple(1, &dim, &max)) < 0 || (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 ||
        H5Pset_chunk(dcpl, 1, &chunk) < 0)
        goto done;
    ds = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
done:
    h5util_close(dcpl);
    h5util_close(sp);
    return ds;
}

/* Append count elements of buf to the 1-D dataset ds holding *n. */
static int ds_append(hid_t ds, hid_t memtype, hsize_t *n, hsize_t count, const void *buf)
{
    if (count == 0)
        return 0;
    int rc = -1;
    hsize_t newn = *n + count, start = *n;
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    if (H5Dset_extent(ds, &newn) < 0 || (fs = H5Dget_space(ds)) < 0 ||
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) < 0 ||
        (ms = H5Screate_simple(1, &count, NULL)) < 0 ||
        H5Dwrite(ds, memtype, ms, fs, H5P_DEFAULT, buf) < 0)
        goto done;
    *n = newn;
    rc = 0;
done:
    h5util_close(ms);
    h5util_close(fs);
    return rc;
}

/* A small contiguous dataset written at once. */
static int ds_put(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                  const void *data)
{
    int rc = -1;
    hid_t sp = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    if ((sp = H5Screate_simple(rank, dims, NULL)) < 0 ||
        (ds = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        goto done;
    rc = 0;
done:
    h5util_close(ds);
    h5util_close(sp);
    return rc;
}

/* ---- what Python reads from the file instead of copying C tables -------------- */

/* s as a JSON string (quoted, escaped). */
static void json_str(bytes *b, const char *s)
{
    bytes_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            bytes_put(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            bytes_put(b, esc, 6);
        } else {
            bytes_put(b, p, 1);
        }
    }
    bytes_put(b, "\"", 1);
}

/* {"names[0]": "values[0]", ...} as a NUL-terminated string in b. */
static void json_object(bytes *b, size_t n, const char *(*name)(size_t),
                        const char *(*value)(size_t))
{
    bytes_put(b, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            bytes_put(b, ", ", 2);
        json_str(b, name(i));
        bytes_put(b, ": ", 2);
        json_str(b, value(i));
    }
    bytes_put(b, "}", 2); /* with the NUL */
}

static const char *key_name(size_t i) { return run_keys[i].name; }
static const char *key_help(size_t i) { return run_keys[i].help; }
static const char *metric_name(size_t i) { return run_metric_names[i]; }
static const char *metric_unit(size_t i) { return run_metric_units[i]; }

/* The root attributes derived from this program (not from the journal):
 * key_help, metric_units, traversal_steps (results_impl.h). */
static int put_program_attrs(hid_t file)
{
    bytes help = {0}, units = {0}, steps = {0};
    json_object(&help, run_n_keys, key_name, key_help);
    json_object(&units, RUN_N_METRICS, metric_name, metric_unit);
    bytes_put(&steps, "[", 1);
    for (int i = 0; i < RUN_TRAV_STEPS; i++) {
        /* linspace(-L, L, n), as numpy computes it: -L + i * step */
        double step = 2.0 * RUN_TRAV_LIMIT / (RUN_TRAV_STEPS - 1);
        double v = i == RUN_TRAV_STEPS - 1 ? RUN_TRAV_LIMIT : -RUN_TRAV_LIMIT + i * step;
        char num[40];
        int len = snprintf(num, sizeof num, "%s%.17g", i ? ", " : "", v);
        bytes_put(&steps, num, (size_t)len);
    }
    bytes_put(&steps, "]", 2);
    int rc = help.fail || units.fail || steps.fail ||
                     attr_put_str(file, "key_help", (const char *)help.p) < 0 ||
                     attr_put_str(file, "metric_units", (const char *)units.p) < 0 ||
                     attr_put_str(file, "traversal_steps", (const char *)steps.p) < 0
                 ? -1
                 : 0;
    bytes_free(&help);
    bytes_free(&units);
    bytes_free(&steps);
    return rc;
}

/* ---- the writer ------------------------------------------------------------------ */

void h5w_init(h5w *w)
{
    memset(w, 0, sizeof *w);
    w->file = w->runs = w->curves = w->sweeps = w->detail = H5I_INVALID_HID;
    w->rtype = w->ctype = w->stype = H5I_INVALID_HID;
    w->evals = w->etype = H5I_INVALID_HID;
}

void h5w_close(h5w *w)
{
    h5util_close(w->runs);
    h5util_close(w->curves);
    h5util_close(w->sweeps);
    h5util_close(w->detail);
    h5util_close(w->rtype);
    h5util_close(w->ctype);
    h5util_close(w->stype);
    h5util_close(w->evals);
    h5util_close(w->etype);
    h5util_close(w->file);
    h5w_init(w);
}

static int h5w_types(h5w *w, const layout *L)
{
    w->rtype = layout_type(L, NULL);
    w->ctype = curve_type(0);
    w->stype = sweep_type(0);
    return w->rtype < 0 || w->ctype < 0 || w->stype < 0 ? -1 : 0;
}

hsize_t res_ds_len(hid_t ds)
{
    hsize_t n = 0;
    hid_t sp = H5Dget_space(ds);
    if (sp >= 0) {
        H5Sget_simple_extent_dims(sp, &n, NULL);
        H5Sclose(sp);
    }
    return n;
}

int h5w_add_sweep(h5w *w, const sweep_rec *s, const char *path, err *e)
{
    sweep_row row;
    memset(&row, 0, sizeof row);
    snprintf(row.opened, sizeof row.opened, "%s", s->time);
    snprintf(row.sweep_name, sizeof row.sweep_name, "%s", s->name);
    row.sweep_hash = s->hash;
    snprintf(row.untangle_version, sizeof row.untangle_version, "%s", s->untangle_version);
    row.library_versions = s->libs;
    row.sweep_yaml = s->yaml;
    if (ds_append(w->sweeps, w->stype, &w->n_sweeps, 1, &row) < 0)
        return h5util_err(e, "writing /sweeps in", path);
    return 0;
}

int h5w_create(h5w *w, const char *path, const layout *L, const sweep_rec *m, err *e)
{
    int rc = 0;
    hid_t fapl = H5I_INVALID_HID, ft = H5I_INVALID_HID;
    int32_t fmt = (int32_t)m->format;
    if ((fapl = res_make_fapl(1)) < 0 ||
        (w->file = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, fapl)) < 0) {
        rc = h5util_err(e, "cannot create", path);
        goto done;
    }
    if (h5w_types(w, L) < 0) {
        rc = h5util_err(e, "building the data types for", path);
        goto done;
    }
    if (attr_put(w->file, "format_version", H5T_NATIVE_INT32, &fmt) < 0 ||
        attr_put_str(w->file, "untangle_version", m->untangle_version) < 0 ||
        attr_put_str(w->file, "sweep_name", m->name) < 0 ||
        attr_put_str(w->file, "sweep_yaml", m->yaml) < 0 ||
        attr_put(w->file, "sweep_hash", H5T_NATIVE_UINT64, &m->hash) < 0 ||
        attr_put_str(w->file, "created", m->time) < 0 ||
        attr_put_str(w->file, "hdf5_version", m->hdf5_version) < 0 ||
        attr_put_str(w->file, "library_versions", m->libs) < 0 ||
        attr_put_str(w->file, "data_name", m->data ? m->data : "dsprites") < 0 ||
        put_program_attrs(w->file) < 0) {
        rc = h5util_err(e, "writing the root attributes of", path);
        goto done;
    }
    if ((w->runs = ds_create(w->file, "runs", w->rtype, RUNS_CHUNK)) < 0 ||
        (ft = curve_type(1)) < 0 ||
        (w->curves = ds_create(w->file, "curves", ft, CURVES_CHUNK)) < 0) {
        rc = h5util_err(e, "creating /runs and /curves in", path);
        goto done;
    }
    h5util_close(ft);
    if ((ft = sweep_type(1)) < 0 ||
        (w->sweeps = ds_create(w->file, "sweeps", ft, SWEEPS_CHUNK)) < 0 ||
        (w->detail = H5Gcreate2(w->file, "detail", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        rc = h5util_err(e, "creating /sweeps and /detail in", path);
        goto done;
    }
    rc = h5w_add_sweep(w, m, path, e);
done:
    h5util_close(ft);
    h5util_close(fapl);
    if (rc < 0)
        h5w_close(w);
    return rc;
}

int h5w_open(h5w *w, const char *path, const layout *L, err *e)
{
    int rc = 0;
    hid_t fapl = H5I_INVALID_HID;
    char why[300];
    if (h5util_heaps_sane(path, why, sizeof why) < 0) /* before HDF5 loops on it */
        return err_set(e, ERR_HDF5, "cannot open %s for appending: %s", path, why);
    if ((fapl = res_make_fapl(1)) < 0 || (w->file = H5Fopen(path, H5F_ACC_RDWR, fapl)) < 0) {
        rc = h5util_err(e, "cannot open for appending", path);
        goto done;
    }
    if (h5w_types(w, L) < 0 || (w->runs = H5Dopen2(w->file, "runs", H5P_DEFAULT)) < 0 ||
        (w->curves = H5Dopen2(w->file, "curves", H5P_DEFAULT)) < 0 ||
        (w->sweeps = H5Dopen2(w->file, "sweeps", H5P_DEFAULT)) < 0 ||
        (w->detail = H5Gopen2(w->file, "detail", H5P_DEFAULT)) < 0) {
        rc = h5util_err(e, "opening /runs, /curves, /sweeps and /detail of", path);
        goto done;
    }
    w->n_runs = res_ds_len(w->runs);
    w->n_curves = res_ds_len(w->curves);
    w->n_sweeps = res_ds_len(w->sweeps);
    if (H5Lexists(w->file, "evals", H5P_DEFAULT) > 0) {
        if ((w->evals = H5Dopen2(w->file, "evals", H5P_DEFAULT)) < 0) {
            rc = h5util_err(e, "opening /evals of", path);
            goto done;
        }
        w->n_evals = res_ds_len(w->evals);
    }
done:
    h5util_close(fapl);
    if (rc < 0)
        h5w_close(w);
    return rc;
}

static int put_factor_names(hid_t loc, const layout *L)
{
    int rc = -1;
    hsize_t k = (hsize_t)L->K;
    hid_t t = res_str_type(H5T_VARIABLE), sp = H5I_INVALID_HID, a = H5I_INVALID_HID;
    if (t < 0 || (sp = H5Screate_simple(1, &k, NULL)) < 0 ||
        (a = H5Acreate2(loc, "factors", t, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, t, L->names) < 0)
        goto done;
    rc = 0;
done:
    h5util_close(a);
    h5util_close(sp);
    h5util_close(t);
    return rc;
}

/* ---- appending an attempt ----------------------------------------------------- */

static int add_curves(h5w *w, const results_row *row, const run_result *r, const char *path,
                      err *e)
{
    if (!r->n_curve)
        return 0;
    curve_row *cr = calloc(r->n_curve, sizeof *cr);
    if (!cr)
        return err_set(e, ERR_NOMEM, "out of memory writing curves");
    for (size_t i = 0; i < r->n_curve; i++) {
        cr[i].index = row->index;
        memcpy(cr[i].run_id, row->run_id, RUN_ID_LEN);
        cr[i].run_id[RUN_ID_LEN - 1] = '\0';
        cr[i].attempt = row->attempt;
        cr[i].step = r->curve[i].step;
        res_get_str(cr[i].name, sizeof cr[i].name, (const uint8_t *)r->curve[i].name,
                    sizeof r->curve[i].name);
        cr[i].value = r->curve[i].value;
    }
    int rc = 0;
    if (ds_append(w->curves, w->ctype, &w->n_curves, r->n_curve, cr) < 0)
        rc = h5util_err(e, "writing /curves in", path);
    free(cr);
    return rc;
}

/* /detail/<run_id>_<attempt> (a re-evaluation: <run_id>_<attempt>_e<evaluation>):
 * its attributes, mig, swap_acc, mi, traversal. */
static int add_detail(h5w *w, const layout *L, const results_row *row, const run_result *r,
                      const char *path, err *e)
{
    int rc = 0;
    hid_t g = H5I_INVALID_HID, mi = H5I_INVALID_HID;
    char name[64];
    if (row->evaluation > 0)
        snprintf(name, sizeof name, "%.16s_%d_e%d", row->run_id, row->attempt, row->evaluation);
    else
        snprintf(name, sizeof name, "%.16s_%d", row->run_id, row->attempt);
    int64_t idx = row->index;
    int32_t att = row->attempt, ev = row->evaluation;
    char run_id[RUN_ID_LEN];
    res_get_str(run_id, sizeof run_id, (const uint8_t *)row->run_id, sizeof row->run_id);
    hsize_t k = (hsize_t)L->K; /* the file's data set's factors */
    if ((g = H5Gcreate2(w->detail, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        attr_put(g, "index", H5T_NATIVE_INT64, &idx) < 0 ||
        attr_put(g, "attempt", H5T_NATIVE_INT32, &att) < 0 ||
        attr_put_str(g, "run_id", run_id) < 0 ||
        (ev > 0 && attr_put(g, "evaluation", H5T_NATIVE_INT32, &ev) < 0) ||
        ds_put(g, "mig", H5T_NATIVE_DOUBLE, 1, &k, r->mig_factor) < 0 ||
        ds_put(g, "swap_acc", H5T_NATIVE_DOUBLE, 1, &k, r->swap_factor) < 0)
        goto fail;
    if (r->n_units > 0 && r->mi) {
        hsize_t d[2] = {(hsize_t)r->n_units, (hsize_t)L->K};
        if (ds_put(g, "mi", H5T_NATIVE_FLOAT, 2, d, r->mi) < 0 ||
            (mi = H5Dopen2(g, "mi", H5P_DEFAULT)) < 0 || put_factor_names(mi, L) < 0)
            goto fail;
    }
    if (r->traversal && r->trav_h > 0 && r->trav_w > 0) {
        hsize_t d[2] = {(hsize_t)r->trav_h, (hsize_t)r->trav_w};
        if (ds_put(g, "traversal", H5T_NATIVE_UINT8, 2, d, r->traversal) < 0)
            goto fail;
    }
    goto done;
fail:
    rc = h5util_err(e, "writing /detail in", path);
done:
    h5util_close(mi);
    h5util_close(g);
    return rc;
}

/* Encode one row with layout L and append it to ds (type, *n rows). */
static int append_row(hid_t ds, hid_t type, hsize_t *n, const layout *L, const results_row *row,
                      const run_config *c, const run_result *r, const char *what,
                      const char *path, err *e)
{
    uint8_t *buf = malloc(L->size);
    if (!buf)
        return err_set(e, ERR_NOMEM, "out of memory writing a row");
    row_encode(L, buf, row, c, r);
    int rc = ds_append(ds, type, n, 1, buf) < 0 ? h5util_err(e, what, path) : 0;
    free(buf);
    return rc;
}

int h5w_add_run(h5w *w, const layout *L, const results_row *row, const run_config *c,
                const run_result *r, const char *path, err *e)
{
    int rc;
    if ((rc = add_curves(w, row, r, path, e)) < 0 || (rc = add_detail(w, L, row, r, path, e)) < 0)
        return rc;
    return append_row(w->runs, w->rtype, &w->n_runs, L, row, c, r, "writing /runs in", path, e);
}

int h5w_add_eval(h5w *w, const layout *EL, const results_row *row, const run_config *c,
                 const run_result *r, const char *path, err *e)
{
    int rc;
    if (w->etype < 0 && (w->etype = layout_type(EL, NULL)) < 0)
        return h5util_err(e, "building the /evals type for", path);
    if (w->evals < 0 && (w->evals = ds_create(w->file, "evals", w->etype, RUNS_CHUNK)) < 0)
        return h5util_err(e, "creating /evals in", path);
    if ((rc = add_detail(w, EL, row, r, path, e)) < 0)
        return rc;
    return append_row(w->evals, w->etype, &w->n_evals, EL, row, c, r, "writing /evals in", path,
                      e);
}
