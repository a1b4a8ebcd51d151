/* The BLAS library's version. nn is the only module that talks to OpenBLAS;
 * its thread count is set by the pool (pool.c): one. */
#include "untangle/nn.h"

#include <stdio.h>

/* OpenBLAS's own control (not declared in the cblas.h of every build). */
char *openblas_get_config(void);

/* openblas_get_config() reads "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Haswell ...":
 * the version, the build options and the kernel in use. */
void nn_library_version(char *buf, size_t n) { snprintf(buf, n, "%s", openblas_get_config()); }
