/* metrics_impl.h: what the files of the metrics module share (nothing outside
 * src/metrics includes it). */
#ifndef UNTANGLE_METRICS_IMPL_H
#define UNTANGLE_METRICS_IMPL_H

#include <stddef.h>

#include "untangle/err.h"

/* sklearn's classes_: the labels present in y (n), values < n_labels, in
 * ascending order -> *classes (malloc'd, *n_classes of them) and *index
 * (malloc'd, n: the position of each y in *classes). 0 or ERR_NOMEM/ERR_INPUT
 * (a label out of range). */
int metrics_encode_labels(const int *y, size_t n, int n_labels, int **classes, int *n_classes,
                          int **index, err *e);

#endif
