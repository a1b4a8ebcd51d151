/* Training throughput (images/s and GFLOP/s) of betavae with the mlp and conv
 * architectures at 64x64, batch 64 and 256, with 1 and 2 threads (nn's pool),
 * and where a step's time goes: the GEMM layers (dense, conv, conv-transpose,
 * forward and backward), the data (rendering the batch), Adam, and the rest
 * (activations, losses, the latent, copies). Figures are the best of a few
 * rounds, since other processes may share the machine. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../src/model/model_impl.h"

enum { ROUNDS = 3 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Multiply-adds of one image through n's GEMM layers, forward. */
static double macs(const net *n)
{
    double s = 0;
    for (int i = 0; i < n->n; i++) {
        const net_layer *l = &n->layer[i];
        if (l->kind == NET_DENSE)
            s += (double)l->in * l->out;
        else if (l->kind == NET_CONV)
            s += (double)l->conv.O * l->conv.OH * l->conv.OW * l->conv.C * 16;
        else if (l->kind == NET_CONVT)
            s += (double)l->conv.C * l->conv.H * l->conv.W * l->conv.O * 16;
    }
    return s;
}

/* Seconds of forward + backward through the GEMM layers of n only, on the
 * activations the last step left in c. */
static double gemm_time(const net *n, net_cache *c, nn_arena *a, int B, int first_din)
{
    double t0 = now_s();
    for (int i = 0; i < n->n; i++) {
        const net_layer *l = &n->layer[i];
        const float *p = a->param, *x = c->act[i];
        float *y = c->act[i + 1], *g = a->grad, *dy = c->dact[i + 1] ? c->dact[i + 1] : y;
        float *dx = i == 0 && !first_din ? NULL : c->dact[i] ? c->dact[i] : NULL;
        if (i == n->n - 1)
            dy = y; /* any buffer of the right size */
        if (l->kind == NET_DENSE) {
            nn_dense_forward(y, x, p + l->w, p + l->b, B, l->in, l->out);
            nn_dense_backward(dx, g + l->w, g + l->b, dy, x, p + l->w, B, l->in, l->out);
        } else if (l->kind == NET_CONV) {
            nn_conv2d_forward(y, c->scratch, x, p + l->w, p + l->b, &l->conv, B);
            nn_conv2d_backward(dx, g + l->w, g + l->b, c->scratch, dy, x, p + l->w, &l->conv, B);
        } else if (l->kind == NET_CONVT) {
            nn_convt2d_forward(y, c->scratch, x, p + l->w, p + l->b, &l->conv, B);
            nn_convt2d_backward(dx, g + l->w, g + l->b, c->scratch, dy, x, p + l->w, &l->conv, B);
        }
    }
    return now_s() - t0;
}

static int bench(const char *arch, int B, int threads, const data_source *d)
{
    nn_set_threads(threads); /* before model_create: conv scratch is per thread */
    run_config rc;
    err e;
    err_clear(&e);
    run_config_defaults(&rc);
    char bs[16];
    snprintf(bs, sizeof bs, "%d", B);
    if (run_config_set(&rc, "model", "betavae", &e) < 0 || run_config_set(&rc, "arch", arch, &e) < 0 ||
        run_config_set(&rc, "batch_size", bs, &e) < 0 || model_resolve(&rc, &e) < 0) {
        fprintf(stderr, "bench_train: %s\n", e.msg);
        return -1;
    }
    model *m = NULL;
    if (model_create(&m, &rc, DATA_N, &e) < 0) {
        fprintf(stderr, "bench_train: %s\n", e.msg);
        return -1;
    }
    rng dr, nr;
    rng_seed(&dr, 1, RNG_DATA);
    rng_seed(&nr, 1, RNG_NOISE);
    double terms[MODEL_MAX_TERMS];
    int steps = B == 64 ? 8 : 3;
    long t = 0;
    double best = INFINITY, gemm = INFINITY, adam = INFINITY, data = INFINITY;
    for (int r = 0; r < ROUNDS + 1; r++) {
        double t0 = now_s();
        for (int s = 0; s < steps; s++)
            if (model_step(m, d, &dr, &nr, ++t, terms, &e) < 0) {
                fprintf(stderr, "bench_train: %s\n", e.msg);
                model_destroy(m);
                return -1;
            }
        double dt = (now_s() - t0) / steps;
        if (r == 0)
            continue; /* warm-up */
        best = fmin(best, dt);
        double g = gemm_time(&m->enc, &m->ce, &m->arena, B, 0) +
                   gemm_time(&m->dec, &m->cd, &m->arena, B, 1);
        gemm = fmin(gemm, g);
        t0 = now_s();
        nn_adam_step(&m->arena, 0.0f, 0.9f, 0.999f, 1e-8f);
        adam = fmin(adam, now_s() - t0);
        t0 = now_s();
        data_sample(d, &dr, B, m->x, m->f, NULL);
        data = fmin(data, now_s() - t0);
    }
    /* forward 1x, backward 2x (input and weight gradients), 2 flops a MAC;
     * the encoder's first layer has no input gradient */
    const net_layer *l0 = &m->enc.layer[0];
    double first = l0->kind == NET_DENSE ? (double)l0->in * l0->out
                                         : (double)l0->conv.O * l0->conv.OH * l0->conv.OW * 16;
    double flops = 2.0 * B * (3 * (macs(&m->enc) + macs(&m->dec)) - first);
    double rest = best - gemm - adam - data;
    printf("%-5s %5d %7d %10.0f %9.1f %8.1f %6.0f%% %6.0f%% %6.0f%% %6.0f%%\n", arch, B,
           threads, B / best, flops / best * 1e-9, 1e3 * best, 100 * gemm / best,
           100 * data / best, 100 * adam / best, 100 * rest / best);
    fflush(stdout);
    model_destroy(m);
    return 0;
}

int main(void)
{
    data_source *d = NULL;
    err e;
    if (data_open_builtin(&d, 64, &e) < 0) {
        fprintf(stderr, "bench_train: %s\n", e.msg);
        return 1;
    }
    printf("betavae training step, 64x64 (shares of a step: GEMM layers, data, Adam, rest)\n");
    printf("%-5s %5s %7s %10s %9s %8s %7s %7s %7s %7s\n", "arch", "batch", "threads", "images/s",
           "GFLOP/s", "ms/step", "gemm", "data", "adam", "rest");
    const char *archs[] = {"mlp", "conv"};
    const int batches[] = {64, 256}, threads[] = {1, 2};
    int rc = 0;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int t = 0; t < 2; t++)
                if (bench(archs[a], batches[b], threads[t], d) < 0)
                    rc = 1;
    data_close(d);
    return rc;
}
