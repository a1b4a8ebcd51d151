/* The writer of tests/it_results_kill.sh (not a unit test; built by that script).
 *
 *   results_writer FILE          open FILE (create it when missing) and append
 *                                attempts forever, printing each index on
 *                                stdout (line-buffered) once results_append
 *                                has returned
 *   results_writer FILE --check  open FILE (recovering it), print
 *                                "recovery: <note>", the attempts of the
 *                                journal as "J index attempt" and the rows the
 *                                C reader finds in the HDF5 file as
 *                                "H index attempt status"; exit 1 on any error
 *
 * Rows vary in size (curves, detail) so that kills land in every phase of an
 * append: the journal write, its fsync, the HDF5 writes and the flush. */
#include "untangle/data.h"
#include "untangle/model.h"
#include "untangle/results.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char YAML[] = "name: kill-test\ngrid:\n  - model: betavae\n    beta: [1, 2, 4]\n";

static int fail(const char *what, const err *e)
{
    fprintf(stderr, "results_writer: %s: %s\n", what, e->msg);
    return 1;
}

static int check(const char *path, const results_meta *m)
{
    results *f = NULL;
    err e;
    err_clear(&e);
    if (results_open(&f, path, m, &e) < 0)
        return fail("open", &e);
    printf("recovery: %s\n", results_recovery(f));
    size_t n = 0;
    const results_attempt *a = results_attempts(f, &n);
    for (size_t i = 0; i < n; i++)
        printf("J %ld %d\n", a[i].index, a[i].attempt);
    if (results_close(f, &e) < 0)
        return fail("close", &e);
    results_reader *rd = NULL;
    if (results_reader_open(&rd, path, &e) < 0)
        return fail("read", &e);
    run_result r;
    run_result_init(&r);
    int rc = 0;
    for (size_t i = 0; i < results_reader_count(rd) && rc == 0; i++) {
        results_row row;
        run_config c;
        if (results_reader_row(rd, i, &row, &c, &r, &e) < 0)
            rc = fail("read row", &e);
        else
            printf("H %ld %d %s\n", row.index, row.attempt, run_status_name(r.status));
    }
    if (results_reader_skipped(rd)) {
        fprintf(stderr, "results_writer: %zu invalid rows after recovery\n",
                results_reader_skipped(rd));
        rc = 1;
    }
    run_result_free(&r);
    results_reader_close(rd);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const char *path = argv[1];
    results_meta m = {.sweep_name = "kill-test", .sweep_yaml = YAML, .sweep_hash = 42,
                      .untangle_version = "test", .library_versions = "test"};
    if (argc > 2 && strcmp(argv[2], "--check") == 0)
        return check(path, &m);
    setvbuf(stdout, NULL, _IOLBF, 0);
    results *f = NULL;
    err e;
    err_clear(&e);
    FILE *probe = fopen(path, "rb");
    int rc = probe ? results_open(&f, path, &m, &e) : results_create(&f, path, &m, &e);
    if (probe)
        fclose(probe);
    if (rc < 0)
        return fail("open", &e);
    size_t n = 0;
    const results_attempt *a = results_attempts(f, &n);
    long next = 0;
    for (size_t i = 0; i < n; i++)
        if (a[i].index >= next)
            next = a[i].index + 1;
    run_config c;
    run_config_defaults(&c);
    if (run_config_set(&c, "model", "betavae", &e) < 0 || model_resolve(&c, &e) < 0)
        return fail("config", &e);
    for (long idx = next; idx < next + 1000000; idx++) {
        results_row row = {.index = idx, .attempt = 1, .rank = 1};
        snprintf(row.host, sizeof row.host, "node%ld", idx % 4);
        c.seed = idx;
        c.beta = (double)(1 + idx % 3);
        run_config_id(&c, row.run_id);
        run_result r;
        run_result_init(&r);
        r.status = idx % 5 == 3 ? RUN_FAILED : RUN_OK;
        r.wall_s = 1.0 + (double)idx;
        r.steps = 100;
        for (int k = 0; k < RUN_N_METRICS; k++)
            r.metric[k] = k == RUN_M_SWAP_ACC ? NAN : (double)idx + 0.5 * k;
        for (long t = 0; t < 20 + idx % 50; t++)
            if (run_result_add_curve(&r, 10 * t, t % 2 ? "kl" : "loss", 1.0 / (double)(t + 1),
                                     &e) < 0)
                return fail("curve", &e);
        if (r.status == RUN_OK) {
            r.n_units = 10;
            r.mi = calloc(10 * DATA_K, sizeof *r.mi);
            r.trav_h = 64 + (int)(idx % 7) * 32;
            r.trav_w = 640;
            r.traversal = calloc((size_t)r.trav_h * (size_t)r.trav_w, 1);
            if (!r.mi || !r.traversal)
                return 3;
            for (int i = 0; i < r.trav_h * r.trav_w; i++)
                r.traversal[i] = (uint8_t)(i + idx);
        } else {
            snprintf(r.error, sizeof r.error, "failed on purpose (index %ld)", idx);
        }
        rc = results_append(f, &row, &c, &r, &e);
        run_result_free(&r);
        if (rc < 0)
            return fail("append", &e);
        printf("%ld\n", idx);
    }
    if (results_close(f, &e) < 0)
        return fail("close", &e);
    return 0;
}
