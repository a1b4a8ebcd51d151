/* libFuzzer target for the journal reader (results_open's scan, resync,
 * copy-aside and recovery): the bytes become PATH.journal, alone or beside a
 * valid small results file, which is then opened for appending and closed.
 * Any bytes must give an open file or an error, never a crash, a leak or a
 * hang. Built and run by `make fuzz` (FUZZ_SECONDS); the seed is a real
 * journal (fuzz_seed.h). */
#include "untangle/results.h"
#include "untangle/spec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_seed.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_write_seed(*argc, *argv, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[] = "/tmp/fuzz_journal_XXXXXX", path[64], jpath[80], cmd[128];
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/r.h5", dir);
    snprintf(jpath, sizeof jpath, "%s.journal", path);
    int beside = size > 0 && (data[0] & 1); /* first byte: beside a file or alone */
    if (beside)
        fuzz_make_file(path);
    FILE *fp = fopen(jpath, "wb");
    if (!fp)
        abort();
    if (size > 1)
        fwrite(data + 1, 1, size - 1, fp);
    fclose(fp);
    results *f = NULL;
    err e;
    if (results_open(&f, path, &FUZZ_META, &e) == 0)
        results_close(f, &e);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        abort();
    return 0;
}
