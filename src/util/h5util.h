/* h5util: the small HDF5 helpers shared by data and results: silencing HDF5's
 * printed error stack around a library call, closing any id, turning the
 * current error stack into one err line ("<what> <path>: <HDF5's message>"),
 * and checking a file's global heaps before HDF5 walks them. */
#ifndef UNTANGLE_UTIL_H5UTIL_H
#define UNTANGLE_UTIL_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>

#include "untangle/err.h"

/* HDF5 prints its error stack by default. A public function that calls HDF5
 * saves the caller's handler, silences it, and restores it on every way out
 * (like H5E_BEGIN_TRY / H5E_END_TRY, but across a goto-cleanup function). */
typedef struct h5util_quiet {
    H5E_auto2_t func;
    void *data;
} h5util_quiet;

void h5util_quiet_begin(h5util_quiet *q);
void h5util_quiet_end(const h5util_quiet *q);

/* Close id whatever it is (file, group, dataset, dataspace, datatype,
 * attribute, property list); a negative id is a no-op. */
void h5util_close(hid_t id);

/* The innermost description on the current HDF5 error stack, one line ("unknown
 * HDF5 error" when the stack is empty). Call right after the failing call. */
void h5util_message(char *buf, size_t n);

/* ERR_HDF5 with "<what> <path>: <innermost HDF5 message>" in e; returns
 * ERR_HDF5. */
int h5util_err(err *e, const char *what, const char *path);

/* 0 when every global heap collection ("GCOL", where HDF5 keeps variable-
 * length strings) in the file at path is laid out so that HDF5 1.10 can walk
 * it to its end; -1 with why (a sentence) when one would make HDF5 loop
 * forever or leave the collection (an object of size 0 in place of free
 * space, a size that wraps around), or the file cannot be read. Call before
 * H5Fopen on a file that may be damaged: HDF5 would not return. */
int h5util_heaps_sane(const char *path, char *why, size_t n);

#endif
