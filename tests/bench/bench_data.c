/* bench_data: dSprites renderer and sampler throughput on one core, the
 * time to write the S = 32 file, the colour and noise variants' sampling,
 * and a 3dshapes-layout file: opening (the label check, also at the
 * official size, sparse), random batches and a sequential pass read by
 * hyperslab. Prints one line per figure; about 40 s. */
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

static double bench_sample_of(const char *name, const char *path, int S, double min_s,
                              double *checksum)
{
    err e;
    data_source *d = NULL;
    if (data_open(&d, name, path, S, &e) != 0) {
        fprintf(stderr, "bench_data: %s\n", e.msg);
        exit(1);
    }
    enum { B = 64 };
    float *x = malloc(sizeof *x * B * 3 * (size_t)S * (size_t)S);
    int f[B * DATA_MAX_K];
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

static double bench_sample(int S, double min_s, double *checksum)
{
    return bench_sample_of("dsprites", NULL, S, min_s, checksum);
}

/* A 3dshapes-layout file of sizes (sparse or drawn): write, open, random
 * batches and one sequential pass. */
static int bench_shapes3d(const int sizes[6], int sparse, double *checksum)
{
    char path[] = "/tmp/bench_shapes3d_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("bench_data: mkstemp");
        return 1;
    }
    close(fd);
    err e;
    size_t n = 1;
    for (int k = 0; k < 6; k++)
        n *= (size_t)sizes[k];
    double t0 = now_s();
    if (data_write_shapes3d(path, sizes, sparse, &e) != 0) {
        fprintf(stderr, "bench_data: %s\n", e.msg);
        remove(path);
        return 1;
    }
    printf("shapes3d %zu images%s: written in %.2f s\n", n, sparse ? " (sparse)" : "",
           now_s() - t0);
    data_source *d = NULL;
    t0 = now_s();
    if (data_open(&d, "shapes3d", path, 64, &e) != 0) {
        fprintf(stderr, "bench_data: %s\n", e.msg);
        remove(path);
        return 1;
    }
    printf("shapes3d %zu images%s: opened (labels checked) in %.2f s\n", n,
           sparse ? " (sparse)" : "", now_s() - t0);
    data_close(d);
    if (!sparse) {
        printf("shapes3d data_sample 64, B=64: %10.0f images/s\n",
               bench_sample_of("shapes3d", path, 64, 2.0, checksum));
        printf("shapes3d data_sample 32, B=64: %10.0f images/s\n",
               bench_sample_of("shapes3d", path, 32, 2.0, checksum));
        data_open(&d, "shapes3d", path, 64, &e);
        float *x = malloc(sizeof *x * 3 * 64 * 64);
        t0 = now_s();
        for (uint32_t i = 0; i < (uint32_t)n; i++) {
            data_get(d, i, x, NULL);
            *checksum += x[100];
        }
        printf("shapes3d sequential data_get 64: %10.0f images/s\n", (double)n / (now_s() - t0));
        free(x);
        data_close(d);
    }
    remove(path);
    return 0;
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
    const char *variants[2] = {"color_dsprites", "noisy_dsprites"};
    for (int v = 0; v < 2; v++)
        for (int S = 64; S >= 32; S /= 2)
            printf("data_sample %s %d, B=64: %10.0f images/s\n", variants[v], S,
                   bench_sample_of(variants[v], NULL, S, 2.0, &cs));
    const int small[6] = {10, 10, 10, 2, 2, 3}, official[6] = {10, 10, 10, 8, 4, 15};
    if (bench_shapes3d(small, 0, &cs) != 0 || bench_shapes3d(official, 1, &cs) != 0)
        return 1;

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
