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
 * im2col/col2im (below), which profiling asked for, and computes the
 * conv-transpose maps (convT forward, conv2d's input gradient) with few input
 * channels by the phase decomposition described above convt_phase_add: four
 * GEMMs with inner dimension 4*C and no scatter-add. */
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

size_t nn_conv_scratch(const nn_conv *d, int B)
{
    geo g = geo_of(d);
    size_t cols = (size_t)group_size(&g, B) * (size_t)g.OH * (size_t)g.OW;
    size_t n = ((size_t)g.C * g.K * g.K + (size_t)g.O) * cols; // col + mat
    if (is_k4s2p1(&g) && use_phase(g.O, g.C)) {
        /* the convT map from the column side (g.O channels) to the image side
         * (g.C): convT forward alone, or conv2d's din after its dw GEMM, in
         * the space of whose col + mat, after the phase weights */
        size_t ph = phase_scratch(g.O, g.C, cols);
        if (!d->transpose) { // the phase weights, then col + mat or colp + T
            size_t work = ph - (size_t)16 * g.O * g.C;
            ph = (size_t)16 * g.O * g.C + (n > work ? n : work);
        }
        n = n > ph ? n : ph;
    }
    return n;
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
    /* din = convT(dout) with the same w read as (O, C, K, K) = (Ci, Co, 4, 4):
     * in the k4s2p1 case by phases, whose weights go first in scratch */
    const int phase = din && is_k4s2p1(&g) && use_phase(g.O, g.C);
    float *wp = scratch, *work = scratch;
    if (phase) {
        phase_weights(wp, w, g.O, g.C);
        work = scratch + (size_t)16 * g.O * g.C;
    }
    bias_grad(db, dout, B, g.O, N);
    for (int b0 = 0; b0 < B; b0 += G) {
        const int gb = B - b0 < G ? B - b0 : G;
        const int cols = gb * (int)N;
        float *col = work;                      // (CKK, gb*N)
        float *mat = work + (size_t)CKK * cols; // (O, gb*N)
        const float *dy = dout + b0 * out_sz;   // (O, gb*N) once channel-major
        if (gb > 1) {
            to_cmajor(mat, dy, gb, g.O, N);
            dy = mat;
        }
        im2col(col, in + b0 * in_sz, &g, gb);
        /* dw += dY . col^T  (forward: Y = W . col) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.O, CKK, cols, 1.0f, dy, cols,
                    col, cols, 1.0f, dw, CKK);
        if (phase) {
            /* col and mat are no longer needed: work takes colp and T */
            convt_phase_add(din + b0 * in_sz, work, dout + b0 * out_sz, wp, g.O, g.C, g.OH,
                            g.OW, gb);
        } else if (din) {
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
    if (is_k4s2p1(&g) && use_phase(d->C, d->O)) {
        float *wp = scratch, *work = scratch + (size_t)16 * d->C * d->O;
        phase_weights(wp, w, d->C, d->O);
        for (int b0 = 0; b0 < B; b0 += G) {
            const int gb = B - b0 < G ? B - b0 : G;
            convt_phase_add(out + b0 * img_sz, work, in + b0 * x_sz, wp, d->C, d->O, d->H, d->W,
                            gb);
        }
        return;
    }
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
