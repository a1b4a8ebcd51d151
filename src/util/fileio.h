/* fileio: whole reads and writes on file descriptors, retried on EINTR and
 * short counts. */
#ifndef UNTANGLE_UTIL_FILEIO_H
#define UNTANGLE_UTIL_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* Write all n bytes at the current position (pipes, sockets, files).
 * 0, or -1 with errno set. */
int fileio_write_all(int fd, const void *p, size_t n);
/* Write or read all n bytes at offset off (pwrite/pread). 0, or -1 with errno
 * set (a read that meets end of file first sets errno to 0). */
int fileio_pwrite_all(int fd, const void *p, size_t n, off_t off);
int fileio_pread_all(int fd, void *p, size_t n, off_t off);

#endif
