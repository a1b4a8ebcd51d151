/* libFuzzer target for the sweep YAML loader: any bytes must give either a
 * sweep or an ERR_INPUT message, never a crash, a leak or a hang.
 *
 *   SRC="src/config/config.c src/config/list.c src/run/keys.c src/model/[a-z]*.c
 *        src/nn/[a-z]*.c src/data/[a-z]*.c src/err.c src/rng.c"
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
 *     $(pkg-config --cflags yaml-0.1 openblas hdf5-serial) tests/fuzz/fuzz_config.c $SRC \
 *     -o build/fuzz_config $(pkg-config --libs yaml-0.1 openblas hdf5-serial) -lm
 *   mkdir -p build/fuzz_corpus
 *   build/fuzz_config -max_total_time=120 build/fuzz_corpus tests/fuzz/corpus
 *
 * A small max_runs keeps every input cheap; the loaded sweep is also listed
 * and compared so those paths see fuzzed sweeps too. */
#include "untangle/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    config_sweep *s = NULL;
    err e;
    int rc = config_load_text(&s, (const char *)data, size, "fuzz.yaml", 64, &e);
    if (rc == 0) {
        if (!s || s->n_runs == 0 || s->n_runs > 64)
            abort(); /* a success must come with 1..max_runs runs */
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (f) {
            config_write_list(s, f);
            fclose(f);
        }
        free(buf);
        char key[32];
        if (config_fixed_diff(s, s, key, sizeof key) != 0)
            abort(); /* a sweep equals itself */
        config_free(s);
    } else if (rc != ERR_INPUT || s != NULL || e.code != rc || !e.msg[0]) {
        abort(); /* bad input is ERR_INPUT with a message, and *out untouched */
    }
    return 0;
}
