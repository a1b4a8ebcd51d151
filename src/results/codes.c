/* codes.c: the codes file of `untangle eval --codes CODES.h5`: the encoded
 * full data set of each evaluated run, so that any other metric can be
 * computed from it (docs/architecture.md section 7 describes the layout):
 *
 * /  attributes format "untangle-codes", format_version int32 1,
 *    untangle_version str, n int64 (items), K int32 (factors)
 * /factors       int32 (n, K): factor classes of item i; item i is the image
 *                of canonical index i (mixed radix over the factor values,
 *                the last factor fastest)
 * /factor_sizes  int32 (K)
 * /factor_names  str (K)
 * /runs/<run_id>/mu      float32 (n, D) posterior means (dsd: the code)
 * /runs/<run_id>/logvar  float32 (n, D) posterior log-variances (dsd: 0)
 * /runs/<run_id>/alpha   float32 (n, sum discrete) category probabilities
 *                        (only when the model has discrete variables)
 *    attributes run_id, model, arch, discrete (str, e.g. "[3]"), image_size,
 *    latent_dim, seed, samples int64, config str (every key=value line)
 *
 * Several run processes may write one file: each takes an exclusive flock on
 * it for its whole write (HDF5's own locking is off, as for the results
 * writer). A run evaluated again replaces its group. */
#include "results_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

enum { CODES_FORMAT = 1 };

static int put_attr(hid_t loc, const char *name, hid_t type, const void *val)
{
    hid_t sp = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
    int rc = sp >= 0 && (a = H5Acreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
                     H5Awrite(a, type, val) >= 0
                 ? 0
                 : -1;
    h5util_close(a);
    h5util_close(sp);
    return rc;
}

static int put_attr_str(hid_t loc, const char *name, const char *val)
{
    hid_t t = res_str_type(H5T_VARIABLE);
    int rc = t < 0 ? -1 : put_attr(loc, name, t, &val);
    h5util_close(t);
    return rc;
}

/* A contiguous dataset (rank 1 or 2) written from buf of memtype. */
static int put_ds(hid_t loc, const char *name, hid_t filetype, hid_t memtype, int rank,
                  const hsize_t *dims, const void *buf)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL), ds = H5I_INVALID_HID;
    int rc = sp >= 0 &&
                     (ds = H5Dcreate2(loc, name, filetype, sp, H5P_DEFAULT, H5P_DEFAULT,
                                      H5P_DEFAULT)) >= 0 &&
                     H5Dwrite(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0
                 ? 0
                 : -1;
    h5util_close(ds);
    h5util_close(sp);
    return rc;
}

/* The root of a new file: attributes, factors, sizes, names. */
static int put_root(hid_t file, const run_codes *k)
{
    const int32_t fmt = CODES_FORMAT, K = k->K;
    const int64_t n = (int64_t)k->n;
    hsize_t dims[2] = {k->n, (hsize_t)k->K}, kd = (hsize_t)k->K;
    int32_t *f = malloc(sizeof(int32_t) * (k->n ? k->n : 1) * (size_t)k->K);
    hid_t st = res_str_type(H5T_VARIABLE);
    int rc = -1;
    if (!f || st < 0)
        goto done;
    for (size_t i = 0; i < k->n * (size_t)k->K; i++)
        f[i] = k->f[i];
    if (put_attr_str(file, "format", "untangle-codes") < 0 ||
        put_attr(file, "format_version", H5T_NATIVE_INT32, &fmt) < 0 ||
        put_attr_str(file, "untangle_version", UNTANGLE_VERSION) < 0 ||
        put_attr(file, "n", H5T_NATIVE_INT64, &n) < 0 ||
        put_attr(file, "K", H5T_NATIVE_INT32, &K) < 0 ||
        put_ds(file, "factors", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, dims, f) < 0 ||
        put_ds(file, "factor_sizes", H5T_STD_I32LE, H5T_NATIVE_INT, 1, &kd, k->sizes) < 0 ||
        put_ds(file, "factor_names", st, st, 1, &kd, k->names) < 0)
        goto done;
    rc = 0;
done:
    free(f);
    h5util_close(st);
    return rc;
}

/* The file's factors must be k's: same n, K and sizes. */
static int same_root(hid_t file, const run_codes *k)
{
    int64_t n = -1;
    int32_t K = -1;
    hid_t a = H5Aopen(file, "n", H5P_DEFAULT), b = H5Aopen(file, "K", H5P_DEFAULT);
    int ok = a >= 0 && b >= 0 && H5Aread(a, H5T_NATIVE_INT64, &n) >= 0 &&
             H5Aread(b, H5T_NATIVE_INT32, &K) >= 0 && n == (int64_t)k->n && K == k->K;
    h5util_close(a);
    h5util_close(b);
    if (!ok)
        return 0;
    int sizes[64];
    hid_t ds = H5Dopen2(file, "factor_sizes", H5P_DEFAULT);
    ok = K <= 64 && ds >= 0 &&
         H5Dread(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, sizes) >= 0 &&
         memcmp(sizes, k->sizes, sizeof(int) * (size_t)K) == 0;
    h5util_close(ds);
    return ok;
}

/* Every applicable key of c as "key=value\n" lines. */
static void config_text(const run_config *c, char *buf, size_t n)
{
    size_t used = 0;
    char val[1200];
    buf[0] = '\0';
    for (size_t i = 0; i < run_n_keys && used < n; i++) {
        if (!run_key_applies(c, &run_keys[i]))
            continue;
        run_config_format(c, &run_keys[i], val, sizeof val);
        used += (size_t)snprintf(buf + used, n - used, "%s=%s\n", run_keys[i].name, val);
    }
}

/* The group of one run: its arrays and attributes. */
static int put_run(hid_t runs, const char *run_id, const run_config *c, const run_codes *k)
{
    if (H5Lexists(runs, run_id, H5P_DEFAULT) > 0 && H5Ldelete(runs, run_id, H5P_DEFAULT) < 0)
        return -1;
    hid_t g = H5Gcreate2(runs, run_id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return -1;
    int Ks = 0;
    for (int i = 0; i < k->n_discrete; i++)
        Ks += k->discrete[i];
    hsize_t dz[2] = {k->n, (hsize_t)k->D}, da[2] = {k->n, (hsize_t)Ks};
    char disc[LIST_LEN], text[4096];
    run_config_format(c, run_key_find("discrete"), disc, sizeof disc);
    config_text(c, text, sizeof text);
    const int64_t image_size = c->image_size, latent_dim = k->D, seed = c->seed,
                  samples = c->samples;
    int rc = put_ds(g, "mu", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dz, k->mu) < 0 ||
                     put_ds(g, "logvar", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dz, k->lv) < 0 ||
                     (Ks > 0 && k->alpha &&
                      put_ds(g, "alpha", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, da, k->alpha) < 0) ||
                     put_attr_str(g, "run_id", run_id) < 0 ||
                     put_attr_str(g, "model", c->model) < 0 ||
                     put_attr_str(g, "arch", c->arch) < 0 ||
                     put_attr_str(g, "discrete", disc) < 0 ||
                     put_attr(g, "image_size", H5T_NATIVE_INT64, &image_size) < 0 ||
                     put_attr(g, "latent_dim", H5T_NATIVE_INT64, &latent_dim) < 0 ||
                     put_attr(g, "seed", H5T_NATIVE_INT64, &seed) < 0 ||
                     put_attr(g, "samples", H5T_NATIVE_INT64, &samples) < 0 ||
                     put_attr_str(g, "config", text) < 0
                 ? -1
                 : 0;
    h5util_close(g);
    return rc;
}

int results_codes_write(const char *path, const char *run_id, const run_config *c,
                        const run_codes *k, err *e)
{
    h5util_quiet q;
    h5util_quiet_begin(&q);
    hid_t fapl = H5I_INVALID_HID, file = H5I_INVALID_HID, runs = H5I_INVALID_HID;
    int rc = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    struct stat st;
    if (fd < 0 || flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0) {
        rc = err_set(e, ERR_IO, "opening the codes file %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = err_set(e, ERR_IO, "the codes file %s is not a regular file", path);
        goto done;
    }
    if ((fapl = res_make_fapl(1)) < 0) {
        rc = h5util_err(e, "opening", path);
        goto done;
    }
    if (st.st_size == 0) {
        if ((file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0 ||
            put_root(file, k) < 0 ||
            (runs = H5Gcreate2(file, "runs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
            rc = h5util_err(e, "creating the codes file", path);
            goto done;
        }
    } else {
        if ((file = H5Fopen(path, H5F_ACC_RDWR, fapl)) < 0 ||
            (runs = H5Gopen2(file, "runs", H5P_DEFAULT)) < 0) {
            rc = h5util_err(e, "opening the codes file", path);
            goto done;
        }
        if (!same_root(file, k)) {
            rc = err_set(e, ERR_INPUT, "%s holds the codes of another data set (not %zu items "
                         "of %d factors)", path, k->n, k->K);
            goto done;
        }
    }
    if (put_run(runs, run_id, c, k) < 0) {
        rc = h5util_err(e, "writing the codes of a run into", path);
        goto done;
    }
    h5util_close(runs);
    runs = H5I_INVALID_HID;
    if (H5Fclose(file) < 0) {
        file = H5I_INVALID_HID;
        rc = h5util_err(e, "closing", path);
        goto done;
    }
    file = H5I_INVALID_HID;
done:
    h5util_close(runs);
    h5util_close(file);
    h5util_close(fapl);
    if (fd >= 0)
        close(fd); /* releases the lock */
    h5util_quiet_end(&q);
    return rc;
}
