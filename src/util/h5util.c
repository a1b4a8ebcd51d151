/* The HDF5 helpers of h5util.h. */
#include "h5util.h"

#include <stdio.h>
#include <string.h>

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
