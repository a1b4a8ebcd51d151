/* err: the caller-owned error record every library function fills on failure.
 *
 * Library code never prints and never exits: it returns a negative ERR_* code
 * and writes one human-readable line (with file:line:col, the key, the call or
 * the library's message, whatever locates the problem) into an err. main()
 * decides what to print and which exit code to use. */
#ifndef UNTANGLE_ERR_H
#define UNTANGLE_ERR_H

#include <stddef.h>

enum {
    ERR_OK = 0,
    ERR_INPUT = -1,   /* bad configuration, YAML, command line or data file */
    ERR_IO = -2,      /* a system call failed (open, read, write, fork, ...) */
    ERR_NOMEM = -3,   /* an allocation failed */
    ERR_HDF5 = -4,    /* the HDF5 library reported an error */
    ERR_NUMERIC = -5, /* a NaN or inf appeared where a finite value must be */
    ERR_MPI = -6,     /* an MPI call failed */
    ERR_INTERNAL = -7 /* an invariant broke: a bug */
};

typedef struct err {
    int code;       /* one of ERR_*, 0 when clear */
    char msg[1024]; /* one line, no trailing newline; input errors may add the
                       source line and a caret under the column on two more */
} err;

/* Clear e (code 0, empty message). e may be NULL. */
void err_clear(err *e);

/* Record code and a printf-style message in e (may be NULL); returns code, so
 * that `return err_set(e, ERR_INPUT, "...")` reads naturally. */
int err_set(err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix e's message with a printf-style context ("reading x.h5: " + old
 * message). Returns e->code. */
int err_prefix(err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
