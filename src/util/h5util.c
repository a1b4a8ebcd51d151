/* The HDF5 helpers of h5util.h. */
#include "h5util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* HDF5 closes every open file at exit (atexit). A file whose close failed
 * (its flush hit a full disk, a quota, an I/O error) stays open inside the
 * library, and 1.10's exit-time close of it crashes (SIGSEGV in
 * H5F__close_cb) or prints "infinite loop closing library". Every file is
 * closed explicitly; what a failed close leaves, the journal already holds.
 * So no exit-time close: this runs before main, before any HDF5 call. */
__attribute__((constructor)) static void h5util_no_atexit(void) { H5dont_atexit(); }

void h5util_quiet_begin(h5util_quiet *q)
{
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void h5util_quiet_end(const h5util_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

void h5util_close(hid_t id)
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

typedef struct innermost {
    char text[512];
    int n;
} innermost;

/* Walking downward (API call first), the last description is the innermost. */
static herr_t walk_cb(unsigned n, const H5E_error2_t *d, void *ctx)
{
    (void)n;
    innermost *w = ctx;
    if (d->desc && d->desc[0]) {
        snprintf(w->text, sizeof w->text, "%s", d->desc);
        w->n++;
    }
    return 0;
}

void h5util_message(char *buf, size_t n)
{
    innermost w;
    memset(&w, 0, sizeof w);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, &w);
    snprintf(buf, n, "%s", w.n ? w.text : "unknown HDF5 error");
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

int h5util_err(err *e, const char *what, const char *path)
{
    char msg[512];
    h5util_message(msg, sizeof msg);
    return err_set(e, ERR_HDF5, "%s %s: %s", what, path, msg);
}

/* A global heap collection as HDF5 1.10 parses it (H5HG__cache_heap_deserialize):
 * "GCOL", version 1, 3 reserved bytes, the collection's size (8 bytes, little
 * endian, at least 4096), then objects: index (2), references (2), reserved
 * (4), size (8), the data padded to 8 bytes; index 0 is free space, whose size
 * includes its header. The parse goes from an object's start to start + need:
 * need 0 never moves (HDF5 loops forever), a need that wraps moves backwards,
 * and an object past the collection's end is read out of bounds. */
enum { GCOL_HDR = 16, GCOL_OBJ = 16, GCOL_MIN = 4096 };

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The collection at byte off of fd (size bytes in the file): 0 sane, -1 not. */
static int gcol_sane(int fd, off_t off, off_t fsize, char *why, size_t n)
{
    uint8_t hdr[GCOL_HDR];
    if (pread(fd, hdr, GCOL_HDR, off) != GCOL_HDR || hdr[4] != 1)
        return 0; /* not a collection HDF5 would parse (it refuses other versions) */
    uint64_t size = le(hdr + 8, 8);
    if (size < GCOL_MIN || size > (uint64_t)(fsize - off))
        return 0; /* HDF5 cannot read it: an error, not a hang */
    uint8_t *c = malloc(size);
    if (!c || pread(fd, c, size, off) != (ssize_t)size) {
        free(c);
        return 0;
    }
    int rc = 0;
    for (uint64_t p = GCOL_HDR; p < size && p + GCOL_OBJ <= size;) {
        uint64_t idx = le(c + p, 2), osize = le(c + p + 8, 8);
        uint64_t need = idx > 0 ? GCOL_OBJ + ((osize + 7) & ~(uint64_t)7) : osize;
        if (p + need <= p || p + need > size) {
            snprintf(why, n, "its global heap at byte %lld is damaged (object %llu of %llu bytes "
                     "at offset %llu): HDF5 would not read past it",
                     (long long)off, (unsigned long long)idx, (unsigned long long)osize,
                     (unsigned long long)p);
            rc = -1;
            break;
        }
        p += need;
    }
    free(c);
    return rc;
}

int h5util_heaps_sane(const char *path, char *why, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(why, n, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    int rc = buf ? 0 : -1;
    if (!buf)
        snprintf(why, n, "out of memory");
    /* every offset of "GCOL", chunk by chunk (3 bytes overlap) */
    for (off_t at = 0; rc == 0 && at < st.st_size; at += CHUNK - 3) {
        ssize_t got = pread(fd, buf, CHUNK, at);
        if (got < 0) {
            snprintf(why, n, "%s", strerror(errno));
            rc = -1;
            break;
        }
        for (ssize_t k = 0; rc == 0 && k + 4 <= got; k++) {
            uint8_t *m = memmem(buf + k, (size_t)(got - k), "GCOL", 4);
            if (!m)
                break;
            k = m - buf;
            rc = gcol_sane(fd, at + k, st.st_size, why, n);
        }
        if (got < CHUNK)
            break;
    }
    free(buf);
    close(fd);
    return rc;
}
