/* The BLAS library's controls: its thread pool and its version. nn is the only
 * module that talks to OpenBLAS. */
#include "untangle/nn.h"

#include <stdio.h>

/* OpenBLAS's own controls (not declared in the cblas.h of every build). */
void openblas_set_num_threads(int n);
char *openblas_get_config(void);

void nn_set_threads(int n) { openblas_set_num_threads(n); }

/* openblas_get_config() reads "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Haswell ...":
 * the version, the build options and the kernel in use. */
void nn_library_version(char *buf, size_t n) { snprintf(buf, n, "%s", openblas_get_config()); }
