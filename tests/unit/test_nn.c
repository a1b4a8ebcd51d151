/* Tests of the nn module: finite-difference gradient checks of every layer and
 * loss, accumulation, the convolutions against naive direct implementations
 * and against each other (adjoint identity), Adam against a scalar reference,
 * the arena's layout, and the numerically delicate losses; every test runs
 * with one thread and again with three, and every kernel's output is the
 * same bit for bit with 1, 2, 3 and 4 threads. Correctness only: no timing
 * here (see tests/bench/bench_nn.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "untangle/nn.h"
#include "untangle/rng.h"
#include "../../src/util/vmath.h"

/* ---- helpers -------------------------------------------------------------- */

static float *falloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

static float *frand(size_t n, float lo, float hi, rng *r)
{
    float *p = falloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(lo + (hi - lo) * rng_uniform(r));
    return p;
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

static int close_enough(double a, double b, double atol, double rtol)
{
    double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= atol + rtol * m && isfinite(a) && isfinite(b);
}

/* Compare two arrays element by element; print the first few mismatches with
 * the tensor's name and index. Returns the number of mismatches. */
static int compare(const char *what, const float *got, const double *want, size_t n,
                   double atol, double rtol)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (!close_enough(got[i], want[i], atol, rtol)) {
            if (bad < 8)
                print_error("%s[%zu]: got %.8g, want %.8g\n", what, i, (double)got[i], want[i]);
            bad++;
        }
    }
    return bad;
}

/* ---- finite differences ------------------------------------------------- */

/* A scalar objective J of the current values of the buffers in ctx (runs the
 * forward pass), computed in double. */
typedef double (*objective_fn)(void *ctx);

/* Central differences (J(x+h) - J(x-h)) / (x+h - (x-h)) for the elements of x
 * against the analytic gradient ana (n). Checks every element when n <=
 * max_checks, else max_checks elements spread over the tensor. Each perturbed
 * element is restored bit for bit. Prints tensor name, index, analytic and
 * numeric value of each failure (up to 8). Returns the number of failures. */
static int check_grad(const char *layer, const char *tensor, float *x, const float *ana,
                      size_t n, size_t max_checks, objective_fn f, void *ctx, float h,
                      double atol, double rtol)
{
    size_t checks = n <= max_checks ? n : max_checks;
    int bad = 0;
    for (size_t k = 0; k < checks; k++) {
        size_t i = checks == n ? k : (k * n) / checks + (k * 7) % (n / checks);
        float x0 = x[i];
        float xp = x0 + h, xm = x0 - h;
        x[i] = xp;
        double jp = f(ctx);
        x[i] = xm;
        double jm = f(ctx);
        x[i] = x0;
        double num = (jp - jm) / ((double)xp - (double)xm);
        if (!close_enough(ana[i], num, atol, rtol)) {
            if (bad < 8)
                print_error("gradcheck %s: d%s[%zu] analytic %.8g numeric %.8g\n", layer, tensor,
                            i, (double)ana[i], num);
            bad++;
        }
    }
    return bad;
}

/* ---- dense -------------------------------------------------------------- */

/* Dense and conv layers are linear in each of in, w and b, so the central
 * difference has no truncation error and a large step (0.1) only shrinks the
 * float rounding of J relative to the quotient. */

typedef struct dense_ctx {
    int B, I, O;
    float *in, *w, *b, *out, *R; // (B,I) (O,I) (O) (B,O) (B,O)
} dense_ctx;

static double dense_objective(void *p)
{
    dense_ctx *c = p;
    nn_dense_forward(c->out, c->in, c->w, c->b, c->B, c->I, c->O);
    return dot(c->out, c->R, (size_t)c->B * c->O);
}

static void test_dense_gradcheck(void **state)
{
    (void)state;
    rng r;
    rng_seed(&r, 1, RNG_TEST);
    dense_ctx c = {.B = 3, .I = 7, .O = 5};
    size_t ni = (size_t)c.B * c.I, nw = (size_t)c.O * c.I, no = (size_t)c.B * c.O;
    c.in = frand(ni, -1, 1, &r);
    c.w = frand(nw, -1, 1, &r);
    c.b = frand(c.O, -1, 1, &r);
    c.out = falloc(no);
    c.R = frand(no, -1, 1, &r);
    /* forward against the definition, over an out full of NaN (overwritten) */
    for (size_t i = 0; i < no; i++)
        c.out[i] = NAN;
    nn_dense_forward(c.out, c.in, c.w, c.b, c.B, c.I, c.O);
    for (int r0 = 0; r0 < c.B; r0++)
        for (int o = 0; o < c.O; o++) {
            double want = c.b[o];
            for (int i = 0; i < c.I; i++)
                want += (double)c.in[r0 * c.I + i] * c.w[o * c.I + i];
            assert_true(close_enough(c.out[r0 * c.O + o], want, 1e-6, 1e-5));
        }
    float *din = falloc(ni), *dw = falloc(nw), *db = falloc(c.O);
    nn_dense_backward(din, dw, db, c.R, c.in, c.w, c.B, c.I, c.O);
    int bad = 0;
    bad += check_grad("dense", "in", c.in, din, ni, ni, dense_objective, &c, 0.1f, 1e-4, 1e-3);
    bad += check_grad("dense", "w", c.w, dw, nw, nw, dense_objective, &c, 0.1f, 1e-4, 1e-3);
    bad += check_grad("dense", "b", c.b, db, c.O, c.O, dense_objective, &c, 0.1f, 1e-4, 1e-3);
    assert_int_equal(bad, 0);

    /* accumulation: a second backward adds the same gradient again */
    float *din1 = falloc(ni), *dw1 = falloc(nw), *db1 = falloc(c.O);
    memcpy(din1, din, ni * sizeof *din);
    memcpy(dw1, dw, nw * sizeof *dw);
    memcpy(db1, db, c.O * sizeof *db);
    nn_dense_backward(din, dw, db, c.R, c.in, c.w, c.B, c.I, c.O);
    for (size_t i = 0; i < ni; i++)
        assert_true(close_enough(din[i], 2.0 * din1[i], 1e-6, 1e-6));
    for (size_t i = 0; i < nw; i++)
        assert_true(close_enough(dw[i], 2.0 * dw1[i], 1e-6, 1e-6));
    for (int i = 0; i < c.O; i++)
        assert_true(close_enough(db[i], 2.0 * db1[i], 1e-6, 1e-6));

    /* din = NULL skips the input gradient but still accumulates dw, db */
    nn_dense_backward(NULL, dw, db, c.R, c.in, c.w, c.B, c.I, c.O);
    for (size_t i = 0; i < nw; i++)
        assert_true(close_enough(dw[i], 3.0 * dw1[i], 1e-6, 1e-6));
    /* dw = db = NULL: the input gradient alone (a loss that must not train
     * the layer's parameters), the same values as with them */
    nn_dense_backward(din, NULL, NULL, c.R, c.in, c.w, c.B, c.I, c.O);
    for (size_t i = 0; i < ni; i++)
        assert_true(close_enough(din[i], 3.0 * din1[i], 1e-6, 1e-6));
    for (int i = 0; i < c.O; i++)
        assert_true(close_enough(db[i], 3.0 * db1[i], 1e-6, 1e-6));

    free(din1), free(dw1), free(db1);
    free(din), free(dw), free(db);
    free(c.in), free(c.w), free(c.b), free(c.out), free(c.R);
}

/* ---- convolutions: naive references ------------------------------------- */

/* out (B,O,OH,OW) = b + direct sum over (c, ky, kx) of in (B,C,H,W) * w (O,C,K,K) */
static void naive_conv2d(double *out, const float *in, const float *w, const float *b,
                         const nn_conv *d, int B)
{
    for (int n = 0; n < B; n++)
        for (int o = 0; o < d->O; o++)
            for (int oy = 0; oy < d->OH; oy++)
                for (int ox = 0; ox < d->OW; ox++) {
                    double s = b[o];
                    for (int c = 0; c < d->C; c++)
                        for (int ky = 0; ky < d->K; ky++)
                            for (int kx = 0; kx < d->K; kx++) {
                                int y = oy * d->S - d->P + ky, x = ox * d->S - d->P + kx;
                                if (y < 0 || y >= d->H || x < 0 || x >= d->W)
                                    continue;
                                s += (double)in[((size_t)(n * d->C + c) * d->H + y) * d->W + x] *
                                     w[((size_t)(o * d->C + c) * d->K + ky) * d->K + kx];
                            }
                    out[((size_t)(n * d->O + o) * d->OH + oy) * d->OW + ox] = s;
                }
}

/* out (B,O,OH,OW) = b + scatter of each input pixel in (B,C,H,W) through
 * w (C,O,K,K): input (iy, ix) lands on (iy*S - P + ky, ix*S - P + kx). */
static void naive_convt2d(double *out, const float *in, const float *w, const float *b,
                          const nn_conv *d, int B)
{
    size_t plane = (size_t)d->OH * d->OW;
    for (int n = 0; n < B; n++)
        for (int o = 0; o < d->O; o++)
            for (size_t p = 0; p < plane; p++)
                out[(size_t)(n * d->O + o) * plane + p] = b[o];
    for (int n = 0; n < B; n++)
        for (int c = 0; c < d->C; c++)
            for (int iy = 0; iy < d->H; iy++)
                for (int ix = 0; ix < d->W; ix++) {
                    double v = in[((size_t)(n * d->C + c) * d->H + iy) * d->W + ix];
                    for (int o = 0; o < d->O; o++)
                        for (int ky = 0; ky < d->K; ky++)
                            for (int kx = 0; kx < d->K; kx++) {
                                int y = iy * d->S - d->P + ky, x = ix * d->S - d->P + kx;
                                if (y < 0 || y >= d->OH || x < 0 || x >= d->OW)
                                    continue;
                                out[((size_t)(n * d->O + o) * d->OH + y) * d->OW + x] +=
                                    v * w[((size_t)(c * d->O + o) * d->K + ky) * d->K + kx];
                            }
                }
}

/* ---- convolutions: gradient checks -------------------------------------- */

typedef struct conv_ctx {
    nn_conv d;
    int B;
    size_t ni, nw, no;
    float *in, *w, *b, *out, *R, *scratch; // (B,C,H,W) (O,C,K,K)|(C,O,K,K) (O) (B,O,OH,OW) x2
} conv_ctx;

static double conv_objective(void *p)
{
    conv_ctx *c = p;
    if (c->d.transpose)
        nn_convt2d_forward(c->out, c->scratch, c->in, c->w, c->b, &c->d, c->B);
    else
        nn_conv2d_forward(c->out, c->scratch, c->in, c->w, c->b, &c->d, c->B);
    return dot(c->out, c->R, c->no);
}

static void conv_backward(conv_ctx *c, float *din, float *dw, float *db, const float *dout)
{
    if (c->d.transpose)
        nn_convt2d_backward(din, dw, db, c->scratch, dout, c->in, c->w, &c->d, c->B);
    else
        nn_conv2d_backward(din, dw, db, c->scratch, dout, c->in, c->w, &c->d, c->B);
}

static void conv_ctx_init(conv_ctx *c, const nn_conv *d, int B, rng *r)
{
    c->d = *d;
    c->B = B;
    c->ni = (size_t)B * d->C * d->H * d->W;
    c->nw = (size_t)d->O * d->C * d->K * d->K;
    c->no = (size_t)B * d->O * d->OH * d->OW;
    c->in = frand(c->ni, -1, 1, r);
    c->w = frand(c->nw, -1, 1, r);
    c->b = frand(d->O, -1, 1, r);
    c->out = falloc(c->no);
    c->R = frand(c->no, -1, 1, r);
    /* exactly the advertised size, so ASan catches any overrun */
    c->scratch = malloc(nn_conv_scratch(d, B) * sizeof(float));
    assert_non_null(c->scratch);
}

static void conv_ctx_free(conv_ctx *c)
{
    free(c->in), free(c->w), free(c->b), free(c->out), free(c->R), free(c->scratch);
}

/* Gradient check of one conv layer (all of din, dw, db, or max_checks samples
 * of each), then the accumulate check: a second backward doubles them. */
static int conv_gradcheck(const nn_conv *d, int B, size_t max_checks, float h, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed, RNG_TEST);
    conv_ctx c;
    conv_ctx_init(&c, d, B, &r);
    float *din = falloc(c.ni), *dw = falloc(c.nw), *db = falloc(d->O);
    conv_backward(&c, din, dw, db, c.R);
    char name[128];
    snprintf(name, sizeof name, "%s C%d %dx%d -> O%d %dx%d K%d S%d P%d B%d",
             d->transpose ? "convT2d" : "conv2d", d->C, d->H, d->W, d->O, d->OH, d->OW, d->K,
             d->S, d->P, B);
    int bad = 0;
    bad += check_grad(name, "in", c.in, din, c.ni, max_checks, conv_objective, &c, h, 2e-4,
                      1e-3);
    bad += check_grad(name, "w", c.w, dw, c.nw, max_checks, conv_objective, &c, h, 2e-4,
                      1e-3);
    bad += check_grad(name, "b", c.b, db, d->O, max_checks, conv_objective, &c, h, 2e-4,
                      1e-3);

    /* accumulate: backward again into the same buffers doubles every entry */
    float *din2 = falloc(c.ni), *dw2 = falloc(c.nw), *db2 = falloc(d->O);
    memcpy(din2, din, c.ni * sizeof *din);
    memcpy(dw2, dw, c.nw * sizeof *dw);
    memcpy(db2, db, d->O * sizeof *db);
    conv_backward(&c, din2, dw2, db2, c.R);
    for (size_t i = 0; i < c.ni; i++)
        if (!close_enough(din2[i], 2.0 * din[i], 1e-5, 1e-5)) {
            print_error("%s: din not accumulated at %zu: %g vs 2*%g\n", name, i, (double)din2[i],
                        (double)din[i]);
            bad++;
            break;
        }
    for (size_t i = 0; i < c.nw; i++)
        if (!close_enough(dw2[i], 2.0 * dw[i], 1e-5, 1e-5)) {
            print_error("%s: dw not accumulated at %zu\n", name, i);
            bad++;
            break;
        }
    for (int i = 0; i < d->O; i++)
        if (!close_enough(db2[i], 2.0 * db[i], 1e-5, 1e-5)) {
            print_error("%s: db not accumulated at %d\n", name, i);
            bad++;
            break;
        }
    /* din = NULL leaves the weight gradients intact */
    memcpy(dw2, dw, c.nw * sizeof *dw);
    conv_backward(&c, NULL, dw2, db2, c.R);
    for (size_t i = 0; i < c.nw; i++)
        if (!close_enough(dw2[i], 2.0 * dw[i], 1e-5, 1e-5)) {
            print_error("%s: dw wrong with din = NULL at %zu\n", name, i);
            bad++;
            break;
        }

    free(din2), free(dw2), free(db2);
    free(din), free(dw), free(db);
    conv_ctx_free(&c);
    return bad;
}

/* K, S, P combinations: kernel 3 and 4, stride 1 and 2, padding 0, 1, 2 */
static const int conv_cases[][3] = {
    {3, 1, 0}, {3, 1, 1}, {3, 2, 1}, {3, 2, 2}, {3, 1, 2},
    {4, 1, 0}, {4, 2, 1}, {4, 2, 2}, {4, 1, 2}, {4, 2, 0},
};
#define N_CONV_CASES (sizeof conv_cases / sizeof conv_cases[0])

/* The layers' special paths, each with the case that reaches it: C input
 * channels of H x W maps, O output channels, kernel K, stride S, padding P,
 * batch B. */
typedef struct conv_shape {
    int C, H, W, O, K, S, P, B;
    const char *path;
} conv_shape;

static const conv_shape conv2d_paths[] = {
    {2, 8, 6, 3, 4, 2, 1, 3, "even maps, kernel 4, stride 2, padding 1: the conv arch's im2col/col2im"},
    {2, 2, 2, 3, 4, 2, 1, 3, "the same path's smallest case, 2x2 -> 1x1"},
    {16, 6, 4, 3, 4, 2, 1, 3, "few outputs, many inputs: din by the phase decomposition"},
    {16, 2, 2, 3, 4, 2, 1, 3, "the same on a 1x1 column map"},
    {3, 8, 8, 32, 4, 2, 1, 2, "the conv net's first layer on three-channel images"},
    {2, 8, 6, 3, 2, 2, 0, 3, "even maps, kernel 2, stride 2: the dlib arch's reordering im2col"},
    {2, 2, 2, 3, 2, 2, 0, 3, "the same path's smallest case, 2x2 -> 1x1"},
    {2, 7, 5, 3, 2, 2, 0, 3, "odd maps, same kernel: the generic path (last row and column unused)"},
};

static const conv_shape convt2d_paths[] = {
    {2, 1, 1, 3, 4, 2, 1, 3, "1x1 -> 2x2: the dedicated path"},
    {3, 3, 2, 16, 4, 2, 1, 3, "3 -> 16 channels, 3x2 -> 6x4: the forward by the phase decomposition"},
    {3, 1, 1, 16, 4, 2, 1, 3, "the same, 1x1 -> 2x2"},
    {32, 4, 4, 3, 4, 2, 1, 2, "the conv net's last layer writing three channels, 4x4 -> 8x8"},
    {2, 3, 4, 3, 2, 2, 0, 3, "3x4 -> 6x8: the 2x2 stride-2 path"},
};

/* Every K, S, P of conv_cases on small non-square maps (batch 3), then the
 * special paths; seeds from seed0 on. */
static int conv_gradcheck_all(int transpose, const conv_shape *paths, size_t n_paths,
                              uint64_t seed0)
{
    void (*dims)(nn_conv *, int, int, int, int, int, int, int) =
        transpose ? nn_convt2d_dims : nn_conv2d_dims;
    int bad = 0;
    nn_conv d;
    const int H = transpose ? 4 : 7, W = transpose ? 3 : 5; /* outputs of a few pixels */
    for (size_t k = 0; k < N_CONV_CASES; k++) {
        dims(&d, 2, H, W, 3, conv_cases[k][0], conv_cases[k][1], conv_cases[k][2]);
        assert_true(d.OH >= 1 && d.OW >= 1);
        bad += conv_gradcheck(&d, 3, (size_t)-1, 0.1f, seed0 + k);
    }
    for (size_t k = 0; k < n_paths; k++) {
        const conv_shape *c = &paths[k];
        dims(&d, c->C, c->H, c->W, c->O, c->K, c->S, c->P);
        int b = conv_gradcheck(&d, c->B, (size_t)-1, 0.1f, seed0 + 50 + k);
        if (b)
            fprintf(stderr, "%s: %d gradient(s) off\n", c->path, b);
        bad += b;
    }
    return bad;
}

static void test_conv2d_gradcheck(void **state)
{
    (void)state;
    assert_int_equal(conv_gradcheck_all(0, conv2d_paths,
                                        sizeof conv2d_paths / sizeof conv2d_paths[0], 100), 0);
}

static void test_convt2d_gradcheck(void **state)
{
    (void)state;
    assert_int_equal(conv_gradcheck_all(1, convt2d_paths,
                                        sizeof convt2d_paths / sizeof convt2d_paths[0], 200), 0);
}

/* Larger maps, where the implementation processes the batch in several
 * groups, including a last group of one image: sampled elements only. A weight
 * touches thousands of outputs here, whose float rounding would swamp a small
 * step; the layer is linear in each argument, so a large step has no
 * truncation error at all. */
static void test_conv_gradcheck_large(void **state)
{
    (void)state;
    int bad = 0;
    nn_conv d;
    nn_conv2d_dims(&d, 3, 45, 38, 4, 3, 1, 1); // 45x38 -> 45x38, 1710 columns per image
    bad += conv_gradcheck(&d, 3, 60, 0.5f, 300);
    nn_conv2d_dims(&d, 2, 50, 44, 3, 4, 2, 1); // -> 25x22 = 550 columns per image
    bad += conv_gradcheck(&d, 5, 60, 0.5f, 301);
    nn_convt2d_dims(&d, 4, 22, 25, 2, 4, 2, 1); // 22x25 -> 44x50
    bad += conv_gradcheck(&d, 5, 60, 0.5f, 302);
    nn_convt2d_dims(&d, 3, 40, 37, 2, 3, 1, 1); // 40x37 -> 40x37
    bad += conv_gradcheck(&d, 3, 60, 0.5f, 303);
    /* the phase decomposition over groups of 3 images (120 columns each) and
     * a last group of one */
    nn_convt2d_dims(&d, 4, 12, 10, 16, 4, 2, 1); // 12x10 -> 24x20
    bad += conv_gradcheck(&d, 4, 60, 0.5f, 304);
    nn_conv2d_dims(&d, 16, 24, 20, 4, 4, 2, 1); // -> 12x10, din by phases
    bad += conv_gradcheck(&d, 4, 60, 0.5f, 305);
    /* backward in several chunks (the weight gradient's partial sums): 9
     * images a group and a chunk, 20 images; 1 a group, 8 a chunk, 11 images */
    nn_conv2d_dims(&d, 2, 12, 10, 3, 4, 2, 1); // -> 6x5 = 30 columns per image
    bad += conv_gradcheck(&d, 20, 60, 0.5f, 306);
    nn_convt2d_dims(&d, 3, 14, 12, 2, 4, 2, 1); // 14x12 -> 28x24, by phases
    bad += conv_gradcheck(&d, 11, 60, 0.5f, 307);
    /* the dlib arch's 2x2 stride-2 layers over several groups and chunks */
    nn_conv2d_dims(&d, 32, 16, 16, 64, 2, 2, 0); // -> 8x8 = 64 columns per image
    bad += conv_gradcheck(&d, 11, 60, 0.5f, 308);
    nn_conv2d_dims(&d, 64, 8, 8, 64, 2, 2, 0); // -> 4x4, 16 images a group
    bad += conv_gradcheck(&d, 20, 60, 0.5f, 309);
    assert_int_equal(bad, 0);
}

/* ---- convolutions: forward against naive, adjoint identity -------------- */

static int conv_vs_naive(const nn_conv *d, int B, int B_scratch, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed, RNG_TEST);
    conv_ctx c;
    conv_ctx_init(&c, d, B, &r);
    /* scratch sized for a larger batch than used must also work */
    free(c.scratch);
    c.scratch = malloc(nn_conv_scratch(d, B_scratch) * sizeof(float));
    assert_non_null(c.scratch);
    double *want = malloc(c.no * sizeof *want);
    assert_non_null(want);
    for (size_t i = 0; i < c.no; i++)
        c.out[i] = NAN; // forward must overwrite out, not accumulate into it
    if (d->transpose) {
        naive_convt2d(want, c.in, c.w, c.b, d, B);
        nn_convt2d_forward(c.out, c.scratch, c.in, c.w, c.b, d, B);
    } else {
        naive_conv2d(want, c.in, c.w, c.b, d, B);
        nn_conv2d_forward(c.out, c.scratch, c.in, c.w, c.b, d, B);
    }
    char name[128];
    snprintf(name, sizeof name, "%s C%d %dx%d -> O%d %dx%d K%d S%d P%d B%d out",
             d->transpose ? "convT2d" : "conv2d", d->C, d->H, d->W, d->O, d->OH, d->OW, d->K,
             d->S, d->P, B);
    int bad = compare(name, c.out, want, c.no, 1e-4, 1e-4);
    free(want);
    conv_ctx_free(&c);
    return bad;
}

static void test_conv_forward_vs_naive(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t k = 0; k < N_CONV_CASES; k++) {
        nn_conv d;
        nn_conv2d_dims(&d, 2, 7, 5, 3, conv_cases[k][0], conv_cases[k][1], conv_cases[k][2]);
        bad += conv_vs_naive(&d, 3, 3, 400 + k);
        nn_convt2d_dims(&d, 2, 4, 3, 3, conv_cases[k][0], conv_cases[k][1], conv_cases[k][2]);
        bad += conv_vs_naive(&d, 3, 3, 500 + k);
    }
    /* the conv architecture's layers (64 -> 32 -> 16 -> 8 -> 4 and back) */
    static const int enc[][3] = {{1, 64, 32}, {32, 32, 32}, {32, 16, 64}, {64, 8, 64}};
    for (int k = 0; k < 4; k++) {
        nn_conv d;
        nn_conv2d_dims(&d, enc[k][0], enc[k][1], enc[k][1], enc[k][2], 4, 2, 1);
        assert_int_equal(d.OH, enc[k][1] / 2);
        bad += conv_vs_naive(&d, 3, 5, 600 + k);
        nn_convt2d_dims(&d, enc[k][2], enc[k][1] / 2, enc[k][1] / 2, enc[k][0], 4, 2, 1);
        assert_int_equal(d.OH, enc[k][1]);
        bad += conv_vs_naive(&d, 3, 5, 700 + k);
    }
    /* the dlib arch's 2x2 stride-2 layers (16 -> 8 -> 4) */
    static const int dlib[][3] = {{32, 16, 64}, {64, 8, 64}};
    for (int k = 0; k < 2; k++) {
        nn_conv d;
        nn_conv2d_dims(&d, dlib[k][0], dlib[k][1], dlib[k][1], dlib[k][2], 2, 2, 0);
        assert_int_equal(d.OH, dlib[k][1] / 2);
        bad += conv_vs_naive(&d, 3, 5, 650 + k);
    }
    assert_int_equal(bad, 0);
}

/* <conv(x), y> = <x, convT(y)> with the same weights and zero biases: convT
 * is the adjoint of conv2d. */
static int adjoint_case(int C, int H, int W, int O, int K, int S, int P, int B, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed, RNG_TEST);
    nn_conv dc, dt;
    nn_conv2d_dims(&dc, C, H, W, O, K, S, P);
    nn_convt2d_dims(&dt, O, dc.OH, dc.OW, C, K, S, P);
    assert_int_equal(dt.OH, H); // shapes chosen so that the round trip is exact
    assert_int_equal(dt.OW, W);
    size_t nx = (size_t)B * C * H * W, ny = (size_t)B * O * dc.OH * dc.OW;
    size_t nw = (size_t)O * C * K * K;
    float *x = frand(nx, -1, 1, &r), *y = frand(ny, -1, 1, &r), *w = frand(nw, -1, 1, &r);
    float *bc = falloc(O), *bt = falloc(C);
    float *cx = falloc(ny), *ty = falloc(nx);
    size_t ns = nn_conv_scratch(&dc, B) > nn_conv_scratch(&dt, B) ? nn_conv_scratch(&dc, B)
                                                                   : nn_conv_scratch(&dt, B);
    float *scratch = falloc(ns);
    nn_conv2d_forward(cx, scratch, x, w, bc, &dc, B);  // w as (O, C, K, K)
    nn_convt2d_forward(ty, scratch, y, w, bt, &dt, B); // the same w as (C_in=O, O_out=C, K, K)
    double lhs = dot(cx, y, ny), rhs = dot(x, ty, nx);
    int bad = 0;
    if (!close_enough(lhs, rhs, 1e-6 * sqrt((double)nx), 1e-5)) {
        print_error("adjoint C%d %dx%d O%d K%d S%d P%d: <conv x, y> = %.10g, <x, convT y> = %.10g\n",
                    C, H, W, O, K, S, P, lhs, rhs);
        bad = 1;
    }
    free(x), free(y), free(w), free(bc), free(bt), free(cx), free(ty), free(scratch);
    return bad;
}

static void test_conv_adjoint(void **state)
{
    (void)state;
    int bad = 0;
    bad += adjoint_case(2, 8, 6, 3, 4, 2, 1, 3, 800);
    bad += adjoint_case(2, 7, 5, 3, 3, 1, 1, 3, 801);
    bad += adjoint_case(3, 9, 7, 2, 3, 2, 2, 2, 802);
    bad += adjoint_case(2, 7, 5, 3, 3, 2, 0, 3, 803);
    bad += adjoint_case(1, 64, 64, 32, 4, 2, 1, 3, 804);
    bad += adjoint_case(64, 8, 8, 64, 4, 2, 1, 5, 805);
    bad += adjoint_case(16, 6, 4, 3, 4, 2, 1, 3, 806); // convT 3 -> 16 by phases
    bad += adjoint_case(32, 16, 16, 64, 2, 2, 0, 3, 807); // the dlib arch's 2x2 stride 2
    assert_int_equal(bad, 0);
}

static void test_conv_dims(void **state)
{
    (void)state;
    nn_conv d;
    nn_conv2d_dims(&d, 1, 64, 64, 32, 4, 2, 1);
    assert_int_equal(d.OH, 32);
    assert_int_equal(d.OW, 32);
    assert_int_equal(d.transpose, 0);
    nn_conv2d_dims(&d, 2, 7, 5, 3, 3, 2, 0);
    assert_int_equal(d.OH, 3);
    assert_int_equal(d.OW, 2);
    nn_convt2d_dims(&d, 64, 4, 4, 64, 4, 2, 1);
    assert_int_equal(d.OH, 8);
    assert_int_equal(d.OW, 8);
    assert_int_equal(d.transpose, 1);
    nn_convt2d_dims(&d, 2, 4, 3, 3, 3, 2, 1);
    assert_int_equal(d.OH, 7);
    assert_int_equal(d.OW, 5);
    /* scratch never shrinks below what a smaller batch needs */
    nn_conv2d_dims(&d, 32, 32, 32, 32, 4, 2, 1);
    for (int B = 1; B < 64; B++)
        assert_true(nn_conv_scratch(&d, B) <= nn_conv_scratch(&d, B + 1));
}

/* ---- activations -------------------------------------------------------- */

typedef struct act_ctx {
    int kind; /* 0 relu, 1 tanh, 2 leaky relu (slope 0.2) */
    size_t n;
    float *in, *out, *R; // (n) each
} act_ctx;

static void act_forward(int kind, float *out, const float *in, size_t n)
{
    if (kind == 1)
        nn_tanh_forward(out, in, n);
    else if (kind == 2)
        nn_leaky_relu_forward(out, in, 0.2f, n);
    else
        nn_relu_forward(out, in, n);
}

static void act_backward(int kind, float *din, const float *dout, const float *out, size_t n)
{
    if (kind == 1)
        nn_tanh_backward(din, dout, out, n);
    else if (kind == 2)
        nn_leaky_relu_backward(din, dout, out, 0.2f, n);
    else
        nn_relu_backward(din, dout, out, n);
}

static double act_objective(void *p)
{
    act_ctx *c = p;
    act_forward(c->kind, c->out, c->in, c->n);
    return dot(c->out, c->R, c->n);
}

static void act_gradcheck(int kind)
{
    rng r;
    rng_seed(&r, 10 + (uint64_t)kind, RNG_TEST);
    act_ctx c = {.kind = kind, .n = 3 * 7};
    c.in = frand(c.n, -2, 2, &r);
    /* ReLU: keep inputs away from the kink, where the difference quotient is
     * not the derivative */
    for (size_t i = 0; i < c.n; i++)
        if (fabsf(c.in[i]) < 0.1f)
            c.in[i] = c.in[i] < 0 ? -0.5f : 0.5f;
    c.out = falloc(c.n);
    c.R = frand(c.n, -1, 1, &r);
    float *din = falloc(c.n);
    act_objective(&c);
    act_backward(kind, din, c.R, c.out, c.n);
    const char *name = kind == 1 ? "tanh" : kind == 2 ? "leaky relu" : "relu";
    int bad = check_grad(name, "in", c.in, din, c.n, c.n, act_objective, &c, 1e-2f, 1e-4, 1e-3);
    assert_int_equal(bad, 0);
    act_objective(&c); // out was last computed with a perturbed input

    /* accumulate */
    float *din2 = falloc(c.n);
    memcpy(din2, din, c.n * sizeof *din);
    act_backward(kind, din2, c.R, c.out, c.n);
    for (size_t i = 0; i < c.n; i++)
        assert_true(close_enough(din2[i], 2.0 * din[i], 1e-7, 1e-6));

    /* in place: out == in gives the same values */
    float *x = falloc(c.n);
    memcpy(x, c.in, c.n * sizeof *x);
    act_forward(kind, x, x, c.n);
    assert_memory_equal(x, c.out, c.n * sizeof *x);

    free(x), free(din2), free(din), free(c.in), free(c.out), free(c.R);
}

static void test_relu_gradcheck(void **state)
{
    (void)state;
    act_gradcheck(0);
    float in[4] = {-1.0f, 0.0f, 2.5f, -0.0f}, out[4];
    nn_relu_forward(out, in, 4);
    assert_true(out[0] == 0.0f && out[1] == 0.0f && out[2] == 2.5f && out[3] == 0.0f);
}

/* util/vmath.h's exp, expm1 and log1p and the tanh built on them, against
 * libm in double over their whole ranges (uniform grids and decades down to
 * the tiny arguments that need expm1 and log1p): within 1-2.5 float ulps. */
static double rel_err(double got, double want)
{
    return want == 0.0 ? fabs(got) : fabs(got - want) / fabs(want);
}

static void test_vmath_accuracy(void **state)
{
    (void)state;
    double e_exp = 0, e_expm1 = 0, e_log1p = 0, e_tanh = 0;
    enum { N = 400000 };
    for (int i = 0; i <= N; i++) {
        float x = -87.0f * (float)i / N, u = (float)i / N;
        e_exp = fmax(e_exp, rel_err(exp_le0(x), exp((double)x)));
        e_expm1 = fmax(e_expm1, rel_err(expm1_le0(x), expm1((double)x)));
        e_log1p = fmax(e_log1p, rel_err(log1p_01(u), log1p((double)u)));
    }
    for (int i = 1; i <= 370; i++) { /* 10^-0.1 down to 10^-37 */
        float t = powf(10.0f, -0.1f * (float)i);
        e_expm1 = fmax(e_expm1, rel_err(expm1_le0(-t), expm1(-(double)t)));
        e_log1p = fmax(e_log1p, rel_err(log1p_01(t), log1p((double)t)));
    }
    float *x = falloc(N + 371), *y = falloc(N + 371);
    for (int i = 0; i <= N; i++)
        x[i] = -20.0f + 40.0f * (float)i / N;
    for (int i = 1; i <= 370; i++)
        x[N + i] = (i % 2 ? 1.0f : -1.0f) * powf(10.0f, -0.1f * (float)i);
    nn_tanh_forward(y, x, N + 371);
    for (int i = 0; i < N + 371; i++)
        e_tanh = fmax(e_tanh, rel_err(y[i], tanh((double)x[i])));
    printf("[ vmath    ] max relative error: exp %.2g, expm1 %.2g, log1p %.2g, tanh %.2g\n",
           e_exp, e_expm1, e_log1p, e_tanh);
    assert_true(e_exp < 1.5e-7);
    assert_true(e_expm1 < 2e-7);
    assert_true(e_log1p < 3e-7);
    assert_true(e_tanh < 3e-7);
    free(x), free(y);
}

static void test_tanh_gradcheck(void **state)
{
    (void)state;
    act_gradcheck(1);
}

/* Leaky ReLU (factorvae's discriminator, slope 0.2): the gradient check and
 * known values on both sides of 0. */
static void test_leaky_relu_gradcheck(void **state)
{
    (void)state;
    act_gradcheck(2);
    float in[4] = {-1.0f, 0.0f, 2.5f, -3.0f}, out[4];
    nn_leaky_relu_forward(out, in, 0.2f, 4);
    assert_true(out[0] == -0.2f && out[1] == 0.0f && out[2] == 2.5f && out[3] == 0.2f * -3.0f);
}

/* ---- Bernoulli with logits ---------------------------------------------- */

typedef struct bce_ctx {
    int B, P;
    float *l, *x; // (B, P) each
} bce_ctx;

static double bce_objective(void *p)
{
    bce_ctx *c = p;
    return nn_bce_logits_forward(NULL, c->l, c->x, c->B, c->P);
}

static void test_bce_gradcheck(void **state)
{
    (void)state;
    rng r;
    rng_seed(&r, 20, RNG_TEST);
    bce_ctx c = {.B = 3, .P = 11};
    size_t n = (size_t)c.B * c.P;
    c.l = frand(n, -6, 6, &r);
    c.x = frand(n, 0, 1, &r);
    for (size_t i = 0; i < n; i += 3)
        c.x[i] = c.x[i] < 0.5f ? 0.0f : 1.0f; // binary and soft targets
    float *dl = falloc(n);
    /* the forward returns the batch mean, so its gradient has scale 1/B */
    nn_bce_logits_backward(dl, c.l, c.x, c.B, c.P, 1.0f / c.B);
    int bad = check_grad("bce_logits", "logits", c.l, dl, n, n, bce_objective, &c, 1e-2f, 1e-4,
                         1e-3);
    assert_int_equal(bad, 0);
    float *dl2 = falloc(n);
    memcpy(dl2, dl, n * sizeof *dl);
    nn_bce_logits_backward(dl2, c.l, c.x, c.B, c.P, 1.0f / c.B);
    for (size_t i = 0; i < n; i++)
        assert_true(close_enough(dl2[i], 2.0 * dl[i], 1e-7, 1e-6));
    free(dl2), free(dl), free(c.l), free(c.x);
}

static void test_bce_stable_vs_naive(void **state)
{
    (void)state;
    rng r;
    rng_seed(&r, 21, RNG_TEST);
    int B = 4, P = 50;
    size_t n = (size_t)B * P;
    float *l = frand(n, -8, 8, &r), *x = frand(n, 0, 1, &r), *per = falloc(B);
    double mean = nn_bce_logits_forward(per, l, x, B, P);
    double want_mean = 0.0;
    for (int b = 0; b < B; b++) {
        double s = 0.0;
        for (int p = 0; p < P; p++) {
            double li = l[b * P + p], xi = x[b * P + p], sg = 1.0 / (1.0 + exp(-li));
            s += -(xi * log(sg) + (1.0 - xi) * log(1.0 - sg)); // naive form
        }
        assert_true(close_enough(per[b], s, 1e-5, 1e-5));
        want_mean += s / B;
    }
    assert_true(close_enough(mean, want_mean, 1e-5, 1e-5));
    assert_true(nn_bce_logits_forward(NULL, l, x, B, P) == mean); // per may be NULL

    /* logits of +-100: the naive form overflows to inf/NaN, the stable one
     * gives ~0 for a right confident guess and ~100 for a wrong one */
    float big_l[4] = {100.0f, -100.0f, 100.0f, -100.0f};
    float big_x[4] = {1.0f, 0.0f, 0.0f, 1.0f};
    float big_per[4];
    double m = nn_bce_logits_forward(big_per, big_l, big_x, 4, 1);
    assert_true(isfinite(m));
    assert_true(fabs(big_per[0]) < 1e-30 && fabs(big_per[1]) < 1e-30);
    assert_true(fabs(big_per[2] - 100.0) < 1e-4 && fabs(big_per[3] - 100.0) < 1e-4);
    float g[4] = {0, 0, 0, 0};
    nn_bce_logits_backward(g, big_l, big_x, 4, 1, 1.0f);
    for (int i = 0; i < 4; i++)
        assert_true(isfinite(g[i]));
    assert_true(fabsf(g[0]) < 1e-30f && fabsf(g[1]) < 1e-30f);
    assert_true(fabsf(g[2] - 1.0f) < 1e-6f && fabsf(g[3] + 1.0f) < 1e-6f);
    free(l), free(x), free(per);
}

/* ---- Gaussian KL and reparameterisation --------------------------------- */

typedef struct kl_ctx {
    int B, D;
    float *mu, *lv; // (B, D) each
} kl_ctx;

static double kl_objective(void *p)
{
    kl_ctx *c = p;
    return nn_gauss_kl_forward(NULL, NULL, c->mu, c->lv, c->B, c->D);
}

static void test_kl_gradcheck(void **state)
{
    (void)state;
    rng r;
    rng_seed(&r, 30, RNG_TEST);
    kl_ctx c = {.B = 3, .D = 5};
    size_t n = (size_t)c.B * c.D;
    c.mu = frand(n, -2, 2, &r);
    c.lv = frand(n, -3, 2, &r);
    float *dmu = falloc(n), *dlv = falloc(n);
    nn_gauss_kl_backward(dmu, dlv, c.mu, c.lv, c.B, c.D, 1.0f / c.B);
    int bad = 0;
    bad += check_grad("gauss_kl", "mu", c.mu, dmu, n, n, kl_objective, &c, 1e-2f, 1e-4, 1e-3);
    bad += check_grad("gauss_kl", "lv", c.lv, dlv, n, n, kl_objective, &c, 1e-2f, 1e-4, 1e-3);
    assert_int_equal(bad, 0);
    float *dmu2 = falloc(n), *dlv2 = falloc(n);
    memcpy(dmu2, dmu, n * sizeof *dmu);
    memcpy(dlv2, dlv, n * sizeof *dlv);
    nn_gauss_kl_backward(dmu2, dlv2, c.mu, c.lv, c.B, c.D, 1.0f / c.B);
    for (size_t i = 0; i < n; i++) {
        assert_true(close_enough(dmu2[i], 2.0 * dmu[i], 1e-7, 1e-6));
        assert_true(close_enough(dlv2[i], 2.0 * dlv[i], 1e-7, 1e-6));
    }
    free(dmu2), free(dlv2), free(dmu), free(dlv), free(c.mu), free(c.lv);
}

/* KL(N(m, s^2) || N(0, 1)) by quadrature of q (log q - log p): independent of
 * the closed form. Simpson's rule over m +- 12 s. */
static double kl_quadrature(double m, double s)
{
    const int n = 4000;
    double a = m - 12 * s, h = 24 * s / n, sum = 0.0;
    for (int i = 0; i <= n; i++) {
        double z = a + i * h;
        double lq = -0.5 * log(2 * M_PI) - log(s) - 0.5 * (z - m) * (z - m) / (s * s);
        double lp = -0.5 * log(2 * M_PI) - 0.5 * z * z;
        double f = exp(lq) * (lq - lp);
        sum += f * (i == 0 || i == n ? 1 : (i % 2 ? 4 : 2));
    }
    return sum * h / 3;
}

static void test_kl_closed_form(void **state)
{
    (void)state;
    rng r;
    rng_seed(&r, 31, RNG_TEST);
    int B = 4, D = 3;
    size_t n = (size_t)B * D;
    float *mu = frand(n, -2, 2, &r), *lv = frand(n, -3, 2, &r);
    float per[4], per_dim[3];
    double mean = nn_gauss_kl_forward(per, per_dim, mu, lv, B, D);
    double want_dim[3] = {0, 0, 0}, want_mean = 0.0;
    for (int b = 0; b < B; b++) {
        double s = 0.0;
        for (int j = 0; j < D; j++) {
            double m = mu[b * D + j], sd = exp(0.5 * lv[b * D + j]);
            /* textbook: log(s_p / s_q) + (s_q^2 + (m_q - m_p)^2) / (2 s_p^2) - 1/2 */
            double k = log(1.0 / sd) + (sd * sd + m * m) / 2.0 - 0.5;
            s += k;
            want_dim[j] += k / B;
            if (b == 0)
                assert_true(close_enough(k, kl_quadrature(m, sd), 1e-6, 1e-5));
        }
        assert_true(close_enough(per[b], s, 1e-5, 1e-5));
        want_mean += s / B;
    }
    for (int j = 0; j < D; j++)
        assert_true(close_enough(per_dim[j], want_dim[j], 1e-5, 1e-5));
    assert_true(close_enough(mean, want_mean, 1e-6, 1e-6));
    /* KL of the prior itself is zero */
    float z[2] = {0, 0};
    assert_true(nn_gauss_kl_forward(NULL, NULL, z, z, 1, 2) == 0.0);
    free(mu), free(lv);
}

typedef struct rep_ctx {
    size_t n;
    float *mu, *lv, *eps, *z, *R; // (n) each
} rep_ctx;

static double rep_objective(void *p)
{
    rep_ctx *c = p;
    nn_reparam_forward(c->z, c->mu, c->lv, c->eps, c->n);
    return dot(c->z, c->R, c->n);
}

static void test_reparam_gradcheck(void **state)
{
    (void)state;
    rng r;
    rng_seed(&r, 40, RNG_TEST);
    rep_ctx c = {.n = 3 * 5};
    c.mu = frand(c.n, -2, 2, &r);
    c.lv = frand(c.n, -3, 2, &r);
    c.eps = falloc(c.n);
    for (size_t i = 0; i < c.n; i++)
        c.eps[i] = (float)rng_normal(&r);
    c.z = falloc(c.n);
    c.R = frand(c.n, -1, 1, &r);
    rep_objective(&c);
    for (size_t i = 0; i < c.n; i++)
        assert_true(close_enough(c.z[i], c.mu[i] + exp(0.5 * c.lv[i]) * c.eps[i], 1e-6, 1e-6));
    float *dmu = falloc(c.n), *dlv = falloc(c.n);
    nn_reparam_backward(dmu, dlv, c.R, c.lv, c.eps, c.n);
    int bad = 0;
    bad += check_grad("reparam", "mu", c.mu, dmu, c.n, c.n, rep_objective, &c, 1e-2f, 1e-4, 1e-3);
    bad += check_grad("reparam", "lv", c.lv, dlv, c.n, c.n, rep_objective, &c, 1e-2f, 1e-4, 1e-3);
    assert_int_equal(bad, 0);
    float *dmu2 = falloc(c.n), *dlv2 = falloc(c.n);
    memcpy(dmu2, dmu, c.n * sizeof *dmu);
    memcpy(dlv2, dlv, c.n * sizeof *dlv);
    nn_reparam_backward(dmu2, dlv2, c.R, c.lv, c.eps, c.n);
    for (size_t i = 0; i < c.n; i++) {
        assert_true(close_enough(dmu2[i], 2.0 * dmu[i], 1e-7, 1e-6));
        assert_true(close_enough(dlv2[i], 2.0 * dlv[i], 1e-7, 1e-6));
    }
    free(dmu2), free(dlv2), free(dmu), free(dlv);
    free(c.mu), free(c.lv), free(c.eps), free(c.z), free(c.R);
}

/* ---- arena and Adam ----------------------------------------------------- */

static void test_arena_layout(void **state)
{
    (void)state;
    nn_arena a;
    err e;
    err_clear(&e);
    nn_arena_init(&a);
    static const size_t sizes[] = {37, 5, 100, 1, 16};
    size_t off[5];
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%d", i);
        off[i] = nn_arena_reserve(&a, name, sizes[i], &e);
        assert_true(off[i] != (size_t)-1);
        assert_int_equal(off[i] % 16, 0); // every tensor 64-byte aligned
        if (i > 0)
            assert_true(off[i] >= off[i - 1] + sizes[i - 1]); // no overlap
    }
    assert_int_equal(a.n_slots, 5);
    assert_string_equal(a.slots[2].name, "t2");
    assert_int_equal(a.slots[2].size, 100);
    assert_int_equal(a.n, off[4] + sizes[4]);
    assert_int_equal(nn_arena_alloc(&a, &e), 0);
    assert_int_equal((uintptr_t)a.param % 64, 0);
    assert_int_equal((uintptr_t)a.grad % 64, 0);
    assert_int_equal((uintptr_t)a.m % 64, 0);
    assert_int_equal((uintptr_t)a.v % 64, 0);
    /* the four blocks are one allocation, in order, and disjoint */
    assert_true(a.grad >= a.param + a.n && a.m >= a.grad + a.n && a.v >= a.m + a.n);
    assert_true(a.v - a.param < (ptrdiff_t)(4 * a.n + 64));
    for (size_t i = 0; i < a.n; i++)
        assert_true(a.param[i] == 0 && a.grad[i] == 0 && a.m[i] == 0 && a.v[i] == 0);
    for (size_t i = 0; i < a.n; i++)
        a.grad[i] = 1.0f;
    nn_arena_zero_grad(&a);
    for (size_t i = 0; i < a.n; i++)
        assert_true(a.grad[i] == 0.0f);
    nn_arena_free(&a);
    assert_null(a.param);
    assert_int_equal(a.n, 0);
    assert_int_equal(a.n_slots, 0);
    nn_arena_free(NULL);
    nn_arena_free(&a); // twice is harmless
}

static void test_adam_vs_reference(void **state)
{
    (void)state;
    rng r;
    rng_seed(&r, 50, RNG_TEST);
    nn_arena a;
    err e;
    nn_arena_init(&a);
    /* sizes that leave tails after the 16-wide main loop */
    assert_true(nn_arena_reserve(&a, "w", 37, &e) != (size_t)-1);
    assert_true(nn_arena_reserve(&a, "b", 5, &e) != (size_t)-1);
    assert_true(nn_arena_reserve(&a, "w2", 203, &e) != (size_t)-1);
    assert_int_equal(nn_arena_alloc(&a, &e), 0);
    size_t n = a.n;
    double *p = malloc(n * sizeof *p), *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    assert_true(p && m && v);
    nn_init_uniform(a.param, n, 0.5f, &r);
    for (size_t i = 0; i < n; i++)
        p[i] = a.param[i];
    const float betas[2][2] = {{0.9f, 0.999f}, {0.5f, 0.8f}};
    int bad = 0;
    for (int step = 1; step <= 8; step++) {
        const float lr = 1e-2f, eps = 1e-8f;
        float b1 = betas[step > 4][0], b2 = betas[step > 4][1];
        for (size_t i = 0; i < n; i++)
            a.grad[i] = (float)(rng_normal(&r) * (i % 3 == 0 ? 1e-3 : 1.0));
        /* reference: PyTorch's Adam, one element at a time, in double */
        for (size_t i = 0; i < n; i++) {
            double g = a.grad[i];
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            double mh = m[i] / (1.0 - pow(b1, step)), vh = v[i] / (1.0 - pow(b2, step));
            p[i] -= lr * mh / (sqrt(vh) + eps);
        }
        nn_adam_step(&a, lr, b1, b2, eps);
        assert_int_equal(a.t, step);
        for (size_t i = 0; i < n; i++) {
            if (a.grad[i] != 0.0f) {
                print_error("adam step %d: grad[%zu] = %g not zeroed\n", step, i, (double)a.grad[i]);
                bad++;
            }
            if (!close_enough(a.param[i], p[i], 1e-6, 1e-5) ||
                /* m = b1*m + (1-b1)*g cancels when g changes sign: its float
                 * error scales with |g| ~ 1, not with |m| */
                !close_enough(a.m[i], m[i], 1e-7, 1e-5) || !close_enough(a.v[i], v[i], 1e-12, 1e-5)) {
                if (bad < 8)
                    print_error("adam step %d: [%zu] param %.8g/%.8g m %.8g/%.8g v %.8g/%.8g\n",
                                step, i, (double)a.param[i], p[i], (double)a.m[i], m[i],
                                (double)a.v[i], v[i]);
                bad++;
            }
        }
    }
    assert_int_equal(bad, 0);
    free(p), free(m), free(v);
    nn_arena_free(&a);
}

static void test_init_uniform(void **state)
{
    (void)state;
    rng r1, r2;
    rng_seed(&r1, 60, RNG_INIT);
    rng_seed(&r2, 60, RNG_INIT);
    size_t n = 10000;
    float *a = falloc(n), *b = falloc(n);
    nn_init_uniform(a, n, 0.25f, &r1);
    nn_init_uniform(b, n, 0.25f, &r2);
    assert_memory_equal(a, b, n * sizeof *a); // same stream, same values
    double mean = 0.0, lo = 1, hi = -1;
    for (size_t i = 0; i < n; i++) {
        assert_true(a[i] >= -0.25f && a[i] <= 0.25f);
        mean += a[i] / n;
        lo = a[i] < lo ? a[i] : lo;
        hi = a[i] > hi ? a[i] : hi;
    }
    assert_true(fabs(mean) < 0.01);
    assert_true(lo < -0.24 && hi > 0.24); // fills the interval
    free(a), free(b);
}

/* ---- threads: the same bits for any thread count ------------------------ */

/* The bytes of every output of run_kernels, in order. */
typedef struct outlog {
    unsigned char *p;
    size_t n, cap;
} outlog;

static void log_bytes(outlog *l, const void *x, size_t n)
{
    if (l->n + n > l->cap) {
        l->cap = 2 * (l->n + n);
        l->p = realloc(l->p, l->cap);
        assert_non_null(l->p);
    }
    memcpy(l->p + l->n, x, n);
    l->n += n;
}

/* Forward and backward of one layer on random data (seeded: the same values
 * on every call), logging out, din, dw and db. */
static void run_dense(outlog *L, int B, int I, int O, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed, RNG_TEST);
    float *in = frand((size_t)B * I, -1, 1, &r), *w = frand((size_t)O * I, -1, 1, &r);
    float *b = frand(O, -1, 1, &r), *dout = frand((size_t)B * O, -1, 1, &r);
    float *out = falloc((size_t)B * O), *din = frand((size_t)B * I, -1, 1, &r);
    float *dw = frand((size_t)O * I, -1, 1, &r), *db = frand(O, -1, 1, &r);
    nn_dense_forward(out, in, w, b, B, I, O);
    nn_dense_backward(din, dw, db, dout, in, w, B, I, O);
    log_bytes(L, out, (size_t)B * O * sizeof *out);
    log_bytes(L, din, (size_t)B * I * sizeof *din);
    log_bytes(L, dw, (size_t)O * I * sizeof *dw);
    log_bytes(L, db, (size_t)O * sizeof *db);
    free(in), free(w), free(b), free(dout), free(out), free(din), free(dw), free(db);
}

static void run_conv(outlog *L, const nn_conv *d, int B, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed, RNG_TEST);
    conv_ctx c;
    conv_ctx_init(&c, d, B, &r); // scratch sized for the current thread count
    float *din = frand(c.ni, -1, 1, &r), *dw = frand(c.nw, -1, 1, &r);
    float *db = frand(d->O, -1, 1, &r);
    conv_objective(&c);
    conv_backward(&c, din, dw, db, c.R);
    log_bytes(L, c.out, c.no * sizeof *c.out);
    log_bytes(L, din, c.ni * sizeof *din);
    log_bytes(L, dw, c.nw * sizeof *dw);
    log_bytes(L, db, (size_t)d->O * sizeof *db);
    free(din), free(dw), free(db);
    conv_ctx_free(&c);
}

/* Every kernel on shapes cut into several tasks: dense layers with two row
 * blocks and several column blocks and with O > I, the conv arch's layers
 * (phases) and generic ones over several groups and chunks, elementwise
 * maps and the loss over several blocks and passes, Adam. */
static void run_kernels(outlog *L)
{
    run_dense(L, 260, 100, 333, 71); // 2 row blocks x 4 column blocks
    run_dense(L, 40, 50, 900, 72);
    nn_conv d;
    nn_conv2d_dims(&d, 32, 16, 16, 32, 4, 2, 1); // 1 image a group, 2 chunks
    run_conv(L, &d, 10, 73);
    nn_convt2d_dims(&d, 32, 8, 8, 32, 4, 2, 1); // phases, 4 a group, 2 chunks
    run_conv(L, &d, 12, 74);
    nn_convt2d_dims(&d, 32, 16, 16, 1, 4, 2, 1);
    run_conv(L, &d, 11, 75);
    nn_conv2d_dims(&d, 3, 20, 18, 5, 3, 1, 1);
    run_conv(L, &d, 13, 76);
    nn_conv2d_dims(&d, 32, 8, 8, 32, 4, 2, 1); // 16 a group, 2 chunks
    run_conv(L, &d, 20, 77);

    rng r;
    rng_seed(&r, 78, RNG_TEST);
    const int B = 1100, P = 40; // two passes of the loss
    const size_t n = (size_t)B * P;
    float *x = frand(n, -4, 4, &r), *t = frand(n, 0, 1, &r), *y = falloc(n);
    float *dy = frand(n, -1, 1, &r), *dx = frand(n, -1, 1, &r), *per = falloc(B);
    nn_relu_forward(y, x, n);
    log_bytes(L, y, n * sizeof *y);
    nn_relu_backward(dx, dy, y, n);
    nn_tanh_forward(y, x, n);
    log_bytes(L, y, n * sizeof *y);
    nn_tanh_backward(dx, dy, y, n);
    log_bytes(L, dx, n * sizeof *dx);
    double loss = nn_bce_logits_forward(per, x, t, B, P);
    log_bytes(L, &loss, sizeof loss);
    log_bytes(L, per, (size_t)B * sizeof *per);
    nn_bce_logits_backward(dx, x, t, B, P, 1.0f / B);
    log_bytes(L, dx, n * sizeof *dx);
    free(x), free(t), free(y), free(dy), free(dx), free(per);

    nn_arena a;
    err e;
    nn_arena_init(&a);
    assert_true(nn_arena_reserve(&a, "w", 70001, &e) != (size_t)-1);
    assert_int_equal(nn_arena_alloc(&a, &e), 0);
    nn_init_uniform(a.param, a.n, 0.5f, &r);
    for (int step = 0; step < 3; step++) {
        for (size_t i = 0; i < a.n; i++)
            a.grad[i] = (float)rng_normal(&r);
        nn_adam_step(&a, 1e-2f, 0.9f, 0.999f, 1e-8f);
    }
    log_bytes(L, a.param, a.n * sizeof *a.param);
    nn_arena_free(&a);
}

static void test_threads_bitwise(void **state)
{
    (void)state;
    int keep = nn_threads();
    outlog ref = {0};
    nn_set_threads(1);
    run_kernels(&ref);
    for (int t = 2; t <= 4; t++) {
        outlog got = {0};
        nn_set_threads(t);
        run_kernels(&got);
        assert_int_equal(got.n, ref.n);
        size_t i = 0;
        while (i < ref.n && got.p[i] == ref.p[i])
            i++;
        if (i < ref.n)
            print_error("%d threads: byte %zu of %zu differs from 1 thread\n", t, i, ref.n);
        assert_true(i == ref.n);
        free(got.p);
    }
    free(ref.p);
    nn_set_threads(keep);
}

static int one_thread(void **state)
{
    (void)state;
    nn_set_threads(1);
    return 0;
}

static int three_threads(void **state)
{
    (void)state;
    nn_set_threads(3);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_layout),
        cmocka_unit_test(test_adam_vs_reference),
        cmocka_unit_test(test_init_uniform),
        cmocka_unit_test(test_dense_gradcheck),
        cmocka_unit_test(test_conv_dims),
        cmocka_unit_test(test_conv2d_gradcheck),
        cmocka_unit_test(test_convt2d_gradcheck),
        cmocka_unit_test(test_conv_gradcheck_large),
        cmocka_unit_test(test_conv_forward_vs_naive),
        cmocka_unit_test(test_conv_adjoint),
        cmocka_unit_test(test_relu_gradcheck),
        cmocka_unit_test(test_leaky_relu_gradcheck),
        cmocka_unit_test(test_vmath_accuracy),
        cmocka_unit_test(test_tanh_gradcheck),
        cmocka_unit_test(test_bce_gradcheck),
        cmocka_unit_test(test_bce_stable_vs_naive),
        cmocka_unit_test(test_kl_gradcheck),
        cmocka_unit_test(test_kl_closed_form),
        cmocka_unit_test(test_reparam_gradcheck),
        cmocka_unit_test(test_threads_bitwise),
    };
    /* every test with one thread, then with three (more threads than this
     * machine may have cores: the tasks interleave) */
    int failed = cmocka_run_group_tests_name("one thread", tests, one_thread, NULL);
    return failed + cmocka_run_group_tests_name("three threads", tests, three_threads, NULL);
}
