/* Training throughput (images/s and GFLOP/s) of betavae with the mlp and conv
 * architectures at 64x64 (batch 64 and 256) and 32x32 (batch 64), with 1 and
 * 2 threads (nn's pool; x1 is the 2-thread speed-up over 1 thread),
 * and where a step's time goes: the GEMM layers (dense, conv, conv-transpose,
 * forward and backward), the data (rendering the batch), Adam, and the rest
 * (activations, losses, the latent, copies). Figures are the best of a few
 * rounds, since other processes may share the machine.
 *     bench_train [ARCH SIZE BATCH [ROUNDS]]   one configuration only */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../src/model/model_impl.h"


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

/* Images/s of the last 1-thread row, for the speed-up of the next. */
typedef struct bench_opts {
    int rounds, size;
    double one_thread;
} bench_opts;

static int bench(const char *arch, int B, int threads, const data_source *d, bench_opts *o)
{
    nn_set_threads(threads); /* before model_create: conv scratch is per thread */
    run_config rc;
    err e;
    err_clear(&e);
    run_config_defaults(&rc);
    char bs[16];
    snprintf(bs, sizeof bs, "%d", B);
    char size[16];
    snprintf(size, sizeof size, "%d", o->size);
    if (run_config_set(&rc, "model", "betavae", &e) < 0 || run_config_set(&rc, "arch", arch, &e) < 0 ||
        run_config_set(&rc, "image_size", size, &e) < 0 ||
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
    for (int r = 0; r < o->rounds + 1; r++) {
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
    if (threads == 1)
        o->one_thread = B / best;
    char speedup[16] = "";
    if (threads > 1 && o->one_thread > 0)
        snprintf(speedup, sizeof speedup, "%.2f", B / best / o->one_thread);
    printf("%-5s %5d %5d %7d %10.0f %5s %9.1f %8.1f %6.0f%% %6.0f%% %6.0f%% %6.0f%%\n", arch,
           o->size, B, threads, B / best, speedup, flops / best * 1e-9, 1e3 * best,
           100 * gemm / best, 100 * data / best, 100 * adam / best, 100 * rest / best);
    fflush(stdout);
    model_destroy(m);
    return 0;
}

int main(int argc, char **argv)
{
    const char *archs[] = {"mlp", "conv"};
    const int sizes[] = {64, 64, 32}, batches[] = {64, 256, 64};
    int n_arch = 2, n_conf = 3, one = argc >= 4;
    if (one) { /* ARCH SIZE BATCH [ROUNDS] */
        archs[0] = argv[1];
        n_arch = 1;
        n_conf = 1;
    }
    printf("betavae training step (shares of a step: GEMM layers, data, Adam, rest)\n");
    printf("%-5s %5s %5s %7s %10s %5s %9s %8s %7s %7s %7s %7s\n", "arch", "size", "batch",
           "threads", "images/s", "x1", "GFLOP/s", "ms/step", "gemm", "data", "adam", "rest");
    int rc = 0;
    for (int a = 0; a < n_arch; a++)
        for (int c = 0; c < n_conf; c++) {
            bench_opts o = {argc >= 5 ? atoi(argv[4]) : 3, one ? atoi(argv[2]) : sizes[c], 0};
            int B = one ? atoi(argv[3]) : batches[c];
            data_source *d = NULL;
            err e;
            if (o.rounds < 1 || data_open_builtin(&d, o.size, &e) < 0) {
                fprintf(stderr, "bench_train: %s\n", o.rounds < 1 ? "bad ROUNDS" : e.msg);
                return 1;
            }
            for (int t = 1; t <= 2; t++)
                if (bench(archs[a], B, t, d, &o) < 0)
                    rc = 1;
            data_close(d);
        }
    return rc;
}
