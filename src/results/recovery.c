/* recovery.c: keeping the HDF5 file and its journal in step at open.
 * check_file compares the file with the journal record by record and names a
 * verdict; recover_and_open acts on it: rebuild the file from the journal
 * (the damaged one is kept), or rewrite a journal that is behind the file
 * (kept too), or nothing. Also the journal written from a file that has none.
 * The formats are described in results_impl.h. */
#include "results_impl.h"

#include "untangle/data.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int recover_build_file(results *f, err *e)
{
    int rc = 0;
    h5w w;
    h5w_init(&w);
    char *tmp = res_cat_str(f->path, ".rebuild");
    uint8_t *p = NULL;
    run_result r;
    run_result_init(&r);
    if (!tmp) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = res_clear_tmp(tmp, e)) < 0 || (rc = h5w_create(&w, tmp, &f->lay, &f->first, e)) < 0)
        goto done;
    for (size_t i = 0; i < f->n_rec; i++) {
        if (f->rec[i].type == REC_META)
            continue;
        if ((rc = journal_read(f, i, &p, e)) < 0)
            goto done;
        if (f->rec[i].type == REC_SWEEP) {
            sweep_rec s;
            if (journal_dec_sweep(p, f->rec[i].len, &s) < 0) {
                rc = err_set(e, ERR_INTERNAL, "%s: record %zu no longer decodes", f->jpath, i);
                goto done;
            }
            rc = h5w_add_sweep(&w, &s, tmp, e);
            sweep_rec_free(&s);
        } else {
            results_row row;
            run_config c;
            int ev = f->rec[i].type == REC_EVAL;
            if ((ev ? journal_dec_eval(p, f->rec[i].len, &row, &c, &r)
                    : journal_dec_row(p, f->rec[i].len, &row, &c, &r)) < 0) {
                rc = err_set(e, ERR_INTERNAL, "%s: record %zu no longer decodes", f->jpath, i);
                goto done;
            }
            rc = ev ? h5w_add_eval(&w, &f->elay, &row, &c, &r, tmp, e)
                    : h5w_add_run(&w, &f->lay, &row, &c, &r, tmp, e);
            run_result_free(&r);
        }
        free(p);
        p = NULL;
        if (rc < 0)
            goto done;
    }
    if (H5Fflush(w.file, H5F_SCOPE_LOCAL) < 0) {
        rc = h5util_err(e, "flushing", tmp);
        goto done;
    }
    h5w_close(&w);
    /* path was moved aside or never existed: nothing is renamed over a file */
    if (res_sync_file(tmp) < 0 || res_rename_noreplace(tmp, f->path) < 0) {
        rc = err_set(e, ERR_IO, "cannot move %s to %s: %s", tmp, f->path, strerror(errno));
        unlink(tmp);
        goto done;
    }
    res_sync_dir(f->path);
done:
    h5w_close(&w);
    run_result_free(&r);
    free(p);
    free(tmp);
    return rc;
}

/* Move the file aside (kept, never deleted: its name in kept, "" when there
 * was none) and build it from the journal. */
static int rebuild(results *f, const char *why, char *kept, size_t n_kept, err *e)
{
    kept[0] = '\0';
    if (res_path_exists(f->path)) {
        if (res_move_free(f->path, f->path, "damaged", kept, n_kept) < 0)
            return err_set(e, ERR_IO, "cannot move damaged %s to %s: %s", f->path, kept,
                           strerror(errno));
        res_sync_dir(f->path);
    }
    int rc = recover_build_file(f, e);
    if (rc < 0)
        return err_prefix(e, "rebuilding %s from its journal: ", f->path);
    char what[4400];
    if (kept[0])
        snprintf(what, sizeof what, "; the damaged file is kept as %s", kept);
    else
        what[0] = '\0';
    res_add_note(f, "rebuilt the file from its journal (%s)%s", why, what);
    return 0;
}

/* A row of a damaged file whose key columns look intact: a run id of 16
 * hex digits and, for an attempt, no attempt of the journal with the same
 * index and attempt number under another run id; for a re-evaluation, a run
 * the journal has. */
static int plausible_lost_row(const results *f, const results_row *row)
{
    if (strlen(row->run_id) != 16 || strspn(row->run_id, "0123456789abcdef") != 16)
        return 0;
    for (size_t i = 0; i < f->n_att; i++) {
        const results_attempt *a = &f->att[i];
        int same_id = strcmp(a->run_id, row->run_id) == 0;
        if (row->evaluation > 0 && same_id)
            return 1;
        if (row->evaluation <= 0 && !same_id && a->index == row->index &&
            a->attempt == row->attempt)
            return 0;
    }
    return row->evaluation <= 0;
}

/* Append to f (open, rebuilt from its journal) the attempts and
 * re-evaluations of the damaged file `kept` that the journal lost, as a
 * resume would record them: journal first, then the file. Only rows whose
 * key columns look intact are taken (plausible_lost_row: damage there would
 * otherwise add a run that never was); a kept file that cannot be read gives
 * nothing. What is not taken is run again by a resume. The kept file's
 * /sweeps rows are not carried: a later sweep's YAML is recorded again by
 * its next resume. */
static int append_lacking(results *f, const char *kept, err *e)
{
    results_reader *rd = NULL;
    err e2;
    err_clear(&e2);
    if (reader_open(&rd, kept, &e2) < 0) {
        res_add_note(f, "the damaged file cannot be read for the rows its journal lost (%s)%s",
                     e2.msg, "");
        return 0;
    }
    int rc = 0;
    size_t added = 0;
    run_result r;
    run_result_init(&r);
    for (size_t i = 0; i < rd->n + rd->n_ev && rc == 0; i++) {
        results_row row;
        run_config c;
        int found;
        const int ev = i >= rd->n;
        err e3;
        if ((ev ? reader_get_eval(rd, i - rd->n, &row, &c, &r, &found, &e3)
                : reader_get(rd, i, &row, &c, &r, &found, &e3)) < 0) {
            if (e3.code == ERR_NOMEM) /* else a damaged row: left to run again */
                rc = err_set(e, ERR_NOMEM, "%s", e3.msg);
        } else if (r.status != RUN_STATUS_NONE && plausible_lost_row(f, &row) &&
                   !res_recorded(f, &row)) {
            rc = results_append(f, &row, &c, &r, e);
            added += rc == 0;
            if (rc == ERR_INPUT) { /* a value no attempt can have: damage; left to run again */
                rc = 0;
                err_clear(e);
            }
        }
        run_result_free(&r);
    }
    run_result_free(&r);
    reader_free(rd);
    if (rc == 0 && added) {
        char count[32];
        snprintf(count, sizeof count, "%zu", added);
        res_add_note(f, "appended again the damaged file's rows that its journal had lost: %s%s",
                     count, "");
    }
    return rc;
}

static int same_result_detail(const run_result *a, const run_result *b)
{
    if (a->n_units != b->n_units || a->n_curve != b->n_curve ||
        (a->n_units > 0 && a->n_factors != b->n_factors) ||
        memcmp(a->mig_factor, b->mig_factor, sizeof a->mig_factor) != 0 ||
        memcmp(a->swap_factor, b->swap_factor, sizeof a->swap_factor) != 0)
        return 0;
    if (a->n_units > 0 &&
        memcmp(a->mi, b->mi, sizeof(float) * (size_t)a->n_units * (size_t)a->n_factors) != 0)
        return 0;
    int ha = a->traversal ? a->trav_h : 0, wa = a->traversal ? a->trav_w : 0;
    int hb = b->traversal ? b->trav_h : 0, wb = b->traversal ? b->trav_w : 0;
    if (ha * wa == 0)
        ha = wa = 0;
    if (hb * wb == 0)
        hb = wb = 0;
    if (ha != hb || wa != wb || (ha && memcmp(a->traversal, b->traversal, (size_t)ha * wa) != 0))
        return 0;
    for (size_t i = 0; i < a->n_curve; i++) {
        const run_curve_point *x = &a->curve[i], *y = &b->curve[i];
        if (x->step != y->step || strncmp(x->name, y->name, sizeof x->name) != 0 ||
            memcmp(&x->value, &y->value, sizeof x->value) != 0)
            return 0;
    }
    return 1;
}

static size_t n_records_of(const results *f, int type)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_rec; i++)
        n += f->rec[i].type == type;
    return n;
}

/* What check_file found. FILE_REBUILD_KEEP: both are damaged (the file
 * garbles a row its journal has, and has rows the journal lost to damage in
 * this open): rebuild from the journal, then append the rows only the damaged
 * file still has. */
enum { FILE_SAME, FILE_REBUILD, FILE_AHEAD, FILE_REBUILD_KEEP };

/* The file holds rows of another sweep: never rebuilt over. */
static int other_sweep(const results *f, const results_reader *rd)
{
    return rd->n > 0 && (rd->root.hash != f->first.hash || strcmp(rd->root.name, f->first.name));
}

/* The checks that need no journal record; the reason to rebuild in why, or "". */
static void check_summary(const results *f, const results_reader *rd, size_t n_rows,
                          size_t n_sweeps, char *why, size_t n)
{
    size_t n_evals = n_records_of(f, REC_EVAL);
    if (other_sweep(f, rd))
        snprintf(why, n, "it belongs to sweep '%s'", rd->root.name);
    else if (!rd->same_layout)
        snprintf(why, n, "its /runs columns are not this version's");
    else if (rd->n_skipped)
        snprintf(why, n, "%zu invalid (all-zero) rows in /runs", rd->n_skipped);
    else if (rd->n < n_rows)
        snprintf(why, n, "it has %zu of the journal's %zu rows", rd->n, n_rows);
    else if (rd->n_ev_skipped)
        snprintf(why, n, "%zu invalid (all-zero) rows in /evals", rd->n_ev_skipped);
    else if (rd->n_ev < n_evals)
        snprintf(why, n, "it has %zu of the journal's %zu re-evaluations", rd->n_ev, n_evals);
    else if (rd->n_sw < n_sweeps || strcmp(rd->root.yaml, f->first.yaml) != 0 ||
             rd->root.hash != f->first.hash || strcmp(rd->root.time, f->first.time) != 0)
        snprintf(why, n, "its root attributes or /sweeps differ from the journal");
}

/* Journal ROW record i (payload p) against the file: the first /runs row
 * from *row_i on that equals it byte for byte (an EVAL record: /evals), then
 * that row's curves and detail; *row_i moves past it. The rows skipped are
 * rows the file has and the journal lacks (a damaged journal record was
 * dropped): the file is then ahead. No such row: the file lacks or garbles
 * the record. *n_curves counts the journal's curve points. mine holds a row
 * of either layout. */
static int check_row(const results *f, results_reader *rd, const uint8_t *p, size_t i,
                     size_t *row_i, uint8_t *mine, size_t *n_curves, char *why, size_t n, err *e)
{
    const int ev = f->rec[i].type == REC_EVAL;
    const layout *L = ev ? &f->elay : &f->lay;
    results_row rowj, rowf;
    run_config cj, cf;
    run_result rj, rf;
    run_result_init(&rj);
    run_result_init(&rf);
    int found = 0;
    err e3;
    if ((ev ? journal_dec_eval(p, f->rec[i].len, &rowj, &cj, &rj)
            : journal_dec_row(p, f->rec[i].len, &rowj, &cj, &rj)) < 0) {
        run_result_free(&rj);
        return err_set(e, ERR_INTERNAL, "%s: record %zu no longer decodes", f->jpath, i);
    }
    row_encode(L, mine, &rowj, &cj, &rj);
    *n_curves += rj.n_curve;
    const uint8_t *rows = ev ? rd->erows : rd->rows;
    const size_t n_file = ev ? rd->n_ev : rd->n;
    size_t k = *row_i;
    while (k < n_file && memcmp(mine, rows + k * L->size, L->size) != 0)
        k++;
    if (k == n_file)
        snprintf(why, n, "%s row %zu differs from the journal", ev ? "/evals" : "/runs", *row_i);
    else if ((ev ? reader_get_eval(rd, k, &rowf, &cf, &rf, &found, &e3)
                 : reader_get(rd, k, &rowf, &cf, &rf, &found, &e3)) < 0)
        snprintf(why, n, "row %zu cannot be read: %s", k, e3.msg);
    else if (!found || !same_result_detail(&rj, &rf))
        snprintf(why, n, "the curves or detail of row %zu (%ld_%d) differ from the journal",
                 k, rowj.index, rowj.attempt);
    *row_i = k + 1;
    run_result_free(&rj);
    run_result_free(&rf);
    return 0;
}

/* Every SWEEP and ROW record against the file, in order, until the first
 * record the file lacks or garbles (its description in why); records match
 * file rows in the file's order, skipping rows the journal lacks. */
static int check_records(const results *f, results_reader *rd, size_t *n_curves, char *why,
                         size_t n, err *e)
{
    int rc = 0;
    uint8_t *p = NULL, *mine = malloc(f->elay.size); /* the larger layout */
    if (!mine)
        return err_set(e, ERR_NOMEM, "out of memory");
    size_t row_i = 0, ev_i = 0, sw_i = 1;
    for (size_t i = 0; i < f->n_rec && !why[0] && rc == 0; i++) {
        if (f->rec[i].type == REC_META)
            continue;
        if ((rc = journal_read(f, i, &p, e)) < 0)
            break;
        if (f->rec[i].type == REC_SWEEP) {
            sweep_rec s;
            if (journal_dec_sweep(p, f->rec[i].len, &s) < 0) {
                rc = err_set(e, ERR_INTERNAL, "%s: record %zu no longer decodes", f->jpath, i);
            } else {
                size_t k = sw_i;
                while (k < rd->n_sw && !sweep_rec_same(&s, &rd->sw[k]))
                    k++;
                if (k == rd->n_sw)
                    snprintf(why, n, "/sweeps row %zu differs from the journal", sw_i);
                sw_i = k + 1;
                sweep_rec_free(&s);
            }
        } else if (f->rec[i].type == REC_EVAL) {
            rc = check_row(f, rd, p, i, &ev_i, mine, n_curves, why, n, e);
        } else {
            rc = check_row(f, rd, p, i, &row_i, mine, n_curves, why, n, e);
        }
        free(p);
        p = NULL;
    }
    free(mine);
    return rc;
}

/* Compare the HDF5 file with the journal, record by record. FILE_SAME: the
 * file is exactly what the journal says. FILE_REBUILD (*why says why): it is
 * missing, unreadable or lacks or garbles something the journal has.
 * FILE_AHEAD: it holds everything the journal has, identically, and more
 * (the journal lost its end or a damaged record, or an older journal was put
 * back). A file that both has more and differs: FILE_REBUILD_KEEP when this
 * open dropped damaged journal records (each lost something), else refused
 * (ERR_INPUT): that journal is not its own, and neither can be rebuilt from
 * the other. The root attributes that the program derives (key_help,
 * metric_units, traversal_steps) are not compared: a file of an earlier
 * version lacks them. */
static int check_file(results *f, int *verdict, char *why, size_t n, err *e)
{
    int rc = 0;
    results_reader *rd = NULL;
    why[0] = '\0';
    *verdict = FILE_REBUILD;
    if (!res_path_exists(f->path)) {
        snprintf(why, n, "the file is missing");
        return 0;
    }
    err e2;
    err_clear(&e2);
    if (reader_open(&rd, f->path, &e2) < 0) {
        if (e2.code == ERR_NOMEM || e2.code == ERR_IO) /* locked, unreadable: not damage */
            return err_set(e, e2.code, "%s", e2.msg);
        snprintf(why, n, "it cannot be read: %s", e2.msg);
        return 0;
    }
    size_t n_rows = n_records_of(f, REC_ROW), n_sweeps = 1 + n_records_of(f, REC_SWEEP);
    size_t n_curves = 0;
    int ahead = rd->n > n_rows || rd->n_sw > n_sweeps || other_sweep(f, rd) ||
                rd->n_ev > n_records_of(f, REC_EVAL);
    check_summary(f, rd, n_rows, n_sweeps, why, n);
    if (!why[0] && (rc = check_records(f, rd, &n_curves, why, n, e)) < 0)
        goto done;
    if (!why[0] && !ahead && n_curves != rd->n_curves)
        snprintf(why, n, "/curves has %zu points, the journal %zu", rd->n_curves, n_curves);
    if (!why[0])
        *verdict = ahead ? FILE_AHEAD : FILE_SAME;
    else if (ahead && f->j_damaged && !other_sweep(f, rd))
        *verdict = FILE_REBUILD_KEEP;
    else if (ahead)
        rc = err_set(e, ERR_INPUT,
                     "%s holds %zu rows and %zu sweep YAMLs of sweep '%s', its journal %s %zu "
                     "rows and %zu YAMLs of sweep '%s', and they differ (%s): the journal is not "
                     "this file's; move %s away to have it rewritten from the file",
                     f->path, rd->n, rd->n_sw, rd->root.name, f->jpath, n_rows, n_sweeps,
                     f->first.name, why, f->jpath);
done:
    reader_free(rd);
    return rc;
}

int journal_put_evals(results *f, results_reader *rd, err *e)
{
    int rc = 0;
    run_result r;
    run_result_init(&r);
    for (size_t i = 0; i < rd->n_ev && rc == 0; i++) {
        results_row row;
        run_config c;
        int found, dup = 0;
        if ((rc = reader_get_eval(rd, i, &row, &c, &r, &found, e)) < 0)
            break;
        for (size_t k = 0; k < f->n_ev && !dup; k++)
            dup = f->ev[k].evaluation == row.evaluation && strcmp(f->ev[k].run_id, row.run_id) == 0;
        if (!dup && row.evaluation >= 1 && r.status != RUN_STATUS_NONE) {
            bytes b = {0};
            if ((rc = journal_enc_eval(&b, &row, &c, &r, e)) == 0 &&
                (rc = journal_put(f, REC_EVAL, &b, 0, e)) == 0 && journal_note_eval(f, &row) < 0)
                rc = err_set(e, ERR_NOMEM, "out of memory");
            bytes_free(&b);
        }
        run_result_free(&r);
    }
    return rc;
}

/* Reset the journal state of f for a new scan (f->jfd is left alone). */
static void journal_state_reset(results *f)
{
    f->n_rec = f->n_att = f->n_ev = 0;
    f->jlen = 0;
    f->has_first = 0;
    sweep_rec_free(&f->first);
    sweep_rec_free(&f->last);
}

/* Write tmp, a journal of the file's contents, created exclusively and
 * fsync'ed; f->jfd is its fd while writing, -1 after (closed). On failure tmp
 * is removed. Nothing else is touched: a full disk leaves what was there. */
static int journal_tmp_from_file(results *f, const char *tmp, err *e)
{
    int rc = 0;
    results_reader *rd = NULL;
    run_result r;
    run_result_init(&r);
    journal_state_reset(f);
    if ((rc = reader_open(&rd, f->path, e)) < 0)
        goto done;
    if ((rc = res_clear_tmp(tmp, e)) < 0) /* a leftover of an interrupted attempt */
        goto done;
    f->jfd = res_create_excl(tmp, O_RDWR);
    if (f->jfd < 0) {
        rc = err_set(e, ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    if ((rc = journal_put_sweep(f, REC_META, &rd->root, e)) < 0)
        goto done;
    for (size_t i = 1; i < rd->n_sw; i++)
        if ((rc = journal_put_sweep(f, REC_SWEEP, &rd->sw[i], e)) < 0)
            goto done;
    for (size_t i = 0; i < rd->n; i++) {
        results_row row;
        run_config c;
        int found, dup = 0;
        if ((rc = reader_get(rd, i, &row, &c, &r, &found, e)) < 0)
            goto done;
        for (size_t j = 0; j < f->n_att && !dup; j++)
            dup = strcmp(f->att[j].run_id, row.run_id) == 0 && f->att[j].attempt == row.attempt;
        if (!dup && r.status != RUN_STATUS_NONE) {
            bytes b = {0};
            rc = journal_enc_row(&b, &row, &c, &r, e);
            if (rc == 0)
                rc = journal_put(f, REC_ROW, &b, 0, e);
            if (rc == 0 && journal_note_attempt(f, &row, &c, &r) < 0)
                rc = err_set(e, ERR_NOMEM, "out of memory");
            bytes_free(&b);
        }
        run_result_free(&r);
        if (rc < 0)
            goto done;
    }
    if ((rc = journal_put_evals(f, rd, e)) == 0)
        rc = journal_sync(f, e);
done:
    run_result_free(&r);
    reader_free(rd);
    if (f->jfd >= 0) {
        close(f->jfd);
        if (rc < 0)
            unlink(tmp);
    }
    f->jfd = -1;
    journal_state_reset(f); /* rebuilt by the caller's scan */
    return rc;
}

/* A file without a journal (copied, or its journal deleted): write one from
 * the file's contents, then continue as usual. */
int recover_journal_from_file(results *f, err *e)
{
    char *tmp = res_cat_str(f->jpath, ".tmp");
    if (!tmp)
        return err_set(e, ERR_NOMEM, "out of memory");
    int rc = journal_tmp_from_file(f, tmp, e);
    if (rc == 0 && res_rename_noreplace(tmp, f->jpath) < 0) {
        rc = err_set(e, ERR_IO, "cannot move %s to %s: %s", tmp, f->jpath, strerror(errno));
        unlink(tmp);
    }
    if (rc == 0) {
        res_sync_dir(f->jpath);
        res_add_note(f, "%s had no journal: wrote %s from its contents", f->path, f->jpath);
    }
    free(tmp);
    /* the journal is reopened (and locked) by the caller */
    return rc;
}

/* The journal is behind the file (or has no header): write a new one from
 * the file (which holds all it has, and more) beside it, then keep the old
 * one aside and put the new one in its place. The old journal stays where it
 * is, locked, until the new one is complete: a failed rewrite (a full disk)
 * leaves the results with their journal as it was. */
static int journal_resync(results *f, err *e)
{
    char old[4200];
    char *tmp = res_cat_str(f->jpath, ".tmp");
    if (!tmp)
        return err_set(e, ERR_NOMEM, "out of memory");
    int locked = f->jfd, rc;
    f->jfd = -1;
    rc = journal_tmp_from_file(f, tmp, e);
    if (rc == 0 && res_move_free(f->jpath, f->jpath, "behind", old, sizeof old) < 0) {
        rc = err_set(e, ERR_IO, "cannot move %s to %s: %s", f->jpath, old, strerror(errno));
        unlink(tmp);
    }
    if (rc == 0 && res_rename_noreplace(tmp, f->jpath) < 0) {
        rc = err_set(e, ERR_IO, "cannot move %s to %s: %s", tmp, f->jpath, strerror(errno));
        if (res_rename_noreplace(old, f->jpath) == 0) /* the old one back in its place */
            unlink(tmp);
    }
    free(tmp);
    if (rc < 0) {
        f->jfd = locked; /* closed with f */
        return rc;
    }
    res_sync_dir(f->jpath);
    close(locked); /* after the renames: the lock is held until the journal moved */
    if ((rc = journal_open(f, e)) < 0 || (rc = journal_scan(f, e)) < 0)
        return rc;
    res_add_note(f, "the journal was behind the file: kept as %s and rewritten from %s", old,
             f->path);
    return 0;
}

int recover_journal_lost(results *f, err *e)
{
    results_reader *rd = NULL;
    err e2;
    err_clear(&e2);
    if (reader_open(&rd, f->path, &e2) < 0)
        return err_set(e, ERR_INPUT,
                       "%s: its journal %s has no intact header record and the file cannot be "
                       "read either (%s): nothing was changed",
                       f->path, f->jpath, e2.msg);
    reader_free(rd);
    return journal_resync(f, e);
}

int recover_and_open(results *f, err *e)
{
    char why[1200], kept[4200] = "";
    int verdict = FILE_SAME;
    int rc = check_file(f, &verdict, why, sizeof why, e);
    if (rc < 0)
        return rc;
    if ((verdict == FILE_REBUILD || verdict == FILE_REBUILD_KEEP) &&
        (rc = rebuild(f, why, kept, sizeof kept, e)) < 0)
        return rc;
    if (verdict == FILE_AHEAD && (rc = journal_resync(f, e)) < 0)
        return rc;
    if ((rc = h5w_open(&f->w, f->path, &f->lay, e)) < 0)
        return rc;
    return verdict == FILE_REBUILD_KEEP && kept[0] ? append_lacking(f, kept, e) : 0;
}
