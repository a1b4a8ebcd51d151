/* journal.c: the journal beside a results file, the record of truth: the
 * payloads of its META, SWEEP and ROW records, their framing (magic, type,
 * length, CRC-32) and append, the writer's lock, and the scan at open that
 * drops a torn tail. The byte format is described in results_impl.h. */
#include "results_impl.h"

#include "../util/fileio.h"
#include "../util/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

void journal_enc_sweep(bytes *b, const sweep_rec *s)
{
    bytes_u32(b, s->format);
    bytes_u64(b, s->hash);
    bytes_str(b, s->time);
    bytes_str(b, s->untangle_version);
    bytes_str(b, s->name);
    bytes_str(b, s->yaml);
    bytes_str(b, s->hdf5_version);
    bytes_str(b, s->libs);
    /* the data set, only when it is not dSprites: a dSprites record is the
     * bytes it always was */
    if (s->data)
        bytes_str(b, s->data);
}

int journal_dec_sweep(const uint8_t *p, size_t len, sweep_rec *s)
{
    cursor c = {p, len, 0, 0};
    memset(s, 0, sizeof *s);
    s->format = cursor_u32(&c);
    s->hash = cursor_u64(&c);
    s->time = cursor_str(&c);
    s->untangle_version = cursor_str(&c);
    s->name = cursor_str(&c);
    s->yaml = cursor_str(&c);
    s->hdf5_version = cursor_str(&c);
    s->libs = cursor_str(&c);
    if (!c.fail && c.at < len)
        s->data = cursor_str(&c);
    if (c.fail || c.at != len) {
        sweep_rec_free(s);
        return -1;
    }
    return 0;
}

int journal_enc_row(bytes *b, const results_row *row, const run_config *c, const run_result *r,
                   err *e)
{
    char run_id[RUN_ID_LEN] = {0}, host[HOST_LEN] = {0}, text[1200];
    int64_t index = row->index;
    int32_t attempt = row->attempt, rank = row->rank;
    memcpy(run_id, row->run_id, strnlen(row->run_id, RUN_ID_LEN - 1));
    memcpy(host, row->host, strnlen(row->host, HOST_LEN - 1));
    bytes_put(b, &index, sizeof index);
    bytes_put(b, run_id, sizeof run_id);
    bytes_put(b, &attempt, sizeof attempt);
    bytes_put(b, &rank, sizeof rank);
    bytes_put(b, host, sizeof host);
    bytes_u32(b, (uint32_t)run_n_keys);
    for (size_t i = 0; i < run_n_keys; i++) {
        uint8_t set = (uint8_t)(c->set >> i & 1);
        bytes_put(b, &set, 1);
        bytes_str(b, run_keys[i].name);
        run_config_format(c, &run_keys[i], text, sizeof text);
        bytes_str(b, text);
    }
    uint8_t *packed = NULL;
    size_t n = 0;
    if (run_result_pack(r, &packed, &n, e) < 0)
        return e->code;
    bytes_u64(b, n);
    bytes_put(b, packed, n);
    free(packed);
    if (b->fail)
        return err_set(e, ERR_NOMEM, "out of memory encoding a journal record");
    return 0;
}

int journal_dec_row(const uint8_t *p, size_t len, results_row *row, run_config *c, run_result *r)
{
    cursor cu = {p, len, 0, 0};
    int64_t index = 0;
    int32_t attempt = 0, rank = 0;
    memset(row, 0, sizeof *row);
    run_config_defaults(c);
    cursor_get(&cu, &index, sizeof index);
    cursor_get(&cu, row->run_id, RUN_ID_LEN);
    cursor_get(&cu, &attempt, sizeof attempt);
    cursor_get(&cu, &rank, sizeof rank);
    cursor_get(&cu, row->host, HOST_LEN);
    row->run_id[RUN_ID_LEN - 1] = '\0';
    row->host[HOST_LEN - 1] = '\0';
    row->index = (long)index;
    row->attempt = attempt;
    row->rank = rank;
    uint32_t nk = cursor_u32(&cu);
    err ignored;
    for (uint32_t i = 0; i < nk && !cu.fail; i++) {
        uint8_t set = 0;
        cursor_get(&cu, &set, 1);
        char *name = cursor_str(&cu), *val = cursor_str(&cu);
        const run_key *k = name ? run_key_find(name) : NULL;
        /* A key this version no longer knows, or whose value it cannot parse
         * (its type changed), keeps its default: the rest of the row counts. */
        if (k && val && run_config_put(c, k, val, &ignored) == 0 && set)
            c->set |= 1ull << (size_t)(k - run_keys);
        free(name);
        free(val);
    }
    uint64_t n = cursor_u64(&cu);
    if (cu.fail || n != len - cu.at)
        return -1;
    err e;
    if (run_result_unpack(r, p + cu.at, (size_t)n, &e) < 0)
        return -1;
    if (r->status < RUN_OK || r->status > RUN_INTERRUPTED) {
        run_result_free(r);
        return -1;
    }
    return 0;
}

int journal_enc_eval(bytes *b, const results_row *row, const run_config *c, const run_result *r,
                     err *e)
{
    int32_t ev = row->evaluation;
    bytes_put(b, &ev, sizeof ev);
    return journal_enc_row(b, row, c, r, e);
}

int journal_dec_eval(const uint8_t *p, size_t len, results_row *row, run_config *c,
                     run_result *r)
{
    int32_t ev = 0;
    if (len < sizeof ev)
        return -1;
    memcpy(&ev, p, sizeof ev);
    if (ev < 1 || journal_dec_row(p + sizeof ev, len - sizeof ev, row, c, r) < 0)
        return -1;
    row->evaluation = ev;
    return 0;
}

int journal_note_eval(results *f, const results_row *row)
{
    if (f->n_ev == f->cap_ev) {
        size_t cap = f->cap_ev ? 2 * f->cap_ev : 64;
        struct eval_note *p = realloc(f->ev, cap * sizeof *p);
        if (!p)
            return -1;
        f->ev = p;
        f->cap_ev = cap;
    }
    struct eval_note *n = &f->ev[f->n_ev++];
    res_get_str(n->run_id, sizeof n->run_id, (const uint8_t *)row->run_id, sizeof row->run_id);
    n->evaluation = row->evaluation;
    return 0;
}

static int push_rec(results *f, int type, off_t off, size_t len)
{
    if (f->n_rec == f->cap_rec) {
        size_t cap = f->cap_rec ? 2 * f->cap_rec : 64;
        jrec *p = realloc(f->rec, cap * sizeof *p);
        if (!p)
            return -1;
        f->rec = p;
        f->cap_rec = cap;
    }
    f->rec[f->n_rec++] = (jrec){type, off, len};
    return 0;
}

int journal_note_attempt(results *f, const results_row *row, const run_config *c,
                        const run_result *r)
{
    if (f->n_att == f->cap_att) {
        size_t cap = f->cap_att ? 2 * f->cap_att : 64;
        results_attempt *p = realloc(f->att, cap * sizeof *p);
        if (!p)
            return -1;
        f->att = p;
        f->cap_att = cap;
    }
    results_attempt *a = &f->att[f->n_att++];
    memset(a, 0, sizeof *a);
    a->index = row->index;
    res_get_str(a->run_id, sizeof a->run_id, (const uint8_t *)row->run_id, sizeof row->run_id);
    a->attempt = row->attempt;
    a->status = r->status;
    a->wall_s = r->wall_s;
    snprintf(a->model, sizeof a->model, "%s", c->model);
    snprintf(a->arch, sizeof a->arch, "%s", c->arch);
    return 0;
}

static uint32_t rec_crc(uint32_t type, uint64_t len, const void *payload)
{
    uint32_t crc = hash_crc32(0, &type, sizeof type);
    crc = hash_crc32(crc, &len, sizeof len);
    return hash_crc32(crc, payload, (size_t)len);
}

int journal_put(results *f, int type, const bytes *b, int sync, err *e)
{
    uint8_t hdr[REC_HEADER];
    uint32_t magic = JOURNAL_MAGIC, t = (uint32_t)type, crc = rec_crc(t, b->len, b->p);
    uint64_t len = b->len;
    memcpy(hdr, &magic, 4);
    memcpy(hdr + 4, &t, 4);
    memcpy(hdr + 8, &len, 8);
    memcpy(hdr + 16, &crc, 4);
    off_t at = f->jlen;
    int rc = 0;
    if (fileio_pwrite_all(f->jfd, hdr, sizeof hdr, at) < 0 ||
        fileio_pwrite_all(f->jfd, b->p, b->len, at + REC_HEADER) < 0 || (sync && fdatasync(f->jfd) < 0)) {
        rc = err_set(e, ERR_IO, "writing %s: %s", f->jpath, strerror(errno));
        if (ftruncate(f->jfd, at) == 0 && sync)
            fdatasync(f->jfd);
        return rc;
    }
    if (push_rec(f, type, at + REC_HEADER, b->len) < 0) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        if (ftruncate(f->jfd, at) == 0 && sync)
            fdatasync(f->jfd);
        return rc;
    }
    f->jlen = at + REC_HEADER + (off_t)b->len;
    return 0;
}

int journal_sync(results *f, err *e)
{
    if (fdatasync(f->jfd) < 0)
        return err_set(e, ERR_IO, "syncing %s: %s", f->jpath, strerror(errno));
    return 0;
}

/* Take the writer's lock on the journal: one writer per results file. A file
 * system without flock is accepted (nothing to lock with). */
static int journal_lock(results *f, err *e)
{
    if (flock(f->jfd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    if (errno == EWOULDBLOCK)
        return err_set(e, ERR_IO,
                       "%s is in use by another process (its journal %s is locked): one "
                       "writer per results file",
                       f->path, f->jpath);
    if (errno == ENOLCK || errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL)
        return 0;
    return err_set(e, ERR_IO, "locking %s: %s", f->jpath, strerror(errno));
}

int journal_read(const results *f, size_t i, uint8_t **out, err *e)
{
    const jrec *r = &f->rec[i];
    uint8_t *p = malloc(r->len ? r->len : 1);
    if (!p)
        return err_set(e, ERR_NOMEM, "out of memory reading %s", f->jpath);
    if (fileio_pread_all(f->jfd, p, r->len, r->off) < 0) {
        free(p);
        return err_set(e, ERR_IO, "reading %s: %s", f->jpath,
                       errno ? strerror(errno) : "unexpected end of file");
    }
    *out = p;
    return 0;
}

/* Account for a valid record while scanning or appending. */
static int note_record(results *f, int type, const uint8_t *p, size_t len)
{
    if (type == REC_META || type == REC_SWEEP) {
        sweep_rec s;
        if (journal_dec_sweep(p, len, &s) < 0)
            return -1;
        int rc = 0;
        if (type == REC_META) {
            if (f->has_first)
                rc = -1;
            else {
                rc = sweep_rec_copy(&f->first, &s);
                f->has_first = rc == 0;
                if (rc == 0)
                    res_layout_for_first(f);
            }
        } else if (!f->has_first) {
            rc = -1;
        }
        if (rc == 0)
            rc = sweep_rec_copy(&f->last, &s);
        sweep_rec_free(&s);
        return rc;
    }
    if ((type != REC_ROW && type != REC_EVAL) || !f->has_first)
        return -1;
    results_row row;
    run_config c;
    run_result r;
    run_result_init(&r);
    int rc = type == REC_ROW ? journal_dec_row(p, len, &row, &c, &r)
                             : journal_dec_eval(p, len, &row, &c, &r);
    if (rc == 0)
        rc = type == REC_ROW ? journal_note_attempt(f, &row, &c, &r) : journal_note_eval(f, &row);
    run_result_free(&r);
    return rc;
}

/* Copy the first size bytes of the journal to the first free
 * PATH.journal.damaged-N (named in kept), fsync'ed: 0 or -1 (errno set). */
static int copy_aside(const results *f, off_t size, char *kept, size_t n_kept)
{
    int out = -1;
    for (int i = 1; out < 0 && i <= 100000; i++) {
        snprintf(kept, n_kept, "%s.damaged-%d", f->jpath, i);
        if ((out = res_create_excl(kept, O_WRONLY)) < 0 && errno != EEXIST)
            break;
    }
    uint8_t buf[65536];
    off_t at = 0;
    int ok = out >= 0;
    while (ok && at < size) {
        size_t n = size - at < (off_t)sizeof buf ? (size_t)(size - at) : sizeof buf;
        ok = fileio_pread_all(f->jfd, buf, n, at) == 0 && fileio_pwrite_all(out, buf, n, at) == 0;
        at += (off_t)n;
    }
    if (out >= 0)
        ok = fsync(out) == 0 && ok;
    if (out >= 0)
        close(out);
    return ok ? 0 : -1;
}

/* The record at pos: 1 when it is intact (magic, a length that fits, a good
 * CRC over type, length and payload; a type this version does not know is
 * refused by the caller, not skipped; *type, *len, payload in *p, malloc'd), 0
 * when not (*short_ = 1 when it starts like a record but runs past the end: a
 * torn tail), -1 on a read error (errno). */
static int rec_at(const results *f, off_t pos, off_t size, uint32_t *type, uint64_t *len,
                  uint8_t **p, int *short_)
{
    uint8_t hdr[REC_HEADER];
    uint32_t magic, crc;
    *p = NULL;
    *short_ = size - pos < REC_HEADER;
    if (*short_)
        return 0;
    if (fileio_pread_all(f->jfd, hdr, sizeof hdr, pos) < 0)
        return -1;
    memcpy(&magic, hdr, 4);
    memcpy(type, hdr + 4, 4);
    memcpy(len, hdr + 8, 8);
    memcpy(&crc, hdr + 16, 4);
    if (magic != JOURNAL_MAGIC)
        return 0;
    if (*len > (uint64_t)(size - pos - REC_HEADER)) {
        *short_ = 1;
        return 0;
    }
    if (!(*p = malloc(*len ? (size_t)*len : 1))) {
        errno = ENOMEM;
        return -1;
    }
    if (fileio_pread_all(f->jfd, *p, (size_t)*len, pos + REC_HEADER) < 0)
        return -1;
    if (rec_crc(*type, *len, *p) == crc)
        return 1;
    free(*p);
    *p = NULL;
    return 0;
}

/* The offset of the next intact record after pos, or size when none. */
static off_t next_intact(const results *f, off_t pos, off_t size)
{
    uint8_t buf[65536];
    uint32_t magic = JOURNAL_MAGIC;
    for (off_t at = pos + 1; at + REC_HEADER <= size;) {
        size_t n = size - at < (off_t)sizeof buf ? (size_t)(size - at) : sizeof buf;
        if (fileio_pread_all(f->jfd, buf, n, at) < 0)
            return size;
        for (size_t k = 0; k + 4 <= n; k++) {
            if (memcmp(buf + k, &magic, 4) != 0)
                continue;
            uint32_t type;
            uint64_t len;
            uint8_t *p;
            int short_, ok = rec_at(f, at + (off_t)k, size, &type, &len, &p, &short_);
            free(p);
            if (ok == 1)
                return at + (off_t)k;
        }
        at += (off_t)n - 3; /* a magic across the window's end */
        if (n < sizeof buf)
            break;
    }
    return size;
}

/* A new journal of the intact records only, in place of the damaged one (the
 * whole damaged journal was copied aside first); its fd, locked, replaces
 * f->jfd. The state is reset for a new scan. */
static int compact(results *f, err *e)
{
    char *tmp = res_cat_str(f->jpath, ".tmp");
    int rc = 0, out = -1;
    if (!tmp)
        return err_set(e, ERR_NOMEM, "out of memory");
    if ((rc = res_clear_tmp(tmp, e)) < 0)
        goto done;
    if ((out = res_create_excl(tmp, O_RDWR)) < 0 || flock(out, LOCK_EX | LOCK_NB) < 0) {
        rc = err_set(e, ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    off_t at = 0;
    for (size_t i = 0; i < f->n_rec && rc == 0; i++) {
        off_t from = f->rec[i].off - REC_HEADER;
        size_t n = REC_HEADER + f->rec[i].len;
        uint8_t *p = malloc(n);
        if (!p || fileio_pread_all(f->jfd, p, n, from) < 0 || fileio_pwrite_all(out, p, n, at) < 0)
            rc = err_set(e, ERR_IO, "writing %s: %s", tmp, p ? strerror(errno) : "out of memory");
        free(p);
        at += (off_t)n;
    }
    /* the one intended replacement of an existing file: the journal by its
     * repaired self */
    if (rc == 0 && (fsync(out) < 0 || rename(tmp, f->jpath) < 0))
        rc = err_set(e, ERR_IO, "cannot replace %s by %s: %s", f->jpath, tmp, strerror(errno));
    if (rc == 0) {
        res_sync_dir(f->jpath);
        close(f->jfd);
        f->jfd = out;
        out = -1;
        f->n_rec = f->n_att = 0;
        f->has_first = 0;
        sweep_rec_free(&f->first);
        sweep_rec_free(&f->last);
    }
done:
    if (out >= 0) {
        close(out);
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* Read every intact record into f; *dropped counts the bytes of damaged
 * stretches skipped before the last intact record, *end is the end of the
 * last intact record, *torn tells whether what follows it is a torn record
 * (cut without a copy) rather than damage. */
static int scan_records(results *f, off_t size, off_t *dropped, off_t *end, int *torn, err *e)
{
    off_t pos = 0;
    *dropped = 0;
    *end = 0;
    *torn = 0;
    while (pos < size) {
        uint32_t type = 0;
        uint64_t len = 0;
        uint8_t *p = NULL;
        int short_ = 0, ok = rec_at(f, pos, size, &type, &len, &p, &short_);
        if (ok < 0) {
            free(p);
            return err_set(e, ERR_IO, "reading %s: %s", f->jpath, strerror(errno));
        }
        if (ok == 0) { /* resynchronise on the next intact record */
            off_t q = next_intact(f, pos, size);
            if (q == size) {
                *torn = short_;
                break;
            }
            *dropped += q - pos;
            pos = q;
            continue;
        }
        if (!f->has_first && type != REC_META) {
            /* the header record is damaged, and nothing after it can be read
             * without it: all of it is damage (copied aside by the caller),
             * and the journal is rewritten from the file */
            free(p);
            *dropped = 0;
            break;
        }
        if (note_record(f, (int)type, p, (size_t)len) < 0) {
            /* intact (its CRC is right) but not understood: another version's
             * journal, or a bug. Touch nothing. */
            free(p);
            return err_set(e, ERR_INPUT,
                           "%s: record %zu (type %u, byte %lld) is intact but cannot be read by "
                           "this version of untangle; nothing was changed",
                           f->jpath, f->n_rec, (unsigned)type, (long long)pos);
        }
        free(p);
        if (push_rec(f, (int)type, pos + REC_HEADER, (size_t)len) < 0)
            return err_set(e, ERR_NOMEM, "out of memory reading %s", f->jpath);
        pos += REC_HEADER + (off_t)len;
        *end = pos;
    }
    return 0;
}

int journal_scan(results *f, err *e)
{
    struct stat st;
    if (fstat(f->jfd, &st) < 0)
        return err_set(e, ERR_IO, "reading %s: %s", f->jpath, strerror(errno));
    off_t size = st.st_size, dropped, end;
    int torn, rc;
    if ((rc = scan_records(f, size, &dropped, &end, &torn, e)) < 0)
        return rc;
    f->jlen = end;
    if (end == size && dropped == 0)
        return 0;
    char kept[4200] = "", what[200];
    int damaged = dropped > 0 || !torn;
    f->j_damaged |= damaged;
    if (damaged && copy_aside(f, size, kept, sizeof kept) < 0)
        /* Not what a kill leaves: a copy of the whole journal comes first. */
        return err_set(e, ERR_IO, "%s is damaged and could not be copied to %s before repair: "
                       "%s", f->jpath, kept, strerror(errno));
    if (dropped > 0) { /* damage before intact records: keep those, drop the rest */
        if ((rc = compact(f, e)) < 0 || (rc = journal_scan(f, e)) < 0)
            return rc;
        snprintf(what, sizeof what, "%lld damaged bytes of %lld, the intact records after them "
                 "kept", (long long)(size - f->jlen), (long long)size);
        res_add_note(f, "dropped damaged journal records (%s; the journal was copied to %s)",
                     what, kept);
        return 0;
    }
    if (ftruncate(f->jfd, end) < 0 || fdatasync(f->jfd) < 0)
        return err_set(e, ERR_IO, "truncating the torn end of %s: %s", f->jpath, strerror(errno));
    snprintf(what, sizeof what, "%lld bytes at byte %lld", (long long)(size - end),
             (long long)end);
    if (damaged)
        res_add_note(f, "dropped a damaged journal record (%s; the journal was copied to %s)", what,
                     kept);
    else
        res_add_note(f, "dropped a torn last journal record (%s%s)", what, "");
    return 0;
}

int journal_create(results *f, err *e)
{
    f->jfd = res_create_excl(f->jpath, O_RDWR);
    if (f->jfd < 0)
        return err_set(e, ERR_IO, "cannot create results file %s: its journal %s: %s", f->path,
                       f->jpath, strerror(errno));
    return journal_lock(f, e);
}

int journal_open(results *f, err *e)
{
    f->jfd = open(f->jpath, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (f->jfd < 0)
        return err_set(e, ERR_IO, "cannot open %s: %s", f->jpath, strerror(errno));
    return journal_lock(f, e);
}

int journal_put_sweep(results *f, int type, const sweep_rec *s, err *e)
{
    bytes b = {0};
    journal_enc_sweep(&b, s);
    int rc = b.fail ? err_set(e, ERR_NOMEM, "out of memory") : journal_put(f, type, &b, 0, e);
    bytes_free(&b);
    if (rc == 0) {
        if (type == REC_META) {
            rc = sweep_rec_copy(&f->first, s);
            f->has_first = rc == 0;
            if (rc == 0)
                res_layout_for_first(f);
        }
        if (rc == 0)
            rc = sweep_rec_copy(&f->last, s);
        if (rc < 0)
            rc = err_set(e, ERR_NOMEM, "out of memory");
    }
    return rc;
}
