/* merge.c: results_merge: shard files of one sweep into one file. The
 * output's journal is written first (every attempt of every input, once),
 * then the file is built from it like a rebuild (recovery.c). */
#include "results_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct cand {
    char run_id[RUN_ID_LEN];
    int attempt, status;
    size_t file, row;
} cand;

/* Groups the copies of one (run_id, attempt), in input order. */
static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    int c = strcmp(x->run_id, y->run_id);
    if (c)
        return c < 0 ? -1 : 1;
    if (x->attempt != y->attempt)
        return x->attempt < y->attempt ? -1 : 1;
    return x->file < y->file ? -1 : x->file > y->file ? 1 : x->row < y->row ? -1 : x->row > y->row;
}

/* Input order: the output keeps the inputs' append order. */
static int cmp_pos(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    return x->file < y->file ? -1 : x->file > y->file ? 1 : x->row < y->row ? -1 : x->row > y->row;
}

/* Of two copies of one attempt (the same shard given twice, overlapping
 * shards): the ok one, then the later input. */
static int better(const cand *a, const cand *b)
{
    int oa = a->status == RUN_OK, ob = b->status == RUN_OK;
    if (oa != ob)
        return oa > ob;
    return a->file > b->file || (a->file == b->file && a->row > b->row);
}

/* Open every input; all must belong to the first one's sweep. */
static int open_inputs(results_reader **rd, const char *const *inputs, size_t n_inputs,
                       size_t *total, err *e)
{
    *total = 0;
    for (size_t j = 0; j < n_inputs; j++) {
        if (reader_open(&rd[j], inputs[j], e) < 0)
            return -1;
        const sweep_rec *a = &rd[0]->root, *b = &rd[j]->root;
        if (a->hash != b->hash || strcmp(a->name, b->name) != 0)
            return err_set(e, ERR_INPUT,
                           "%s belongs to sweep '%s' (hash %016llx), not to sweep '%s' "
                           "(hash %016llx) of %s",
                           inputs[j], b->name, (unsigned long long)b->hash, a->name,
                           (unsigned long long)a->hash, inputs[0]);
        *total += rd[j]->n;
    }
    return 0;
}

/* Every attempt of every input, once: rows are paired by (run_id, attempt),
 * never by index (an index is a position in the grid the row ran under, and
 * moves when a grid grows). Into cs[0..*n_best), in input order (cs holds
 * room for every row of every input). */
static void pick_best(results_reader *const *rd, size_t n_inputs, cand *cs, size_t *n_best)
{
    size_t n_cs = 0;
    run_result r;
    run_result_init(&r);
    for (size_t j = 0; j < n_inputs; j++)
        for (size_t i = 0; i < rd[j]->n; i++) {
            results_row row;
            run_config c;
            row_decode(&rd[j]->lay, rd[j]->rows + i * rd[j]->lay.size, rd[j]->present, &row, &c,
                       &r);
            if (r.status == RUN_STATUS_NONE || row.attempt < 1)
                continue;
            cs[n_cs] = (cand){.attempt = row.attempt, .status = r.status, .file = j, .row = i};
            memcpy(cs[n_cs].run_id, row.run_id, RUN_ID_LEN);
            n_cs++;
        }
    run_result_free(&r);
    qsort(cs, n_cs, sizeof *cs, cmp_cand);
    size_t nb = 0;
    for (size_t i = 0; i < n_cs;) {
        size_t best = i, k = i + 1;
        for (; k < n_cs && cs[k].attempt == cs[i].attempt &&
               strcmp(cs[k].run_id, cs[i].run_id) == 0;
             k++)
            if (better(&cs[k], &cs[best]))
                best = k;
        cs[nb++] = cs[best];
        i = k;
    }
    if (nb)
        qsort(cs, nb, sizeof *cs, cmp_pos);
    *n_best = nb;
}

/* The output's journal: META (the first input's root, opened now), every
 * other distinct sweep YAML of the inputs, the chosen rows, the re-evaluations. */
static int write_journal(results *f, results_reader *const *rd, size_t n_inputs,
                         const cand *cs, size_t n_best, err *e)
{
    int rc;
    char now[TIME_LEN];
    res_iso_now(now, sizeof now);
    sweep_rec m = rd[0]->root;
    m.time = now;
    if ((rc = journal_put_sweep(f, REC_META, &m, e)) < 0)
        return rc;
    for (size_t j = 0; j < n_inputs; j++)
        for (size_t i = 0; i < rd[j]->n_sw; i++) {
            int seen = 0;
            for (size_t jj = 0; jj <= j && !seen; jj++)
                for (size_t ii = 0; ii < (jj == j ? i : rd[jj]->n_sw) && !seen; ii++)
                    seen = sweep_rec_same(&rd[jj]->sw[ii], &rd[j]->sw[i]);
            if (j == 0 && i == 0)
                seen = 1; /* the META record */
            if (!seen && (rc = journal_put_sweep(f, REC_SWEEP, &rd[j]->sw[i], e)) < 0)
                return rc;
        }
    run_result r;
    run_result_init(&r);
    for (size_t i = 0; i < n_best && rc == 0; i++) {
        results_row row;
        run_config c;
        int found;
        bytes b = {0};
        if ((rc = reader_get(rd[cs[i].file], cs[i].row, &row, &c, &r, &found, e)) == 0 &&
            (rc = journal_enc_row(&b, &row, &c, &r, e)) == 0)
            rc = journal_put(f, REC_ROW, &b, 0, e);
        bytes_free(&b);
        run_result_free(&r);
    }
    for (size_t j = 0; j < n_inputs && rc == 0; j++)
        rc = journal_put_evals(f, rd[j], e);
    return rc;
}

int results_merge(const char *out, const char *const *inputs, size_t n_inputs, err *e)
{
    h5util_quiet q;
    h5util_quiet_begin(&q);
    int rc = 0, created = 0;
    results_reader **rd = NULL;
    results *f = NULL;
    cand *cs = NULL;
    size_t total = 0, n_best = 0;
    if (!out || n_inputs == 0) {
        rc = err_set(e, ERR_INPUT, "an output and at least one input are required");
        goto done;
    }
    if ((rc = res_check_dir(out, e)) < 0)
        goto done;
    if (res_path_exists(out)) {
        rc = err_set(e, ERR_IO, "cannot create %s: %s", out, strerror(EEXIST));
        goto done;
    }
    if (!(rd = calloc(n_inputs, sizeof *rd))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = open_inputs(rd, inputs, n_inputs, &total, e)) < 0)
        goto done;
    if (!(cs = malloc((total ? total : 1) * sizeof *cs))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    pick_best(rd, n_inputs, cs, &n_best);
    /* the output: its journal first, then the file built from it */
    if (!(f = res_new(out))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    if (res_path_exists(f->jpath)) {
        rc = err_set(e, ERR_IO, "cannot create %s: %s", f->jpath, strerror(EEXIST));
        goto done;
    }
    if ((rc = journal_create(f, e)) < 0)
        goto done;
    created = 1;
    if ((rc = write_journal(f, rd, n_inputs, cs, n_best, e)) < 0 ||
        (rc = journal_sync(f, e)) < 0 || (rc = recover_build_file(f, e)) < 0)
        goto done;
    res_sync_dir(out);
done:
    if (rc < 0 && created) { /* the file at out, if any, is not ours: the build failed */
        unlink(f->jpath);
        char *tmp = res_cat_str(f->path, ".rebuild");
        if (tmp)
            unlink(tmp);
        free(tmp);
    }
    res_free(f);
    if (rd)
        for (size_t j = 0; j < n_inputs; j++)
            reader_free(rd[j]);
    free(rd);
    free(cs);
    h5util_quiet_end(&q);
    return rc;
}
