/* The whole-buffer reads and writes of fileio.h. */
#include "fileio.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

/* off < 0: write at the current position. */
static int put_all(int fd, const void *p, size_t n, off_t off)
{
    const uint8_t *q = p;
    while (n) {
        ssize_t w = off < 0 ? write(fd, q, n) : pwrite(fd, q, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        q += w;
        n -= (size_t)w;
        if (off >= 0)
            off += w;
    }
    return 0;
}

int fileio_write_all(int fd, const void *p, size_t n) { return put_all(fd, p, n, -1); }
int fileio_pwrite_all(int fd, const void *p, size_t n, off_t off)
{
    return put_all(fd, p, n, off);
}

int fileio_pread_all(int fd, void *p, size_t n, off_t off)
{
    uint8_t *q = p;
    while (n) {
        ssize_t r = pread(fd, q, n, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            errno = 0;
        if (r <= 0)
            return -1;
        q += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}
