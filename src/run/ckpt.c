/* A run's files beside the results file (docs/architecture.md section 7):
 * its checkpoint (the whole training state, while it trains) and its saved
 * model (the final parameters of an ok run). Both are one framed record:
 *
 *   u32 magic "UTCK", u32 format (RUN_FILE_FORMAT), u32 kind (RUN_FILE_*),
 *   char run_id[17], 3 bytes zero, u64 payload length, u32 CRC-32 of the
 *   payload, u32 zero, then the payload (native byte order: the files never
 *   leave the cluster's machines of one architecture).
 *
 * Writing is atomic and never follows a link: the record goes to PATH.tmp
 * (O_CREAT|O_EXCL|O_NOFOLLOW; a leftover of a killed writer, or anything
 * planted there, is unlinked first: unlink removes a link, never its
 * target), is fsync'ed, the current PATH becomes PATH.prev, PATH.tmp becomes
 * PATH, and the directory is fsync'ed. Reading tries PATH, then PATH.prev:
 * a damaged newest checkpoint falls back to the one before it. */
#include "untangle/run.h"

#include "../util/fileio.h"
#include "../util/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_MAGIC 0x4b435455u /* "UTCK" */
#define MAX_PAYLOAD ((uint64_t)1 << 40)

typedef struct file_head {
    uint32_t magic, format, kind;
    char run_id[17];
    char pad[3];
    uint64_t len;
    uint32_t crc, zero;
} file_head;

void run_file_paths(const char *results_path, const char *run_id, const char *ext, char *out,
                    size_t n)
{
    snprintf(out, n, "%s.runs/%s.%s", results_path, run_id, ext);
}

int run_file_mkdir(const char *results_path, err *e)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s.runs", results_path);
    if (mkdir(dir, 0777) < 0 && errno != EEXIST)
        return err_set(e, ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    struct stat st;
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return err_set(e, ERR_IO, "%s is not a directory", dir);
    return 0;
}

/* fsync the directory that holds path, so that a rename in it is durable. */
static void sync_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int run_file_write(const char *path, uint32_t kind, const char *run_id, const void *payload,
                   size_t len, err *e)
{
    char tmp[4200], prev[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(prev, sizeof prev, "%s.prev", path);
    file_head h;
    memset(&h, 0, sizeof h);
    h.magic = FILE_MAGIC;
    h.format = RUN_FILE_FORMAT;
    h.kind = kind;
    snprintf(h.run_id, sizeof h.run_id, "%s", run_id);
    h.len = len;
    h.crc = hash_crc32(0, payload, len);
    if (unlink(tmp) < 0 && errno != ENOENT)
        return err_set(e, ERR_IO, "cannot remove %s: %s", tmp, strerror(errno));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set(e, ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    if (fileio_write_all(fd, &h, sizeof h) < 0 || fileio_write_all(fd, payload, len) < 0 ||
        fsync(fd) < 0) {
        int saved = errno;
        close(fd);
        unlink(tmp);
        return err_set(e, ERR_IO, "cannot write %s: %s", tmp, strerror(saved));
    }
    close(fd);
    /* keep the current file as PATH.prev until the new one is in place */
    if (rename(path, prev) < 0 && errno != ENOENT) {
        int saved = errno;
        unlink(tmp);
        return err_set(e, ERR_IO, "cannot move %s aside: %s", path, strerror(saved));
    }
    if (rename(tmp, path) < 0) {
        int saved = errno;
        unlink(tmp);
        return err_set(e, ERR_IO, "cannot rename %s: %s", tmp, strerror(saved));
    }
    sync_parent(path);
    return 0;
}

/* One file: the payload when it is whole and belongs to run_id and kind. */
static int read_one(const char *path, uint32_t kind, const char *run_id, uint8_t **out,
                    size_t *len, err *e)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, errno == ENOENT ? ERR_OK : ERR_IO, "%s: %s", path, strerror(errno));
    file_head h;
    struct stat st;
    uint8_t *p = NULL;
    int rc = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = err_set(e, ERR_INPUT, "%s: not a regular file", path);
    } else if (fileio_pread_all(fd, &h, sizeof h, 0) < 0 || h.magic != FILE_MAGIC) {
        rc = err_set(e, ERR_INPUT, "%s: not a checkpoint of untangle", path);
    } else if (h.format != RUN_FILE_FORMAT) {
        rc = err_set(e, ERR_INPUT, "%s: format %u, this version reads %u", path, h.format,
                     RUN_FILE_FORMAT);
    } else if (h.kind != kind || memchr(h.run_id, 0, sizeof h.run_id) == NULL ||
               strcmp(h.run_id, run_id) != 0) {
        rc = err_set(e, ERR_INPUT, "%s: belongs to run %.16s, not %s", path, h.run_id, run_id);
    } else if (h.len > MAX_PAYLOAD || (uint64_t)st.st_size != sizeof h + h.len) {
        rc = err_set(e, ERR_INPUT, "%s: truncated (%lld bytes, the header says %llu)", path,
                     (long long)st.st_size, (unsigned long long)(sizeof h + h.len));
    } else if (!(p = malloc(h.len ? (size_t)h.len : 1))) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory for %llu bytes", path,
                     (unsigned long long)h.len);
    } else if (fileio_pread_all(fd, p, (size_t)h.len, sizeof h) < 0) {
        rc = err_set(e, ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    } else if (hash_crc32(0, p, (size_t)h.len) != h.crc) {
        rc = err_set(e, ERR_INPUT, "%s: bad checksum", path);
    }
    close(fd);
    if (rc < 0) {
        free(p);
        return rc;
    }
    *out = p;
    *len = (size_t)h.len;
    return 1;
}

int run_file_read(const char *path, uint32_t kind, const char *run_id, uint8_t **out,
                  size_t *len, err *e)
{
    err first;
    err_clear(&first);
    int rc = read_one(path, kind, run_id, out, len, &first);
    if (rc > 0)
        return 1;
    char prev[4200];
    snprintf(prev, sizeof prev, "%s.prev", path);
    err second;
    err_clear(&second);
    int rc2 = read_one(prev, kind, run_id, out, len, &second);
    if (rc2 > 0) {
        if (rc < 0)
            err_set(e, first.code, "%s; continuing from %s", first.msg, prev);
        return 1;
    }
    if (rc < 0)
        return err_set(e, first.code, "%s", first.msg);
    if (rc2 < 0)
        return err_set(e, second.code, "%s", second.msg);
    return 0;
}

void run_file_remove(const char *path)
{
    char other[4200];
    unlink(path);
    snprintf(other, sizeof other, "%s.prev", path);
    unlink(other);
    snprintf(other, sizeof other, "%s.tmp", path);
    unlink(other);
}
