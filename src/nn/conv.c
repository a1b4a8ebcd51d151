/* nn convolutions (NCHW): conv2d and its adjoint conv-transpose2d, both as
 * im2col/col2im plus one sgemm per group of images.
 *
 * Both layers are described by one "geometry" in the conv2d direction: an
 * image side (gC, gH, gW) and a column side (gO, gOH, gOW), with the kernel
 * matrix Wm (gO, gC*K*K):
 *     conv2d:  image = its input,   columns = its output, Wm = w (O,C,K,K)
 *     convT:   image = its OUTPUT,  columns = its input,  Wm = w (C,O,K,K)
 * im2col turns g images into col (gC*K*K, g*N), N = gOH*gOW, column index
 * b*N + p; col2im is its adjoint (scatter-add). Then
 *     conv2d forward   Y = Wm . col(x)              (gO, g*N)
 *     conv2d backward  dWm += dY . col(x)^T,  dx += col2im(Wm^T . dY)
 *     convT forward    y = col2im(Wm^T . X)          (X the input, (gO, g*N))
 *     convT backward   dWm += X . col(dy)^T,  dX += Wm . col(dy)
 * so convT is exactly conv2d's backward-input map with the same weights.
 *
 * Batching: one GEMM per image has a short N (16 columns for 8x8 -> 4x4), where
 * sgemm is slow, so images are processed in groups of g, chosen so that a
 * group has about CONV_COLS columns. The (gO, g*N) matrices are then in
 * channel-major order and are copied to/from NCHW; with g = 1 they are the NCHW
 * slice itself and no copy is made. Scratch = col (gC*K*K, g*N) + mat (gO, g*N).
 *
 * The kernel 4, stride 2, padding 1 case of the conv arch has its own
 * im2col/col2im (below), which profiling asked for. */
#include "untangle/nn.h"

#include <cblas.h>
#include <string.h>

/* Target columns per GEMM, measured at B=64 on the conv arch (fwd + bwd of all
 * eight layers, 2-core EPYC, one OpenBLAS thread): 1 image per GEMM 90 ms, 256
 * columns 87 ms (the 4x4-map layers gain 25%), 1024 columns 113 ms and 4096
 * columns 118 ms: once col outgrows the L2 cache (512 KB per 32x32 image), big
 * groups lose more than sgemm gains. */
#ifndef CONV_COLS
#define CONV_COLS 256
#endif

typedef struct geo {
    int C, H, W;   /* image side */
    int O, OH, OW; /* column side */
    int K, S, P;
} geo;

static geo geo_of(const nn_conv *d)
{
    geo g;
    if (!d->transpose) {
        g = (geo){d->C, d->H, d->W, d->O, d->OH, d->OW, d->K, d->S, d->P};
    } else {
        g = (geo){d->O, d->OH, d->OW, d->C, d->H, d->W, d->K, d->S, d->P};
    }
    return g;
}

/* Images per group: enough for CONV_COLS columns, at most B, at least 1. Never
 * grows when B shrinks, so scratch sized for B serves any smaller batch. */
static int group_size(const geo *g, int B)
{
    int n = g->OH * g->OW;
    int per = n >= CONV_COLS ? 1 : (CONV_COLS + n - 1) / n;
    return per < B ? per : (B > 0 ? B : 1);
}

void nn_conv2d_dims(nn_conv *d, int C, int H, int W, int O, int K, int S, int P)
{
    *d = (nn_conv){C, H, W, O, (H + 2 * P - K) / S + 1, (W + 2 * P - K) / S + 1, K, S, P, 0};
}

void nn_convt2d_dims(nn_conv *d, int C, int H, int W, int O, int K, int S, int P)
{
    *d = (nn_conv){C, H, W, O, (H - 1) * S - 2 * P + K, (W - 1) * S - 2 * P + K, K, S, P, 1};
}

size_t nn_conv_scratch(const nn_conv *d, int B)
{
    geo g = geo_of(d);
    size_t cols = (size_t)group_size(&g, B) * (size_t)g.OH * (size_t)g.OW;
    return ((size_t)g.C * g.K * g.K + (size_t)g.O) * cols;
}

/* The range [lo, hi) of output positions o whose input position o*S - P + k
 * lies in [0, n); lo <= hi <= no. */
static void valid_range(int *lo, int *hi, int n, int no, int k, int S, int P)
{
    int l = P - k > 0 ? (P - k + S - 1) / S : 0;
    int last = n - 1 + P - k; /* o*S <= last */
    int h = last < 0 ? 0 : last / S + 1;
    if (h > no)
        h = no;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* The conv arch's layer, kernel 4, stride 2, padding 1, on an even-sized map
 * (OH = H/2, OW = W/2). Profiling at B=64 put the generic im2col/col2im at a
 * third of the 32x32 -> 16x16 layer's time (short strided rows, a bounds
 * computation per row). Here ix = 2*ox - 1 + kx gives, per input row r,
 *     kx=0: r[2*ox-1] = odd[ox-1]   kx=1: r[2*ox] = even[ox]
 *     kx=2: r[2*ox+1] = odd[ox]     kx=3: r[2*ox+2] = even[ox+1]
 * with the missing ends (ox = 0 for kx=0, ox = OW-1 for kx=3) in the padding:
 * one even/odd split of the row and two shifted copies. That layer went from 35
 * to 27 ms (fwd + bwd, B=64); a variant through a zero-padded row copy, free of
 * the end cases, measured 2-4% slower. */
static int is_k4s2p1(const geo *g)
{
    return g->K == 4 && g->S == 2 && g->P == 1 && g->H == 2 * g->OH && g->W == 2 * g->OW;
}

/* e (n) = r[0, 2, 4, ...], o (n) = r[1, 3, 5, ...]. Blocks of 8 with a fixed
 * inner loop: gcc -O2 vectorises this grouped access (it does not vectorise a
 * lone stride-2 stream, nor a loop that needs an epilogue). */
static void split_even_odd(float *restrict e, float *restrict o, const float *restrict r,
                           size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            e[i + j] = r[2 * (i + j)];
            o[i + j] = r[2 * (i + j) + 1];
        }
    for (; i < n; i++) {
        e[i] = r[2 * i];
        o[i] = r[2 * i + 1];
    }
}

/* r[2i] += e[i], r[2i+1] += o[i] for i < n: the adjoint of split_even_odd. */
static void add_even_odd(float *restrict r, const float *restrict e, const float *restrict o,
                         size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            r[2 * (i + j)] += e[i + j];
            r[2 * (i + j) + 1] += o[i + j];
        }
    for (; i < n; i++) {
        r[2 * i] += e[i];
        r[2 * i + 1] += o[i];
    }
}

static void im2col_k4s2p1(float *col, const float *img, const geo *g, int gb)
{
    const int H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    const size_t N = (size_t)OH * OW, ld = (size_t)gb * N;
    for (int c = 0; c < g->C; c++) {
        for (int b = 0; b < gb; b++) {
            const float *src = img + ((size_t)b * g->C + c) * H * W; // (H, W)
            for (int ky = 0; ky < 4; ky++) {
                float *row = col + (size_t)(c * 4 + ky) * 4 * ld + (size_t)b * N;
                for (int oy = 0; oy < OH; oy++) {
                    float *d0 = row + (size_t)oy * OW, *d1 = d0 + ld, *d2 = d1 + ld, *d3 = d2 + ld;
                    int iy = 2 * oy - 1 + ky;
                    if (iy < 0 || iy >= H) { // only oy = 0 (ky = 0) and oy = OH-1 (ky = 3)
                        memset(d0, 0, (size_t)OW * sizeof *d0);
                        memset(d1, 0, (size_t)OW * sizeof *d1);
                        memset(d2, 0, (size_t)OW * sizeof *d2);
                        memset(d3, 0, (size_t)OW * sizeof *d3);
                        continue;
                    }
                    split_even_odd(d1, d2, src + (size_t)iy * W, (size_t)OW);
                    d0[0] = 0.0f;
                    memcpy(d0 + 1, d2, (size_t)(OW - 1) * sizeof *d0);
                    memcpy(d3, d1 + 1, (size_t)(OW - 1) * sizeof *d3);
                    d3[OW - 1] = 0.0f;
                }
            }
        }
    }
}

static void col2im_add_k4s2p1(float *img, const float *col, const geo *g, int gb)
{
    const int H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    const size_t N = (size_t)OH * OW, ld = (size_t)gb * N;
    for (int c = 0; c < g->C; c++) {
        for (int b = 0; b < gb; b++) {
            float *dst = img + ((size_t)b * g->C + c) * H * W; // (H, W)
            for (int ky = 0; ky < 4; ky++) {
                const float *row = col + (size_t)(c * 4 + ky) * 4 * ld + (size_t)b * N;
                for (int oy = 0; oy < OH; oy++) {
                    int iy = 2 * oy - 1 + ky;
                    if (iy < 0 || iy >= H)
                        continue;
                    const float *d0 = row + (size_t)oy * OW, *d1 = d0 + ld, *d2 = d1 + ld,
                                *d3 = d2 + ld;
                    float *r = dst + (size_t)iy * W;
                    /* r[2ox] += d1[ox], r[2ox+1] += d2[ox]; then from r+1:
                     * r[2ox+1] += d0[ox+1], r[2ox+2] += d3[ox] (ox < OW-1) */
                    add_even_odd(r, d1, d2, (size_t)OW);
                    add_even_odd(r + 1, d0 + 1, d3, (size_t)(OW - 1));
                }
            }
        }
    }
}

/* col (C*K*K, gb*N) = im2col of img (gb, C, H, W); row (c*K + ky)*K + kx,
 * column b*N + oy*OW + ox holds img[b][c][oy*S - P + ky][ox*S - P + kx], or 0 in
 * the padding. Loop order c, b, ky, kx keeps one input plane hot in L1 while its
 * K*K rows are written. */
static void im2col(float *col, const float *img, const geo *g, int gb)
{
    if (is_k4s2p1(g)) {
        im2col_k4s2p1(col, img, g, gb);
        return;
    }
    const int K = g->K, S = g->S, P = g->P, H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    const size_t N = (size_t)OH * OW, ld = (size_t)gb * N;
    for (int c = 0; c < g->C; c++) {
        for (int b = 0; b < gb; b++) {
            const float *src = img + ((size_t)b * g->C + c) * H * W; // (H, W)
            for (int ky = 0; ky < K; ky++) {
                int ylo, yhi;
                valid_range(&ylo, &yhi, H, OH, ky, S, P);
                for (int kx = 0; kx < K; kx++) {
                    int xlo, xhi;
                    valid_range(&xlo, &xhi, W, OW, kx, S, P);
                    float *dst = col + ((size_t)(c * K + ky) * K + kx) * ld + (size_t)b * N;
                    memset(dst, 0, (size_t)ylo * OW * sizeof *dst);
                    for (int oy = ylo; oy < yhi; oy++) {
                        float *d = dst + (size_t)oy * OW;
                        const float *s = src + (size_t)(oy * S - P + ky) * W; // input row
                        const int x0 = kx - P; // ix = ox*S + x0 >= 0 from ox = xlo on
                        for (int ox = 0; ox < xlo; ox++)
                            d[ox] = 0.0f;
                        if (S == 1) {
                            memcpy(d + xlo, s + xlo + x0, (size_t)(xhi - xlo) * sizeof *d);
                        } else {
                            for (int ox = xlo; ox < xhi; ox++)
                                d[ox] = s[ox * S + x0];
                        }
                        for (int ox = xhi; ox < OW; ox++)
                            d[ox] = 0.0f;
                    }
                    memset(dst + (size_t)yhi * OW, 0, (size_t)(OH - yhi) * OW * sizeof *dst);
                }
            }
        }
    }
}

/* img (gb, C, H, W) += col2im(col (C*K*K, gb*N)): the adjoint of im2col. */
static void col2im_add(float *img, const float *col, const geo *g, int gb)
{
    if (is_k4s2p1(g)) {
        col2im_add_k4s2p1(img, col, g, gb);
        return;
    }
    const int K = g->K, S = g->S, P = g->P, H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    const size_t N = (size_t)OH * OW, ld = (size_t)gb * N;
    for (int c = 0; c < g->C; c++) {
        for (int b = 0; b < gb; b++) {
            float *dst = img + ((size_t)b * g->C + c) * H * W; // (H, W)
            for (int ky = 0; ky < K; ky++) {
                int ylo, yhi;
                valid_range(&ylo, &yhi, H, OH, ky, S, P);
                for (int kx = 0; kx < K; kx++) {
                    int xlo, xhi;
                    valid_range(&xlo, &xhi, W, OW, kx, S, P);
                    const float *src = col + ((size_t)(c * K + ky) * K + kx) * ld + (size_t)b * N;
                    for (int oy = ylo; oy < yhi; oy++) {
                        const float *s = src + (size_t)oy * OW;
                        float *d = dst + (size_t)(oy * S - P + ky) * W; // image row
                        const int x0 = kx - P;
                        for (int ox = xlo; ox < xhi; ox++)
                            d[ox * S + x0] += s[ox];
                    }
                }
            }
        }
    }
}

/* mat (C, gb*N) = src (gb, C, N): NCHW -> channel-major for a group. */
static void to_cmajor(float *mat, const float *src, int gb, int C, size_t N)
{
    for (int b = 0; b < gb; b++)
        for (int c = 0; c < C; c++)
            memcpy(mat + (size_t)c * gb * N + (size_t)b * N, src + ((size_t)b * C + c) * N,
                   N * sizeof *mat);
}

/* Plane loops below work in blocks of VB floats with a fixed-size inner loop:
 * gcc 12 at -O2 vectorises only loops that need no scalar epilogue, and a sum
 * into VB independent partial sums needs no reassociation. Profiling showed
 * the scalar bias sum at a quarter of the 64x64 -> 32x32 layer's time. */
#define VB 16

/* d (n) += s (n) */
static void add_to(float *restrict d, const float *restrict s, size_t n)
{
    size_t p = 0;
    for (; p + VB <= n; p += VB)
        for (int j = 0; j < VB; j++)
            d[p + j] += s[p + j];
    for (; p < n; p++)
        d[p] += s[p];
}

/* d (n) = v */
static void fill(float *d, float v, size_t n)
{
    size_t p = 0;
    for (; p + VB <= n; p += VB)
        for (int j = 0; j < VB; j++)
            d[p + j] = v;
    for (; p < n; p++)
        d[p] = v;
}

/* sum of s (n), in VB partial sums */
static float sum(const float *s, size_t n)
{
    float part[VB] = {0};
    size_t p = 0;
    for (; p + VB <= n; p += VB)
        for (int j = 0; j < VB; j++)
            part[j] += s[p + j];
    float acc = 0.0f;
    for (int j = 0; j < VB; j++)
        acc += part[j];
    for (; p < n; p++)
        acc += s[p];
    return acc;
}

/* dst (gb, C, N) += mat (C, gb*N): channel-major -> NCHW, accumulating. */
static void from_cmajor_add(float *dst, const float *mat, int gb, int C, size_t N)
{
    for (int b = 0; b < gb; b++)
        for (int c = 0; c < C; c++)
            add_to(dst + ((size_t)b * C + c) * N, mat + (size_t)c * gb * N + (size_t)b * N, N);
}

/* dst (gb, C, N) = bias[c] broadcast over each plane. */
static void fill_bias(float *dst, const float *bias, int gb, int C, size_t N)
{
    for (int b = 0; b < gb; b++)
        for (int c = 0; c < C; c++)
            fill(dst + ((size_t)b * C + c) * N, bias[c], N);
}

/* db (C) += sum over b and p of dout (B, C, N). */
static void bias_grad(float *db, const float *dout, int B, int C, size_t N)
{
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            db[c] += sum(dout + ((size_t)b * C + c) * N, N);
}

/* ---- conv2d ------------------------------------------------------------- */

void nn_conv2d_forward(float *out, float *scratch, const float *in, const float *w,
                       const float *b, const nn_conv *d, int B)
{
    // out (B, O, OH, OW), in (B, C, H, W), w (O, C, K, K), b (O)
    const geo g = geo_of(d);
    const int G = group_size(&g, B), CKK = g.C * g.K * g.K;
    const size_t N = (size_t)g.OH * g.OW, in_sz = (size_t)g.C * g.H * g.W, out_sz = g.O * N;
    for (int b0 = 0; b0 < B; b0 += G) {
        const int gb = B - b0 < G ? B - b0 : G;
        const int cols = gb * (int)N;
        float *col = scratch;                      // (CKK, gb*N)
        float *mat = scratch + (size_t)CKK * cols; // (O, gb*N)
        im2col(col, in + b0 * in_sz, &g, gb);
        if (gb == 1) {
            float *y = out + b0 * out_sz; // (O, N): already NCHW
            fill_bias(y, b, 1, g.O, N);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.O, cols, CKK, 1.0f, w,
                        CKK, col, cols, 1.0f, y, cols);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.O, cols, CKK, 1.0f, w,
                        CKK, col, cols, 0.0f, mat, cols);
            float *y = out + b0 * out_sz; // (gb, O, N)
            fill_bias(y, b, gb, g.O, N);
            from_cmajor_add(y, mat, gb, g.O, N);
        }
    }
}

void nn_conv2d_backward(float *din, float *dw, float *db, float *scratch,
                        const float *dout, const float *in, const float *w,
                        const nn_conv *d, int B)
{
    // din (B, C, H, W) or NULL, dw (O, C, K, K), db (O), dout (B, O, OH, OW),
    // in (B, C, H, W), w (O, C, K, K)
    const geo g = geo_of(d);
    const int G = group_size(&g, B), CKK = g.C * g.K * g.K;
    const size_t N = (size_t)g.OH * g.OW, in_sz = (size_t)g.C * g.H * g.W, out_sz = g.O * N;
    bias_grad(db, dout, B, g.O, N);
    for (int b0 = 0; b0 < B; b0 += G) {
        const int gb = B - b0 < G ? B - b0 : G;
        const int cols = gb * (int)N;
        float *col = scratch;                      // (CKK, gb*N)
        float *mat = scratch + (size_t)CKK * cols; // (O, gb*N)
        const float *dy = dout + b0 * out_sz;      // (O, gb*N) once channel-major
        if (gb > 1) {
            to_cmajor(mat, dy, gb, g.O, N);
            dy = mat;
        }
        im2col(col, in + b0 * in_sz, &g, gb);
        /* dw += dY . col^T  (forward: Y = W . col) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.O, CKK, cols, 1.0f, dy, cols,
                    col, cols, 1.0f, dw, CKK);
        if (din) {
            /* dcol = W^T . dY, overwriting col (no longer needed), then scatter */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKK, cols, g.O, 1.0f, w, CKK,
                        dy, cols, 0.0f, col, cols);
            col2im_add(din + b0 * in_sz, col, &g, gb);
        }
    }
}

/* ---- conv-transpose2d ----------------------------------------------------- */

void nn_convt2d_forward(float *out, float *scratch, const float *in, const float *w,
                        const float *b, const nn_conv *d, int B)
{
    // out (B, O, OH, OW), in (B, C, H, W), w (C, O, K, K), b (O)
    // geometry: image = out (g.C = O), columns = in (g.O = C), Wm = w (C, O*K*K)
    const geo g = geo_of(d);
    const int G = group_size(&g, B), CKK = g.C * g.K * g.K;
    const size_t N = (size_t)g.OH * g.OW, img_sz = (size_t)g.C * g.H * g.W, x_sz = g.O * N;
    fill_bias(out, b, B, g.C, (size_t)g.H * g.W);
    for (int b0 = 0; b0 < B; b0 += G) {
        const int gb = B - b0 < G ? B - b0 : G;
        const int cols = gb * (int)N;
        float *col = scratch;                      // (O*K*K, gb*H*W)
        float *mat = scratch + (size_t)CKK * cols; // (C, gb*H*W)
        const float *x = in + b0 * x_sz;
        if (gb > 1) {
            to_cmajor(mat, x, gb, g.O, N);
            x = mat;
        }
        /* col = Wm^T . X: the conv2d backward-input map */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKK, cols, g.O, 1.0f, w, CKK, x,
                    cols, 0.0f, col, cols);
        col2im_add(out + b0 * img_sz, col, &g, gb);
    }
}

void nn_convt2d_backward(float *din, float *dw, float *db, float *scratch,
                         const float *dout, const float *in, const float *w,
                         const nn_conv *d, int B)
{
    // din (B, C, H, W) or NULL, dw (C, O, K, K), db (O), dout (B, O, OH, OW),
    // in (B, C, H, W), w (C, O, K, K)
    const geo g = geo_of(d);
    const int G = group_size(&g, B), CKK = g.C * g.K * g.K;
    const size_t N = (size_t)g.OH * g.OW, img_sz = (size_t)g.C * g.H * g.W, x_sz = g.O * N;
    bias_grad(db, dout, B, g.C, (size_t)g.H * g.W);
    for (int b0 = 0; b0 < B; b0 += G) {
        const int gb = B - b0 < G ? B - b0 : G;
        const int cols = gb * (int)N;
        float *col = scratch;                      // (O*K*K, gb*H*W)
        float *mat = scratch + (size_t)CKK * cols; // (C, gb*H*W)
        const float *x = in + b0 * x_sz;
        if (gb > 1) {
            to_cmajor(mat, x, gb, g.O, N);
            x = mat;
        }
        im2col(col, dout + b0 * img_sz, &g, gb);
        /* dw += X . col(dy)^T  (forward: col = Wm^T . X, so dWm = X . dcol^T) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.O, CKK, cols, 1.0f, x, cols,
                    col, cols, 1.0f, dw, CKK);
        if (din) {
            float *dx = din + b0 * x_sz;
            if (gb == 1) {
                /* din is the (C, H*W) matrix itself: accumulate with beta = 1 */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.O, cols, CKK, 1.0f,
                            w, CKK, col, cols, 1.0f, dx, cols);
            } else {
                /* X is no longer needed: its buffer takes dX = Wm . col(dy) */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.O, cols, CKK, 1.0f,
                            w, CKK, col, cols, 0.0f, mat, cols);
                from_cmajor_add(dx, mat, gb, g.O, N);
            }
        }
    }
}
