/* bench_data: dSprites renderer and sampler throughput on one core, and the
 * time to write the S = 32 file. Prints one line per figure; about 15 s. */
#include "untangle/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Render every image of the canonical order with stride `step` (a stride
 * coprime with the factor sizes visits all shapes, scales and angles) until
 * min_s seconds have passed; returns images per second. checksum keeps the
 * compiler from dropping the work. */
static double bench_render(int S, int as_float, double min_s, double *checksum)
{
    float *img = malloc(sizeof *img * (size_t)S * (size_t)S);
    uint8_t *img8 = malloc((size_t)S * (size_t)S);
    size_t n = 0;
    uint32_t idx = 0;
    double t0 = now_s(), t;
    do {
        for (int b = 0; b < 1000; b++) {
            int f[DATA_K];
            data_factors(idx, f);
            idx = (idx + 7919u) % DATA_N;
            if (as_float) {
                data_render(img, f, S);
                *checksum += img[(S / 2) * S + S / 2];
            } else {
                data_render_u8(img8, f, S);
                *checksum += img8[(S / 2) * S + S / 2];
            }
        }
        n += 1000;
        t = now_s() - t0;
    } while (t < min_s);
    free(img);
    free(img8);
    return (double)n / t;
}

static double bench_sample(int S, double min_s, double *checksum)
{
    err e;
    data_source *d = NULL;
    if (data_open_builtin(&d, S, &e) != 0) {
        fprintf(stderr, "bench_data: %s\n", e.msg);
        exit(1);
    }
    enum { B = 64 };
    float *x = malloc(sizeof *x * B * (size_t)S * (size_t)S);
    int f[B * DATA_K];
    rng r;
    rng_seed(&r, 1, RNG_TEST);
    size_t n = 0;
    double t0 = now_s(), t;
    do {
        data_sample(d, &r, B, x, f, NULL);
        *checksum += x[S * S / 2] + f[0];
        n += B;
        t = now_s() - t0;
    } while (t < min_s);
    free(x);
    data_close(d);
    return (double)n / t;
}

int main(void)
{
    double cs = 0.0;
    printf("render 64x64 float: %10.0f images/s\n", bench_render(64, 1, 2.0, &cs));
    printf("render 64x64 uint8: %10.0f images/s\n", bench_render(64, 0, 2.0, &cs));
    printf("render 32x32 float: %10.0f images/s\n", bench_render(32, 1, 2.0, &cs));
    printf("render 32x32 uint8: %10.0f images/s\n", bench_render(32, 0, 2.0, &cs));
    printf("data_sample builtin 64, B=64: %10.0f images/s\n", bench_sample(64, 2.0, &cs));
    printf("data_sample builtin 32, B=64: %10.0f images/s\n", bench_sample(32, 2.0, &cs));

    char path[] = "/tmp/bench_data_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("bench_data: mkstemp");
        return 1;
    }
    close(fd);
    err e;
    double t0 = now_s();
    if (data_write_file(path, 32, NULL, &e) != 0) {
        fprintf(stderr, "bench_data: %s\n", e.msg);
        remove(path);
        return 1;
    }
    double tw = now_s() - t0;
    FILE *fp = fopen(path, "rb");
    long size = 0;
    if (fp) {
        fseek(fp, 0, SEEK_END);
        size = ftell(fp);
        fclose(fp);
    }
    printf("data_write_file S=32: %.2f s, %.1f MB\n", tw, (double)size / 1e6);
    data_source *d = NULL;
    t0 = now_s();
    if (data_open_file(&d, path, 32, &e) != 0) {
        fprintf(stderr, "bench_data: %s\n", e.msg);
        remove(path);
        return 1;
    }
    printf("data_open_file S=32: %.2f s\n", now_s() - t0);
    data_close(d);
    remove(path);
    printf("(checksum %g)\n", cs);
    return 0;
}
