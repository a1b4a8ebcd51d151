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
 * slice itself and no copy is made. Each thread's work space = col (gC*K*K,
 * g*N) + mat (gO, g*N); groups are the tasks of the thread pool (see
 * "threads" below for the backward's chunks and the scratch layout).
 *
 * The kernel 4, stride 2, padding 1 case of the conv arch has its own
 * im2col/col2im (below), which profiling asked for, and so has the dlib
 * arch's kernel 2, stride 2, padding 0 (non-overlapping patches: a
 * reordering); the first also computes the conv-transpose maps (convT forward, conv2d's input gradient) with few input
 * channels by the phase decomposition described above convt_phase_add: four
 * GEMMs with inner dimension 4*C and no scatter-add. */
#include "nn_impl.h"
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
 * the end cases, measured 2-4% slower. im2col now shifts whole planes (see
 * there). */
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

/* Whole planes instead of rows: profiling at B=64 showed the per-row version
 * (two memcpy calls of OW-1 floats per row and tap row) at a sixth of the
 * 32x32 -> 16x16 layer. Each input row is split once, into the planes of taps
 * (ky, kx) = (1 or 2, 1 or 2); every other plane of the channel is one of
 * those shifted by whole flat offsets:
 *     kx=0: P[ky][0][q] = P[ky][2][q-1],  then column ox = 0 cleared
 *     kx=3: P[ky][3][q] = P[ky][1][q+1],  then column ox = OW-1 cleared
 *     ky=0: P[0][kx][q] = P[2][kx][q-OW]  (iy = 2*oy - 1 = 2*(oy-1) + 1), row 0 zero
 *     ky=3: P[3][kx][q] = P[1][kx][q+OW]  (iy = 2*oy + 2 = 2*(oy+1)), row OH-1 zero
 * where q = oy*OW + ox; the cleared column and rows are the padding. */
static void im2col_k4s2p1(float *col, const float *img, const geo *g, int gb)
{
    const int H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    const size_t N = (size_t)OH * OW, ld = (size_t)gb * N;
    for (int c = 0; c < g->C; c++) {
        float *base = col + (size_t)c * 16 * ld; // rows (ky*4 + kx) of channel c
        for (int b = 0; b < gb; b++) {
            const float *src = img + ((size_t)b * g->C + c) * H * W; // (H, W)
#define PL(ky, kx) (base + (size_t)((ky) * 4 + (kx)) * ld + (size_t)b * N)
            for (int ky = 1; ky <= 2; ky++) {
                float *p1 = PL(ky, 1), *p2 = PL(ky, 2), *p0 = PL(ky, 0), *p3 = PL(ky, 3);
                for (int oy = 0; oy < OH; oy++) // iy = 2*oy - 1 + ky, always inside
                    split_even_odd(p1 + (size_t)oy * OW, p2 + (size_t)oy * OW,
                                   src + (size_t)(2 * oy - 1 + ky) * W, (size_t)OW);
                p0[0] = 0.0f;
                memcpy(p0 + 1, p2, (N - 1) * sizeof *p0);
                memcpy(p3, p1 + 1, (N - 1) * sizeof *p3);
                p3[N - 1] = 0.0f;
                for (int oy = 0; oy < OH; oy++) {
                    p0[(size_t)oy * OW] = 0.0f;
                    p3[(size_t)oy * OW + OW - 1] = 0.0f;
                }
            }
            for (int kx = 0; kx < 4; kx++) {
                float *q0 = PL(0, kx), *q3 = PL(3, kx);
                memset(q0, 0, (size_t)OW * sizeof *q0);
                memcpy(q0 + OW, PL(2, kx), (N - OW) * sizeof *q0);
                memcpy(q3, PL(1, kx) + OW, (N - OW) * sizeof *q3);
                memset(q3 + N - OW, 0, (size_t)OW * sizeof *q3);
            }
#undef PL
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

/* disentanglement_lib's 2x2, stride 2, padding 0 layers (the dlib arch): the
 * patches do not overlap, so im2col only reorders the image. Input row
 * iy = 2*oy + ky holds taps (ky, 0) at its even and (ky, 1) at its odd
 * columns: one even/odd split per row, no padding, and col2im is the
 * matching interleaved add (every image pixel gets exactly one term).
 * Against the generic loops, forward + backward at B=64 (one thread,
 * shared machine): 32x16x16 -> 64x8x8 3.9 -> 3.2 ms, 64x8x8 -> 64x4x4
 * 2.45 -> 1.6 ms (bench_nn's k2 rows), under 1% of a dlib step. */
static int is_k2s2p0(const geo *g)
{
    return g->K == 2 && g->S == 2 && g->P == 0 && g->H == 2 * g->OH && g->W == 2 * g->OW;
}

static void im2col_k2s2p0(float *col, const float *img, const geo *g, int gb)
{
    const int H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    const size_t N = (size_t)OH * OW, ld = (size_t)gb * N;
    for (int c = 0; c < g->C; c++)
        for (int b = 0; b < gb; b++) {
            const float *src = img + ((size_t)b * g->C + c) * H * W; // (H, W)
            for (int ky = 0; ky < 2; ky++) {
                float *p0 = col + (size_t)(c * 4 + ky * 2) * ld + (size_t)b * N; // tap (ky, 0)
                float *p1 = p0 + ld;                                             // tap (ky, 1)
                for (int oy = 0; oy < OH; oy++)
                    split_even_odd(p0 + (size_t)oy * OW, p1 + (size_t)oy * OW,
                                   src + (size_t)(2 * oy + ky) * W, (size_t)OW);
            }
        }
}

static void col2im_add_k2s2p0(float *img, const float *col, const geo *g, int gb)
{
    const int H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    const size_t N = (size_t)OH * OW, ld = (size_t)gb * N;
    for (int c = 0; c < g->C; c++)
        for (int b = 0; b < gb; b++) {
            float *dst = img + ((size_t)b * g->C + c) * H * W; // (H, W)
            for (int ky = 0; ky < 2; ky++) {
                const float *p0 = col + (size_t)(c * 4 + ky * 2) * ld + (size_t)b * N;
                const float *p1 = p0 + ld;
                for (int oy = 0; oy < OH; oy++)
                    add_even_odd(dst + (size_t)(2 * oy + ky) * W, p0 + (size_t)oy * OW,
                                 p1 + (size_t)oy * OW, (size_t)OW);
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
    if (is_k2s2p0(g)) {
        im2col_k2s2p0(col, img, g, gb);
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
    if (is_k2s2p0(g)) {
        col2im_add_k2s2p0(img, col, g, gb);
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

/* ---- conv-transpose, kernel 4, stride 2, padding 1: phase decomposition ----
 *
 * A convT from (Ci, H, W) to (Co, 2H, 2W) with w (Ci, Co, 4, 4) puts input
 * pixel iy on output rows oy = 2*iy - 1 + ky. Split the output by phase,
 * oy = 2*m + py (py in {0, 1}); then ky = 2*(m - iy) + py + 1, so exactly two
 * taps reach each output row, from the two input rows
 *     iy = m + py + dy - 1,  ky = 3 - py - 2*dy,   dy in {0, 1}
 * (py = 0: rows m-1, m with taps 3, 1;  py = 1: rows m, m+1 with taps 2, 0),
 * and the same in x with (px, dx, kx). So each of the four phases (py, px) is
 * an ordinary 2x2 stride-1 correlation of the input with a 2x2 subset of the
 * taps:
 *     out[co][2m+py][2n+px] = sum over ci, dy, dx of
 *         in[ci][m+py+dy-1][n+px+dx-1] * w[ci][co][3-py-2dy][3-px-2dx]
 * (0 outside the input), i.e. per phase one GEMM
 *     T_p (Co, gb*H*W) = Wp (Co, 4*Ci) . colp (4*Ci, gb*H*W)
 * with row (ci*2 + dy)*2 + dx of colp the input plane shifted by
 * (py+dy-1, px+dx-1). Against the col2im form (inner dimension Ci, then a
 * scatter-add of a (16*Co, H*W) matrix) the inner dimension is 4*Ci, the
 * multiply-adds are the same, and the result only needs an interleaved add:
 * phases (py, 0) and (py, 1) fill the even and odd columns of row 2m+py.
 *
 * Scratch: Wp (4, Co, 4*Ci) built once per call, then per group colp
 * (4*Ci, cols) and T (4, Co, cols), cols = gb*H*W. */

/* d (H, W) = s (H, W) shifted: d[m][n] = s[m+sy][n+sx], 0 outside s;
 * sy, sx in {-1, 0, 1}. In flat indices d[q] = s[q + sy*W + sx]: one copy of
 * the valid range, then the column that wrapped around from the neighbouring
 * row (n = 0 for sx = -1, n = W-1 for sx = 1) is cleared. Whole-plane copies
 * instead of per-row ones: the planes of the conv arch have rows of 4 to 32
 * floats. */
static void shifted_plane(float *restrict d, const float *restrict s, int H, int W, int sy,
                          int sx)
{
    const long HW = (long)H * W, off = (long)sy * W + sx;
    long lo = off < 0 ? -off : 0;      // first q with q + off >= 0
    long hi = off > 0 ? HW - off : HW; // q + off < HW below hi
    if (lo > HW)
        lo = HW;
    if (hi < lo)
        hi = lo;
    memset(d, 0, (size_t)lo * sizeof *d);
    memcpy(d + lo, s + lo + off, (size_t)(hi - lo) * sizeof *d);
    memset(d + hi, 0, (size_t)(HW - hi) * sizeof *d);
    if (sx < 0)
        for (int m = 0; m < H; m++)
            d[(size_t)m * W] = 0.0f;
    else if (sx > 0)
        for (int m = 0; m < H; m++)
            d[(size_t)m * W + W - 1] = 0.0f;
}

/* wp (4, Co, 4*Ci): wp[p][co][(ci*2 + dy)*2 + dx] = w[ci][co][3-py-2dy][3-px-2dx],
 * p = py*2 + px, from w (Ci, Co, 4, 4). */
static void phase_weights(float *wp, const float *w, int Ci, int Co)
{
    for (int p = 0; p < 4; p++) {
        const int py = p >> 1, px = p & 1;
        for (int co = 0; co < Co; co++) {
            float *row = wp + ((size_t)p * Co + co) * 4 * Ci;
            for (int ci = 0; ci < Ci; ci++) {
                const float *k = w + ((size_t)ci * Co + co) * 16; // (4, 4)
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++)
                        row[(ci * 2 + dy) * 2 + dx] = k[(3 - py - 2 * dy) * 4 + 3 - px - 2 * dx];
            }
        }
    }
}

/* Floats of scratch convt_phase_add needs: Wp, colp, T. */
static size_t phase_scratch(int Ci, int Co, size_t cols)
{
    return (size_t)16 * Ci * Co + (size_t)4 * (Ci + Co) * cols;
}

/* Whether the convT map from Ci to Co channels (k4s2p1) goes by phases. The
 * phase GEMMs have Co rows, the col2im GEMM has inner dimension Ci; measured
 * at B=64 (fwd, one thread): 32 -> 32 channels 9.0 -> 8.5 ms by phases, but
 * 64 -> 32 channels 3.7 -> 4.2 ms and 32 -> 1 channel 1.5 -> 7.0 ms. */
static int use_phase(int Ci, int Co)
{
    return Ci <= 32 && Co >= 16;
}

/* dst (gb, Co, 2H, 2W) += convT(src (gb, Ci, H, W)) through the phase weights
 * wp (4, Co, 4*Ci) (phase_weights); work (4*(Ci + Co), gb*H*W) holds colp
 * and T. */
static void convt_phase_add(float *dst, float *work, const float *src, const float *wp, int Ci,
                            int Co, int H, int W, int gb)
{
    const size_t N = (size_t)H * W, cols = (size_t)gb * N;
    const int K4 = 4 * Ci;
    float *colp = work;                   // (4*Ci, cols)
    float *t = work + (size_t)K4 * cols;  // (4, Co, cols)
    for (int p = 0; p < 4; p++) {
        const int py = p >> 1, px = p & 1;
        for (int ci = 0; ci < Ci; ci++)
            for (int b = 0; b < gb; b++) {
                const float *s = src + ((size_t)b * Ci + ci) * N; // (H, W)
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++)
                        shifted_plane(colp + (size_t)((ci * 2 + dy) * 2 + dx) * cols + b * N, s,
                                      H, W, py + dy - 1, px + dx - 1);
            }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Co, (int)cols, K4, 1.0f,
                    wp + (size_t)p * Co * K4, K4, colp, (int)cols, 0.0f, t + (size_t)p * Co * cols,
                    (int)cols);
    }
    /* row 2m+py of plane (b, co): even columns from phase (py, 0), odd from (py, 1) */
    for (int b = 0; b < gb; b++)
        for (int co = 0; co < Co; co++) {
            float *plane = dst + ((size_t)b * Co + co) * 4 * N; // (2H, 2W)
            for (int m = 0; m < H; m++)
                for (int py = 0; py < 2; py++) {
                    const float *t0 = t + ((size_t)(py * 2) * Co + co) * cols + b * N + (size_t)m * W;
                    const float *t1 = t0 + (size_t)Co * cols;
                    add_even_odd(plane + (size_t)(2 * m + py) * 2 * W, t0, t1, (size_t)W);
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

/* ---- threads: tasks, partial sums and scratch ------------------------------
 *
 * Forward: one task per group of images (its own im2col, GEMM and copies,
 * into its own images of the output). Backward: one task per CHUNK of
 * images (a whole number of groups, at least CHUNK_IMAGES): the input
 * gradient of its images, and the weight and bias gradients of its images
 * into the chunk's own partial sums (beta = 1 over its groups, in order);
 * then dWm += p_0 + p_1 + ... in chunk order, element by element. Groups and
 * chunks follow from the geometry and B only, so the sums are the same for
 * any thread count.
 *
 * Scratch of a layer for a batch of B (nn_conv_scratch):
 *   [ wp: phase weights (16*gO*gC), when the convT map goes by phases ]
 *   [ chunks x partial: dWm (gO, gC*K*K) then db (max(gO, gC)) ]
 *   [ nn_threads() x work: col + mat, or colp + T of the phases ]
 * Work is per thread and fully rewritten by each group, so it carries
 * nothing from one task to the next. */
enum { CHUNK_IMAGES = 8 };

typedef struct layout {
    int G, T, chunks;  /* images per group and per chunk, chunks of B */
    int phase;         /* the convT map (gO -> gC channels) goes by phases */
    size_t wp, part;   /* floats: phase weights, one chunk's partials */
    size_t work;       /* floats of one thread's work */
} layout;

static layout layout_of(const geo *g, int B)
{
    layout L;
    const size_t CKK = (size_t)g->C * g->K * g->K;
    L.G = group_size(g, B);
    L.T = L.G * ((CHUNK_IMAGES + L.G - 1) / L.G);
    L.chunks = B > 0 ? (B + L.T - 1) / L.T : 0;
    L.phase = is_k4s2p1(g) && use_phase(g->O, g->C);
    L.wp = L.phase ? (size_t)16 * g->O * g->C : 0;
    L.part = (size_t)g->O * CKK + (size_t)(g->O > g->C ? g->O : g->C);
    size_t cols = (size_t)L.G * g->OH * g->OW;
    L.work = (CKK + (size_t)g->O) * cols; // col + mat
    if (L.phase && phase_scratch(g->O, g->C, cols) - L.wp > L.work)
        L.work = phase_scratch(g->O, g->C, cols) - L.wp; // colp + T
    return L;
}

size_t nn_conv_scratch(const nn_conv *d, int B)
{
    geo g = geo_of(d);
    layout L = layout_of(&g, B);
    return L.wp + (size_t)L.chunks * L.part + (size_t)nn_threads() * L.work;
}

/* One layer's call, as its tasks see it. */
typedef struct conv_job {
    geo g;
    layout L;
    int B;
    const nn_conv *d;
    float *scratch;
    float *out;               /* forward: out; backward: din (or NULL) */
    const float *in, *w, *b;  /* forward: in, w, b; backward: in, w */
    const float *dout;        /* backward */
    size_t img_sz, col_sz;    /* floats per image on the image / column side */
} conv_job;

static float *job_wp(const conv_job *j) { return j->scratch; }
static float *job_part(const conv_job *j, int c)
{
    return j->scratch + j->L.wp + (size_t)c * j->L.part;
}
static float *job_work(const conv_job *j, int slot)
{
    return j->scratch + j->L.wp + (size_t)j->L.chunks * j->L.part + (size_t)slot * j->L.work;
}

/* The images [*b0, *b0 + *n) of group t, or of chunk t (per = T). */
static void span(const conv_job *j, int t, int per, int *b0, int *n)
{
    *b0 = t * per;
    *n = j->B - *b0 < per ? j->B - *b0 : per;
}

/* After the chunk tasks: dw (n) += sum over chunks of their dWm partials,
 * and db (nb) likewise, each element's partials added in chunk order. */
typedef struct combine_job {
    const conv_job *j;
    float *dst;
    size_t off; /* of the partials within a chunk's part */
} combine_job;

static void combine_range(void *ctx, size_t lo, size_t hi)
{
    const combine_job *c = ctx;
    const conv_job *j = c->j;
    for (size_t i = lo; i < hi; i++) {
        float acc = job_part(j, 0)[c->off + i];
        for (int k = 1; k < j->L.chunks; k++)
            acc += job_part(j, k)[c->off + i];
        c->dst[i] += acc;
    }
}

static void combine(const conv_job *j, float *dw, float *db, int nb)
{
    const size_t nw = (size_t)j->g.O * j->g.C * j->g.K * j->g.K;
    combine_job cw = {j, dw, 0}, cb = {j, db, nw};
    nn_parallel_range(nw, combine_range, &cw);
    combine_range(&cb, 0, (size_t)nb);
}

/* ---- conv2d ------------------------------------------------------------- */

static void conv2d_fwd_group(void *ctx, int t, int slot)
{
    const conv_job *j = ctx;
    const geo *g = &j->g;
    const int CKK = g->C * g->K * g->K;
    const size_t N = (size_t)g->OH * g->OW;
    int b0, gb;
    span(j, t, j->L.G, &b0, &gb);
    const int cols = gb * (int)N;
    float *col = job_work(j, slot);             // (CKK, gb*N)
    float *mat = col + (size_t)CKK * cols;      // (O, gb*N)
    float *y = j->out + (size_t)b0 * j->col_sz; // (gb, O, N)
    im2col(col, j->in + (size_t)b0 * j->img_sz, g, gb);
    if (gb == 1) { /* y (O, N) is already the GEMM's layout */
        fill_bias(y, j->b, 1, g->O, N);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->O, cols, CKK, 1.0f, j->w, CKK,
                    col, cols, 1.0f, y, cols);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->O, cols, CKK, 1.0f, j->w, CKK,
                    col, cols, 0.0f, mat, cols);
        fill_bias(y, j->b, gb, g->O, N);
        from_cmajor_add(y, mat, gb, g->O, N);
    }
}

void nn_conv2d_forward(float *out, float *scratch, const float *in, const float *w,
                       const float *b, const nn_conv *d, int B)
{
    // out (B, O, OH, OW), in (B, C, H, W), w (O, C, K, K), b (O), scratch (nn_conv_scratch)
    conv_job j = {.g = geo_of(d), .B = B, .d = d, .scratch = scratch, .out = out, .in = in,
                  .w = w, .b = b};
    j.L = layout_of(&j.g, B);
    j.img_sz = (size_t)j.g.C * j.g.H * j.g.W;
    j.col_sz = (size_t)j.g.O * j.g.OH * j.g.OW;
    nn_parallel(nn_block_count(B, j.L.G), conv2d_fwd_group, &j);
}

/* Chunk t of conv2d's backward: din of its images, its dWm and db partials. */
static void conv2d_bwd_chunk(void *ctx, int t, int slot)
{
    const conv_job *j = ctx;
    const geo *g = &j->g;
    const int CKK = g->C * g->K * g->K;
    const size_t N = (size_t)g->OH * g->OW;
    float *pdw = job_part(j, t), *pdb = pdw + (size_t)g->O * CKK; // (O, CKK), (O)
    float *work = job_work(j, slot);
    memset(pdw, 0, j->L.part * sizeof *pdw);
    int c0, nc;
    span(j, t, j->L.T, &c0, &nc);
    for (int b0 = c0; b0 < c0 + nc; b0 += j->L.G) {
        const int gb = c0 + nc - b0 < j->L.G ? c0 + nc - b0 : j->L.G;
        const int cols = gb * (int)N;
        float *col = work;                              // (CKK, gb*N)
        float *mat = work + (size_t)CKK * cols;         // (O, gb*N)
        const float *dy = j->dout + (size_t)b0 * j->col_sz; // (O, gb*N) once channel-major
        if (gb > 1) {
            to_cmajor(mat, dy, gb, g->O, N);
            dy = mat;
        }
        im2col(col, j->in + (size_t)b0 * j->img_sz, g, gb);
        /* dWm += dY . col^T  (forward: Y = W . col) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->O, CKK, cols, 1.0f, dy, cols,
                    col, cols, 1.0f, pdw, CKK);
        if (j->out && j->L.phase) {
            /* din = convT(dout) with the same w read as (O, C, K, K) = (Ci,
             * Co, 4, 4), by phases; col and mat are no longer needed: work
             * takes colp and T */
            convt_phase_add(j->out + (size_t)b0 * j->img_sz, work,
                            j->dout + (size_t)b0 * j->col_sz, job_wp(j), g->O, g->C, g->OH,
                            g->OW, gb);
        } else if (j->out) {
            /* dcol = W^T . dY, overwriting col (no longer needed), then scatter */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKK, cols, g->O, 1.0f, j->w,
                        CKK, dy, cols, 0.0f, col, cols);
            col2im_add(j->out + (size_t)b0 * j->img_sz, col, g, gb);
        }
    }
    bias_grad(pdb, j->dout + (size_t)c0 * j->col_sz, nc, g->O, N);
}

void nn_conv2d_backward(float *din, float *dw, float *db, float *scratch,
                        const float *dout, const float *in, const float *w,
                        const nn_conv *d, int B)
{
    // din (B, C, H, W) or NULL, dw (O, C, K, K), db (O), dout (B, O, OH, OW),
    // in (B, C, H, W), w (O, C, K, K), scratch (nn_conv_scratch)
    conv_job j = {.g = geo_of(d), .B = B, .d = d, .scratch = scratch, .out = din, .in = in,
                  .w = w, .dout = dout};
    j.L = layout_of(&j.g, B);
    j.L.phase = j.L.phase && din;
    j.img_sz = (size_t)j.g.C * j.g.H * j.g.W;
    j.col_sz = (size_t)j.g.O * j.g.OH * j.g.OW;
    if (j.L.phase)
        phase_weights(job_wp(&j), w, j.g.O, j.g.C);
    nn_parallel(j.L.chunks, conv2d_bwd_chunk, &j);
    if (j.L.chunks)
        combine(&j, dw, db, j.g.O);
}

/* ---- conv-transpose2d -----------------------------------------------------
 * geometry: image = out (g.C = O), columns = in (g.O = C), Wm = w (C, O*K*K) */

static void convt2d_fwd_group(void *ctx, int t, int slot)
{
    const conv_job *j = ctx;
    const geo *g = &j->g;
    const int CKK = g->C * g->K * g->K;
    const size_t N = (size_t)g->OH * g->OW, HW = (size_t)g->H * g->W;
    int b0, gb;
    span(j, t, j->L.G, &b0, &gb);
    float *y = j->out + (size_t)b0 * j->img_sz; // (gb, O, OH, OW)
    float *work = job_work(j, slot);
    fill_bias(y, j->b, gb, g->C, HW);
    if (j->L.phase) {
        convt_phase_add(y, work, j->in + (size_t)b0 * j->col_sz, job_wp(j), j->d->C, j->d->O,
                        j->d->H, j->d->W, gb);
        return;
    }
    const int cols = gb * (int)N;
    float *col = work;                          // (O*K*K, gb*H*W)
    float *mat = work + (size_t)CKK * cols;     // (C, gb*H*W)
    const float *x = j->in + (size_t)b0 * j->col_sz;
    if (gb > 1) {
        to_cmajor(mat, x, gb, g->O, N);
        x = mat;
    }
    /* col = Wm^T . X: the conv2d backward-input map */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKK, cols, g->O, 1.0f, j->w, CKK, x,
                cols, 0.0f, col, cols);
    col2im_add(y, col, g, gb);
}

void nn_convt2d_forward(float *out, float *scratch, const float *in, const float *w,
                        const float *b, const nn_conv *d, int B)
{
    // out (B, O, OH, OW), in (B, C, H, W), w (C, O, K, K), b (O), scratch (nn_conv_scratch)
    conv_job j = {.g = geo_of(d), .B = B, .d = d, .scratch = scratch, .out = out, .in = in,
                  .w = w, .b = b};
    j.L = layout_of(&j.g, B);
    j.img_sz = (size_t)j.g.C * j.g.H * j.g.W;
    j.col_sz = (size_t)j.g.O * j.g.OH * j.g.OW;
    if (j.L.phase)
        phase_weights(job_wp(&j), w, d->C, d->O);
    nn_parallel(nn_block_count(B, j.L.G), convt2d_fwd_group, &j);
}

/* Chunk t of convT's backward: din of its images, its dWm and db partials. */
static void convt2d_bwd_chunk(void *ctx, int t, int slot)
{
    const conv_job *j = ctx;
    const geo *g = &j->g;
    const int CKK = g->C * g->K * g->K;
    const size_t N = (size_t)g->OH * g->OW;
    float *pdw = job_part(j, t), *pdb = pdw + (size_t)g->O * CKK; // (C, O*K*K), (O)
    float *work = job_work(j, slot);
    memset(pdw, 0, j->L.part * sizeof *pdw);
    int c0, nc;
    span(j, t, j->L.T, &c0, &nc);
    for (int b0 = c0; b0 < c0 + nc; b0 += j->L.G) {
        const int gb = c0 + nc - b0 < j->L.G ? c0 + nc - b0 : j->L.G;
        const int cols = gb * (int)N;
        float *col = work;                          // (O*K*K, gb*H*W)
        float *mat = work + (size_t)CKK * cols;     // (C, gb*H*W)
        const float *x = j->in + (size_t)b0 * j->col_sz;
        if (gb > 1) {
            to_cmajor(mat, x, gb, g->O, N);
            x = mat;
        }
        im2col(col, j->dout + (size_t)b0 * j->img_sz, g, gb);
        /* dWm += X . col(dy)^T  (forward: col = Wm^T . X, so dWm = X . dcol^T) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->O, CKK, cols, 1.0f, x, cols,
                    col, cols, 1.0f, pdw, CKK);
        if (!j->out)
            continue;
        float *dx = j->out + (size_t)b0 * j->col_sz;
        if (gb == 1) {
            /* din is the (C, H*W) matrix itself: accumulate with beta = 1 */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->O, cols, CKK, 1.0f, j->w,
                        CKK, col, cols, 1.0f, dx, cols);
        } else {
            /* X is no longer needed: its buffer takes dX = Wm . col(dy) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->O, cols, CKK, 1.0f, j->w,
                        CKK, col, cols, 0.0f, mat, cols);
            from_cmajor_add(dx, mat, gb, g->O, N);
        }
    }
    bias_grad(pdb, j->dout + (size_t)c0 * j->img_sz, nc, g->C, (size_t)g->H * g->W);
}

void nn_convt2d_backward(float *din, float *dw, float *db, float *scratch,
                         const float *dout, const float *in, const float *w,
                         const nn_conv *d, int B)
{
    // din (B, C, H, W) or NULL, dw (C, O, K, K), db (O), dout (B, O, OH, OW),
    // in (B, C, H, W), w (C, O, K, K), scratch (nn_conv_scratch)
    conv_job j = {.g = geo_of(d), .B = B, .d = d, .scratch = scratch, .out = din, .in = in,
                  .w = w, .dout = dout};
    j.L = layout_of(&j.g, B);
    j.img_sz = (size_t)j.g.C * j.g.H * j.g.W;
    j.col_sz = (size_t)j.g.O * j.g.OH * j.g.OW;
    nn_parallel(j.L.chunks, convt2d_bwd_chunk, &j);
    if (j.L.chunks)
        combine(&j, dw, db, j.g.C);
}
