/* aside.c: results_move_aside, what `untangle sweep --restart` does to an
 * existing results file: move the file and its journal to PATH.bak-STAMP
 * (-2, -3, ... when that name is taken) under the writer's lock, so that a
 * running sweep is never moved and no earlier backup is ever replaced. Only
 * files this program made are moved: a regular file with HDF5's signature,
 * a regular journal starting with the journal magic (results_impl.h). */
#include "results_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const unsigned char HDF5_SIGNATURE[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

/* Is p a regular file this program made? *present = 0 when nothing is there;
 * ERR_INPUT naming what is there otherwise. */
static int check_ours(const char *p, int journal, int *present, err *e)
{
    struct stat st;
    *present = 0;
    if (lstat(p, &st) < 0)
        return errno == ENOENT ? 0 : err_set(e, ERR_IO, "--restart: %s: %s", p, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return err_set(e, ERR_INPUT,
                       "--restart: %s is not a regular file (%s): only a results file and its "
                       "journal are moved aside; nothing was changed",
                       p, S_ISDIR(st.st_mode) ? "a directory" : S_ISLNK(st.st_mode) ? "a symbolic link"
                                                                  : "a device, FIFO or socket");
    *present = 1;
    unsigned char head[8] = {0};
    int fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, ERR_IO, "--restart: cannot read %s: %s", p, strerror(errno));
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    uint32_t magic = JOURNAL_MAGIC;
    int ok = journal ? n == 0 || (n >= 4 && memcmp(head, &magic, 4) == 0)
                     : n == 8 && memcmp(head, HDF5_SIGNATURE, 8) == 0;
    if (!ok)
        return err_set(e, ERR_INPUT,
                       "--restart: %s is not %s: it was not made by untangle and is not moved; "
                       "nothing was changed",
                       p, journal ? "a results journal" : "an HDF5 file");
    return 0;
}

/* The writer's lock on the journal (held through the renames): fd, -1 when
 * there is no journal, or an error. */
static int lock_journal(const char *jpath, int *fd, err *e)
{
    *fd = open(jpath, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (*fd < 0)
        return errno == ENOENT ? 0 : err_set(e, ERR_IO, "--restart: cannot open %s: %s", jpath,
                                             strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    int keep = errno;
    close(*fd);
    *fd = -1;
    if (keep == EWOULDBLOCK)
        return err_set(e, ERR_IO,
                       "--restart: %s is in use by another sweep (its journal is locked): "
                       "stop that sweep first; nothing was moved",
                       jpath);
    if (keep == ENOLCK || keep == EOPNOTSUPP || keep == ENOSYS || keep == EINVAL)
        return 0; /* a file system without flock: nothing to lock with */
    return err_set(e, ERR_IO, "--restart: locking %s: %s", jpath, strerror(keep));
}

/* Move the file (if there) and the journal (if there) to the first free
 * backup name: PATH.bak-STAMP, then -2, -3, ...; both names must be free. */
static int move_pair(const char *path, const char *jpath, int has_file, int has_journal,
                     char *kept, size_t n, err *e)
{
    char stamp[32], jkept[4300];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    for (int i = 1; i <= 100000; i++) {
        if (i == 1)
            snprintf(kept, n, "%s.bak-%s", path, stamp);
        else
            snprintf(kept, n, "%s.bak-%s-%d", path, stamp, i);
        snprintf(jkept, sizeof jkept, "%s.journal", kept);
        if (res_path_exists(kept) || res_path_exists(jkept))
            continue;
        if (has_file && res_rename_noreplace(path, kept) < 0) {
            if (errno == EEXIST)
                continue;
            return err_set(e, ERR_IO, "--restart: cannot move %s to %s: %s", path, kept,
                           strerror(errno));
        }
        if (has_journal && res_rename_noreplace(jpath, jkept) < 0)
            return err_set(e, ERR_IO, "--restart: moved %s to %s but cannot move %s to %s: %s",
                           path, kept, jpath, jkept, strerror(errno));
        res_sync_dir(path);
        return 0;
    }
    return err_set(e, ERR_IO, "--restart: no free backup name for %s", path);
}

int results_move_aside(const char *path, char *kept, size_t n, err *e)
{
    kept[0] = '\0';
    char *jpath = res_cat_str(path, ".journal");
    if (!jpath)
        return err_set(e, ERR_NOMEM, "out of memory");
    int fd = -1, has_file = 0, has_journal = 0, rc;
    if ((rc = check_ours(path, 0, &has_file, e)) == 0 &&
        (rc = check_ours(jpath, 1, &has_journal, e)) == 0 &&
        (rc = lock_journal(jpath, &fd, e)) == 0 && (has_file || has_journal))
        rc = move_pair(path, jpath, has_file, has_journal, kept, n, e);
    if (rc < 0)
        kept[0] = '\0';
    if (fd >= 0)
        close(fd); /* after the move: a sweep starting meanwhile found it locked */
    free(jpath);
    return rc;
}
