/* data/source.c: where images come from, and which data set a name means.
 * The built-in source renders on demand; a file source holds the official
 * DeepMind HDF5 images bit-packed; a variant source (color_dsprites,
 * noisy_dsprites) colours or noises the images of a dSprites source; the
 * shapes3d source is src/data/shapes3d.c.
 *
 * File layout read here (the official dsprites_ndarray_*.hdf5; docs/architecture.md section 3):
 *   /imgs             (N, S, S) integer, 0/1          N = 737,280, S = 64 or 32
 *   /latents/classes  (N, 6) integer: colour class (0), then the five factor
 *                     classes; rows must be in canonical order
 *   /latents/values   (N, 6) float: colour value, then the factor values
 * /imgs is read in slabs of DATA_READ_SLAB images (hyperslab reads, so the
 * whole uint8 array, 3 GB at S = 64, is never in memory) and packed 8 pixels
 * a byte: image i occupies bytes [i*S*S/8, (i+1)*S*S/8), pixel p of the image
 * is bit p%8 (least significant first) of byte p/8. /latents/classes is
 * checked row by row against data_factors(row); /latents/values only for
 * shape and type (the renderer and the code use classes, not values). */
#include "data_impl.h"

#include "../util/h5util.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    DATA_READ_SLAB = 4096,   /* images per hyperslab read: 16 MB at S = 64 */
    DATA_CLASS_SLAB = 65536, /* rows of /latents/classes per read: 3 MB */
    DATA_NCOL = 6            /* colour + the five factors */
};

const char *const data_set_names[DATA_N_SETS] = {
    [DATA_DSPRITES] = "dsprites", [DATA_COLOR_DSPRITES] = "color_dsprites",
    [DATA_NOISY_DSPRITES] = "noisy_dsprites", [DATA_SHAPES3D] = "shapes3d"};

const char *const data_shapes3d_names[6] = {"floor_hue", "wall_hue", "object_hue",
                                            "scale",     "shape",    "orientation"};
/* The official file's sizes, and the factors of `mig`: all six, as
 * disentanglement_lib's MIG, which averages over every factor of every data
 * set (Chen et al.'s code, which leaves dSprites' shape out, has no 3dshapes). */
static const int shapes3d_official_sizes[6] = {10, 10, 10, 8, 4, 15};
static const unsigned char shapes3d_in_mig[6] = {1, 1, 1, 1, 1, 1};

int data_set_find(const char *name)
{
    for (int i = 0; i < DATA_N_SETS; i++)
        if (name && strcmp(name, data_set_names[i]) == 0)
            return i;
    return -1;
}

int data_open_builtin(data_source **out, int S, err *e)
{
    if (S != 64 && S != 32)
        return err_set(e, ERR_INPUT, "data.image_size: %d: must be 64 or 32", S);
    data_source *d = calloc(1, sizeof *d);
    if (!d)
        return err_set(e, ERR_NOMEM, "data: out of memory for the built-in source");
    d->set = DATA_DSPRITES;
    d->S = S;
    d->C = 1;
    d->n = DATA_N;
    *out = d;
    return 0;
}

int data_open_variant(data_source **out, data_set set, data_source *base, err *e)
{
    if (set == DATA_DSPRITES) {
        *out = base;
        return 0;
    }
    if ((set != DATA_COLOR_DSPRITES && set != DATA_NOISY_DSPRITES) || base->set != DATA_DSPRITES ||
        base->base) {
        data_close(base);
        return err_set(e, ERR_INTERNAL, "data: a variant of dSprites needs a dSprites source");
    }
    data_source *d = calloc(1, sizeof *d);
    if (!d) {
        data_close(base);
        return err_set(e, ERR_NOMEM, "data: out of memory for %s", data_set_names[set]);
    }
    d->set = set;
    d->S = base->S;
    d->C = 3;
    d->n = base->n;
    d->inner = base;
    *out = d;
    return 0;
}

int data_open(data_source **out, const char *name, const char *path, int S, err *e)
{
    int set = data_set_find(name);
    if (set < 0)
        return err_set(e, ERR_INPUT, "data.name: unknown data set '%s' (dsprites, color_dsprites, "
                                     "noisy_dsprites or shapes3d)",
                       name ? name : "");
    const int has_path = path && path[0];
    if (set == DATA_SHAPES3D) {
        if (!has_path)
            return err_set(e, ERR_INPUT,
                           "data.path: shapes3d needs the file 3dshapes.h5 (from "
                           "https://github.com/deepmind/3d-shapes)");
        return data_open_shapes3d(out, path, S, e);
    }
    data_source *base = NULL;
    int rc = has_path ? data_open_file(&base, path, S, e) : data_open_builtin(&base, S, e);
    if (rc < 0)
        return rc;
    return data_open_variant(out, (data_set)set, base, e);
}

int data_open_subset(data_source **out, const data_source *base, const uint32_t *idx,
                     size_t n, err *e)
{
    if (n == 0)
        return err_set(e, ERR_INPUT, "data: an empty subset");
    data_source *d = calloc(1, sizeof *d);
    uint32_t *copy = malloc(n * sizeof *copy);
    if (!d || !copy) {
        free(d);
        free(copy);
        return err_set(e, ERR_NOMEM, "data: out of memory for a subset of %zu images", n);
    }
    memcpy(copy, idx, n * sizeof *copy);
    d->set = base->set;
    d->S = base->S;
    d->C = base->C;
    d->n = n;
    d->base = base;
    d->subset = copy;
    *out = d;
    return 0;
}

void data_close(data_source *d)
{
    if (!d)
        return;
    free(d->bits);
    free(d->subset);
    data_close(d->inner);
    shapes3d_close(d->s3);
    free(d);
}

size_t data_count(const data_source *d) { return d->n; }

int data_size(const data_source *d) { return d->S; }

int data_channels(const data_source *d) { return d->C; }

static void describe_set(data_set set, const int *s3sizes, data_factor_desc *out)
{
    if (set == DATA_SHAPES3D) {
        size_t n = 1;
        for (int k = 0; k < 6; k++)
            n *= (size_t)s3sizes[k];
        *out = (data_factor_desc){data_set_names[set], 3, 6, s3sizes, data_shapes3d_names,
                                  shapes3d_in_mig, n};
        return;
    }
    *out = (data_factor_desc){data_set_names[set], set == DATA_DSPRITES ? 1 : 3, DATA_K,
                              data_factor_sizes, data_factor_names, data_factor_in_mig, DATA_N};
}

void data_describe(const data_source *d, data_factor_desc *out)
{
    while (d->base)
        d = d->base;
    describe_set(d->set, d->s3 ? shapes3d_sizes(d->s3) : shapes3d_official_sizes, out);
}

int data_describe_name(const char *name, data_factor_desc *out, err *e)
{
    int set = data_set_find(name);
    if (set < 0)
        return err_set(e, ERR_INPUT, "data.name: unknown data set '%s' (dsprites, color_dsprites, "
                                     "noisy_dsprites or shapes3d)",
                       name ? name : "");
    describe_set((data_set)set, shapes3d_official_sizes, out);
    return 0;
}

/* ---- reading the official file --------------------------------------- */

const char *data_h5_class_name(H5T_class_t c)
{
    switch (c) {
    case H5T_INTEGER:
        return "integer";
    case H5T_FLOAT:
        return "float";
    case H5T_STRING:
        return "string";
    case H5T_COMPOUND:
        return "compound";
    default:
        return "non-numeric";
    }
}

/* Open dataset `name` of `file` and check its type class and rank; dims gets
 * its extent. Returns the dataset id, or H5I_INVALID_HID with e set. */
hid_t data_h5_open_dataset(hid_t file, const char *path, const char *name, H5T_class_t want,
                          int rank, hsize_t *dims, err *e)
{
    hid_t d = H5I_INVALID_HID, t = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    /* H5Lexists on "/latents/classes" fails (< 0) when /latents is missing:
     * both mean "missing". */
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
        err_set(e, ERR_INPUT, "data.path: %s: dataset %s missing", path, name);
        goto fail;
    }
    d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) {
        err_set(e, ERR_INPUT, "data.path: %s: %s is not a dataset", path, name);
        goto fail;
    }
    t = H5Dget_type(d);
    H5T_class_t c = t < 0 ? H5T_NO_CLASS : H5Tget_class(t);
    if (c != want) {
        err_set(e, ERR_INPUT, "data.path: %s: dataset %s has %s type, expected %s", path, name,
                data_h5_class_name(c), data_h5_class_name(want));
        goto fail;
    }
    sp = H5Dget_space(d);
    int r = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (r != rank) {
        err_set(e, ERR_INPUT, "data.path: %s: dataset %s has rank %d, expected %d", path, name,
                r, rank);
        goto fail;
    }
    if (H5Sget_simple_extent_dims(sp, dims, NULL) != rank) {
        err_set(e, ERR_INPUT, "data.path: %s: dataset %s: cannot read its shape", path, name);
        goto fail;
    }
    H5Sclose(sp);
    H5Tclose(t);
    return d;
fail:
    h5util_close(sp);
    h5util_close(t);
    h5util_close(d);
    return H5I_INVALID_HID;
}

/* Read rows [r0, r0+cnt) of the rank-`rank` dataset d (inner dims = dims[1..])
 * into buf as mem_type. Returns 0 or -1. */
int data_h5_read_rows(hid_t d, hid_t mem_type, int rank, const hsize_t *dims, hsize_t r0,
                     hsize_t cnt, void *buf)
{
    hsize_t start[4] = {r0, 0, 0, 0}, count[4] = {cnt, 0, 0, 0};
    for (int i = 1; i < rank; i++)
        count[i] = dims[i];
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(rank, count, NULL);
    int rc = -1;
    if (fs >= 0 && ms >= 0 &&
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
        H5Dread(d, mem_type, ms, fs, H5P_DEFAULT, buf) >= 0)
        rc = 0;
    h5util_close(ms);
    h5util_close(fs);
    return rc;
}

/* Pack npix_total 0/1 bytes into npix_total/8 bytes of bits (a multiple of
 * 8: images are 1024 or 4096 pixels). Returns the position of the first byte
 * that is not 0 or 1, or -1 when all are.
 * Eight pixels at a time: load them as one little-endian 64-bit word (byte t
 * at bits 8t..8t+7); multiplying by M = sum_t 2^(56-7t) moves byte t's low
 * bit to bit 56+t. The other partial products land on distinct positions
 * (8t' - 7t = 8t'' - 7t'' forces t' = t'', t = t''), either below bit 56
 * (t' < t) or above bit 63 (t' > t), so nothing carries into the top byte. */
static long pack_bits(uint8_t *bits, const uint8_t *px, size_t npix_total)
{
    const uint64_t M = 0x0102040810204080ull, not01 = 0xfefefefefefefefeull;
    for (size_t i = 0; i < npix_total; i += 8) {
        uint64_t x;
        memcpy(&x, px + i, 8);
        if (x & not01) {
            for (int t = 0; t < 8; t++)
                if (px[i + (size_t)t] > 1u)
                    return (long)(i + (size_t)t);
        }
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        x = __builtin_bswap64(x);
#endif
        bits[i / 8] = (uint8_t)((x * M) >> 56);
    }
    return -1;
}

/* /latents/classes (dims dc) must list the factors in canonical order. */
static int check_order(hid_t cls, const hsize_t *dc, const char *path, err *e)
{
    int rc = 0;
    int64_t *rows = malloc(sizeof *rows * DATA_CLASS_SLAB * DATA_NCOL);
    if (!rows)
        return err_set(e, ERR_NOMEM, "data.path: %s: out of memory", path);
    for (hsize_t r0 = 0; r0 < DATA_N; r0 += DATA_CLASS_SLAB) {
        hsize_t cnt = DATA_N - r0 < DATA_CLASS_SLAB ? DATA_N - r0 : DATA_CLASS_SLAB;
        if (data_h5_read_rows(cls, H5T_NATIVE_INT64, 2, dc, r0, cnt, rows) < 0) {
            rc = err_set(e, ERR_INPUT, "data.path: %s: dataset /latents/classes: read failed",
                         path);
            goto done;
        }
        for (hsize_t i = 0; i < cnt; i++) {
            int f[DATA_K];
            data_factors((uint32_t)(r0 + i), f);
            const int64_t *row = rows + i * DATA_NCOL;
            int ok = row[0] == 0;
            for (int k = 0; k < DATA_K; k++)
                ok &= row[k + 1] == f[k];
            if (!ok) {
                rc = err_set(e, ERR_INPUT,
                             "data.path: %s: dataset /latents/classes: row %llu is "
                             "(%lld,%lld,%lld,%lld,%lld,%lld), expected (0,%d,%d,%d,%d,%d): the "
                             "images are not in the canonical order",
                             path, (unsigned long long)(r0 + i), (long long)row[0],
                             (long long)row[1], (long long)row[2], (long long)row[3],
                             (long long)row[4], (long long)row[5], f[0], f[1], f[2], f[3],
                             f[4]);
                goto done;
            }
        }
    }

done:
    free(rows);
    return rc;
}

/* Read /imgs (dims di, side S) into a new source *out, bit-packed, checking
 * that every pixel is 0 or 1. */
static int read_images(hid_t imgs, const hsize_t *di, int S, const char *path,
                       data_source **out, err *e)
{
    int rc = 0;
    uint8_t *buf = NULL;
    const size_t npix = (size_t)S * (size_t)S;
    data_source *d = calloc(1, sizeof *d);
    buf = malloc(npix * DATA_READ_SLAB);
    if (d)
        d->bits = malloc(npix / 8 * DATA_N);
    if (!d || !buf || !d->bits) {
        rc = err_set(e, ERR_NOMEM, "data.path: %s: out of memory for %zu MB of images", path,
                     npix / 8 * DATA_N >> 20);
        goto done;
    }
    d->set = DATA_DSPRITES;
    d->S = S;
    d->C = 1;
    d->n = DATA_N;
    for (hsize_t i0 = 0; i0 < DATA_N; i0 += DATA_READ_SLAB) {
        hsize_t cnt = DATA_N - i0 < DATA_READ_SLAB ? DATA_N - i0 : DATA_READ_SLAB;
        if (data_h5_read_rows(imgs, H5T_NATIVE_UINT8, 3, di, i0, cnt, buf) < 0) {
            rc = err_set(e, ERR_INPUT,
                         "data.path: %s: dataset /imgs: read of images %llu..%llu failed",
                         path, (unsigned long long)i0, (unsigned long long)(i0 + cnt - 1));
            goto done;
        }
        long bad = pack_bits(d->bits + (size_t)i0 * (npix / 8), buf, (size_t)cnt * npix);
        if (bad >= 0) {
            rc = err_set(e, ERR_INPUT,
                         "data.path: %s: dataset /imgs: image %llu has pixel value %u, "
                         "expected 0 or 1",
                         path, (unsigned long long)i0 + (unsigned long long)((size_t)bad / npix),
                         (unsigned)buf[bad]);
            goto done;
        }
    }

done:
    free(buf);
    if (rc < 0)
        data_close(d);
    else
        *out = d;
    return rc;
}

int data_open_file(data_source **out, const char *path, int S_expected, err *e)
{
    hid_t file = H5I_INVALID_HID, imgs = H5I_INVALID_HID, cls = H5I_INVALID_HID,
          vals = H5I_INVALID_HID;
    data_source *d = NULL;
    int rc = 0;

    /* Silence HDF5's automatic error printing: every failure here becomes one
     * message in e. Restored at the end. */
    h5util_quiet q;
    h5util_quiet_begin(&q);

    /* stat and open(2) first, so a missing or unreadable file says why; a
     * FIFO or device would block or never end: only regular files */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        rc = err_set(e, ERR_INPUT, "data.path: %s: not a regular file", path);
        goto done;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        rc = err_set(e, ERR_INPUT, "data.path: %s: cannot open: %s", path, strerror(errno));
        goto done;
    }
    close(fd);
    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        rc = err_set(e, ERR_INPUT, "data.path: %s: not an HDF5 file", path);
        goto done;
    }

    hsize_t di[3], dc[2], dv[2];
    imgs = data_h5_open_dataset(file, path, "/imgs", H5T_INTEGER, 3, di, e);
    if (imgs < 0) {
        rc = ERR_INPUT;
        goto done;
    }
    if (di[0] != DATA_N || di[1] != di[2] || (di[1] != 64 && di[1] != 32)) {
        rc = err_set(e, ERR_INPUT,
                     "data.path: %s: dataset /imgs has shape (%llu,%llu,%llu), expected "
                     "(737280,64,64) or (737280,32,32)",
                     path, (unsigned long long)di[0], (unsigned long long)di[1],
                     (unsigned long long)di[2]);
        goto done;
    }
    const int S = (int)di[1];
    if (S_expected > 0 && S != S_expected) {
        rc = err_set(e, ERR_INPUT,
                     "data.path: %s: dataset /imgs holds %dx%d images but image_size is %d",
                     path, S, S, S_expected);
        goto done;
    }
    cls = data_h5_open_dataset(file, path, "/latents/classes", H5T_INTEGER, 2, dc, e);
    if (cls < 0) {
        rc = ERR_INPUT;
        goto done;
    }
    if (dc[0] != DATA_N || dc[1] != DATA_NCOL) {
        rc = err_set(e, ERR_INPUT,
                     "data.path: %s: dataset /latents/classes has shape (%llu,%llu), expected "
                     "(737280,6)",
                     path, (unsigned long long)dc[0], (unsigned long long)dc[1]);
        goto done;
    }
    vals = data_h5_open_dataset(file, path, "/latents/values", H5T_FLOAT, 2, dv, e);
    if (vals < 0) {
        rc = ERR_INPUT;
        goto done;
    }
    if (dv[0] != DATA_N || dv[1] != DATA_NCOL) {
        rc = err_set(e, ERR_INPUT,
                     "data.path: %s: dataset /latents/values has shape (%llu,%llu), expected "
                     "(737280,6)",
                     path, (unsigned long long)dv[0], (unsigned long long)dv[1]);
        goto done;
    }

    /* The order check comes first: it is cheap (35 MB) and a misordered file
     * should not cost the 3 GB image read before it is refused. */
    if ((rc = check_order(cls, dc, path, e)) < 0 || (rc = read_images(imgs, di, S, path, &d, e)) < 0)
        goto done;

done:
    h5util_close(vals);
    h5util_close(cls);
    h5util_close(imgs);
    h5util_close(file);
    h5util_quiet_end(&q);
    if (rc == 0)
        *out = d;
    else
        data_close(d);
    return rc;
}

/* ---- access ------------------------------------------------------------ */

/* The binary dSprites image of index into img (S*S) and its classes f. */
static void get_binary(const data_source *d, uint32_t index, float *img, int *f)
{
    int fk[DATA_K];
    data_factors(index, fk);
    if (!d->bits) {
        data_render(img, fk, d->S);
    } else {
        const size_t nb = (size_t)d->S * (size_t)d->S / 8;
        const uint8_t *b = d->bits + (size_t)index * nb;
        for (size_t i = 0; i < nb; i++) {
            const unsigned v = b[i];
            for (int t = 0; t < 8; t++)
                img[8 * i + (size_t)t] = (float)((v >> t) & 1u);
        }
    }
    if (f)
        memcpy(f, fk, sizeof fk);
}

/* A uniform float in [0, 1) from the top 24 bits of r's next draw. */
static float unit_float(rng *r) { return (float)(rng_u64(r) >> 40) * 0x1p-24f; }

/* The variant's image from the binary sprite in plane 0 of img (3 planes of
 * P pixels), the nuisance drawn from r (disentanglement_lib's
 * ColorDSprites / NoisyDSprites.sample_observations_from_factors):
 *   colour: x * c, c uniform in [0.5, 1) per channel, one colour per image
 *   noise:  min(x + u, 1), u uniform in [0, 1) per pixel and channel */
static void apply_variant(data_set set, float *img, size_t P, rng *r)
{
    const float *x = img;
    if (set == DATA_COLOR_DSPRITES) {
        float c[3];
        for (int ch = 0; ch < 3; ch++)
            c[ch] = 0.5f + 0.5f * unit_float(r);
        /* planes 2, 1, then 0 in place: each reads plane 0 before it is scaled */
        for (int ch = 2; ch >= 0; ch--)
            for (size_t p = 0; p < P; p++)
                img[(size_t)ch * P + p] = x[p] * c[ch];
    } else {
        memcpy(img + P, x, P * sizeof *img);
        memcpy(img + 2 * P, x, P * sizeof *img);
        /* two uniforms per 64-bit draw (bits 63..40 and 39..16): 3*P is even */
        for (size_t p = 0; p < 3 * P; p += 2) {
            const uint64_t u = rng_u64(r);
            const float u0 = (float)(u >> 40) * 0x1p-24f,
                        u1 = (float)((u >> 16) & 0xffffffu) * 0x1p-24f;
            const float v0 = img[p] + u0, v1 = img[p + 1] + u1;
            img[p] = v0 < 1.0f ? v0 : 1.0f;
            img[p + 1] = v1 < 1.0f ? v1 : 1.0f;
        }
    }
}

/* The counter-based stream of image index under seed: the nuisance of an
 * image in canonical order (evaluation) depends on (seed, index) only. */
static void nuisance_stream(rng *r, uint64_t seed, uint32_t index)
{
    rng_seed(r, seed, 0x4e55495300000000ull | (uint64_t)index); /* "NUIS" | index */
}

/* img and f of index; the nuisance from r, or from (seed, index) when r is NULL. */
static void get_image(const data_source *d, uint32_t index, rng *r, uint64_t seed, float *img,
                      int *f)
{
    if (d->base) {
        get_image(d->base, index, r, seed, img, f);
        return;
    }
    switch (d->set) {
    case DATA_DSPRITES:
        get_binary(d, index, img, f);
        return;
    case DATA_COLOR_DSPRITES:
    case DATA_NOISY_DSPRITES: {
        get_binary(d->inner, index, img, f);
        rng own;
        if (!r) {
            nuisance_stream(&own, seed, index);
            r = &own;
        }
        apply_variant(d->set, img, (size_t)d->S * (size_t)d->S, r);
        return;
    }
    case DATA_SHAPES3D:
        shapes3d_get(d->s3, index, d->S, img, f);
        return;
    default:
        return;
    }
}

void data_get(const data_source *d, uint32_t index, float *img, int *f)
{
    get_image(d, index, NULL, 0, img, f);
}

void data_get_seeded(const data_source *d, uint32_t index, uint64_t seed, float *img, int *f)
{
    get_image(d, index, NULL, seed, img, f);
}

void data_get_rng(const data_source *d, uint32_t index, rng *r, float *img, int *f)
{
    get_image(d, index, r, 0, img, f);
}

void data_sample(const data_source *d, rng *r, int B, float *x, int *f, uint32_t *idx)
{
    const size_t npix = (size_t)d->C * (size_t)d->S * (size_t)d->S;
    data_factor_desc fd;
    data_describe(d, &fd);
    for (int b = 0; b < B; b++) {
        uint32_t i = (uint32_t)rng_below(r, d->n);
        if (d->subset)
            i = d->subset[i];
        get_image(d, i, r, 0, x + (size_t)b * npix, f ? f + (size_t)b * (size_t)fd.K : NULL);
        if (idx)
            idx[b] = i;
    }
}
