/* data_impl.h: what the files of src/data share (private to them). */
#ifndef UNTANGLE_DATA_IMPL_H
#define UNTANGLE_DATA_IMPL_H

#include "untangle/data.h"

#include <pthread.h>

/* A 3dshapes file open for reading (shapes3d.c). */
typedef struct shapes3d shapes3d;

struct data_source {
    data_set set;  /* which data set this source gives */
    int S;         /* image side, 64 or 32 */
    int C;         /* channels: 1 (dsprites) or 3 */
    size_t n;      /* images */
    uint8_t *bits; /* dSprites file source: n*S*S/8 bytes, packed (source.c); NULL = builtin */
    const data_source *base; /* subset: the source it draws from (borrowed) */
    uint32_t *subset;        /* subset: (n) canonical indices */
    data_source *inner;      /* colour / noise variant: the dSprites source (owned) */
    shapes3d *s3;            /* shapes3d: the open file */
};

#include <hdf5.h>

/* source.c's HDF5 helpers. Open dataset `name` of `file` and check its type
 * class and rank; dims gets its extent; H5I_INVALID_HID with e set
 * ("data.path: FILE: dataset NAME ...") on any mismatch. */
hid_t data_h5_open_dataset(hid_t file, const char *path, const char *name, H5T_class_t want,
                           int rank, hsize_t *dims, err *e);
/* Read rows [r0, r0+cnt) of the rank-`rank` dataset d (inner dims =
 * dims[1..], rank <= 4) into buf as mem_type. 0 or -1. */
int data_h5_read_rows(hid_t d, hid_t mem_type, int rank, const hsize_t *dims, hsize_t r0,
                      hsize_t cnt, void *buf);
/* "integer", "float", ... for messages. */
const char *data_h5_class_name(H5T_class_t c);

/* The six factor names of shapes3d, in the file's label order. */
extern const char *const data_shapes3d_names[6];

/* shapes3d.c: image index of the open file (S, 3 channels, channel-major
 * floats in [0, 1]) and its factor classes f (6, may be NULL); the sizes
 * array (6) and closing. Reads are serialised by a mutex (HDF5 is not
 * thread-safe here). */
void shapes3d_get(shapes3d *s, uint32_t index, int S, float *img, int *f);
const int *shapes3d_sizes(const shapes3d *s);
void shapes3d_close(shapes3d *s);
/* Open path's file; *n gets its N. */
int shapes3d_open(shapes3d **out, const char *path, size_t *n, err *e);

#endif
