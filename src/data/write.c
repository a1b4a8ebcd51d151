/* data/write.c: write the built-in dSprites set in the official DeepMind HDF5
 * layout (`untangle dsprites -o FILE`), so that a file source and the
 * built-in renderer feed the same code and tests can round-trip.
 *
 * Layout written (N = 737,280 rows in canonical order):
 *   /imgs             uint8   (N, S, S)  0/1, chunked (DATA_CHUNK_BYTES per
 *                                         chunk), gzip level 1
 *   /latents/classes  int64   (N, 6)     0 (colour), shape, scale, orientation,
 *                                         posX, posY classes; chunks of
 *                                         DATA_WRITE_SLAB rows, gzip level 1
 *   /latents/values   float64 (N, 6)     1.0 (colour, as the official file),
 *                                         then data_factor_value of each class;
 *                                         chunked and gzipped alike
 * Rows go out in slabs of DATA_WRITE_SLAB images; gzip level 1 costs little
 * next to rendering and shrinks the 3 GB of S = 64 pixels (mostly zeros) to a
 * few percent. On failure the partial file is removed. */
#include "untangle/data.h"

#include "../util/h5util.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>

enum {
    DATA_WRITE_SLAB = 4096,       /* images rendered and written per step */
    DATA_CHUNK_BYTES = 256 * 1024, /* /imgs chunk size: 64 images at S = 64 */
    DATA_WCOL = 6
};

/* Write rows [r0, r0+cnt) of the rank-`rank` dataset d (full inner dims). */
static herr_t write_rows(hid_t d, hid_t mem_type, int rank, const hsize_t *dims, hsize_t r0,
                         hsize_t cnt, const void *buf)
{
    hsize_t start[3] = {r0, 0, 0}, count[3] = {cnt, 0, 0};
    for (int i = 1; i < rank; i++)
        count[i] = dims[i];
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(rank, count, NULL);
    herr_t rc = -1;
    if (fs >= 0 && ms >= 0 &&
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
        rc = H5Dwrite(d, mem_type, ms, fs, H5P_DEFAULT, buf);
    h5util_close(ms);
    h5util_close(fs);
    return rc;
}

int data_write_file(const char *path, int S, void (*progress)(size_t done, size_t total),
                    err *e)
{
    if (S != 64 && S != 32)
        return err_set(e, ERR_INPUT, "dsprites: --image-size %d: must be 64 or 32", S);

    hid_t file = H5I_INVALID_HID, grp = H5I_INVALID_HID, sp = H5I_INVALID_HID,
          dcpl = H5I_INVALID_HID, imgs = H5I_INVALID_HID, cls = H5I_INVALID_HID,
          vals = H5I_INVALID_HID;
    uint8_t *buf = NULL;
    int64_t *crow = NULL;
    double *vrow = NULL;
    int rc = 0, created = 0;
    const size_t npix = (size_t)S * (size_t)S;

    h5util_quiet q;
    h5util_quiet_begin(&q);

    buf = malloc(npix * DATA_WRITE_SLAB);
    crow = malloc(sizeof *crow * DATA_WRITE_SLAB * DATA_WCOL);
    vrow = malloc(sizeof *vrow * DATA_WRITE_SLAB * DATA_WCOL);
    if (!buf || !crow || !vrow) {
        rc = err_set(e, ERR_NOMEM, "dsprites: %s: out of memory", path);
        goto done;
    }

    file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) {
        rc = err_set(e, ERR_IO,
                     "dsprites: %s: cannot create the file (missing directory or no write "
                     "permission?)",
                     path);
        goto done;
    }
    created = 1;

    const hsize_t di[3] = {DATA_N, (hsize_t)S, (hsize_t)S};
    const hsize_t chunk[3] = {DATA_CHUNK_BYTES / npix, (hsize_t)S, (hsize_t)S};
    const hsize_t dl[2] = {DATA_N, DATA_WCOL};
    const hsize_t lchunk[2] = {DATA_WRITE_SLAB, DATA_WCOL};
    const int gzip = H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0;
    if ((sp = H5Screate_simple(3, di, NULL)) < 0 || (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 ||
        H5Pset_chunk(dcpl, 3, chunk) < 0) {
        rc = h5util_err(e, "dsprites: creating /imgs in", path);
        goto done;
    }
    /* gzip when this HDF5 has it; without it the file is just larger. */
    if (gzip && H5Pset_deflate(dcpl, 1) < 0) {
        rc = h5util_err(e, "dsprites: setting gzip on /imgs in", path);
        goto done;
    }
    imgs = H5Dcreate2(file, "/imgs", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (imgs < 0) {
        rc = h5util_err(e, "dsprites: creating /imgs in", path);
        goto done;
    }
    H5Sclose(sp);
    sp = H5I_INVALID_HID;
    H5Pclose(dcpl);
    dcpl = H5I_INVALID_HID;
    /* The latents are as repetitive as the pixels: chunk and gzip them too
     * (70 MB -> under 1 MB). */
    grp = H5Gcreate2(file, "/latents", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (grp < 0 || (sp = H5Screate_simple(2, dl, NULL)) < 0 ||
        (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 || H5Pset_chunk(dcpl, 2, lchunk) < 0 ||
        (gzip && H5Pset_deflate(dcpl, 1) < 0)) {
        rc = h5util_err(e, "dsprites: creating /latents in", path);
        goto done;
    }
    cls = H5Dcreate2(file, "/latents/classes", H5T_STD_I64LE, sp, H5P_DEFAULT, dcpl,
                     H5P_DEFAULT);
    vals = H5Dcreate2(file, "/latents/values", H5T_IEEE_F64LE, sp, H5P_DEFAULT, dcpl,
                      H5P_DEFAULT);
    if (cls < 0 || vals < 0) {
        rc = h5util_err(e, "dsprites: creating /latents/classes and /latents/values in", path);
        goto done;
    }

    for (hsize_t i0 = 0; i0 < DATA_N; i0 += DATA_WRITE_SLAB) {
        const hsize_t cnt = DATA_N - i0 < DATA_WRITE_SLAB ? DATA_N - i0 : DATA_WRITE_SLAB;
        for (hsize_t i = 0; i < cnt; i++) {
            int f[DATA_K];
            data_factors((uint32_t)(i0 + i), f);
            data_render_u8(buf + i * npix, f, S);
            crow[i * DATA_WCOL] = 0;
            vrow[i * DATA_WCOL] = 1.0;
            for (int k = 0; k < DATA_K; k++) {
                crow[i * DATA_WCOL + 1 + (hsize_t)k] = f[k];
                vrow[i * DATA_WCOL + 1 + (hsize_t)k] = data_factor_value(k, f[k]);
            }
        }
        if (write_rows(imgs, H5T_NATIVE_UINT8, 3, di, i0, cnt, buf) < 0) {
            rc = h5util_err(e, "dsprites: writing /imgs in", path);
            goto done;
        }
        if (write_rows(cls, H5T_NATIVE_INT64, 2, dl, i0, cnt, crow) < 0 ||
            write_rows(vals, H5T_NATIVE_DOUBLE, 2, dl, i0, cnt, vrow) < 0) {
            rc = h5util_err(e, "dsprites: writing /latents in", path);
            goto done;
        }
        if (progress)
            progress((size_t)(i0 + cnt), DATA_N);
    }

done:
    h5util_close(vals);
    h5util_close(cls);
    h5util_close(imgs);
    h5util_close(grp);
    h5util_close(dcpl);
    h5util_close(sp);
    if (file >= 0 && H5Fclose(file) < 0 && rc == 0)
        rc = h5util_err(e, "dsprites: closing", path);
    h5util_quiet_end(&q);
    if (rc != 0 && created)
        remove(path);
    free(vrow);
    free(crow);
    free(buf);
    return rc;
}
