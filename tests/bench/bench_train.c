/* Training throughput of a betavae step for every arch (mlp, conv, dlib) x
 * image size (64, 32) x batch (64, 256) x threads (1, 2; nn's pool, x1 is
 * the speed-up over 1 thread): images/s, GFLOP/s (the step's multiply-adds
 * counted from the layer shapes, forward + backward, 2 flops each), the
 * share of the core's FMA peak for the vector width of the OpenBLAS kernel
 * in use (measured here by a loop of independent FMAs, per core, for 256-
 * and 512-bit vectors), and where a step's time goes: the GEMM layers
 * (dense, conv, conv-transpose, forward and backward), the data (rendering
 * the batch), Adam, and the rest (activations, losses, the latent, copies).
 * Then the evaluation's encode of the full set for each arch and size, and
 * each net's parameter count (betavae, D = 10; tests/bench/torch_step.py
 * reads them beside PyTorch's).
 * Figures are the best of ROUNDS rounds (default 5), since other processes
 * may share the machine: on a 2-core VM a round can lose the second core for
 * a while, and best of 2 gave 1.31x and 1.83x for the same 2-thread row in
 * one run; the kernel is the one OPENBLAS_CORETYPE selects (make bench runs
 * this program once per kernel).
 *     bench_train [ARCH SIZE BATCH [ROUNDS]]   one configuration only */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <immintrin.h>

#include "../../src/model/model_impl.h"

char *openblas_get_corename(void);


static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of this thread: the peak is the core's while it runs this
 * thread, whatever else shares the machine. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
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
            s += (double)l->conv.O * l->conv.OH * l->conv.OW * l->conv.C * l->conv.K * l->conv.K;
        else if (l->kind == NET_CONVT)
            s += (double)l->conv.C * l->conv.H * l->conv.W * l->conv.O * l->conv.K * l->conv.K;
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

/* ---- the FMA peak of one core --------------------------------------------
 * NACC independent chains of vector FMAs (more than latency x ports on the
 * x86 cores of today, so the loop is throughput-bound), best of a few
 * rounds, in this thread's CPU time. 2 flops per lane per FMA. The steps
 * are timed by the wall clock, so on a loaded machine %peak understates. */
enum { NACC = 12, FMA_ITERS = 1 << 21 };

/* One peak function per vector width: W floats per FMA. */
#define FMA_PEAK(name, isa, vec, W, set1, fmadd, storeu)                                 \
    __attribute__((target(isa))) static double name(void)                                  \
    {                                                                                      \
        double best = 0;                                                                   \
        for (int r = 0; r < 5; r++) {                                                      \
            vec acc[NACC];                                                                 \
            for (int j = 0; j < NACC; j++)                                                 \
                acc[j] = set1((float)j);                                                   \
            const vec a = set1(0.999999f), b = set1(1e-7f);                                \
            double t0 = cpu_s();                                                           \
            for (long i = 0; i < FMA_ITERS; i++)                                           \
                /* the chains live in registers, not in the array */                       \
                _Pragma("GCC unroll 16") for (int j = 0; j < NACC; j++)                    \
                    acc[j] = fmadd(acc[j], a, b);                                          \
            double dt = cpu_s() - t0;                                                      \
            float out[W], sink = 0;                                                        \
            for (int j = 0; j < NACC; j++) {                                               \
                storeu(out, acc[j]);                                                       \
                sink += out[0];                                                            \
            }                                                                              \
            if (!(sink < 1e30f)) /* keeps the chains alive */                              \
                printf("?");                                                               \
            best = fmax(best, 2.0 * W * NACC * (double)FMA_ITERS / dt * 1e-9);             \
        }                                                                                  \
        return best;                                                                       \
    }

FMA_PEAK(fma256_gflops, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps)
FMA_PEAK(fma512_gflops, "avx512f", __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps)

/* Vector bits of the kernel OpenBLAS runs: its AVX-512 kernels are those of
 * the Intel cores below; Haswell, Zen and the rest use 256-bit FMAs. */
static int kernel_bits(const char *core)
{
    static const char *const k512[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    for (size_t i = 0; i < sizeof k512 / sizeof k512[0]; i++)
        if (strcmp(core, k512[i]) == 0)
            return 512;
    return 256;
}

/* Images/s of the last 1-thread row, for the speed-up of the next. */
typedef struct bench_opts {
    int rounds, size;
    double one_thread;
    const char *kernel; /* OpenBLAS's core name */
    double peak;        /* GFLOP/s of one core at the kernel's vector width */
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
    double first = l0->kind == NET_DENSE
                       ? (double)l0->in * l0->out
                       : (double)l0->conv.O * l0->conv.OH * l0->conv.OW * l0->conv.C * l0->conv.K *
                             l0->conv.K;
    double flops = 2.0 * B * (3 * (macs(&m->enc) + macs(&m->dec)) - first);
    double rest = best - gemm - adam - data;
    if (threads == 1)
        o->one_thread = B / best;
    char speedup[16] = "";
    if (threads > 1 && o->one_thread > 0)
        snprintf(speedup, sizeof speedup, "%.2f", B / best / o->one_thread);
    printf("%-8s %-5s %5d %5d %7d %10.0f %5s %9.1f %5.0f%% %8.1f %6.0f%% %6.0f%% %6.0f%% %6.0f%%\n",
           o->kernel, arch, o->size, B, threads, B / best, speedup, flops / best * 1e-9,
           100 * flops / best * 1e-9 / (o->peak * threads), 1e3 * best, 100 * gemm / best,
           100 * data / best, 100 * adam / best, 100 * rest / best);
    fflush(stdout);
    model_destroy(m);
    return 0;
}

/* Seconds to encode the whole data set (the evaluation's encode: render
 * each image, model_encode in chunks of the training batch, 64), one
 * thread, extrapolated from 2048 images spread over the set. */
static int encode_cost(const char *arch, int S, const data_source *d, double *render_s,
                       double *encode_s, size_t *params)
{
    enum { NI = 2048 };
    nn_set_threads(1);
    run_config rc;
    err e;
    err_clear(&e);
    run_config_defaults(&rc);
    char size[16];
    snprintf(size, sizeof size, "%d", S);
    model *m = NULL;
    if (run_config_set(&rc, "model", "betavae", &e) < 0 ||
        run_config_set(&rc, "arch", arch, &e) < 0 ||
        run_config_set(&rc, "image_size", size, &e) < 0 || model_resolve(&rc, &e) < 0 ||
        model_create(&m, &rc, DATA_N, &e) < 0) {
        fprintf(stderr, "bench_train: %s\n", e.msg);
        return -1;
    }
    const size_t P = (size_t)S * S, N = data_count(d);
    float *x = malloc(NI * P * sizeof *x), *mu = malloc(NI * 64 * sizeof *mu);
    if (!x || !mu) {
        fprintf(stderr, "bench_train: out of memory\n");
        free(x), free(mu), model_destroy(m);
        return -1;
    }
    double rbest = INFINITY, ebest = INFINITY;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        for (size_t i = 0; i < NI; i++) {
            int f[DATA_K];
            data_get(d, (uint32_t)(i * (N / NI)), x + i * P, f);
        }
        double t1 = now_s();
        model_encode(m, x, NI, mu, NULL, NULL);
        double t2 = now_s();
        rbest = fmin(rbest, t1 - t0);
        ebest = fmin(ebest, t2 - t1);
    }
    *render_s = rbest * (double)N / NI;
    *encode_s = ebest * (double)N / NI;
    *params = 0; /* the slots' sizes: the arena pads each slot's offset */
    for (size_t i = 0; i < m->arena.n_slots; i++)
        *params += m->arena.slots[i].size;
    free(x), free(mu);
    model_destroy(m);
    return 0;
}

int main(int argc, char **argv)
{
    const char *archs[] = {"mlp", "conv", "dlib"};
    const int sizes[] = {64, 32}, batches[] = {64, 256};
    int n_arch = 3, n_size = 2, n_batch = 2, one = argc >= 4;
    if (one) { /* ARCH SIZE BATCH [ROUNDS] */
        archs[0] = argv[1];
        n_arch = n_size = n_batch = 1;
    }
    const char *core = openblas_get_corename();
    const int bits = kernel_bits(core);
    const double p256 = fma256_gflops();
    const double p512 = __builtin_cpu_supports("avx512f") ? fma512_gflops() : 0;
    char s512[32] = "n/a (no AVX-512)";
    if (p512 > 0)
        snprintf(s512, sizeof s512, "%.1f GFLOP/s", p512);
    printf("OpenBLAS kernel %s (%d-bit FMAs); FMA peak of one core: 256-bit %.1f GFLOP/s, "
           "512-bit %s\n",
           core, bits, p256, s512);
    double peak = bits == 512 && p512 > 0 ? p512 : p256;
    printf("betavae training step (%%peak: of the threads' cores at the kernel's width; shares "
           "of a step: GEMM layers, data, Adam, rest)\n");
    printf("%-8s %-5s %5s %5s %7s %10s %5s %9s %6s %8s %7s %7s %7s %7s\n", "kernel", "arch",
           "size", "batch", "threads", "images/s", "x1", "GFLOP/s", "%peak", "ms/step", "gemm",
           "data", "adam", "rest");
    int rc = 0;
    for (int a = 0; a < n_arch; a++)
        for (int z = 0; z < n_size; z++) {
            int S = one ? atoi(argv[2]) : sizes[z];
            data_source *d = NULL;
            err e;
            int rounds = argc >= 5 ? atoi(argv[4]) : 5;
            if (rounds < 1 || data_open_builtin(&d, S, &e) < 0) {
                fprintf(stderr, "bench_train: %s\n", rounds < 1 ? "bad ROUNDS" : e.msg);
                return 1;
            }
            for (int q = 0; q < n_batch; q++) {
                bench_opts o = {rounds, S, 0, core, peak};
                int B = one ? atoi(argv[3]) : batches[q];
                for (int t = 1; t <= 2; t++)
                    if (bench(archs[a], B, t, d, &o) < 0)
                        rc = 1;
            }
            data_close(d);
        }
    printf("evaluation: encoding the full set (%d images; render + model_encode, batch 64, "
           "1 thread)\n",
           DATA_N);
    printf("%-8s %-5s %5s %9s %9s %9s %9s\n", "kernel", "arch", "size", "render s", "encode s",
           "total s", "params");
    for (int a = 0; a < n_arch; a++)
        for (int z = 0; z < n_size; z++) {
            int S = one ? atoi(argv[2]) : sizes[z];
            data_source *d = NULL;
            err e;
            double r, en;
            size_t np;
            if (data_open_builtin(&d, S, &e) < 0) {
                fprintf(stderr, "bench_train: %s\n", e.msg);
                return 1;
            }
            if (encode_cost(archs[a], S, d, &r, &en, &np) < 0)
                rc = 1;
            else
                printf("%-8s %-5s %5d %9.1f %9.1f %9.1f %9zu\n", core, archs[a], S, r, en, r + en,
                       np);
            data_close(d);
        }
    return rc;
}
