/* The cost of checkpoints: for mlp and conv at 64x64 and 32x32, the size of
 * a checkpoint (parameters, Adam's moments and step: run_file_write of
 * model_state_get) and of a saved model (parameters only), the time to write
 * one (fsync'ed, renamed) into the directory of BENCH_DIR (default /tmp), the
 * time of one training step (batch 64), and so the overhead of checkpoints
 * at the default interval of 600 s of training: write time / 600 s. The
 * fastest of ROUNDS writes is reported. Exits 1 when a model cannot be built
 * or a write fails. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "untangle/model.h"
#include "untangle/run.h"

enum { ROUNDS = 3, STEPS = 4 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench(const char *arch, const char *size, const data_source *d, const char *dir)
{
    err e;
    err_clear(&e);
    run_config c;
    run_config_defaults(&c);
    model *m = NULL;
    if (run_config_set(&c, "arch", arch, &e) < 0 || run_config_set(&c, "image_size", size, &e) < 0 ||
        run_config_set(&c, "model", "betavae", &e) < 0 || model_resolve(&c, &e) < 0 ||
        model_create(&m, &c, data_count(d), &e) < 0) {
        fprintf(stderr, "%s %s: %s\n", arch, size, e.msg);
        return 1;
    }
    rng dr, nr;
    rng_seed(&dr, 1, RNG_DATA);
    rng_seed(&nr, 1, RNG_NOISE);
    double terms[MODEL_MAX_TERMS], step_s = INFINITY;
    for (int i = 0; i <= STEPS; i++) {
        double t = now_s();
        model_step(m, d, &dr, &nr, i + 1, terms, &e);
        if (i > 0 && now_s() - t < step_s) /* the first step warms up */
            step_s = now_s() - t;
    }
    size_t n = model_state_size(m, 1), n_model = model_state_size(m, 0);
    void *buf = malloc(n);
    char path[4200];
    snprintf(path, sizeof path, "%s/bench-%d.ckpt", dir, (int)getpid());
    double best = INFINITY;
    int rc = 0;
    for (int r = 0; r < ROUNDS && buf && rc == 0; r++) {
        double t = now_s();
        model_state_get(m, 1, buf);
        rc = run_file_write(path, RUN_FILE_CKPT, "0123456789abcdef", buf, n, &e);
        if (now_s() - t < best)
            best = now_s() - t;
    }
    run_file_remove(path);
    if (!buf || rc < 0) {
        fprintf(stderr, "%s %s: %s\n", arch, size, buf ? e.msg : "out of memory");
        free(buf);
        model_destroy(m);
        return 1;
    }
    printf("%-5s %2sx%-2s  checkpoint %7.1f MB  write %7.1f ms (%6.0f MB/s)  model %6.1f MB  "
           "step %6.1f ms  overhead at 600 s: %.3f %%\n",
           arch, size, size, n / 1e6, best * 1e3, n / 1e6 / best, n_model / 1e6, step_s * 1e3,
           100 * best / 600);
    free(buf);
    model_destroy(m);
    return 0;
}

int main(void)
{
    const char *dir = getenv("BENCH_DIR") ? getenv("BENCH_DIR") : "/tmp";
    static const char *const sizes[] = {"64", "32"};
    int rc = 0;
    for (int s = 0; s < 2 && rc == 0; s++) {
        err e;
        err_clear(&e);
        data_source *d = NULL;
        if (data_open_builtin(&d, atoi(sizes[s]), &e) < 0) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        rc = bench("mlp", sizes[s], d, dir) || bench("conv", sizes[s], d, dir);
        data_close(d);
    }
    return rc;
}
