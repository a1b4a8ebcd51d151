/* results: the HDF5 results file of a sweep, its journal, recovery and merge.
 *
 * ==== HDF5 layout (a contract: analysis/ and tests/read_results.py read it) ====
 *
 * /  attributes (strings are variable-length UTF-8: h5py returns str)
 *      format_version    int32, RESULTS_FORMAT_VERSION
 *      untangle_version  str
 *      sweep_name        str    \
 *      sweep_yaml        str     } of the YAML the file was CREATED with
 *      sweep_hash        uint64 /  (later YAMLs: /sweeps)
 *      created           str, ISO 8601 UTC, "2024-05-01T12:34:56Z"
 *      hdf5_version      str, "1.10.8": the library that wrote the file
 *      library_versions  str, the caller's "HDF5 ..; OpenBLAS ..; Open MPI ..; libyaml .."
 *
 * /sweeps  1-D compound, one row per sweep YAML used: row 0 is the creating one
 *      (same as the root attributes); a resume with a different YAML adds a
 *      row with its first appended attempt.
 *      {opened S32, sweep_name S128, sweep_hash u64, untangle_version S32,
 *       library_versions vlen str, sweep_yaml vlen str}
 *
 * /runs  1-D extendible chunked (64 rows) compound, one row per finished
 *      attempt, in append order. Fixed-length strings are NUL-terminated (h5py:
 *      bytes, decode them). Columns, in order:
 *        index int64, run_id S17, attempt int32,
 *        model S16, arch S8, then every other key of run_keys in table order
 *          (name S16, image_size, path S1024, steps, batch_size, lr, log_every,
 *          images, samples, pairs, latent_dim, beta, gamma, alpha, lambda, c_max,
 *          anneal_steps, estimator S8, discrete S128, c_z_max, c_c_max,
 *          chunks S128, supervision, w_swap, seed): integer keys int64 (-1 =
 *          not applicable), real keys float64 (NaN = not applicable), string
 *          keys S<field size>, list keys S128 written like "[2, 2]" ("[]" = none),
 *        status S12 ("ok", "failed", "diverged", "timeout", "interrupted";
 *          EMPTY = an invalid row that a kill left behind: readers skip it),
 *        error S256, rank int32, host S64,
 *        wall_s, train_s, eval_s, imgs_per_s float64,
 *        steps_done int64 (optimiser steps done; "steps" is the configured key),
 *        recon, kl, elbo, tc, mi, dwkl, mig, mig_hist, gaussian_tc, swap_acc,
 *          loss float64 (run_metric_names; NaN = not computed / not applicable),
 *        mig_<f>, then swap_acc_<f> float64 for f in shape, scale, orientation,
 *          posX, posY (data_factor_names).
 *
 * /curves  1-D extendible chunked compound, long format, the training curves
 *      of every attempt in append order:
 *      {index int64, run_id S17, attempt int32, step int64, name S16, value float64}
 *
 * A run is identified by its run_id: index is its position in the sweep file
 * it ran under, which moves when a resumed sweep's grid grows; (run_id,
 * attempt) is unique in a file.
 *
 * /detail/<run_id>_<attempt>  one group per row of /runs (e.g.
 *      /detail/787575c816ae4a37_1),
 *      attributes index int64, attempt int32, run_id str:
 *        mi         float32 (n_units, 5): I(unit; factor) in nats, units = the D
 *                   continuous latents then one per discrete variable;
 *                   attribute factors (5 str); absent when not computed
 *        mig        float64 (5): Chen et al.'s per-factor gap / H(v_k)
 *        swap_acc   float64 (5): per-factor swap accuracy
 *        traversal  uint8 (H, W): image grid of latent traversals; absent when
 *                   the run made none
 *
 * ==== Journal: PATH.journal, the record of truth ====
 *
 * Append-only. Each record: u32 magic "UTNJ", u32 type, u64 payload length,
 * u32 CRC32 (IEEE) of type, length and payload, then the payload; native byte
 * order (the journal never leaves the machine that writes it).
 *   META  (type 1, first record): u32 format, u64 sweep_hash, then strings
 *         (u32 length + bytes): created, untangle_version, sweep_name,
 *         sweep_yaml, hdf5_version, library_versions. Everything a rebuild
 *         needs for the root attributes and /sweeps row 0.
 *   SWEEP (type 2): the same fields, for a later YAML (/sweeps row n).
 *   ROW   (type 3): i64 index, char run_id[17], i32 attempt, i32 rank,
 *         char host[64], u32 n_keys, n_keys x (u8 explicitly set, string key
 *         name, string value as run_config_format writes it), u64 length +
 *         run_result_pack bytes (figures, metrics, detail, curves).
 * Append: write the record(s) (fdatasync at most every JOURNAL_SYNC_S and at
 * close), THEN write the HDF5 objects and H5Fflush. Open: scan the journal (a short last record = torn by a kill:
 * truncated away; a complete record with a bad CRC: the journal is copied to
 * PATH.journal.damaged-N first; an intact record this version cannot decode:
 * refused, nothing touched), then compare the HDF5 file with the journal:
 * every /runs row byte for byte, every curve point, detail array and /sweeps
 * row; on any difference (cannot open, all-zero rows, fewer rows, a torn
 * chunk) rename it to PATH.damaged-N and rebuild it from the journal (into
 * PATH.rebuild, then rename). A file with rows or a sweep its journal lacks
 * is refused: that journal is not its own. Merge writes the output's journal
 * first (one fsync), then builds the file from it, like a rebuild.
 *
 * Locking: the writer flocks the journal (one writer per file) and opens the
 * HDF5 file without HDF5's own lock, so readers (h5py in a notebook) can read
 * the flushed rows while a sweep runs, and do not block a resume. The file is
 * written in HDF5's default (oldest compatible) format. */
#include "untangle/data.h"
#include "untangle/results.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- constants ------------------------------------------------------------- */

#define JOURNAL_MAGIC 0x4a4e5455u /* bytes "UTNJ" */
enum { REC_META = 1, REC_SWEEP = 2, REC_ROW = 3 };
enum { REC_HEADER = 20 };         /* magic, type, length, crc */

enum {
    MAX_COLS = 160,
    STATUS_LEN = 12, /* "interrupted" + NUL */
    ERROR_LEN = 256,
    HOST_LEN = 64,
    RUN_ID_LEN = 17,
    LIST_LEN = 128, /* RUN_MAX_LIST values up to 4 digits, ", " between */
    TIME_LEN = 32,
    NAME_LEN = 128,
    VERSION_LEN = 32,
    CURVE_NAME_LEN = 16,
    RUNS_CHUNK = 64,
    CURVES_CHUNK = 1024,
    SWEEPS_CHUNK = 4
};
/* Bounds that keep a damaged file from asking for absurd allocations. */
#define MAX_UNITS 100000
#define MAX_TRAVERSAL ((hsize_t)1 << 30)

_Static_assert(sizeof(((results_row *)0)->run_id) == RUN_ID_LEN, "run_id column size");
_Static_assert(sizeof(((results_row *)0)->host) == HOST_LEN, "host column size");
_Static_assert(sizeof(((run_result *)0)->error) == ERROR_LEN, "error column size");
_Static_assert(sizeof(((run_curve_point *)0)->name) == CURVE_NAME_LEN, "curve name size");

/* ---- small helpers ----------------------------------------------------------- */

static void iso_now(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char *dup_str(const char *s)
{
    return strdup(s ? s : "");
}

static char *cat_str(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (s) {
        memcpy(s, a, na);
        memcpy(s + na, b, nb + 1);
    }
    return s;
}

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320), continued from crc. The table
 * lives on the stack: no static state. */
static uint32_t crc32_update(uint32_t crc, const void *data, size_t n)
{
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static int path_exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

/* First free "base.suffix-N", N >= 1. */
static void free_name(const char *base, const char *suffix, char *out, size_t n)
{
    for (int i = 1;; i++) {
        snprintf(out, n, "%s.%s-%d", base, suffix, i);
        if (!path_exists(out) || i > 100000)
            return;
    }
}

/* fsync the directory holding path, so a rename or creation is durable. */
static void sync_dir(const char *path)
{
    char *d = dup_str(path);
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

static int sync_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* The directory of path must exist and be writable. */
static int check_dir(const char *path, err *e)
{
    char *d = dup_str(path);
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

/* ---- HDF5 plumbing -------------------------------------------------------------- */

/* HDF5 prints its error stack by default; every public function silences it
 * and restores the caller's handler on the way out. */
typedef struct h5quiet {
    H5E_auto2_t func;
    void *data;
} h5quiet;

static void quiet_begin(h5quiet *q)
{
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void quiet_end(const h5quiet *q)
{
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

typedef struct h5walk {
    char first[256], last[256];
    int n;
} h5walk;

static void copy_line(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
    for (char *p = dst; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

static herr_t walk_cb(unsigned n, const H5E_error2_t *d, void *ctx)
{
    (void)n;
    h5walk *w = ctx;
    if (w->n == 0)
        copy_line(w->first, sizeof w->first, d->desc);
    copy_line(w->last, sizeof w->last, d->desc);
    w->n++;
    return 0;
}

/* The current HDF5 error stack in one line: the API call's message and the
 * innermost cause. Must run right after the failing call. */
static void h5_message(char *buf, size_t n)
{
    h5walk w;
    memset(&w, 0, sizeof w);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, &w);
    if (w.n == 0)
        snprintf(buf, n, "unknown HDF5 error");
    else if (w.n == 1 || strcmp(w.first, w.last) == 0)
        snprintf(buf, n, "%s", w.first);
    else
        snprintf(buf, n, "%s (%s)", w.first, w.last);
}

static int h5_err(err *e, const char *path, const char *what)
{
    char msg[600];
    h5_message(msg, sizeof msg);
    return err_set(e, ERR_HDF5, "%s: %s: %s", path, what, msg);
}

static void close_id(hid_t id)
{
    if (id < 0)
        return;
    switch (H5Iget_type(id)) {
    case H5I_FILE: H5Fclose(id); break;
    case H5I_GROUP: H5Gclose(id); break;
    case H5I_DATASET: H5Dclose(id); break;
    case H5I_DATASPACE: H5Sclose(id); break;
    case H5I_DATATYPE: H5Tclose(id); break;
    case H5I_ATTR: H5Aclose(id); break;
    case H5I_GENPROP_LST: H5Pclose(id); break;
    default: break;
    }
}

/* File access: closing the file closes everything in it. Readers use HDF5's
 * file locking (ignored where the file system has none: Lustre, some NFS).
 * The writer does not: the flock on its journal already keeps a second
 * writer out, and without HDF5's lock an analysis notebook that holds the
 * file open with h5py does not block a resume. */
static hid_t make_fapl(int writer)
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

static hid_t str_type(size_t size)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return t;
    if (H5Tset_size(t, size) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0 ||
        H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
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
    close_id(a);
    close_id(sp);
    return rc;
}

static int attr_put_str(hid_t loc, const char *name, const char *val)
{
    hid_t t = str_type(H5T_VARIABLE);
    const char *v = val ? val : "";
    int rc = t < 0 ? -1 : attr_put(loc, name, t, &v);
    close_id(t);
    return rc;
}

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
        if ((mt = str_type(H5T_VARIABLE)) < 0 || H5Aread(a, mt, &v) < 0)
            goto done;
        s = dup_str(v);
        H5free_memory(v);
    } else {
        size_t n = H5Tget_size(ft);
        if (n == 0 || n > (1u << 26) || (mt = str_type(n + 1)) < 0 || !(s = calloc(n + 1, 1)) ||
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
    close_id(mt);
    close_id(ft);
    close_id(a);
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
    close_id(dcpl);
    close_id(sp);
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
    close_id(ms);
    close_id(fs);
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
    close_id(ds);
    close_id(sp);
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
    close_id(sp);
    close_id(ds);
    return rc;
}

/* ---- the /runs row layout ---------------------------------------------------------- */

typedef enum col_kind { COL_I64, COL_I32, COL_F64, COL_STR } col_kind;
typedef enum col_src {
    SRC_INDEX, SRC_RUN_ID, SRC_ATTEMPT, SRC_KEY, SRC_STATUS, SRC_ERROR, SRC_RANK, SRC_HOST,
    SRC_WALL, SRC_TRAIN, SRC_EVAL, SRC_IPS, SRC_STEPS, SRC_METRIC, SRC_MIG, SRC_SWAP
} col_src;

typedef struct col {
    char name[64];
    col_kind kind;
    size_t size, off; /* bytes in the packed row */
    col_src src;
    int arg;          /* run_keys index, metric or factor */
} col;

/* The packed row of /runs: the memory buffer and the file type are the same
 * bytes, so a row read back can be compared with memcmp. */
typedef struct layout {
    col c[MAX_COLS];
    size_t n, size;
    int status_col;
} layout;

static void lay_add(layout *L, const char *name, col_kind kind, size_t size, col_src src,
                    int arg)
{
    col *c = &L->c[L->n++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->kind = kind;
    c->size = size;
    c->off = L->size;
    c->src = src;
    c->arg = arg;
    L->size += size;
}

static void lay_add_key(layout *L, size_t i)
{
    const run_key *k = &run_keys[i];
    switch (k->type) {
    case RUN_KEY_INT: lay_add(L, k->name, COL_I64, 8, SRC_KEY, (int)i); break;
    case RUN_KEY_REAL: lay_add(L, k->name, COL_F64, 8, SRC_KEY, (int)i); break;
    case RUN_KEY_STR: lay_add(L, k->name, COL_STR, k->size, SRC_KEY, (int)i); break;
    case RUN_KEY_LIST: lay_add(L, k->name, COL_STR, LIST_LEN, SRC_KEY, (int)i); break;
    }
}

static void layout_init(layout *L)
{
    memset(L, 0, sizeof *L);
    _Static_assert(MAX_COLS >= 13 + 64 + RUN_N_METRICS + 2 * DATA_K, "MAX_COLS too small");
    lay_add(L, "index", COL_I64, 8, SRC_INDEX, 0);
    lay_add(L, "run_id", COL_STR, RUN_ID_LEN, SRC_RUN_ID, 0);
    lay_add(L, "attempt", COL_I32, 4, SRC_ATTEMPT, 0);
    const run_key *model = run_key_find("model"), *arch = run_key_find("arch");
    if (model)
        lay_add_key(L, (size_t)(model - run_keys));
    if (arch)
        lay_add_key(L, (size_t)(arch - run_keys));
    for (size_t i = 0; i < run_n_keys; i++)
        if (&run_keys[i] != model && &run_keys[i] != arch)
            lay_add_key(L, i);
    L->status_col = (int)L->n;
    lay_add(L, "status", COL_STR, STATUS_LEN, SRC_STATUS, 0);
    lay_add(L, "error", COL_STR, ERROR_LEN, SRC_ERROR, 0);
    lay_add(L, "rank", COL_I32, 4, SRC_RANK, 0);
    lay_add(L, "host", COL_STR, HOST_LEN, SRC_HOST, 0);
    lay_add(L, "wall_s", COL_F64, 8, SRC_WALL, 0);
    lay_add(L, "train_s", COL_F64, 8, SRC_TRAIN, 0);
    lay_add(L, "eval_s", COL_F64, 8, SRC_EVAL, 0);
    lay_add(L, "imgs_per_s", COL_F64, 8, SRC_IPS, 0);
    lay_add(L, "steps_done", COL_I64, 8, SRC_STEPS, 0);
    for (int m = 0; m < RUN_N_METRICS; m++)
        lay_add(L, run_metric_names[m], COL_F64, 8, SRC_METRIC, m);
    char name[48];
    for (int k = 0; k < DATA_K; k++) {
        snprintf(name, sizeof name, "mig_%s", data_factor_names[k]);
        lay_add(L, name, COL_F64, 8, SRC_MIG, k);
    }
    for (int k = 0; k < DATA_K; k++) {
        snprintf(name, sizeof name, "swap_acc_%s", data_factor_names[k]);
        lay_add(L, name, COL_F64, 8, SRC_SWAP, k);
    }
}

/* The compound type of the layout; present (may be NULL = all) selects the
 * members, at their packed offsets (a subset reads an older file). */
static hid_t layout_type(const layout *L, const int *present)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, L->size), s = H5I_INVALID_HID;
    if (t < 0)
        return t;
    for (size_t i = 0; i < L->n; i++) {
        const col *c = &L->c[i];
        if (present && !present[i])
            continue;
        herr_t st;
        switch (c->kind) {
        case COL_I64: st = H5Tinsert(t, c->name, c->off, H5T_NATIVE_INT64); break;
        case COL_I32: st = H5Tinsert(t, c->name, c->off, H5T_NATIVE_INT32); break;
        case COL_F64: st = H5Tinsert(t, c->name, c->off, H5T_NATIVE_DOUBLE); break;
        default:
            st = (s = str_type(c->size)) < 0 ? -1 : H5Tinsert(t, c->name, c->off, s);
            close_id(s);
            s = H5I_INVALID_HID;
            break;
        }
        if (st < 0) {
            H5Tclose(t);
            return H5I_INVALID_HID;
        }
    }
    return t;
}

static void put_str(uint8_t *dst, size_t size, const char *s, size_t max_src)
{
    memset(dst, 0, size);
    size_t n = strnlen(s, max_src);
    memcpy(dst, s, n < size ? n : size - 1);
}

static void get_str(char *dst, size_t dst_size, const uint8_t *src, size_t src_size)
{
    size_t n = strnlen((const char *)src, src_size);
    if (n >= dst_size)
        n = dst_size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void *key_field(run_config *c, const run_key *k)
{
    return (char *)c + k->offset;
}

static const void *key_cfield(const run_config *c, const run_key *k)
{
    return (const char *)c + k->offset;
}

static long key_int(const run_config *c, const run_key *k)
{
    return k->size == sizeof(int) ? *(const int *)key_cfield(c, k)
                                  : *(const long *)key_cfield(c, k);
}

static void key_set_int(run_config *c, const run_key *k, long v)
{
    if (k->size == sizeof(int))
        *(int *)key_field(c, k) = (int)v;
    else
        *(long *)key_field(c, k) = v;
}

/* The count that goes with a list field (as in src/run/keys.c). */
static int *key_list_count(run_config *c, const run_key *k)
{
    return k->offset == offsetof(run_config, discrete) ? &c->n_discrete : &c->n_chunks;
}

/* "[2, 2]", "2,2", "[]" -> values. */
static int parse_list(const char *s, int *vals, int *n_out)
{
    int n = 0;
    const char *p = s;
    while (*p == ' ' || *p == '[')
        p++;
    while (*p && *p != ']') {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || n == RUN_MAX_LIST || v < INT_MIN || v > INT_MAX)
            return -1;
        vals[n++] = (int)v;
        p = end;
        while (*p == ' ' || *p == ',')
            p++;
    }
    *n_out = n;
    return 0;
}

/* Set key k of c from its text as run_config_format writes it, without the
 * range checks of run_config_set: "nan", -1 and "" (not applicable) are
 * valid values here. */
static int key_from_text(run_config *c, const run_key *k, const char *s)
{
    char *end;
    switch (k->type) {
    case RUN_KEY_INT: {
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || *end || errno)
            return -1;
        key_set_int(c, k, v);
        return 0;
    }
    case RUN_KEY_REAL: {
        double v = strtod(s, &end);
        if (end == s || *end)
            return -1;
        *(double *)key_field(c, k) = v;
        return 0;
    }
    case RUN_KEY_STR:
        snprintf(key_field(c, k), k->size, "%s", s);
        return 0;
    case RUN_KEY_LIST: {
        int vals[RUN_MAX_LIST], n = 0;
        if (parse_list(s, vals, &n) < 0)
            return -1;
        memset(key_field(c, k), 0, sizeof(int) * RUN_MAX_LIST);
        memcpy(key_field(c, k), vals, sizeof(int) * (size_t)n);
        *key_list_count(c, k) = n;
        return 0;
    }
    }
    return -1;
}

static int status_from_name(const char *s)
{
    for (int st = RUN_OK; st <= RUN_INTERRUPTED; st++)
        if (strcmp(s, run_status_name(st)) == 0)
            return st;
    return RUN_STATUS_NONE;
}

static void row_encode(const layout *L, uint8_t *buf, const results_row *row,
                       const run_config *c, const run_result *r)
{
    memset(buf, 0, L->size);
    char text[1200];
    for (size_t i = 0; i < L->n; i++) {
        const col *cl = &L->c[i];
        uint8_t *p = buf + cl->off;
        int64_t i64 = 0;
        int32_t i32 = 0;
        double f64 = NAN;
        switch (cl->src) {
        case SRC_INDEX: i64 = row->index; break;
        case SRC_RUN_ID: put_str(p, cl->size, row->run_id, sizeof row->run_id); continue;
        case SRC_ATTEMPT: i32 = row->attempt; break;
        case SRC_KEY: {
            const run_key *k = &run_keys[cl->arg];
            if (k->type == RUN_KEY_INT)
                i64 = key_int(c, k);
            else if (k->type == RUN_KEY_REAL)
                f64 = *(const double *)key_cfield(c, k);
            else {
                run_config_format(c, k, text, sizeof text);
                put_str(p, cl->size, text, sizeof text);
                continue;
            }
            break;
        }
        case SRC_STATUS:
            put_str(p, cl->size, r->status ? run_status_name(r->status) : "", STATUS_LEN);
            continue;
        case SRC_ERROR: put_str(p, cl->size, r->error, sizeof r->error); continue;
        case SRC_RANK: i32 = row->rank; break;
        case SRC_HOST: put_str(p, cl->size, row->host, sizeof row->host); continue;
        case SRC_WALL: f64 = r->wall_s; break;
        case SRC_TRAIN: f64 = r->train_s; break;
        case SRC_EVAL: f64 = r->eval_s; break;
        case SRC_IPS: f64 = r->imgs_per_s; break;
        case SRC_STEPS: i64 = r->steps; break;
        case SRC_METRIC: f64 = r->metric[cl->arg]; break;
        case SRC_MIG: f64 = r->mig_factor[cl->arg]; break;
        case SRC_SWAP: f64 = r->swap_factor[cl->arg]; break;
        }
        if (cl->kind == COL_I64)
            memcpy(p, &i64, 8);
        else if (cl->kind == COL_I32)
            memcpy(p, &i32, 4);
        else
            memcpy(p, &f64, 8);
    }
}

/* Inverse of row_encode for the present columns; others keep their defaults
 * (run_config_defaults, run_result_init). r must be initialised. */
static void row_decode(const layout *L, const uint8_t *buf, const int *present, results_row *row,
                       run_config *c, run_result *r)
{
    memset(row, 0, sizeof *row);
    run_config_defaults(c);
    run_result_free(r);
    char text[LIST_LEN + 1];
    for (size_t i = 0; i < L->n; i++) {
        const col *cl = &L->c[i];
        if (present && !present[i])
            continue;
        const uint8_t *p = buf + cl->off;
        int64_t i64 = 0;
        int32_t i32 = 0;
        double f64 = 0;
        if (cl->kind == COL_I64)
            memcpy(&i64, p, 8);
        else if (cl->kind == COL_I32)
            memcpy(&i32, p, 4);
        else if (cl->kind == COL_F64)
            memcpy(&f64, p, 8);
        switch (cl->src) {
        case SRC_INDEX: row->index = (long)i64; break;
        case SRC_RUN_ID: get_str(row->run_id, sizeof row->run_id, p, cl->size); break;
        case SRC_ATTEMPT: row->attempt = i32; break;
        case SRC_KEY: {
            const run_key *k = &run_keys[cl->arg];
            if (k->type == RUN_KEY_INT)
                key_set_int(c, k, (long)i64);
            else if (k->type == RUN_KEY_REAL)
                *(double *)key_field(c, k) = f64;
            else if (k->type == RUN_KEY_STR)
                get_str(key_field(c, k), k->size, p, cl->size);
            else {
                get_str(text, sizeof text, p, cl->size);
                key_from_text(c, k, text);
            }
            break;
        }
        case SRC_STATUS:
            get_str(text, sizeof text, p, cl->size);
            r->status = status_from_name(text);
            break;
        case SRC_ERROR: get_str(r->error, sizeof r->error, p, cl->size); break;
        case SRC_RANK: row->rank = i32; break;
        case SRC_HOST: get_str(row->host, sizeof row->host, p, cl->size); break;
        case SRC_WALL: r->wall_s = f64; break;
        case SRC_TRAIN: r->train_s = f64; break;
        case SRC_EVAL: r->eval_s = f64; break;
        case SRC_IPS: r->imgs_per_s = f64; break;
        case SRC_STEPS: r->steps = (long)i64; break;
        case SRC_METRIC: r->metric[cl->arg] = f64; break;
        case SRC_MIG: r->mig_factor[cl->arg] = f64; break;
        case SRC_SWAP: r->swap_factor[cl->arg] = f64; break;
        }
    }
}

/* ---- /curves and /sweeps records -------------------------------------------------- */

typedef struct curve_row {
    int64_t index;
    char run_id[RUN_ID_LEN];
    int32_t attempt;
    int64_t step;
    char name[CURVE_NAME_LEN];
    double value;
    size_t pos; /* position in /curves (not stored): keeps sorting stable */
} curve_row;

static hid_t curve_type(int packed)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(curve_row)), s = str_type(CURVE_NAME_LEN);
    hid_t id = str_type(RUN_ID_LEN);
    if (t < 0 || s < 0 || id < 0 ||
        H5Tinsert(t, "index", offsetof(curve_row, index), H5T_NATIVE_INT64) < 0 ||
        H5Tinsert(t, "run_id", offsetof(curve_row, run_id), id) < 0 ||
        H5Tinsert(t, "attempt", offsetof(curve_row, attempt), H5T_NATIVE_INT32) < 0 ||
        H5Tinsert(t, "step", offsetof(curve_row, step), H5T_NATIVE_INT64) < 0 ||
        H5Tinsert(t, "name", offsetof(curve_row, name), s) < 0 ||
        H5Tinsert(t, "value", offsetof(curve_row, value), H5T_NATIVE_DOUBLE) < 0 ||
        (packed && H5Tpack(t) < 0)) {
        close_id(s);
        close_id(id);
        close_id(t);
        return H5I_INVALID_HID;
    }
    close_id(s);
    close_id(id);
    return t;
}

/* A sweep YAML as the journal and /sweeps hold it (also the root meta). */
typedef struct sweep_rec {
    uint32_t format;
    uint64_t hash;
    char *time, *untangle_version, *name, *yaml, *hdf5_version, *libs;
} sweep_rec;

static void sweep_rec_free(sweep_rec *s)
{
    free(s->time);
    free(s->untangle_version);
    free(s->name);
    free(s->yaml);
    free(s->hdf5_version);
    free(s->libs);
    memset(s, 0, sizeof *s);
}

static int sweep_rec_from_meta(sweep_rec *s, const results_meta *m, const char *time)
{
    char hv[64];
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    snprintf(hv, sizeof hv, "%u.%u.%u", maj, min, rel);
    memset(s, 0, sizeof *s);
    s->format = RESULTS_FORMAT_VERSION;
    s->hash = m->sweep_hash;
    s->time = dup_str(time);
    s->untangle_version = dup_str(m->untangle_version);
    s->name = dup_str(m->sweep_name);
    s->yaml = dup_str(m->sweep_yaml);
    s->hdf5_version = dup_str(hv);
    s->libs = dup_str(m->library_versions);
    if (!s->time || !s->untangle_version || !s->name || !s->yaml || !s->hdf5_version || !s->libs) {
        sweep_rec_free(s);
        return -1;
    }
    return 0;
}

static void sweep_rec_meta(const sweep_rec *s, results_meta *m)
{
    m->sweep_name = s->name;
    m->sweep_yaml = s->yaml;
    m->sweep_hash = s->hash;
    m->untangle_version = s->untangle_version;
    m->library_versions = s->libs;
    m->created = s->time;
}

static int same_sweep_text(const sweep_rec *a, const sweep_rec *b)
{
    return a->hash == b->hash && strcmp(a->yaml, b->yaml) == 0 && strcmp(a->name, b->name) == 0;
}

typedef struct sweep_row {
    char opened[TIME_LEN];
    char sweep_name[NAME_LEN];
    uint64_t sweep_hash;
    char untangle_version[VERSION_LEN];
    char *library_versions;
    char *sweep_yaml;
} sweep_row;

static hid_t sweep_type(int packed)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(sweep_row));
    hid_t s32 = str_type(TIME_LEN), s128 = str_type(NAME_LEN), sv = str_type(H5T_VARIABLE);
    int ok = t >= 0 && s32 >= 0 && s128 >= 0 && sv >= 0 &&
             H5Tinsert(t, "opened", offsetof(sweep_row, opened), s32) >= 0 &&
             H5Tinsert(t, "sweep_name", offsetof(sweep_row, sweep_name), s128) >= 0 &&
             H5Tinsert(t, "sweep_hash", offsetof(sweep_row, sweep_hash), H5T_NATIVE_UINT64) >= 0 &&
             H5Tinsert(t, "untangle_version", offsetof(sweep_row, untangle_version), s32) >= 0 &&
             H5Tinsert(t, "library_versions", offsetof(sweep_row, library_versions), sv) >= 0 &&
             H5Tinsert(t, "sweep_yaml", offsetof(sweep_row, sweep_yaml), sv) >= 0 &&
             (!packed || H5Tpack(t) >= 0);
    close_id(s32);
    close_id(s128);
    close_id(sv);
    if (!ok) {
        close_id(t);
        return H5I_INVALID_HID;
    }
    return t;
}

/* ---- the HDF5 writer ------------------------------------------------------------- */

typedef struct h5w {
    hid_t file, runs, curves, sweeps, detail;
    hid_t rtype, ctype, stype; /* memory types; rtype is also the file type */
    hsize_t n_runs, n_curves, n_sweeps;
} h5w;

static void h5w_init(h5w *w)
{
    memset(w, 0, sizeof *w);
    w->file = w->runs = w->curves = w->sweeps = w->detail = H5I_INVALID_HID;
    w->rtype = w->ctype = w->stype = H5I_INVALID_HID;
}

static void h5w_close(h5w *w)
{
    close_id(w->runs);
    close_id(w->curves);
    close_id(w->sweeps);
    close_id(w->detail);
    close_id(w->rtype);
    close_id(w->ctype);
    close_id(w->stype);
    close_id(w->file);
    h5w_init(w);
}

static int h5w_types(h5w *w, const layout *L)
{
    w->rtype = layout_type(L, NULL);
    w->ctype = curve_type(0);
    w->stype = sweep_type(0);
    return w->rtype < 0 || w->ctype < 0 || w->stype < 0 ? -1 : 0;
}

static hsize_t ds_len(hid_t ds)
{
    hsize_t n = 0;
    hid_t sp = H5Dget_space(ds);
    if (sp >= 0) {
        H5Sget_simple_extent_dims(sp, &n, NULL);
        H5Sclose(sp);
    }
    return n;
}

static int h5w_add_sweep(h5w *w, const sweep_rec *s, const char *path, err *e)
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
        return h5_err(e, path, "writing /sweeps");
    return 0;
}

/* Create the file (truncating) with the root attributes of m and empty
 * datasets; /sweeps gets m's row. */
static int h5w_create(h5w *w, const char *path, const layout *L, const sweep_rec *m, err *e)
{
    int rc = 0;
    hid_t fapl = H5I_INVALID_HID, ft = H5I_INVALID_HID;
    int32_t fmt = (int32_t)m->format;
    if ((fapl = make_fapl(1)) < 0 ||
        (w->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0) {
        rc = h5_err(e, path, "cannot create the file");
        goto done;
    }
    if (h5w_types(w, L) < 0) {
        rc = h5_err(e, path, "building the data types");
        goto done;
    }
    if (attr_put(w->file, "format_version", H5T_NATIVE_INT32, &fmt) < 0 ||
        attr_put_str(w->file, "untangle_version", m->untangle_version) < 0 ||
        attr_put_str(w->file, "sweep_name", m->name) < 0 ||
        attr_put_str(w->file, "sweep_yaml", m->yaml) < 0 ||
        attr_put(w->file, "sweep_hash", H5T_NATIVE_UINT64, &m->hash) < 0 ||
        attr_put_str(w->file, "created", m->time) < 0 ||
        attr_put_str(w->file, "hdf5_version", m->hdf5_version) < 0 ||
        attr_put_str(w->file, "library_versions", m->libs) < 0) {
        rc = h5_err(e, path, "writing the root attributes");
        goto done;
    }
    if ((w->runs = ds_create(w->file, "runs", w->rtype, RUNS_CHUNK)) < 0 ||
        (ft = curve_type(1)) < 0 ||
        (w->curves = ds_create(w->file, "curves", ft, CURVES_CHUNK)) < 0) {
        rc = h5_err(e, path, "creating /runs and /curves");
        goto done;
    }
    close_id(ft);
    if ((ft = sweep_type(1)) < 0 ||
        (w->sweeps = ds_create(w->file, "sweeps", ft, SWEEPS_CHUNK)) < 0 ||
        (w->detail = H5Gcreate2(w->file, "detail", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        rc = h5_err(e, path, "creating /sweeps and /detail");
        goto done;
    }
    rc = h5w_add_sweep(w, m, path, e);
done:
    close_id(ft);
    close_id(fapl);
    if (rc < 0)
        h5w_close(w);
    return rc;
}

static int h5w_open(h5w *w, const char *path, const layout *L, err *e)
{
    int rc = 0;
    hid_t fapl = H5I_INVALID_HID;
    if ((fapl = make_fapl(1)) < 0 || (w->file = H5Fopen(path, H5F_ACC_RDWR, fapl)) < 0) {
        rc = h5_err(e, path, "cannot open for appending");
        goto done;
    }
    if (h5w_types(w, L) < 0 || (w->runs = H5Dopen2(w->file, "runs", H5P_DEFAULT)) < 0 ||
        (w->curves = H5Dopen2(w->file, "curves", H5P_DEFAULT)) < 0 ||
        (w->sweeps = H5Dopen2(w->file, "sweeps", H5P_DEFAULT)) < 0 ||
        (w->detail = H5Gopen2(w->file, "detail", H5P_DEFAULT)) < 0) {
        rc = h5_err(e, path, "opening /runs, /curves, /sweeps and /detail");
        goto done;
    }
    w->n_runs = ds_len(w->runs);
    w->n_curves = ds_len(w->curves);
    w->n_sweeps = ds_len(w->sweeps);
done:
    close_id(fapl);
    if (rc < 0)
        h5w_close(w);
    return rc;
}

static int put_factor_names(hid_t loc)
{
    int rc = -1;
    hsize_t k = DATA_K;
    hid_t t = str_type(H5T_VARIABLE), sp = H5I_INVALID_HID, a = H5I_INVALID_HID;
    if (t < 0 || (sp = H5Screate_simple(1, &k, NULL)) < 0 ||
        (a = H5Acreate2(loc, "factors", t, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, t, data_factor_names) < 0)
        goto done;
    rc = 0;
done:
    close_id(a);
    close_id(sp);
    close_id(t);
    return rc;
}

/* Curves, detail, then the /runs row (no flush). */
static int h5w_add_run(h5w *w, const layout *L, const results_row *row, const run_config *c,
                       const run_result *r, const char *path, err *e)
{
    int rc = 0;
    hid_t g = H5I_INVALID_HID, mi = H5I_INVALID_HID;
    uint8_t *buf = NULL;
    curve_row *cr = NULL;
    if (r->n_curve) {
        if (!(cr = calloc(r->n_curve, sizeof *cr))) {
            rc = err_set(e, ERR_NOMEM, "out of memory writing curves");
            goto done;
        }
        for (size_t i = 0; i < r->n_curve; i++) {
            cr[i].index = row->index;
            memcpy(cr[i].run_id, row->run_id, RUN_ID_LEN);
            cr[i].run_id[RUN_ID_LEN - 1] = '\0';
            cr[i].attempt = row->attempt;
            cr[i].step = r->curve[i].step;
            get_str(cr[i].name, sizeof cr[i].name, (const uint8_t *)r->curve[i].name,
                    sizeof r->curve[i].name);
            cr[i].value = r->curve[i].value;
        }
        if (ds_append(w->curves, w->ctype, &w->n_curves, r->n_curve, cr) < 0) {
            rc = h5_err(e, path, "writing /curves");
            goto done;
        }
    }
    char name[64];
    snprintf(name, sizeof name, "%.16s_%d", row->run_id, row->attempt);
    int64_t idx = row->index;
    int32_t att = row->attempt;
    char run_id[RUN_ID_LEN];
    get_str(run_id, sizeof run_id, (const uint8_t *)row->run_id, sizeof row->run_id);
    hsize_t k = DATA_K;
    if ((g = H5Gcreate2(w->detail, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        attr_put(g, "index", H5T_NATIVE_INT64, &idx) < 0 ||
        attr_put(g, "attempt", H5T_NATIVE_INT32, &att) < 0 ||
        attr_put_str(g, "run_id", run_id) < 0 ||
        ds_put(g, "mig", H5T_NATIVE_DOUBLE, 1, &k, r->mig_factor) < 0 ||
        ds_put(g, "swap_acc", H5T_NATIVE_DOUBLE, 1, &k, r->swap_factor) < 0)
        goto h5fail;
    if (r->n_units > 0 && r->mi) {
        hsize_t d[2] = {(hsize_t)r->n_units, DATA_K};
        if (ds_put(g, "mi", H5T_NATIVE_FLOAT, 2, d, r->mi) < 0 ||
            (mi = H5Dopen2(g, "mi", H5P_DEFAULT)) < 0 || put_factor_names(mi) < 0)
            goto h5fail;
    }
    if (r->traversal && r->trav_h > 0 && r->trav_w > 0) {
        hsize_t d[2] = {(hsize_t)r->trav_h, (hsize_t)r->trav_w};
        if (ds_put(g, "traversal", H5T_NATIVE_UINT8, 2, d, r->traversal) < 0)
            goto h5fail;
    }
    if (!(buf = malloc(L->size))) {
        rc = err_set(e, ERR_NOMEM, "out of memory writing a row");
        goto done;
    }
    row_encode(L, buf, row, c, r);
    if (ds_append(w->runs, w->rtype, &w->n_runs, 1, buf) < 0) {
        rc = h5_err(e, path, "writing /runs");
        goto done;
    }
    goto done;
h5fail:
    rc = h5_err(e, path, "writing /detail");
done:
    close_id(mi);
    close_id(g);
    free(buf);
    free(cr);
    return rc;
}

/* ---- journal payloads ------------------------------------------------------------- */

typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
    int fail;
} bytes;

static void b_put(bytes *b, const void *src, size_t n)
{
    if (b->fail)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->fail = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void b_u32(bytes *b, uint32_t v) { b_put(b, &v, sizeof v); }
static void b_u64(bytes *b, uint64_t v) { b_put(b, &v, sizeof v); }

static void b_str(bytes *b, const char *s)
{
    size_t n = strlen(s ? s : "");
    if (n > UINT32_MAX) {
        b->fail = 1;
        return;
    }
    b_u32(b, (uint32_t)n);
    b_put(b, s ? s : "", n);
}

typedef struct cursor {
    const uint8_t *p;
    size_t len, at;
    int fail;
} cursor;

static void c_get(cursor *c, void *dst, size_t n)
{
    if (c->fail || c->len - c->at < n) {
        c->fail = 1;
        return;
    }
    memcpy(dst, c->p + c->at, n);
    c->at += n;
}

static uint32_t c_u32(cursor *c)
{
    uint32_t v = 0;
    c_get(c, &v, sizeof v);
    return v;
}

static uint64_t c_u64(cursor *c)
{
    uint64_t v = 0;
    c_get(c, &v, sizeof v);
    return v;
}

/* A malloc'd NUL-terminated copy of the next string; NULL on failure. */
static char *c_str(cursor *c)
{
    uint32_t n = c_u32(c);
    if (c->fail || c->len - c->at < n) {
        c->fail = 1;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        c->fail = 1;
        return NULL;
    }
    memcpy(s, c->p + c->at, n);
    s[n] = '\0';
    c->at += n;
    return s;
}

static void enc_sweep(bytes *b, const sweep_rec *s)
{
    b_u32(b, s->format);
    b_u64(b, s->hash);
    b_str(b, s->time);
    b_str(b, s->untangle_version);
    b_str(b, s->name);
    b_str(b, s->yaml);
    b_str(b, s->hdf5_version);
    b_str(b, s->libs);
}

static int dec_sweep(const uint8_t *p, size_t len, sweep_rec *s)
{
    cursor c = {p, len, 0, 0};
    memset(s, 0, sizeof *s);
    s->format = c_u32(&c);
    s->hash = c_u64(&c);
    s->time = c_str(&c);
    s->untangle_version = c_str(&c);
    s->name = c_str(&c);
    s->yaml = c_str(&c);
    s->hdf5_version = c_str(&c);
    s->libs = c_str(&c);
    if (c.fail || c.at != len) {
        sweep_rec_free(s);
        return -1;
    }
    return 0;
}

static int enc_row(bytes *b, const results_row *row, const run_config *c, const run_result *r,
                   err *e)
{
    char run_id[RUN_ID_LEN] = {0}, host[HOST_LEN] = {0}, text[1200];
    int64_t index = row->index;
    int32_t attempt = row->attempt, rank = row->rank;
    memcpy(run_id, row->run_id, strnlen(row->run_id, RUN_ID_LEN - 1));
    memcpy(host, row->host, strnlen(row->host, HOST_LEN - 1));
    b_put(b, &index, sizeof index);
    b_put(b, run_id, sizeof run_id);
    b_put(b, &attempt, sizeof attempt);
    b_put(b, &rank, sizeof rank);
    b_put(b, host, sizeof host);
    b_u32(b, (uint32_t)run_n_keys);
    for (size_t i = 0; i < run_n_keys; i++) {
        uint8_t set = (uint8_t)(c->set >> i & 1);
        b_put(b, &set, 1);
        b_str(b, run_keys[i].name);
        run_config_format(c, &run_keys[i], text, sizeof text);
        b_str(b, text);
    }
    uint8_t *packed = NULL;
    size_t n = 0;
    if (run_result_pack(r, &packed, &n, e) < 0)
        return e->code;
    b_u64(b, n);
    b_put(b, packed, n);
    free(packed);
    if (b->fail)
        return err_set(e, ERR_NOMEM, "out of memory encoding a journal record");
    return 0;
}

/* r must be initialised; on failure it is left empty. */
static int dec_row(const uint8_t *p, size_t len, results_row *row, run_config *c, run_result *r)
{
    cursor cu = {p, len, 0, 0};
    int64_t index = 0;
    int32_t attempt = 0, rank = 0;
    memset(row, 0, sizeof *row);
    run_config_defaults(c);
    c_get(&cu, &index, sizeof index);
    c_get(&cu, row->run_id, RUN_ID_LEN);
    c_get(&cu, &attempt, sizeof attempt);
    c_get(&cu, &rank, sizeof rank);
    c_get(&cu, row->host, HOST_LEN);
    row->run_id[RUN_ID_LEN - 1] = '\0';
    row->host[HOST_LEN - 1] = '\0';
    row->index = (long)index;
    row->attempt = attempt;
    row->rank = rank;
    uint32_t nk = c_u32(&cu);
    for (uint32_t i = 0; i < nk && !cu.fail; i++) {
        uint8_t set = 0;
        c_get(&cu, &set, 1);
        char *name = c_str(&cu), *val = c_str(&cu);
        const run_key *k = name ? run_key_find(name) : NULL;
        /* A key this version no longer knows, or whose value it cannot parse
         * (its type changed), keeps its default: the rest of the row counts. */
        if (k && val && key_from_text(c, k, val) == 0 && set)
            c->set |= 1ull << (size_t)(k - run_keys);
        free(name);
        free(val);
    }
    uint64_t n = c_u64(&cu);
    if (cu.fail || n != len - cu.at)
        return -1;
    err e;
    if (run_result_unpack(r, p + cu.at, (size_t)n, &e) < 0)
        return -1;
    if (r->status < RUN_OK || r->status > RUN_INTERRUPTED) {
        run_result_free(r);
        return -1;
    }
    return 0;
}

/* ---- the results object and its journal ------------------------------------------ */

typedef struct jrec {
    int type;
    off_t off; /* of the payload */
    size_t len;
} jrec;

struct results {
    char *path, *jpath;
    int jfd;
    off_t jlen;       /* bytes of valid records */
    jrec *rec;
    size_t n_rec, cap_rec;
    layout lay;
    h5w w;
    results_attempt *att;
    size_t n_att, cap_att;
    sweep_rec first;  /* META */
    sweep_rec last;   /* the last YAML recorded (META or SWEEP) */
    sweep_rec pending;
    int has_first, has_pending, broken;
    double last_sync;  /* CLOCK_MONOTONIC seconds of the last journal fdatasync */
    double last_flush; /* ... and of the last H5Fflush */
    int unflushed;     /* rows appended since */
    char note[1536];
};

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

static void add_note(results *f, const char *fmt, const char *a, const char *b)
{
    size_t n = strlen(f->note);
    if (n && n + 2 < sizeof f->note) {
        memcpy(f->note + n, "; ", 3);
        n += 2;
    }
    snprintf(f->note + n, sizeof f->note - n, fmt, a, b);
}

static results *results_new(const char *path)
{
    results *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->jfd = -1;
    h5w_init(&f->w);
    layout_init(&f->lay);
    f->path = dup_str(path);
    f->jpath = f->path ? cat_str(path, ".journal") : NULL;
    if (!f->path || !f->jpath) {
        free(f->path);
        free(f->jpath);
        free(f);
        return NULL;
    }
    return f;
}

static void results_free(results *f)
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
    free(f->path);
    free(f->jpath);
    free(f);
}

static int push_rec(results *f, int type, off_t off, size_t len)
{
    if (f->n_rec == f->cap_rec) {
        size_t cap = f->cap_rec ? 2 * f->cap_rec : 64;
        jrec *p = realloc(f->rec, cap * sizeof *p);
        if (!p)
            return -1;
        f->rec = p;
        f->cap_rec = cap;
    }
    f->rec[f->n_rec++] = (jrec){type, off, len};
    return 0;
}

static int push_attempt(results *f, const results_row *row, const run_config *c,
                        const run_result *r)
{
    if (f->n_att == f->cap_att) {
        size_t cap = f->cap_att ? 2 * f->cap_att : 64;
        results_attempt *p = realloc(f->att, cap * sizeof *p);
        if (!p)
            return -1;
        f->att = p;
        f->cap_att = cap;
    }
    results_attempt *a = &f->att[f->n_att++];
    memset(a, 0, sizeof *a);
    a->index = row->index;
    get_str(a->run_id, sizeof a->run_id, (const uint8_t *)row->run_id, sizeof row->run_id);
    a->attempt = row->attempt;
    a->status = r->status;
    a->wall_s = r->wall_s;
    snprintf(a->model, sizeof a->model, "%s", c->model);
    snprintf(a->arch, sizeof a->arch, "%s", c->arch);
    return 0;
}

static int copy_sweep(sweep_rec *dst, const sweep_rec *src)
{
    sweep_rec_free(dst);
    *dst = *src;
    dst->time = dup_str(src->time);
    dst->untangle_version = dup_str(src->untangle_version);
    dst->name = dup_str(src->name);
    dst->yaml = dup_str(src->yaml);
    dst->hdf5_version = dup_str(src->hdf5_version);
    dst->libs = dup_str(src->libs);
    if (!dst->time || !dst->untangle_version || !dst->name || !dst->yaml || !dst->hdf5_version ||
        !dst->libs) {
        sweep_rec_free(dst);
        return -1;
    }
    return 0;
}

static int write_all(int fd, const void *p, size_t n, off_t off)
{
    const uint8_t *q = p;
    while (n) {
        ssize_t w = pwrite(fd, q, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        q += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t n, off_t off)
{
    uint8_t *q = p;
    while (n) {
        ssize_t r = pread(fd, q, n, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        q += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

static uint32_t rec_crc(uint32_t type, uint64_t len, const void *payload)
{
    uint32_t crc = crc32_update(0, &type, sizeof type);
    crc = crc32_update(crc, &len, sizeof len);
    return crc32_update(crc, payload, (size_t)len);
}

/* Append one record at the end of the valid journal; with sync, fdatasync.
 * On failure the journal is cut back to where it was. */
static int journal_put(results *f, int type, const bytes *b, int sync, err *e)
{
    uint8_t hdr[REC_HEADER];
    uint32_t magic = JOURNAL_MAGIC, t = (uint32_t)type, crc = rec_crc(t, b->len, b->p);
    uint64_t len = b->len;
    memcpy(hdr, &magic, 4);
    memcpy(hdr + 4, &t, 4);
    memcpy(hdr + 8, &len, 8);
    memcpy(hdr + 16, &crc, 4);
    off_t at = f->jlen;
    int rc = 0;
    if (write_all(f->jfd, hdr, sizeof hdr, at) < 0 ||
        write_all(f->jfd, b->p, b->len, at + REC_HEADER) < 0 || (sync && fdatasync(f->jfd) < 0)) {
        rc = err_set(e, ERR_IO, "writing %s: %s", f->jpath, strerror(errno));
        if (ftruncate(f->jfd, at) == 0 && sync)
            fdatasync(f->jfd);
        return rc;
    }
    if (push_rec(f, type, at + REC_HEADER, b->len) < 0) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        if (ftruncate(f->jfd, at) == 0 && sync)
            fdatasync(f->jfd);
        return rc;
    }
    f->jlen = at + REC_HEADER + (off_t)b->len;
    return 0;
}

static int journal_sync(results *f, err *e)
{
    if (fdatasync(f->jfd) < 0)
        return err_set(e, ERR_IO, "syncing %s: %s", f->jpath, strerror(errno));
    return 0;
}

/* Take the writer's lock on the journal: one writer per results file. A file
 * system without flock is accepted (nothing to lock with). */
static int journal_lock(results *f, err *e)
{
    if (flock(f->jfd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    if (errno == EWOULDBLOCK)
        return err_set(e, ERR_IO,
                       "%s is in use by another process (its journal %s is locked): one "
                       "writer per results file",
                       f->path, f->jpath);
    if (errno == ENOLCK || errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL)
        return 0;
    return err_set(e, ERR_IO, "locking %s: %s", f->jpath, strerror(errno));
}

/* Payload of record i into a malloc'd buffer. */
static int journal_read(const results *f, size_t i, uint8_t **out, err *e)
{
    const jrec *r = &f->rec[i];
    uint8_t *p = malloc(r->len ? r->len : 1);
    if (!p)
        return err_set(e, ERR_NOMEM, "out of memory reading %s", f->jpath);
    if (read_all(f->jfd, p, r->len, r->off) < 0) {
        free(p);
        return err_set(e, ERR_IO, "reading %s: %s", f->jpath,
                       errno ? strerror(errno) : "unexpected end of file");
    }
    *out = p;
    return 0;
}

/* Account for a valid record while scanning or appending. */
static int note_record(results *f, int type, const uint8_t *p, size_t len)
{
    if (type == REC_META || type == REC_SWEEP) {
        sweep_rec s;
        if (dec_sweep(p, len, &s) < 0)
            return -1;
        int rc = 0;
        if (type == REC_META) {
            if (f->has_first)
                rc = -1;
            else {
                rc = copy_sweep(&f->first, &s);
                f->has_first = rc == 0;
            }
        } else if (!f->has_first) {
            rc = -1;
        }
        if (rc == 0)
            rc = copy_sweep(&f->last, &s);
        sweep_rec_free(&s);
        return rc;
    }
    if (type != REC_ROW || !f->has_first)
        return -1;
    results_row row;
    run_config c;
    run_result r;
    run_result_init(&r);
    int rc = dec_row(p, len, &row, &c, &r);
    if (rc == 0)
        rc = push_attempt(f, &row, &c, &r);
    run_result_free(&r);
    return rc;
}

/* Read every record; cut a torn or bad tail away (a complete but bad record
 * means damage, not a kill: the journal is copied aside first). */
static int journal_scan(results *f, err *e)
{
    struct stat st;
    if (fstat(f->jfd, &st) < 0)
        return err_set(e, ERR_IO, "reading %s: %s", f->jpath, strerror(errno));
    off_t size = st.st_size, pos = 0;
    int torn = 0, bad = 0;
    uint8_t *p = NULL;
    while (pos < size) {
        uint8_t hdr[REC_HEADER];
        uint32_t magic, type, crc;
        uint64_t len;
        if (size - pos < REC_HEADER) {
            torn = 1;
            break;
        }
        if (read_all(f->jfd, hdr, sizeof hdr, pos) < 0)
            return err_set(e, ERR_IO, "reading %s: %s", f->jpath, strerror(errno));
        memcpy(&magic, hdr, 4);
        memcpy(&type, hdr + 4, 4);
        memcpy(&len, hdr + 8, 8);
        memcpy(&crc, hdr + 16, 4);
        if (magic != JOURNAL_MAGIC) {
            bad = 1;
            break;
        }
        if (len > (uint64_t)(size - pos - REC_HEADER)) {
            torn = 1;
            break;
        }
        free(p);
        if (!(p = malloc(len ? (size_t)len : 1)))
            return err_set(e, ERR_NOMEM, "out of memory reading %s", f->jpath);
        if (read_all(f->jfd, p, (size_t)len, pos + REC_HEADER) < 0) {
            free(p);
            return err_set(e, ERR_IO, "reading %s: %s", f->jpath, strerror(errno));
        }
        if (rec_crc(type, len, p) != crc) {
            bad = 1;
            break;
        }
        if (note_record(f, (int)type, p, (size_t)len) < 0) {
            /* intact (its CRC is right) but not understood: another version's
             * journal, or a bug. Touch nothing. */
            free(p);
            return err_set(e, ERR_INPUT,
                           "%s: record %zu (type %u, byte %lld) is intact but cannot be read by "
                           "this version of untangle; nothing was changed",
                           f->jpath, f->n_rec, (unsigned)type, (long long)pos);
        }
        if (push_rec(f, (int)type, pos + REC_HEADER, (size_t)len) < 0) {
            free(p);
            return err_set(e, ERR_NOMEM, "out of memory reading %s", f->jpath);
        }
        pos += REC_HEADER + (off_t)len;
    }
    free(p);
    f->jlen = pos;
    if (!torn && !bad)
        return 0;
    char kept[4200] = "";
    if (bad) {
        /* Not what a kill leaves: keep a copy of the whole journal. */
        free_name(f->jpath, "damaged", kept, sizeof kept);
        int out = open(kept, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        uint8_t buf[65536];
        off_t at = 0;
        int ok = out >= 0;
        while (ok && at < size) {
            size_t n = size - at < (off_t)sizeof buf ? (size_t)(size - at) : sizeof buf;
            ok = read_all(f->jfd, buf, n, at) == 0 && write_all(out, buf, n, at) == 0;
            at += (off_t)n;
        }
        if (out >= 0)
            ok = fsync(out) == 0 && ok;
        if (out >= 0)
            close(out);
        if (!ok)
            return err_set(e, ERR_IO, "%s has a damaged record at byte %lld and it could not be "
                           "copied to %s before repair: %s", f->jpath, (long long)pos, kept,
                           strerror(errno));
    }
    if (ftruncate(f->jfd, pos) < 0 || fdatasync(f->jfd) < 0)
        return err_set(e, ERR_IO, "truncating the torn end of %s: %s", f->jpath, strerror(errno));
    char what[160];
    snprintf(what, sizeof what, "%lld bytes at byte %lld",
             (long long)(size - pos), (long long)pos);
    if (bad)
        add_note(f, "dropped a damaged journal record (%s; the journal was copied to %s)", what,
                 kept);
    else
        add_note(f, "dropped a torn last journal record (%s%s)", what, "");
    return 0;
}

/* ---- the reader ---------------------------------------------------------------------- */

struct results_reader {
    char *path;
    hid_t file, detail;
    layout lay;
    int present[MAX_COLS];
    int same_layout;  /* /runs has exactly this version's columns */
    uint8_t *rows;    /* (n, lay.size) valid rows */
    size_t n, n_skipped;
    curve_row *curves; /* sorted by (run_id, attempt, position) */
    size_t n_curves;
    sweep_rec root;
    results_meta meta;
    sweep_rec *sw;
    results_meta *swm;
    size_t n_sw;
};

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

static void reader_free(results_reader *r)
{
    if (!r)
        return;
    close_id(r->detail);
    close_id(r->file);
    free(r->rows);
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
        close_id(a);
        return err_set(e, ERR_INPUT, "%s is not an untangle results file (no format_version "
                       "attribute)", r->path);
    }
    close_id(a);
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
        close_id(a);
        return h5_err(e, r->path, "reading the root attributes");
    }
    close_id(a);
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
        rc = h5_err(e, r->path, "reading /sweeps");
        goto done;
    }
    if (n > 100000 || !(rows = calloc(n ? n : 1, sizeof *rows)) ||
        !(r->sw = calloc(n ? n : 1, sizeof *r->sw)) ||
        !(r->swm = calloc(n ? n : 1, sizeof *r->swm))) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory reading /sweeps", r->path);
        goto done;
    }
    if (n && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0) {
        rc = h5_err(e, r->path, "reading /sweeps");
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
        s->time = dup_str(rows[i].opened);
        s->name = dup_str(rows[i].sweep_name);
        s->untangle_version = dup_str(rows[i].untangle_version);
        s->libs = dup_str(rows[i].library_versions);
        s->yaml = dup_str(rows[i].sweep_yaml);
        s->hdf5_version = dup_str(r->root.hdf5_version);
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
    close_id(sp);
    close_id(mt);
    close_id(ds);
    return rc;
}

static int read_runs(results_reader *r, err *e)
{
    int rc = 0;
    const layout *L = &r->lay;
    hid_t ds = H5I_INVALID_HID, ft = H5I_INVALID_HID, mt = H5I_INVALID_HID, full = H5I_INVALID_HID;
    hsize_t n = 0;
    uint8_t *all = NULL;
    if (H5Lexists(r->file, "runs", H5P_DEFAULT) <= 0) {
        rc = err_set(e, ERR_INPUT, "%s is not an untangle results file (no /runs)", r->path);
        goto done;
    }
    if ((ds = H5Dopen2(r->file, "runs", H5P_DEFAULT)) < 0 || (ft = H5Dget_type(ds)) < 0 ||
        H5Tget_class(ft) != H5T_COMPOUND) {
        rc = h5_err(e, r->path, "opening /runs");
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
        r->present[i] = cls == want;
    }
    if (!r->present[L->status_col]) {
        rc = err_set(e, ERR_INPUT, "%s is not an untangle results file (/runs has no status)",
                     r->path);
        goto done;
    }
    if ((full = layout_type(L, NULL)) < 0 || (mt = layout_type(L, r->present)) < 0) {
        rc = h5_err(e, r->path, "building the /runs type");
        goto done;
    }
    r->same_layout = H5Tequal(full, ft) > 0;
    n = ds_len(ds);
    if (n > ((size_t)1 << 40) / L->size || !(all = malloc(n ? n * L->size : 1))) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory reading /runs (%llu rows)", r->path,
                     (unsigned long long)n);
        goto done;
    }
    memset(all, 0, n * L->size);
    if (n && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, all) < 0) {
        rc = h5_err(e, r->path, "reading /runs");
        goto done;
    }
    /* A row is valid when its status is not empty (a kill can leave rows of
     * zeros at the end): keep the valid ones, in order. */
    size_t soff = L->c[L->status_col].off;
    for (hsize_t i = 0; i < n; i++) {
        const uint8_t *row = all + i * L->size;
        if (row[soff] == 0) {
            r->n_skipped++;
            continue;
        }
        if (r->n != i)
            memcpy(all + r->n * L->size, row, L->size);
        r->n++;
    }
    r->rows = all;
    all = NULL;
done:
    free(all);
    close_id(full);
    close_id(mt);
    close_id(ft);
    close_id(ds);
    return rc;
}

static int read_curves(results_reader *r, err *e)
{
    int rc = 0;
    hid_t ds = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    if (H5Lexists(r->file, "curves", H5P_DEFAULT) <= 0)
        return 0;
    if ((ds = H5Dopen2(r->file, "curves", H5P_DEFAULT)) < 0 || (mt = curve_type(0)) < 0) {
        rc = h5_err(e, r->path, "opening /curves");
        goto done;
    }
    hsize_t n = ds_len(ds);
    if (n > ((size_t)1 << 40) / sizeof(curve_row) ||
        !(r->curves = calloc(n ? n : 1, sizeof *r->curves))) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory reading /curves", r->path);
        goto done;
    }
    if (n && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, r->curves) < 0) {
        rc = h5_err(e, r->path, "reading /curves");
        goto done;
    }
    for (hsize_t i = 0; i < n; i++) {
        r->curves[i].pos = i;
        r->curves[i].name[CURVE_NAME_LEN - 1] = '\0';
    }
    r->n_curves = n;
    qsort(r->curves, n, sizeof *r->curves, cmp_curve);
done:
    close_id(mt);
    close_id(ds);
    return rc;
}

static int reader_open(results_reader **out, const char *path, err *e)
{
    int rc = 0;
    hid_t fapl = H5I_INVALID_HID;
    results_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = dup_str(path))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    r->file = r->detail = H5I_INVALID_HID;
    layout_init(&r->lay);
    struct stat st;
    if (stat(path, &st) < 0) {
        rc = err_set(e, ERR_IO, "cannot open results file %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = err_set(e, ERR_INPUT, "%s is not a results file (not a regular file)", path);
        goto done;
    }
    if ((fapl = make_fapl(0)) < 0 || (r->file = H5Fopen(path, H5F_ACC_RDONLY, fapl)) < 0) {
        char msg[600];
        h5_message(msg, sizeof msg);
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
        rc = h5_err(e, path, "opening /detail");
        goto done;
    }
    *out = r;
    r = NULL;
done:
    close_id(fapl);
    reader_free(r);
    return rc;
}

/* Row i with curves and detail; *found_detail tells whether its /detail
 * group exists. */
static int reader_get(results_reader *rd, size_t i, results_row *row, run_config *c,
                      run_result *r, int *found_detail, err *e)
{
    int rc = 0;
    hid_t g = H5I_INVALID_HID;
    void *buf = NULL;
    if (i >= rd->n)
        return err_set(e, ERR_INTERNAL, "%s: row %zu of %zu", rd->path, i, rd->n);
    row_decode(&rd->lay, rd->rows + i * rd->lay.size, rd->present, row, c, r);
    *found_detail = 0;
    /* curves: the run of (run_id, attempt) in the sorted array */
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
         lo++)
        if ((rc = run_result_add_curve(r, (long)rd->curves[lo].step, rd->curves[lo].name,
                                       rd->curves[lo].value, e)) < 0)
            goto done;
    char name[64];
    snprintf(name, sizeof name, "%.16s_%d", row->run_id, row->attempt);
    if (rd->detail < 0 || H5Lexists(rd->detail, name, H5P_DEFAULT) <= 0)
        goto done;
    if ((g = H5Gopen2(rd->detail, name, H5P_DEFAULT)) < 0)
        goto h5fail;
    *found_detail = 1;
    hsize_t d[2] = {0, 0};
    int got;
    if ((got = ds_get(g, "mig", H5T_NATIVE_DOUBLE, 1, d, DATA_K, &buf)) < 0 ||
        (got == 0 && d[0] != DATA_K))
        goto h5fail;
    if (buf)
        memcpy(r->mig_factor, buf, sizeof r->mig_factor);
    free(buf);
    buf = NULL;
    if ((got = ds_get(g, "swap_acc", H5T_NATIVE_DOUBLE, 1, d, DATA_K, &buf)) < 0 ||
        (got == 0 && d[0] != DATA_K))
        goto h5fail;
    if (buf)
        memcpy(r->swap_factor, buf, sizeof r->swap_factor);
    free(buf);
    buf = NULL;
    if ((got = ds_get(g, "mi", H5T_NATIVE_FLOAT, 2, d, (hsize_t)MAX_UNITS * DATA_K, &buf)) < 0 ||
        (got == 0 && (d[1] != DATA_K || d[0] > MAX_UNITS)))
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
    rc = h5_err(e, rd->path, "reading /detail");
    err_prefix(e, "row %ld_%d: ", row->index, row->attempt);
done:
    free(buf);
    close_id(g);
    if (rc < 0)
        run_result_free(r);
    return rc;
}

int results_reader_open(results_reader **out, const char *path, err *e)
{
    h5quiet q;
    quiet_begin(&q);
    int rc = reader_open(out, path, e);
    quiet_end(&q);
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
    h5quiet q;
    quiet_begin(&q);
    int found;
    int rc = reader_get(r, i, row, c, res, &found, e);
    quiet_end(&q);
    return rc;
}

void results_reader_close(results_reader *r)
{
    h5quiet q;
    quiet_begin(&q);
    reader_free(r);
    quiet_end(&q);
}

/* ---- building the file from the journal --------------------------------------------- */

/* Write path.rebuild from every journal record, then rename it to path. */
static int build_file(results *f, err *e)
{
    int rc = 0;
    h5w w;
    h5w_init(&w);
    char *tmp = cat_str(f->path, ".rebuild");
    uint8_t *p = NULL;
    run_result r;
    run_result_init(&r);
    if (!tmp) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = h5w_create(&w, tmp, &f->lay, &f->first, e)) < 0)
        goto done;
    for (size_t i = 0; i < f->n_rec; i++) {
        if (f->rec[i].type == REC_META)
            continue;
        if ((rc = journal_read(f, i, &p, e)) < 0)
            goto done;
        if (f->rec[i].type == REC_SWEEP) {
            sweep_rec s;
            if (dec_sweep(p, f->rec[i].len, &s) < 0) {
                rc = err_set(e, ERR_INTERNAL, "%s: record %zu no longer decodes", f->jpath, i);
                goto done;
            }
            rc = h5w_add_sweep(&w, &s, tmp, e);
            sweep_rec_free(&s);
        } else {
            results_row row;
            run_config c;
            if (dec_row(p, f->rec[i].len, &row, &c, &r) < 0) {
                rc = err_set(e, ERR_INTERNAL, "%s: record %zu no longer decodes", f->jpath, i);
                goto done;
            }
            rc = h5w_add_run(&w, &f->lay, &row, &c, &r, tmp, e);
            run_result_free(&r);
        }
        free(p);
        p = NULL;
        if (rc < 0)
            goto done;
    }
    if (H5Fflush(w.file, H5F_SCOPE_LOCAL) < 0) {
        rc = h5_err(e, tmp, "flushing");
        goto done;
    }
    h5w_close(&w);
    if (sync_file(tmp) < 0 || rename(tmp, f->path) < 0) {
        rc = err_set(e, ERR_IO, "cannot move %s to %s: %s", tmp, f->path, strerror(errno));
        goto done;
    }
    sync_dir(f->path);
done:
    h5w_close(&w);
    run_result_free(&r);
    free(p);
    free(tmp);
    return rc;
}

/* Move the file aside (kept, never deleted) and build it from the journal. */
static int rebuild(results *f, const char *why, err *e)
{
    char kept[4200] = "";
    if (path_exists(f->path)) {
        free_name(f->path, "damaged", kept, sizeof kept);
        if (rename(f->path, kept) < 0)
            return err_set(e, ERR_IO, "cannot move damaged %s to %s: %s", f->path, kept,
                           strerror(errno));
        sync_dir(f->path);
    }
    int rc = build_file(f, e);
    if (rc < 0)
        return err_prefix(e, "rebuilding %s from its journal: ", f->path);
    char what[4400];
    if (kept[0])
        snprintf(what, sizeof what, "; the damaged file is kept as %s", kept);
    else
        what[0] = '\0';
    add_note(f, "rebuilt the file from its journal (%s)%s", why, what);
    return 0;
}

static int same_result_detail(const run_result *a, const run_result *b)
{
    if (a->n_units != b->n_units || a->n_curve != b->n_curve ||
        memcmp(a->mig_factor, b->mig_factor, sizeof a->mig_factor) != 0 ||
        memcmp(a->swap_factor, b->swap_factor, sizeof a->swap_factor) != 0)
        return 0;
    if (a->n_units > 0 &&
        memcmp(a->mi, b->mi, sizeof(float) * (size_t)a->n_units * DATA_K) != 0)
        return 0;
    int ha = a->traversal ? a->trav_h : 0, wa = a->traversal ? a->trav_w : 0;
    int hb = b->traversal ? b->trav_h : 0, wb = b->traversal ? b->trav_w : 0;
    if (ha * wa == 0)
        ha = wa = 0;
    if (hb * wb == 0)
        hb = wb = 0;
    if (ha != hb || wa != wb || (ha && memcmp(a->traversal, b->traversal, (size_t)ha * wa) != 0))
        return 0;
    for (size_t i = 0; i < a->n_curve; i++) {
        const run_curve_point *x = &a->curve[i], *y = &b->curve[i];
        if (x->step != y->step || strncmp(x->name, y->name, sizeof x->name) != 0 ||
            memcmp(&x->value, &y->value, sizeof x->value) != 0)
            return 0;
    }
    return 1;
}

static size_t n_rows_of(const results *f)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_rec; i++)
        n += f->rec[i].type == REC_ROW;
    return n;
}

static size_t n_sweeps_of(const results *f)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_rec; i++)
        n += f->rec[i].type == REC_SWEEP;
    return n;
}

/* What check_file found. */
enum { FILE_SAME, FILE_REBUILD, FILE_AHEAD };

/* Compare the HDF5 file with the journal, record by record. FILE_SAME: the
 * file is exactly what the journal says. FILE_REBUILD (*why says why): it is
 * missing, unreadable or lacks or garbles something the journal has.
 * FILE_AHEAD: it holds everything the journal has, identically, and more
 * (the journal lost its end, or an older journal was put back). A file that
 * both has more and differs is refused (ERR_INPUT): that journal is not its
 * own, and neither can be rebuilt from the other. */
static int check_file(results *f, int *verdict, char *why, size_t n, err *e)
{
    int rc = 0, ahead = 0;
    results_reader *rd = NULL;
    uint8_t *p = NULL, *mine = NULL;
    run_result rj, rf;
    run_result_init(&rj);
    run_result_init(&rf);
    why[0] = '\0';
    *verdict = FILE_REBUILD;
    if (!path_exists(f->path)) {
        snprintf(why, n, "the file is missing");
        goto done;
    }
    err e2;
    err_clear(&e2);
    if (reader_open(&rd, f->path, &e2) < 0) {
        if (e2.code == ERR_NOMEM || e2.code == ERR_IO) { /* locked, unreadable: not damage */
            rc = err_set(e, e2.code, "%s", e2.msg);
            goto done;
        }
        snprintf(why, n, "it cannot be read: %s", e2.msg);
        goto done;
    }
    size_t n_rows = 0, n_sweeps = 1, n_curves = 0;
    for (size_t i = 0; i < f->n_rec; i++) {
        n_rows += f->rec[i].type == REC_ROW;
        n_sweeps += f->rec[i].type == REC_SWEEP;
    }
    ahead = rd->n > n_rows || rd->n_sw > n_sweeps;
    if (rd->n > 0 && (rd->root.hash != f->first.hash || strcmp(rd->root.name, f->first.name))) {
        ahead = 1; /* another sweep's file: never rebuilt over */
        snprintf(why, n, "it belongs to sweep '%s'", rd->root.name);
        goto done;
    }
    if (!rd->same_layout) {
        snprintf(why, n, "its /runs columns are not this version's");
        goto done;
    }
    if (rd->n_skipped) {
        snprintf(why, n, "%zu invalid (all-zero) rows in /runs", rd->n_skipped);
        goto done;
    }
    if (rd->n < n_rows) {
        snprintf(why, n, "it has %zu of the journal's %zu rows", rd->n, n_rows);
        goto done;
    }
    if (rd->n_sw < n_sweeps || strcmp(rd->root.yaml, f->first.yaml) != 0 ||
        rd->root.hash != f->first.hash || strcmp(rd->root.time, f->first.time) != 0) {
        snprintf(why, n, "its root attributes or /sweeps differ from the journal");
        goto done;
    }
    if (!(mine = malloc(f->lay.size))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t row_i = 0, sw_i = 1;
    for (size_t i = 0; i < f->n_rec && !why[0]; i++) {
        if (f->rec[i].type == REC_META)
            continue;
        if ((rc = journal_read(f, i, &p, e)) < 0)
            goto done;
        if (f->rec[i].type == REC_SWEEP) {
            sweep_rec s;
            if (dec_sweep(p, f->rec[i].len, &s) < 0) {
                rc = err_set(e, ERR_INTERNAL, "%s: record %zu no longer decodes", f->jpath, i);
                goto done;
            }
            if (!same_sweep_text(&s, &rd->sw[sw_i]))
                snprintf(why, n, "/sweeps row %zu differs from the journal", sw_i);
            sw_i++;
            sweep_rec_free(&s);
        } else {
            results_row rowj, rowf;
            run_config cj, cf;
            int found = 0;
            err e3;
            if (dec_row(p, f->rec[i].len, &rowj, &cj, &rj) < 0) {
                rc = err_set(e, ERR_INTERNAL, "%s: record %zu no longer decodes", f->jpath, i);
                goto done;
            }
            row_encode(&f->lay, mine, &rowj, &cj, &rj);
            n_curves += rj.n_curve;
            if (memcmp(mine, rd->rows + row_i * f->lay.size, f->lay.size) != 0)
                snprintf(why, n, "/runs row %zu differs from the journal", row_i);
            else if (reader_get(rd, row_i, &rowf, &cf, &rf, &found, &e3) < 0)
                snprintf(why, n, "row %zu cannot be read: %s", row_i, e3.msg);
            else if (!found || !same_result_detail(&rj, &rf))
                snprintf(why, n, "the curves or detail of row %zu (%ld_%d) differ from the journal",
                         row_i, rowj.index, rowj.attempt);
            row_i++;
            run_result_free(&rj);
            run_result_free(&rf);
        }
        free(p);
        p = NULL;
    }
    if (!why[0] && !ahead && n_curves != rd->n_curves)
        snprintf(why, n, "/curves has %zu points, the journal %zu", rd->n_curves, n_curves);
    if (!why[0])
        *verdict = ahead ? FILE_AHEAD : FILE_SAME;
done:
    if (rc == 0 && ahead && *verdict == FILE_REBUILD)
        rc = err_set(e, ERR_INPUT,
                     "%s holds %zu rows and %zu sweep YAMLs of sweep '%s', its journal %s %zu "
                     "rows and %zu YAMLs of sweep '%s', and they differ (%s): the journal is not "
                     "this file's; move %s away to have it rewritten from the file",
                     f->path, rd ? rd->n : 0, rd ? rd->n_sw : 0, rd ? rd->root.name : "?",
                     f->jpath, n_rows_of(f), (size_t)1 + n_sweeps_of(f), f->first.name, why,
                     f->jpath);
    run_result_free(&rj);
    run_result_free(&rf);
    free(p);
    free(mine);
    reader_free(rd);
    return rc;
}

/* Create the journal (it must not exist) and lock it. */
static int journal_create(results *f, err *e)
{
    f->jfd = open(f->jpath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f->jfd < 0)
        return err_set(e, ERR_IO, "cannot create results file %s: its journal %s: %s", f->path,
                       f->jpath, strerror(errno));
    return journal_lock(f, e);
}

static int journal_open(results *f, err *e)
{
    f->jfd = open(f->jpath, O_RDWR | O_CLOEXEC);
    if (f->jfd < 0)
        return err_set(e, ERR_IO, "cannot open %s: %s", f->jpath, strerror(errno));
    return journal_lock(f, e);
}

static int put_sweep_rec(results *f, int type, const sweep_rec *s, err *e)
{
    bytes b = {0};
    enc_sweep(&b, s);
    int rc = b.fail ? err_set(e, ERR_NOMEM, "out of memory") : journal_put(f, type, &b, 0, e);
    free(b.p);
    if (rc == 0) {
        if (type == REC_META) {
            rc = copy_sweep(&f->first, s);
            f->has_first = rc == 0;
        }
        if (rc == 0)
            rc = copy_sweep(&f->last, s);
        if (rc < 0)
            rc = err_set(e, ERR_NOMEM, "out of memory");
    }
    return rc;
}

/* A file without a journal (copied, or its journal deleted): write one from
 * the file's contents, then continue as usual. */
static int journal_from_file(results *f, err *e)
{
    int rc = 0;
    results_reader *rd = NULL;
    char *tmp = cat_str(f->jpath, ".tmp");
    run_result r;
    run_result_init(&r);
    if (!tmp) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = reader_open(&rd, f->path, e)) < 0)
        goto done;
    unlink(tmp); /* a leftover of an interrupted attempt at this */
    f->jfd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f->jfd < 0) {
        rc = err_set(e, ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    if ((rc = put_sweep_rec(f, REC_META, &rd->root, e)) < 0)
        goto done;
    for (size_t i = 1; i < rd->n_sw; i++)
        if ((rc = put_sweep_rec(f, REC_SWEEP, &rd->sw[i], e)) < 0)
            goto done;
    for (size_t i = 0; i < rd->n; i++) {
        results_row row;
        run_config c;
        int found, dup = 0;
        if ((rc = reader_get(rd, i, &row, &c, &r, &found, e)) < 0)
            goto done;
        for (size_t j = 0; j < f->n_att && !dup; j++)
            dup = strcmp(f->att[j].run_id, row.run_id) == 0 && f->att[j].attempt == row.attempt;
        if (!dup && r.status != RUN_STATUS_NONE) {
            bytes b = {0};
            rc = enc_row(&b, &row, &c, &r, e);
            if (rc == 0)
                rc = journal_put(f, REC_ROW, &b, 0, e);
            if (rc == 0 && push_attempt(f, &row, &c, &r) < 0)
                rc = err_set(e, ERR_NOMEM, "out of memory");
            free(b.p);
        }
        run_result_free(&r);
        if (rc < 0)
            goto done;
    }
    if ((rc = journal_sync(f, e)) < 0)
        goto done;
    if (rename(tmp, f->jpath) < 0) {
        rc = err_set(e, ERR_IO, "cannot move %s to %s: %s", tmp, f->jpath, strerror(errno));
        goto done;
    }
    sync_dir(f->jpath);
    add_note(f, "%s had no journal: wrote %s from its contents", f->path, f->jpath);
done:
    run_result_free(&r);
    reader_free(rd);
    if (rc < 0 && f->jfd >= 0 && tmp)
        unlink(tmp);
    free(tmp);
    /* the journal is reopened (and locked) by the caller; the state is rebuilt
     * by its scan */
    if (f->jfd >= 0)
        close(f->jfd);
    f->jfd = -1;
    f->n_rec = f->n_att = 0;
    f->jlen = 0;
    f->has_first = 0;
    sweep_rec_free(&f->first);
    sweep_rec_free(&f->last);
    return rc;
}

/* The journal is behind the file: keep it aside and write it afresh from the
 * file (which holds all it has, and more). */
static int journal_resync(results *f, err *e)
{
    char old[4200];
    free_name(f->jpath, "behind", old, sizeof old);
    if (rename(f->jpath, old) < 0)
        return err_set(e, ERR_IO, "cannot move %s to %s: %s", f->jpath, old, strerror(errno));
    close(f->jfd); /* after the rename: the lock is held until the journal moved */
    f->jfd = -1;
    f->n_rec = f->n_att = 0;
    f->jlen = 0;
    f->has_first = 0;
    sweep_rec_free(&f->first);
    sweep_rec_free(&f->last);
    int rc;
    if ((rc = journal_from_file(f, e)) < 0 || (rc = journal_open(f, e)) < 0 ||
        (rc = journal_scan(f, e)) < 0)
        return rc;
    add_note(f, "the journal was behind the file: kept as %s and rewritten from %s", old,
             f->path);
    return 0;
}

/* Check the file against the journal; rebuild it when it lacks something,
 * rewrite the journal when the file has more. Then open it for appending. */
static int recover_and_open(results *f, err *e)
{
    char why[1200];
    int verdict = FILE_SAME;
    int rc = check_file(f, &verdict, why, sizeof why, e);
    if (rc < 0)
        return rc;
    if (verdict == FILE_REBUILD && (rc = rebuild(f, why, e)) < 0)
        return rc;
    if (verdict == FILE_AHEAD && (rc = journal_resync(f, e)) < 0)
        return rc;
    return h5w_open(&f->w, f->path, &f->lay, e);
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
    iso_now(now, sizeof now);
    sweep_rec s;
    if (sweep_rec_from_meta(&s, meta, now) < 0)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (same_sweep_text(&s, &f->last)) {
        sweep_rec_free(&s);
        return 0;
    }
    sweep_rec_free(&f->pending);
    f->pending = s;
    f->has_pending = 1;
    return 0;
}

/* ---- public: create, open, append, close ------------------------------------------ */

static int do_open(results *f, const results_meta *meta, err *e)
{
    int rc;
    if (!path_exists(f->jpath)) {
        if (!path_exists(f->path))
            return err_set(e, ERR_IO, "cannot open results file %s: %s", f->path,
                           strerror(ENOENT));
        if ((rc = journal_from_file(f, e)) < 0)
            return rc;
    }
    if ((rc = journal_open(f, e)) < 0 || (rc = journal_scan(f, e)) < 0)
        return rc;
    if (!f->has_first)
        return err_set(e, ERR_INPUT,
                       "%s: its journal %s has no header record: the file was never completely "
                       "created (killed during creation?); remove both and start again",
                       f->path, f->jpath);
    if ((rc = recover_and_open(f, e)) < 0)
        return rc;
    return set_pending(f, meta, e);
}

int results_open(results **out, const char *path, const results_meta *meta, err *e)
{
    h5quiet q;
    quiet_begin(&q);
    int rc = 0;
    results *f = NULL;
    if (!path || !*path) {
        rc = err_set(e, ERR_INPUT, "results: empty path");
        goto done;
    }
    if (!(f = results_new(path))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = do_open(f, meta, e)) < 0)
        goto done;
    *out = f;
    f = NULL;
done:
    results_free(f);
    quiet_end(&q);
    return rc;
}

int results_create(results **out, const char *path, const results_meta *meta, err *e)
{
    h5quiet q;
    quiet_begin(&q);
    int rc = 0, made = 0;
    results *f = NULL;
    sweep_rec s;
    memset(&s, 0, sizeof s);
    char now[TIME_LEN], aside[4200];
    if (!path || !*path) {
        rc = err_set(e, ERR_INPUT, "results: empty path");
        goto done;
    }
    if ((rc = meta_ok(meta, e)) < 0 || (rc = check_dir(path, e)) < 0)
        goto done;
    if (path_exists(path)) {
        rc = err_set(e, ERR_IO, "cannot create results file %s: %s", path, strerror(EEXIST));
        goto done;
    }
    if (!(f = results_new(path))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    if (path_exists(f->jpath)) {
        /* A journal without its file: a kill during a rebuild (recover it) or
         * a leftover of something else (keep it aside). */
        err e2;
        err_clear(&e2);
        int mine = journal_open(f, &e2) == 0 && journal_scan(f, &e2) == 0 && f->has_first &&
                   f->first.hash == meta->sweep_hash &&
                   strcmp(f->first.name, meta->sweep_name) == 0;
        if (mine) {
            add_note(f, "recovered %s from its journal %s", f->path, f->jpath);
            if ((rc = recover_and_open(f, e)) < 0 || (rc = set_pending(f, meta, e)) < 0)
                goto done;
            *out = f;
            f = NULL;
            goto done;
        }
        if (e2.code == ERR_IO && strstr(e2.msg, "in use")) {
            rc = err_set(e, e2.code, "%s", e2.msg);
            goto done;
        }
        results_free(f);
        if (!(f = results_new(path))) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            goto done;
        }
        free_name(f->jpath, "orphan", aside, sizeof aside);
        if (rename(f->jpath, aside) < 0) {
            rc = err_set(e, ERR_IO, "cannot move the stale journal %s aside: %s", f->jpath,
                         strerror(errno));
            goto done;
        }
        add_note(f, "moved a journal without its file (another sweep's) aside to %s%s", aside,
                 "");
    }
    iso_now(now, sizeof now);
    if (sweep_rec_from_meta(&s, meta, now) < 0) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = journal_create(f, e)) < 0)
        goto done;
    made = 1;
    if ((rc = put_sweep_rec(f, REC_META, &s, e)) < 0 || (rc = journal_sync(f, e)) < 0)
        goto done;
    sync_dir(f->jpath);
    if ((rc = build_file(f, e)) < 0 || (rc = h5w_open(&f->w, f->path, &f->lay, e)) < 0)
        goto done;
    *out = f;
    f = NULL;
done:
    if (rc < 0 && made) {
        /* nothing of value was written (no attempt yet): leave nothing behind */
        char *tmp = cat_str(f->path, ".rebuild");
        if (tmp)
            unlink(tmp);
        free(tmp);
        unlink(f->path);
        unlink(f->jpath);
    }
    sweep_rec_free(&s);
    results_free(f);
    quiet_end(&q);
    return rc;
}

int results_append(results *f, const results_row *row, const run_config *c, const run_result *r,
                   err *e)
{
    h5quiet q;
    quiet_begin(&q);
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
    for (size_t i = 0; i < f->n_att; i++)
        if (strcmp(f->att[i].run_id, row->run_id) == 0 && f->att[i].attempt == row->attempt) {
            rc = err_set(e, ERR_INPUT, "%s: run %s attempt %d is already recorded", f->path,
                         row->run_id, row->attempt);
            goto done;
        }
    /* 1. the journal: the record of truth, synced */
    off_t jlen0 = f->jlen;
    size_t n_rec0 = f->n_rec;
    if ((rc = enc_row(&b, row, c, r, e)) < 0)
        goto done;
    if (f->has_pending && (rc = put_sweep_rec(f, REC_SWEEP, &f->pending, e)) < 0)
        goto done;
    int sync = mono_s() - f->last_sync >= JOURNAL_SYNC_S;
    if ((rc = journal_put(f, REC_ROW, &b, sync, e)) < 0) {
        if (f->n_rec != n_rec0 && ftruncate(f->jfd, jlen0) == 0) { /* the SWEEP record */
            fdatasync(f->jfd);
            f->jlen = jlen0;
            f->n_rec = n_rec0;
        }
        goto done;
    }
    if (sync)
        f->last_sync = mono_s();
    if (push_attempt(f, row, c, r) < 0) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    /* 2. the HDF5 file, flushed */
    if (f->has_pending) {
        f->has_pending = 0;
        if ((rc = h5w_add_sweep(&f->w, &f->pending, f->path, e)) < 0)
            goto hfail;
    }
    if ((rc = h5w_add_run(&f->w, &f->lay, row, c, r, f->path, e)) < 0)
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
    free(b.p);
    quiet_end(&q);
    return rc;
}

const results_attempt *results_attempts(const results *f, size_t *n)
{
    *n = f->n_att;
    return f->att;
}

const char *results_sweep_name(const results *f) { return f->first.name; }
uint64_t results_sweep_hash(const results *f) { return f->first.hash; }
const char *results_sweep_yaml(const results *f) { return f->first.yaml; }
const char *results_recovery(const results *f) { return f->note; }

static int flush_file(results *f, err *e)
{
    if (H5Fflush(f->w.file, H5F_SCOPE_LOCAL) < 0)
        return h5_err(e, f->path, "flushing");
    f->unflushed = 0;
    f->last_flush = mono_s();
    return 0;
}

int results_flush(results *f, err *e)
{
    if (!f || !f->unflushed || f->broken || f->w.file < 0)
        return 0;
    h5quiet q;
    quiet_begin(&q);
    int rc = flush_file(f, e);
    if (rc < 0)
        f->broken = 1;
    quiet_end(&q);
    return rc;
}

int results_close(results *f, err *e)
{
    if (!f)
        return 0;
    h5quiet q;
    quiet_begin(&q);
    int rc = 0;
    if (f->jfd >= 0 && fdatasync(f->jfd) < 0)
        rc = err_set(e, ERR_IO, "%s: fdatasync: %s", f->jpath, strerror(errno));
    if (f->w.file >= 0 && !f->broken && H5Fflush(f->w.file, H5F_SCOPE_LOCAL) < 0)
        rc = h5_err(e, f->path, "flushing");
    h5w_close(&f->w);
    results_free(f);
    quiet_end(&q);
    return rc;
}

/* ---- merge ------------------------------------------------------------------------ */

typedef struct cand {
    long index;
    int attempt, status;
    size_t file, row;
} cand;

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->index != y->index)
        return x->index < y->index ? -1 : 1;
    return x->file < y->file ? -1 : x->file > y->file ? 1 : x->row < y->row ? -1 : x->row > y->row;
}

/* ok first, then the latest attempt, then the later input. */
static int better(const cand *a, const cand *b)
{
    int oa = a->status == RUN_OK, ob = b->status == RUN_OK;
    if (oa != ob)
        return oa > ob;
    if (a->attempt != b->attempt)
        return a->attempt > b->attempt;
    return a->file > b->file || (a->file == b->file && a->row > b->row);
}

int results_merge(const char *out, const char *const *inputs, size_t n_inputs, long n_expected,
                  long *missing, size_t *n_missing, err *e)
{
    h5quiet q;
    quiet_begin(&q);
    int rc = 0, created = 0;
    results_reader **rd = NULL;
    results *f = NULL;
    cand *cs = NULL;
    size_t n_cs = 0, nm = 0;
    run_result r;
    run_result_init(&r);
    if (!out || n_inputs == 0) {
        rc = err_set(e, ERR_INPUT, "merge: an output and at least one input are required");
        goto done;
    }
    if ((rc = check_dir(out, e)) < 0)
        goto done;
    if (path_exists(out)) {
        rc = err_set(e, ERR_IO, "merge: cannot create %s: %s", out, strerror(EEXIST));
        goto done;
    }
    if (!(rd = calloc(n_inputs, sizeof *rd))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t total = 0;
    for (size_t j = 0; j < n_inputs; j++) {
        if ((rc = reader_open(&rd[j], inputs[j], e)) < 0) {
            err_prefix(e, "merge: ");
            goto done;
        }
        const sweep_rec *a = &rd[0]->root, *b = &rd[j]->root;
        if (a->hash != b->hash || strcmp(a->name, b->name) != 0) {
            rc = err_set(e, ERR_INPUT,
                         "merge: %s belongs to sweep '%s' (hash %016llx), not to sweep '%s' "
                         "(hash %016llx) of %s",
                         inputs[j], b->name, (unsigned long long)b->hash, a->name,
                         (unsigned long long)a->hash, inputs[0]);
            goto done;
        }
        total += rd[j]->n;
    }
    if (!(cs = malloc((total ? total : 1) * sizeof *cs))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t j = 0; j < n_inputs; j++)
        for (size_t i = 0; i < rd[j]->n; i++) {
            results_row row;
            run_config c;
            row_decode(&rd[j]->lay, rd[j]->rows + i * rd[j]->lay.size, rd[j]->present, &row, &c,
                       &r);
            if (r.status != RUN_STATUS_NONE && row.index >= 0 && row.attempt >= 1)
                cs[n_cs++] = (cand){row.index, row.attempt, r.status, j, i};
        }
    qsort(cs, n_cs, sizeof *cs, cmp_cand);
    /* keep the best candidate of each index at the front */
    size_t n_best = 0;
    for (size_t i = 0; i < n_cs;) {
        size_t best = i, k = i + 1;
        for (; k < n_cs && cs[k].index == cs[i].index; k++)
            if (better(&cs[k], &cs[best]))
                best = k;
        cs[n_best++] = cs[best];
        i = k;
    }
    if (n_expected > 0) {
        size_t k = 0;
        for (long idx = 0; idx < n_expected; idx++) {
            while (k < n_best && cs[k].index < idx)
                k++;
            if (k < n_best && cs[k].index == idx)
                continue;
            if (missing)
                missing[nm] = idx;
            nm++;
        }
    }
    /* the output: its journal first, then the file built from it */
    if (!(f = results_new(out))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    if (path_exists(f->jpath)) {
        rc = err_set(e, ERR_IO, "merge: cannot create %s: %s", f->jpath, strerror(EEXIST));
        goto done;
    }
    if ((rc = journal_create(f, e)) < 0)
        goto done;
    created = 1;
    char now[TIME_LEN];
    iso_now(now, sizeof now);
    sweep_rec m = rd[0]->root;
    m.time = now;
    if ((rc = put_sweep_rec(f, REC_META, &m, e)) < 0)
        goto done;
    for (size_t j = 0; j < n_inputs; j++)
        for (size_t i = 0; i < rd[j]->n_sw; i++) {
            int seen = 0;
            for (size_t jj = 0; jj <= j && !seen; jj++)
                for (size_t ii = 0; ii < (jj == j ? i : rd[jj]->n_sw) && !seen; ii++)
                    seen = same_sweep_text(&rd[jj]->sw[ii], &rd[j]->sw[i]);
            if (j == 0 && i == 0)
                seen = 1; /* the META record */
            if (!seen && (rc = put_sweep_rec(f, REC_SWEEP, &rd[j]->sw[i], e)) < 0)
                goto done;
        }
    for (size_t i = 0; i < n_best; i++) {
        results_row row;
        run_config c;
        int found;
        bytes b = {0};
        if ((rc = reader_get(rd[cs[i].file], cs[i].row, &row, &c, &r, &found, e)) < 0 ||
            (rc = enc_row(&b, &row, &c, &r, e)) < 0 ||
            (rc = journal_put(f, REC_ROW, &b, 0, e)) < 0) {
            free(b.p);
            goto done;
        }
        free(b.p);
        run_result_free(&r);
    }
    if ((rc = journal_sync(f, e)) < 0 || (rc = build_file(f, e)) < 0)
        goto done;
    sync_dir(out);
    if (n_missing)
        *n_missing = nm;
done:
    run_result_free(&r);
    if (rc < 0 && created) {
        unlink(f->path);
        unlink(f->jpath);
        char *tmp = cat_str(f->path, ".rebuild");
        if (tmp)
            unlink(tmp);
        free(tmp);
    }
    results_free(f);
    if (rd)
        for (size_t j = 0; j < n_inputs; j++)
            reader_free(rd[j]);
    free(rd);
    free(cs);
    quiet_end(&q);
    return rc;
}
