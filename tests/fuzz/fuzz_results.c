/* libFuzzer target for the results-file reader: the bytes become an HDF5
 * file that results_reader_open reads (every row too); any bytes must give a
 * reader or an error, never a crash, a leak or a hang. A crash inside HDF5
 * itself (it trusts a damaged global-heap reference) happens in the child
 * process that reads the file first (probe_read in reader.c) and becomes an
 * error here; the sanitizer still reports it from the child (in the log,
 * and libFuzzer saves the input as crash-*) while the fuzzing goes on: a
 * report whose stack runs through probe_read is a crash the reader
 * survived, one without it is not. Built and run by
 * `make fuzz` (FUZZ_SECONDS); the seed is a real results file
 * (fuzz_seed.h). */
#include "untangle/results.h"
#include "untangle/spec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_seed.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_write_seed(*argc, *argv, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/fuzz_results_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
    results_reader *rd = NULL;
    err e;
    if (results_reader_open(&rd, path, &e) == 0) {
        size_t n = results_reader_count(rd);
        for (size_t i = 0; i < n && i < 64; i++) {
            results_row row;
            run_config c;
            run_result r;
            run_result_init(&r);
            results_reader_row(rd, i, &row, &c, &r, &e);
            run_result_free(&r);
        }
        results_reader_close(rd);
    }
    unlink(path);
    return 0;
}
