/* Seeds for fuzz_journal.c and fuzz_results.c: LLVMFuzzerInitialize writes a
 * real small results file (journal == 0) or its journal (journal == 1,
 * prefixed with the "beside a file" flag byte) into the corpus directory, the
 * first argument that is not a flag. Included by those two files only. */
#include "untangle/results.h"
#include "untangle/spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const results_meta FUZZ_META = {
    .sweep_name = "fuzz", .sweep_yaml = "name: fuzz\n", .sweep_hash = 42,
    .untangle_version = "0", .library_versions = "fuzz"};

/* A valid file with one row at path (its journal too); aborts on failure. */
static void fuzz_make_file(const char *path)
{
    results *f = NULL;
    err e;
    if (results_create(&f, path, &FUZZ_META, &e) < 0)
        abort();
    results_row row;
    memset(&row, 0, sizeof row);
    snprintf(row.run_id, sizeof row.run_id, "0123456789abcdef");
    row.attempt = 1;
    run_config c;
    run_config_defaults(&c);
    run_result r;
    run_result_init(&r);
    r.status = RUN_OK;
    if (results_append(f, &row, &c, &r, &e) < 0 || results_close(f, &e) < 0)
        abort();
}

static void fuzz_write_seed(int argc, char **argv, int journal)
{
    const char *dir = NULL;
    for (int i = 1; i < argc && !dir; i++)
        if (argv[i][0] != '-')
            dir = argv[i];
    if (!dir)
        return;
    char tmp[] = "/tmp/fuzz_seed_XXXXXX", path[64], src[80], dst[4200];
    if (!mkdtemp(tmp))
        abort();
    snprintf(path, sizeof path, "%s/r.h5", tmp);
    fuzz_make_file(path);
    snprintf(src, sizeof src, "%s%s", path, journal ? ".journal" : "");
    snprintf(dst, sizeof dst, "%s/seed_%s", dir, journal ? "journal" : "results");
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    if (in && out) {
        if (journal)
            fputc(1, out);
        int ch;
        while ((ch = fgetc(in)) != EOF)
            fputc(ch, out);
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0)
        abort();
}
