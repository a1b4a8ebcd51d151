/* libFuzzer target for the sweep YAML loader: any bytes must give either a
 * sweep or an ERR_INPUT message, never a crash, a leak or a hang.
 *
 *   make fuzz FUZZ_SECONDS=120   (builds it with clang from every source of
 *                                 src/ but main.c, then runs it on tests/fuzz/corpus)
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
