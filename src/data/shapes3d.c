/* data/shapes3d.c: DeepMind's 3dshapes file (docs/architecture.md section 3),
 * read and written.
 *
 * Layout (3dshapes.h5 of https://github.com/deepmind/3d-shapes):
 *   /images  (N, 64, 64, 3) uint8, RGB, row-major (height, width, channel)
 *   /labels  (N, 6) float64: floor_hue, wall_hue, object_hue, scale, shape,
 *            orientation values, rows in canonical product order (the last
 *            factor fastest)
 * The official file has N = 480,000 (sizes 10, 10, 10, 8, 4, 15) and is
 * 5.9 GB: images are read one at a time by hyperslab, never the whole array.
 * The factor sizes are the numbers of distinct values in each label column
 * (so a small file of the same layout serves the tests); the open checks that
 * their product is N and that every row's classes (the rank of each value
 * among its column's distinct values) are the mixed radix digits of the row,
 * reading /labels in slabs (23 MB for the official file). Images become
 * channel-major floats v/255; at S = 32 each output pixel is the mean of a
 * 2x2 block (the official file has only 64x64 images). */
#include "data_impl.h"

#include "../util/h5util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    S3_SIDE = 64,
    S3_K = 6,
    S3_MAX_VALUES = 256,   /* distinct values a label column may have */
    S3_LABEL_SLAB = 65536, /* rows of /labels per read: 3 MB */
    S3_IMG_CHUNK = 16      /* images per chunk of a written /images */
};

struct shapes3d {
    hid_t file, images;
    hid_t mspace;            /* one image (1, 64, 64, 3) */
    int sizes[S3_K];
    size_t n;
    uint8_t buf[S3_SIDE * S3_SIDE * 3];
    pthread_mutex_t lock;    /* HDF5 (serial build) is not thread-safe */
};

const int *shapes3d_sizes(const shapes3d *s) { return s->sizes; }

void shapes3d_close(shapes3d *s)
{
    if (!s)
        return;
    h5util_close(s->mspace);
    h5util_close(s->images);
    h5util_close(s->file);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* The sorted distinct values of each label column (vals[k][0..nv[k])). */
typedef struct label_values {
    double v[S3_K][S3_MAX_VALUES];
    int nv[S3_K];
} label_values;

/* Insert x into the sorted set of column k; -1 when it is full. */
static int add_value(label_values *lv, int k, double x)
{
    double *v = lv->v[k];
    int lo = 0, hi = lv->nv[k];
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < lv->nv[k] && v[lo] == x)
        return 0;
    if (lv->nv[k] == S3_MAX_VALUES)
        return -1;
    memmove(v + lo + 1, v + lo, sizeof *v * (size_t)(lv->nv[k] - lo));
    v[lo] = x;
    lv->nv[k]++;
    return 0;
}

static int rank_of(const label_values *lv, int k, double x)
{
    const double *v = lv->v[k];
    int lo = 0, hi = lv->nv[k];
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Two passes over /labels: the distinct values of each column, then the
 * product order. Fills s->sizes. */
static int check_labels(shapes3d *s, hid_t lab, const hsize_t *dl, const char *path, err *e)
{
    int rc = 0;
    const hsize_t N = dl[0];
    double *rows = malloc(sizeof *rows * S3_LABEL_SLAB * S3_K);
    label_values *lv = calloc(1, sizeof *lv);
    if (!rows || !lv) {
        rc = err_set(e, ERR_NOMEM, "data.path: %s: out of memory", path);
        goto done;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (hsize_t r0 = 0; r0 < N; r0 += S3_LABEL_SLAB) {
            hsize_t cnt = N - r0 < S3_LABEL_SLAB ? N - r0 : S3_LABEL_SLAB;
            if (data_h5_read_rows(lab, H5T_NATIVE_DOUBLE, 2, dl, r0, cnt, rows) < 0) {
                rc = err_set(e, ERR_INPUT, "data.path: %s: dataset /labels: read failed", path);
                goto done;
            }
            for (hsize_t i = 0; i < cnt; i++) {
                const double *row = rows + i * S3_K;
                if (pass == 0) {
                    for (int k = 0; k < S3_K; k++) {
                        if (!isfinite(row[k])) {
                            rc = err_set(e, ERR_INPUT,
                                         "data.path: %s: dataset /labels: row %llu column %d is "
                                         "not a finite number",
                                         path, (unsigned long long)(r0 + i), k);
                            goto done;
                        }
                        if (add_value(lv, k, row[k]) < 0) {
                            rc = err_set(e, ERR_INPUT,
                                         "data.path: %s: dataset /labels: column %d (%s) has "
                                         "more than %d distinct values",
                                         path, k, data_shapes3d_names[k], S3_MAX_VALUES);
                            goto done;
                        }
                    }
                    continue;
                }
                /* the classes expected of row r0 + i: its mixed radix digits */
                hsize_t q = r0 + i;
                int want[S3_K];
                for (int k = S3_K - 1; k >= 0; k--) {
                    want[k] = (int)(q % (hsize_t)s->sizes[k]);
                    q /= (hsize_t)s->sizes[k];
                }
                for (int k = 0; k < S3_K; k++)
                    if (rank_of(lv, k, row[k]) != want[k]) {
                        rc = err_set(e, ERR_INPUT,
                                     "data.path: %s: dataset /labels: row %llu has %s = %g (class "
                                     "%d), expected class %d: the labels are not in product "
                                     "order (the last factor fastest)",
                                     path, (unsigned long long)(r0 + i), data_shapes3d_names[k],
                                     row[k], rank_of(lv, k, row[k]), want[k]);
                        goto done;
                    }
            }
        }
        if (pass == 0) {
            hsize_t prod = 1;
            for (int k = 0; k < S3_K; k++) {
                s->sizes[k] = lv->nv[k];
                prod *= (hsize_t)lv->nv[k];
            }
            if (prod != N) {
                rc = err_set(e, ERR_INPUT,
                             "data.path: %s: dataset /labels: %llu rows, but its distinct values "
                             "(%d x %d x %d x %d x %d x %d) make %llu combinations: not a full "
                             "product of the factors",
                             path, (unsigned long long)N, s->sizes[0], s->sizes[1], s->sizes[2],
                             s->sizes[3], s->sizes[4], s->sizes[5], (unsigned long long)prod);
                goto done;
            }
        }
    }
done:
    free(rows);
    free(lv);
    return rc;
}

int shapes3d_open(shapes3d **out, const char *path, size_t *n, err *e)
{
    hid_t lab = H5I_INVALID_HID, t = H5I_INVALID_HID;
    int rc = 0;
    h5util_quiet q;
    h5util_quiet_begin(&q);
    shapes3d *s = calloc(1, sizeof *s);
    if (!s) {
        rc = err_set(e, ERR_NOMEM, "data.path: %s: out of memory", path);
        goto done;
    }
    s->file = s->images = s->mspace = H5I_INVALID_HID;
    pthread_mutex_init(&s->lock, NULL);

    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            rc = err_set(e, ERR_INPUT,
                         "data.path: %s: no such file; shapes3d reads DeepMind's 3dshapes.h5 "
                         "(get it from https://github.com/deepmind/3d-shapes)",
                         path);
        else
            rc = err_set(e, ERR_INPUT, "data.path: %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = err_set(e, ERR_INPUT, "data.path: %s: not a regular file", path);
        goto done;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        rc = err_set(e, ERR_INPUT, "data.path: %s: cannot open: %s", path, strerror(errno));
        goto done;
    }
    close(fd);
    if ((s->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0) {
        rc = err_set(e, ERR_INPUT, "data.path: %s: not an HDF5 file", path);
        goto done;
    }
    hsize_t di[4], dl[2];
    if ((s->images = data_h5_open_dataset(s->file, path, "/images", H5T_INTEGER, 4, di, e)) < 0) {
        rc = ERR_INPUT;
        goto done;
    }
    t = H5Dget_type(s->images);
    if (t < 0 || H5Tget_size(t) != 1 || H5Tget_sign(t) != H5T_SGN_NONE) {
        rc = err_set(e, ERR_INPUT, "data.path: %s: dataset /images is not uint8", path);
        goto done;
    }
    if (di[0] == 0 || di[0] > UINT32_MAX || di[1] != S3_SIDE || di[2] != S3_SIDE || di[3] != 3) {
        rc = err_set(e, ERR_INPUT,
                     "data.path: %s: dataset /images has shape (%llu,%llu,%llu,%llu), expected "
                     "(N,64,64,3)",
                     path, (unsigned long long)di[0], (unsigned long long)di[1],
                     (unsigned long long)di[2], (unsigned long long)di[3]);
        goto done;
    }
    if ((lab = data_h5_open_dataset(s->file, path, "/labels", H5T_FLOAT, 2, dl, e)) < 0) {
        rc = ERR_INPUT;
        goto done;
    }
    if (dl[0] != di[0] || dl[1] != S3_K) {
        rc = err_set(e, ERR_INPUT,
                     "data.path: %s: dataset /labels has shape (%llu,%llu), expected (%llu,6)",
                     path, (unsigned long long)dl[0], (unsigned long long)dl[1],
                     (unsigned long long)di[0]);
        goto done;
    }
    if ((rc = check_labels(s, lab, dl, path, e)) < 0)
        goto done;
    hsize_t one[4] = {1, S3_SIDE, S3_SIDE, 3};
    if ((s->mspace = H5Screate_simple(4, one, NULL)) < 0) {
        rc = h5util_err(e, "data: a dataspace for", path);
        goto done;
    }
    s->n = (size_t)di[0];
done:
    h5util_close(t);
    h5util_close(lab);
    h5util_quiet_end(&q);
    if (rc < 0) {
        shapes3d_close(s);
        return rc;
    }
    *n = s->n;
    *out = s;
    return 0;
}

int data_open_shapes3d(data_source **out, const char *path, int S, err *e)
{
    if (S != 0 && S != 64 && S != 32)
        return err_set(e, ERR_INPUT, "data.image_size: %d: must be 64 or 32", S);
    data_source *d = calloc(1, sizeof *d);
    if (!d)
        return err_set(e, ERR_NOMEM, "data: out of memory for shapes3d");
    int rc = shapes3d_open(&d->s3, path, &d->n, e);
    if (rc < 0) {
        free(d);
        return rc;
    }
    d->set = DATA_SHAPES3D;
    d->S = S ? S : 64;
    d->C = 3;
    *out = d;
    return 0;
}

void shapes3d_get(shapes3d *s, uint32_t index, int S, float *img, int *f)
{
    pthread_mutex_lock(&s->lock);
    hsize_t start[4] = {index, 0, 0, 0}, count[4] = {1, S3_SIDE, S3_SIDE, 3};
    hid_t fs = H5Dget_space(s->images);
    int ok = fs >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
             H5Dread(s->images, H5T_NATIVE_UINT8, s->mspace, fs, H5P_DEFAULT, s->buf) >= 0;
    h5util_close(fs);
    if (!ok) /* the file was readable at open: a read error now is an I/O fault */
        memset(s->buf, 0, sizeof s->buf);
    const uint8_t *b = s->buf; /* (64, 64, 3) */
    if (S == S3_SIDE) {
        const size_t P = S3_SIDE * S3_SIDE;
        for (size_t p = 0; p < P; p++)
            for (int c = 0; c < 3; c++)
                img[(size_t)c * P + p] = (float)b[3 * p + (size_t)c] * (1.0f / 255.0f);
    } else { /* S = 32: the mean of each 2x2 block */
        const size_t P = (size_t)S * (size_t)S;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                for (int c = 0; c < 3; c++) {
                    const uint8_t *q = b + ((size_t)(2 * y) * S3_SIDE + (size_t)(2 * x)) * 3 + c;
                    unsigned sum = (unsigned)q[0] + q[3] + q[3 * S3_SIDE] + q[3 * S3_SIDE + 3];
                    img[(size_t)c * P + (size_t)y * S + (size_t)x] =
                        (float)sum * (1.0f / (4.0f * 255.0f));
                }
    }
    pthread_mutex_unlock(&s->lock);
    if (f) {
        uint32_t q = index;
        for (int k = S3_K - 1; k >= 0; k--) {
            f[k] = (int)(q % (uint32_t)s->sizes[k]);
            q /= (uint32_t)s->sizes[k];
        }
    }
}

/* ---- writing a file of the layout ------------------------------------------ */

/* Value of class c of n for factor k, as the official file's labels:
 * hues c/n (0, 0.1, ... 0.9 for n = 10), scale linspace(0.75, 1.25, n),
 * shape c, orientation linspace(-30, 30, n). */
static double label_value(int k, int c, int n)
{
    double t = n > 1 ? (double)c / (double)(n - 1) : 0.0;
    switch (k) {
    case 3: return 0.75 + 0.5 * t;
    case 4: return (double)c;
    case 5: return -30.0 + 60.0 * t;
    default: return (double)c / (double)n;
    }
}

/* RGB of hue h in [0, 1) at full saturation and value. */
static void hue_rgb(double h, uint8_t rgb[3])
{
    double x = h * 6.0;
    int i = (int)x % 6;
    double fr = x - floor(x);
    double v[6][3] = {{1, fr, 0}, {1 - fr, 1, 0}, {0, 1, fr}, {0, 1 - fr, 1}, {fr, 0, 1},
                      {1, 0, 1 - fr}};
    for (int c = 0; c < 3; c++)
        rgb[c] = (uint8_t)lround(255.0 * v[i][c]);
}

/* A picture of classes f: wall (top 40 rows) and floor in their hues, an
 * object of half side 6 + 10*scale at the centre of the floor line, shifted
 * by the orientation, in the object's hue: square, disc, diamond or cross. */
static void draw(uint8_t *img, const int *f, const int *sizes)
{
    uint8_t wall[3], floor_[3], obj[3];
    hue_rgb(label_value(0, f[0], sizes[0]), floor_);
    hue_rgb(label_value(1, f[1], sizes[1]), wall);
    hue_rgb(label_value(2, f[2], sizes[2]), obj);
    const double r = 6.0 + 10.0 * (label_value(3, f[3], sizes[3]) - 0.75) / 0.5;
    const double cx = 32.0 + label_value(5, f[5], sizes[5]) / 30.0 * 8.0, cy = 40.0;
    for (int y = 0; y < S3_SIDE; y++)
        for (int x = 0; x < S3_SIDE; x++) {
            double u = x + 0.5 - cx, w = y + 0.5 - cy;
            int in = 0;
            switch (f[4] % 4) {
            case 0: in = fabs(u) <= r && fabs(w) <= r; break;
            case 1: in = u * u + w * w <= r * r; break;
            case 2: in = fabs(u) + fabs(w) <= r; break;
            default: in = (fabs(u) <= r / 3 && fabs(w) <= r) || (fabs(w) <= r / 3 && fabs(u) <= r);
            }
            const uint8_t *c = in ? obj : y < 40 ? wall : floor_;
            memcpy(img + ((size_t)y * S3_SIDE + (size_t)x) * 3, c, 3);
        }
}

int data_write_shapes3d(const char *path, const int sizes[6], int sparse, err *e)
{
    hid_t file = H5I_INVALID_HID, sp = H5I_INVALID_HID, dcpl = H5I_INVALID_HID,
          img = H5I_INVALID_HID, lab = H5I_INVALID_HID, ms = H5I_INVALID_HID,
          fs = H5I_INVALID_HID;
    int rc = 0;
    uint8_t *buf = NULL;
    double *lrow = NULL;
    hsize_t N = 1;
    for (int k = 0; k < S3_K; k++) {
        if (sizes[k] < 1 || sizes[k] > S3_MAX_VALUES)
            return err_set(e, ERR_INPUT, "shapes3d: factor %s: %d values (must be 1..%d)",
                           data_shapes3d_names[k], sizes[k], S3_MAX_VALUES);
        N *= (hsize_t)sizes[k];
    }
    if (N > UINT32_MAX)
        return err_set(e, ERR_INPUT, "shapes3d: %llu images is too many",
                       (unsigned long long)N);
    h5util_quiet q;
    h5util_quiet_begin(&q);
    if ((file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        rc = h5util_err(e, "shapes3d: creating", path);
        goto done;
    }
    /* /images: chunks of S3_IMG_CHUNK images; sparse: never written, allocated
     * only when written (so never), read back as the fill value 0 */
    hsize_t di[4] = {N, S3_SIDE, S3_SIDE, 3}, ci[4] = {S3_IMG_CHUNK, S3_SIDE, S3_SIDE, 3};
    if (ci[0] > N)
        ci[0] = N;
    if ((sp = H5Screate_simple(4, di, NULL)) < 0 || (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 ||
        H5Pset_chunk(dcpl, 4, ci) < 0 || H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_INCR) < 0 ||
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_IFSET) < 0 ||
        (img = H5Dcreate2(file, "images", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0) {
        rc = h5util_err(e, "shapes3d: creating /images in", path);
        goto done;
    }
    h5util_close(sp);
    h5util_close(dcpl);
    sp = dcpl = H5I_INVALID_HID;
    /* /labels: chunked and gzipped (the full size's 23 MB shrink to a few) */
    hsize_t dl[2] = {N, S3_K}, cl[2] = {N < 8192 ? N : 8192, S3_K};
    if ((sp = H5Screate_simple(2, dl, NULL)) < 0 || (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 ||
        H5Pset_chunk(dcpl, 2, cl) < 0 || H5Pset_deflate(dcpl, 1) < 0 ||
        (lab = H5Dcreate2(file, "labels", H5T_IEEE_F64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) <
            0) {
        rc = h5util_err(e, "shapes3d: creating /labels in", path);
        goto done;
    }
    const hsize_t slab = S3_IMG_CHUNK * 64;
    buf = malloc((size_t)slab * S3_SIDE * S3_SIDE * 3);
    lrow = malloc(sizeof *lrow * (size_t)slab * S3_K);
    if (!buf || !lrow) {
        rc = err_set(e, ERR_NOMEM, "shapes3d: out of memory writing %s", path);
        goto done;
    }
    for (hsize_t r0 = 0; r0 < N; r0 += slab) {
        hsize_t cnt = N - r0 < slab ? N - r0 : slab;
        for (hsize_t i = 0; i < cnt; i++) {
            int f[S3_K];
            hsize_t qq = r0 + i;
            for (int k = S3_K - 1; k >= 0; k--) {
                f[k] = (int)(qq % (hsize_t)sizes[k]);
                qq /= (hsize_t)sizes[k];
            }
            for (int k = 0; k < S3_K; k++)
                lrow[i * S3_K + (hsize_t)k] = label_value(k, f[k], sizes[k]);
            if (!sparse)
                draw(buf + i * S3_SIDE * S3_SIDE * 3, f, sizes);
        }
        hsize_t st2[2] = {r0, 0}, c2[2] = {cnt, S3_K};
        if ((fs = H5Dget_space(lab)) < 0 || (ms = H5Screate_simple(2, c2, NULL)) < 0 ||
            H5Sselect_hyperslab(fs, H5S_SELECT_SET, st2, NULL, c2, NULL) < 0 ||
            H5Dwrite(lab, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, lrow) < 0) {
            rc = h5util_err(e, "shapes3d: writing /labels in", path);
            goto done;
        }
        h5util_close(fs);
        h5util_close(ms);
        fs = ms = H5I_INVALID_HID;
        if (sparse)
            continue;
        hsize_t st4[4] = {r0, 0, 0, 0}, c4[4] = {cnt, S3_SIDE, S3_SIDE, 3};
        if ((fs = H5Dget_space(img)) < 0 || (ms = H5Screate_simple(4, c4, NULL)) < 0 ||
            H5Sselect_hyperslab(fs, H5S_SELECT_SET, st4, NULL, c4, NULL) < 0 ||
            H5Dwrite(img, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, buf) < 0) {
            rc = h5util_err(e, "shapes3d: writing /images in", path);
            goto done;
        }
        h5util_close(fs);
        h5util_close(ms);
        fs = ms = H5I_INVALID_HID;
    }
done:
    free(buf);
    free(lrow);
    h5util_close(fs);
    h5util_close(ms);
    h5util_close(lab);
    h5util_close(img);
    h5util_close(dcpl);
    h5util_close(sp);
    if (file >= 0 && H5Fclose(file) < 0 && rc == 0)
        rc = h5util_err(e, "shapes3d: closing", path);
    h5util_quiet_end(&q);
    if (rc < 0)
        unlink(path);
    return rc;
}
