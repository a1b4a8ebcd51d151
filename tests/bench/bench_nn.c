/* Benchmark of the nn module at the shapes the models use (docs/architecture.md section
 * 4, batch 64): dense forward/backward of the mlp arch, each conv layer of the
 * conv arch, and the Adam step over the mlp's parameter count. Prints one
 * table; figures are the best of several repetitions (other processes share
 * the machine). Run with OPENBLAS_NUM_THREADS=1 (make bench does). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "untangle/nn.h"
#include "untangle/rng.h"

/* Seconds per measurement: repetitions run until this much time has passed
 * (at least 3), and the fastest one counts. */
#define BUDGET_S 0.6

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *frand(size_t n, rng *r)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_nn: out of memory (%zu floats)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(2.0 * rng_uniform(r) - 1.0);
    return p;
}

typedef void (*bench_fn)(void *ctx);

/* Best time of one call of f(ctx), after one warm-up call. */
static double best_time(bench_fn f, void *ctx)
{
    f(ctx);
    double best = 1e30, start = now();
    int reps = 0;
    while (reps < 3 || now() - start < BUDGET_S) {
        double t0 = now();
        f(ctx);
        double t = now() - t0;
        if (t < best)
            best = t;
        reps++;
    }
    return best;
}

/* ---- dense -------------------------------------------------------------- */

typedef struct dense_b {
    int B, I, O;
    float *in, *w, *b, *out, *din, *dw, *db; // (B,I) (O,I) (O) (B,O) (B,I) (O,I) (O)
} dense_b;

static void dense_fwd(void *p)
{
    dense_b *c = p;
    nn_dense_forward(c->out, c->in, c->w, c->b, c->B, c->I, c->O);
}

static void dense_bwd(void *p)
{
    dense_b *c = p;
    /* dout = out: any values do, the cost does not depend on them */
    nn_dense_backward(c->din, c->dw, c->db, c->out, c->in, c->w, c->B, c->I, c->O);
}

static void bench_dense(const char *name, int B, int I, int O, rng *r)
{
    dense_b c = {B, I, O, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    c.in = frand((size_t)B * I, r);
    c.w = frand((size_t)O * I, r);
    c.b = frand(O, r);
    c.out = frand((size_t)B * O, r);
    c.din = frand((size_t)B * I, r);
    c.dw = frand((size_t)O * I, r);
    c.db = frand(O, r);
    double f = 2.0 * B * I * O; // one GEMM
    double tf = best_time(dense_fwd, &c), tb = best_time(dense_bwd, &c);
    printf("%-28s %9.3f %8.1f %9.3f %8.1f %9.3f %8.1f\n", name, tf * 1e3, f / tf * 1e-9,
           tb * 1e3, 2 * f / tb * 1e-9, (tf + tb) * 1e3, 3 * f / (tf + tb) * 1e-9);
    free(c.in), free(c.w), free(c.b), free(c.out), free(c.din), free(c.dw), free(c.db);
}

/* ---- conv --------------------------------------------------------------- */

typedef struct conv_b {
    nn_conv d;
    int B, need_din;
    float *in, *w, *b, *out, *din, *dw, *db, *scratch;
} conv_b;

static void conv_fwd(void *p)
{
    conv_b *c = p;
    if (c->d.transpose)
        nn_convt2d_forward(c->out, c->scratch, c->in, c->w, c->b, &c->d, c->B);
    else
        nn_conv2d_forward(c->out, c->scratch, c->in, c->w, c->b, &c->d, c->B);
}

static void conv_bwd(void *p)
{
    conv_b *c = p;
    float *din = c->need_din ? c->din : NULL;
    if (c->d.transpose)
        nn_convt2d_backward(din, c->dw, c->db, c->scratch, c->out, c->in, c->w, &c->d, c->B);
    else
        nn_conv2d_backward(din, c->dw, c->db, c->scratch, c->out, c->in, c->w, &c->d, c->B);
}

/* Returns forward + backward seconds, for the per-model total. */
static double bench_conv(const char *name, const nn_conv *d, int B, int need_din, rng *r)
{
    conv_b c;
    memset(&c, 0, sizeof c);
    c.d = *d;
    c.B = B;
    c.need_din = need_din;
    size_t ni = (size_t)B * d->C * d->H * d->W, no = (size_t)B * d->O * d->OH * d->OW;
    size_t nw = (size_t)d->O * d->C * d->K * d->K;
    c.in = frand(ni, r);
    c.w = frand(nw, r);
    c.b = frand(d->O, r);
    c.out = frand(no, r);
    c.din = frand(ni, r);
    c.dw = frand(nw, r);
    c.db = frand(d->O, r);
    c.scratch = frand(nn_conv_scratch(d, B), r);
    /* multiply-adds: every (output pixel, input channel, kernel tap) of
     * conv2d; for convT every (input pixel, output channel, tap) */
    double f = d->transpose ? 2.0 * B * d->C * d->H * d->W * d->O * d->K * d->K
                            : 2.0 * B * d->O * d->OH * d->OW * d->C * d->K * d->K;
    double fb = need_din ? 2 * f : f; // dw, and din unless it is the first layer
    double tf = best_time(conv_fwd, &c), tb = best_time(conv_bwd, &c);
    printf("%-28s %9.3f %8.1f %9.3f %8.1f %9.3f %8.1f\n", name, tf * 1e3, f / tf * 1e-9,
           tb * 1e3, fb / tb * 1e-9, (tf + tb) * 1e3, (f + fb) / (tf + tb) * 1e-9);
    free(c.in), free(c.w), free(c.b), free(c.out), free(c.din), free(c.dw), free(c.db);
    free(c.scratch);
    return tf + tb;
}

/* ---- elementwise layers and the loss ------------------------------------ */

typedef struct elem_b {
    size_t n;
    int B, P;
    float *x, *y, *t, *g; // (n) each
} elem_b;

static void relu_fb(void *p)
{
    elem_b *c = p;
    nn_relu_forward(c->y, c->x, c->n);
    nn_relu_backward(c->g, c->x, c->y, c->n);
}

static void tanh_fb(void *p)
{
    elem_b *c = p;
    nn_tanh_forward(c->y, c->x, c->n);
    nn_tanh_backward(c->g, c->x, c->y, c->n);
}

static void bce_fb(void *p)
{
    elem_b *c = p;
    volatile double loss = nn_bce_logits_forward(NULL, c->x, c->t, c->B, c->P);
    (void)loss;
    nn_bce_logits_backward(c->g, c->x, c->t, c->B, c->P, 1.0f / c->B);
}

static void bench_elem(const char *name, bench_fn f, int B, int P, rng *r)
{
    elem_b c = {(size_t)B * P, B, P, NULL, NULL, NULL, NULL};
    c.x = frand(c.n, r);
    c.y = frand(c.n, r);
    c.t = frand(c.n, r);
    c.g = frand(c.n, r);
    for (size_t i = 0; i < c.n; i++) {
        c.x[i] *= 4.0f;                       // logits / pre-activations in [-4, 4]
        c.t[i] = c.t[i] > 0.0f ? 1.0f : 0.0f; // binary targets
    }
    double t = best_time(f, &c);
    printf("%-28s %9.3f ms  (%.2f ns per element)\n", name, t * 1e3, t / (double)c.n * 1e9);
    free(c.x), free(c.y), free(c.t), free(c.g);
}

/* ---- Adam --------------------------------------------------------------- */

static void adam_run(void *p)
{
    nn_adam_step(p, 1e-3f, 0.9f, 0.999f, 1e-8f);
}

int main(void)
{
    rng r;
    rng_seed(&r, 1, RNG_TEST);
    const int B = 64;
    printf("nn benchmark, batch %d (best of repetitions; GFLOP/s counts 2 per multiply-add)\n\n",
           B);
    printf("%-28s %9s %8s %9s %8s %9s %8s\n", "layer", "fwd ms", "GFLOP/s", "bwd ms", "GFLOP/s",
           "f+b ms", "GFLOP/s");

    /* mlp arch: encoder 4096-1200-1200, decoder ...-1200-4096 */
    bench_dense("dense 4096->1200", B, 4096, 1200, &r);
    bench_dense("dense 1200->1200", B, 1200, 1200, &r);
    bench_dense("dense 1200->4096", B, 1200, 4096, &r);

    /* conv arch: 4x4 stride 2 padding 1 */
    static const struct {
        const char *name;
        int C, H, O;
    } enc[] = {{"conv  1x64x64 -> 32x32x32", 1, 64, 32},
               {"conv 32x32x32 -> 32x16x16", 32, 32, 32},
               {"conv 32x16x16 -> 64x8x8", 32, 16, 64},
               {"conv  64x8x8  -> 64x4x4", 64, 8, 64}},
      dec[] = {{"convT 64x4x4  -> 64x8x8", 64, 4, 64},
               {"convT 64x8x8  -> 32x16x16", 64, 8, 32},
               {"convT 32x16x16 -> 32x32x32", 32, 16, 32},
               {"convT 32x32x32 -> 1x64x64", 32, 32, 1}};
    double total = 0.0;
    for (int k = 0; k < 4; k++) {
        nn_conv d;
        nn_conv2d_dims(&d, enc[k].C, enc[k].H, enc[k].H, enc[k].O, 4, 2, 1);
        /* the first layer of a model has no input gradient (din = NULL) */
        total += bench_conv(enc[k].name, &d, B, k > 0, &r);
    }
    for (int k = 0; k < 4; k++) {
        nn_conv d;
        nn_convt2d_dims(&d, dec[k].C, dec[k].H, dec[k].H, dec[k].O, 4, 2, 1);
        total += bench_conv(dec[k].name, &d, B, 1, &r);
    }
    printf("%-28s %9s %8s %9s %8s %9.3f\n", "conv layers total", "", "", "", "", total * 1e3);

    /* dlib arch: its 2x2 stride 2 padding 0 layers (the rest are conv's) */
    static const struct {
        const char *name;
        int C, H, O;
    } k2[] = {{"conv 32x16x16 -> 64x8x8 k2", 32, 16, 64}, {"conv  64x8x8  -> 64x4x4 k2", 64, 8, 64}};
    for (int k = 0; k < 2; k++) {
        nn_conv d;
        nn_conv2d_dims(&d, k2[k].C, k2[k].H, k2[k].H, k2[k].O, 2, 2, 0);
        bench_conv(k2[k].name, &d, B, 1, &r);
    }

    printf("\nforward + backward\n");
    bench_elem("relu 64 x 1200", relu_fb, B, 1200, &r);
    bench_elem("tanh 64 x 1200", tanh_fb, B, 1200, &r);
    bench_elem("bce_logits 64 x 4096", bce_fb, B, 4096, &r);

    /* Adam over the mlp arch's parameter count (~14.2M): reads and writes
     * param, grad, m, v = 32 bytes per parameter */
    nn_arena a;
    err e;
    nn_arena_init(&a);
    const size_t n = 14200000;
    if (nn_arena_reserve(&a, "all", n, &e) == (size_t)-1 || nn_arena_alloc(&a, &e) != 0) {
        fprintf(stderr, "bench_nn: %s\n", e.msg);
        return 1;
    }
    nn_init_uniform(a.param, n, 0.1f, &r);
    /* one step with a real gradient (the rest see the zeroed one: the cost does
     * not depend on the values, and no denormals appear in so few steps) */
    nn_init_uniform(a.grad, n, 1.0f, &r);
    double t = best_time(adam_run, &a);
    printf("\nadam step, %zu floats: %.2f ms, %.1f GB/s (32 bytes per parameter)\n", n, t * 1e3,
           32.0 * (double)n / t * 1e-9);
    nn_arena_free(&a);
    return 0;
}
