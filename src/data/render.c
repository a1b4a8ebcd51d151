/* data/render.c: the dSprites factors and the sprite renderer (docs/architecture.md section 3).
 *
 * Geometry. All shape equations are written in "sprite units" (u, w): pixels
 * of the 64x64 image divided by the scale s, centred on the sprite, y down.
 * A pixel (row, col) of an S x S image, k = S/64, samples the shape at its
 * centre:
 *     cx = k*(16 + 32*posX),  cy = k*(16 + 32*posY)          (pixels)
 *     X  = col + 0.5 - cx,    Y  = row + 0.5 - cy             (pixels)
 *     u  = (cos a*X - sin a*Y)/(s*k),  w = (sin a*X + cos a*Y)/(s*k)
 * so S = 32 is the 64 sprite with every length (centre included) halved, and
 * a positive angle turns the sprite counter-clockwise as displayed (the image
 * shows u rotated by -a in y-down coordinates = +a on screen).
 *
 * Shapes (inside = closed set, "<="):
 *   square:  |u| <= 10 and |w| <= 10
 *   ellipse: (u/12.75)^2 + (w/7.25)^2 <= 1
 *   heart:   see the block comment above heart_row().
 *
 * Speed. A 64x64 image is about 4096 pixels but a sprite covers at most a
 * 31x31 box, so the renderer zeroes the image, computes the sprite's bounding
 * box from the pose and tests only the pixels inside it. sin/cos of the 40
 * orientations come from a const table. Along a row u and w are affine in X,
 * and each pixel computes them as row term + slope*X (no running sums, so no
 * rounding drift): the loop is branch-free and vectorises. */
#include "untangle/data.h"

#include <assert.h>
#include <math.h>
#include <string.h>

const int data_factor_sizes[DATA_K] = {3, 6, 40, 32, 32};
const char *const data_factor_names[DATA_K] = {"shape", "scale", "orientation", "posX",
                                               "posY"};
const unsigned char data_factor_in_mig[DATA_K] = {0, 1, 1, 1, 1};

/* 2*pi as numpy's np.pi*2 (the official orientation values end on it). */
static const double data_two_pi = 6.283185307179586;

/* cos and sin of orientation class c, angle 2*pi*c/39, correctly rounded
 * (computed with 50-digit arithmetic). Classes 0 and 39 are the same angle and
 * get exactly (1, 0), so they render identically; cos(2*pi) in double would
 * give sin = -2.4e-16 and could flip a pixel whose centre lies exactly on an
 * edge (such pixels exist at S = 32, e.g. the square at posX = 0). */
static const double data_rot[40][2] = {
    {1.0, 0.0}, /* 0 */
    {0.9870502626379128, 0.16041128085776024}, /* 1 */
    {0.9485364419471455, 0.3166679938014725}, /* 2 */
    {0.8854560256532099, 0.46472317204376856}, /* 3 */
    {0.7994427634035012, 0.6007422642379789}, /* 4 */
    {0.6927243535095994, 0.7212024473438146}, /* 5 */
    {0.5680647467311558, 0.8229838658936564}, /* 6 */
    {0.4286925614030542, 0.9034504346103823}, /* 7 */
    {0.27821746391645263, 0.9605181116313724}, /* 8 */
    {0.12053668025532305, 0.992708874098054}, /* 9 */
    {-0.040265940109415144, 0.9991889981715696}, /* 10 */
    {-0.20002569377604443, 0.9797906520422677}, /* 11 */
    {-0.3546048870425356, 0.9350162426854148}, /* 12 */
    {-0.5, 0.8660254037844386}, /* 13 */
    {-0.6324453755953773, 0.7746049618276546}, /* 14 */
    {-0.7485107481711011, 0.6631226582407952}, /* 15 */
    {-0.8451900855437947, 0.5344658261278011}, /* 16 */
    {-0.9199794436588242, 0.3919666098600751}, /* 17 */
    {-0.970941817426052, 0.23931566428755777}, /* 18 */
    {-0.99675730813421, 0.08046656871672588}, /* 19 */
    {-0.99675730813421, -0.08046656871672588}, /* 20 */
    {-0.970941817426052, -0.23931566428755777}, /* 21 */
    {-0.9199794436588242, -0.3919666098600751}, /* 22 */
    {-0.8451900855437947, -0.5344658261278011}, /* 23 */
    {-0.7485107481711011, -0.6631226582407952}, /* 24 */
    {-0.6324453755953773, -0.7746049618276546}, /* 25 */
    {-0.5, -0.8660254037844386}, /* 26 */
    {-0.3546048870425356, -0.9350162426854148}, /* 27 */
    {-0.20002569377604443, -0.9797906520422677}, /* 28 */
    {-0.040265940109415144, -0.9991889981715696}, /* 29 */
    {0.12053668025532305, -0.992708874098054}, /* 30 */
    {0.27821746391645263, -0.9605181116313724}, /* 31 */
    {0.4286925614030542, -0.9034504346103823}, /* 32 */
    {0.5680647467311558, -0.8229838658936564}, /* 33 */
    {0.6927243535095994, -0.7212024473438146}, /* 34 */
    {0.7994427634035012, -0.6007422642379789}, /* 35 */
    {0.8854560256532099, -0.46472317204376856}, /* 36 */
    {0.9485364419471455, -0.3166679938014725}, /* 37 */
    {0.9870502626379128, -0.16041128085776024}, /* 38 */
    {1.0, 0.0}, /* 39 */
};

/* Element i of numpy.linspace(lo, hi, n): i*step + lo, the last exactly hi. */
static double linspace_at(double lo, double hi, int n, int i)
{
    if (i == n - 1)
        return hi;
    return (double)i * ((hi - lo) / (double)(n - 1)) + lo;
}

double data_factor_value(int k, int c)
{
    assert(k >= 0 && k < DATA_K && c >= 0 && c < data_factor_sizes[k]);
    switch (k) {
    case 0:
        return (double)(c + 1); /* square 1, ellipse 2, heart 3 */
    case 1:
        return linspace_at(0.5, 1.0, 6, c);
    case 2:
        return linspace_at(0.0, data_two_pi, 40, c);
    default:
        return linspace_at(0.0, 1.0, 32, c);
    }
}

uint32_t data_index(const int f[DATA_K])
{
    uint32_t i = 0;
    for (int k = 0; k < DATA_K; k++) {
        assert(f[k] >= 0 && f[k] < data_factor_sizes[k]);
        i = i * (uint32_t)data_factor_sizes[k] + (uint32_t)f[k];
    }
    return i;
}

void data_factors(uint32_t index, int f[DATA_K])
{
    assert(index < DATA_N);
    for (int k = DATA_K - 1; k >= 0; k--) {
        f[k] = (int)(index % (uint32_t)data_factor_sizes[k]);
        index /= (uint32_t)data_factor_sizes[k];
    }
}

/* ---- shapes --------------------------------------------------------------
 * Each row function fills m[0..n) with 0/1 for the pixels col0..col0+n-1 of
 * one row: X = (col + 0.5) - cx, u = ur + cu*X, w = wr + su*X, where
 * ur = -su*Y, wr = cu*Y, cu = cos a/(s*k), su = sin a/(s*k). */

static void square_row(uint8_t *m, int n, int col0, double cx, double ur, double wr,
                       double cu, double su)
{
    for (int j = 0; j < n; j++) {
        double X = ((double)(col0 + j) + 0.5) - cx;
        double u = ur + cu * X, w = wr + su * X;
        m[j] = (uint8_t)((fabs(u) <= 10.0) & (fabs(w) <= 10.0));
    }
}

static void ellipse_row(uint8_t *m, int n, int col0, double cx, double ur, double wr,
                        double cu, double su)
{
    /* (u/12.75)^2 + (w/7.25)^2 <= 1 with the divisions folded into constants */
    const double ia = 1.0 / (12.75 * 12.75), ib = 1.0 / (7.25 * 7.25);
    for (int j = 0; j < n; j++) {
        double X = ((double)(col0 + j) + 0.5) - cx;
        double u = ur + cu * X, w = wr + su * X;
        m[j] = (uint8_t)(u * u * ia + w * w * ib <= 1.0);
    }
}

/* Heart (lobes up, tip down; y grows downwards; sprite units):
 *   discs  C+- = (+-4.25, -3.5), radius r = 5.25
 *   tip    T   = (0, 9)
 * The outer common tangent from T to the right disc: with D = C+ - T =
 * (4.25, -12.5), |D|^2 = 174.3125 and tangent length L = sqrt(|D|^2 - r^2) =
 * sqrt(146.75) = 12.11404, its outward unit normal is
 *   n = (-r*D + L*(-D.y, D.x)) / |D|^2 = (HEART_NX, HEART_NY)
 *     = (0.7406986, 0.6718375),     n . (C+ - T) = -r,
 * so the line {p: n.(p - T) = 0} touches the disc at P+ = C+ + r*n =
 * (8.1387, 0.0271): the tangent point lies BELOW the centre line w = -3.5.
 * Hence the literal triangle "two tangents from T, closed by the centre line"
 * would stick out beyond the discs (its corners are at u = +-11.34 on
 * w = -3.5, the discs reach only +-9.5). The filled region between the
 * tangents is the convex pentagon T, P+, C+, C-, P-: below the centre line,
 * inside both tangent lines, and on the inner side of the radii C+P+ and
 * C-P- (direction along the tangent t = (n.y, -n.x), pointing from T to P+).
 *   heart = disc(C+) U disc(C-) U pentagon.
 * The heart is symmetric in u, so with a = |u| only the right disc, the right
 * tangent and the right radius matter (the left ones are implied for u >= 0):
 *   (a - 4.25)^2 + (w + 3.5)^2 <= 5.25^2
 *   or (w >= -3.5 and nx*a + ny*(w - 9) <= 0 and ny*(a - 4.25) - nx*(w + 3.5) <= 0).
 * Extent at s = 1: u in [-9.5, 9.5], w in [-8.75, 9]: 19 x 17.75 pixels. The
 * two discs overlap (centres 8.5 apart < 2r) and meet at w = -3.5 -+ sqrt(9.5),
 * so the cleft between the lobes reaches down to w = -6.58. */
#define HEART_NX 0.74069856146186571
#define HEART_NY 0.67183751089703434

static void heart_row(uint8_t *m, int n, int col0, double cx, double ur, double wr,
                      double cu, double su)
{
    for (int j = 0; j < n; j++) {
        double X = ((double)(col0 + j) + 0.5) - cx;
        double u = ur + cu * X, w = wr + su * X;
        double a = fabs(u);
        double da = a - 4.25, dw = w + 3.5;
        int disc = da * da + dw * dw <= 5.25 * 5.25;
        int poly = (dw >= 0.0) & (HEART_NX * a + HEART_NY * (w - 9.0) <= 0.0) &
                   (HEART_NY * da - HEART_NX * dw <= 0.0);
        m[j] = (uint8_t)(disc | poly);
    }
}

/* The bbox-restricted sprite: rows r0..r1, columns c0..c1 (inclusive; empty
 * when r1 < r0), mask (row-major, stride c1-c0+1) holds their pixels. */
typedef struct sprite_box {
    int r0, r1, c0, c1;
} sprite_box;

/* Range [lo, hi] (offsets from the centre, pixels) -> inclusive pixel indices
 * whose centre may fall in it, widened by one pixel against rounding and
 * clipped to the image. */
static void box_range(double centre, double lo, double hi, int S, int *i0, int *i1)
{
    int a = (int)floor(centre + lo - 0.5);
    int b = (int)ceil(centre + hi - 0.5);
    *i0 = a < 0 ? 0 : a;
    *i1 = b > S - 1 ? S - 1 : b;
}

static void render_mask(uint8_t *mask, sprite_box *bx, const int f[DATA_K], int S)
{
    assert(S == 64 || S == 32);
    for (int k = 0; k < DATA_K; k++)
        assert(f[k] >= 0 && f[k] < data_factor_sizes[k]);
    const double zoom = (double)S / 64.0; /* k = 1 or 0.5: both exact */
    const double s = data_factor_value(1, f[1]);
    const double sk = s * zoom;           /* pixels per sprite unit */
    const double c = data_rot[f[2]][0], sn = data_rot[f[2]][1];
    const double cx = zoom * (16.0 + 32.0 * data_factor_value(3, f[3]));
    const double cy = zoom * (16.0 + 32.0 * data_factor_value(4, f[4]));
    const double cu = c / sk, su = sn / sk;

    /* Bounding box in pixels around (cx, cy). A sprite-unit point (u, w) sits
     * at X = sk*(c*u + sn*w), Y = sk*(-sn*u + c*w). */
    double xlo, xhi, ylo, yhi;
    const double ac = fabs(c), as = fabs(sn);
    if (f[0] == 0) { /* square: corners at (+-10, +-10) */
        xhi = yhi = 10.0 * sk * (ac + as);
        xlo = ylo = -xhi;
    } else if (f[0] == 1) { /* ellipse: support function of the axes */
        xhi = sk * sqrt(12.75 * 12.75 * c * c + 7.25 * 7.25 * sn * sn);
        yhi = sk * sqrt(12.75 * 12.75 * sn * sn + 7.25 * 7.25 * c * c);
        xlo = -xhi;
        ylo = -yhi;
    } else { /* heart: inside the hull of the two discs and the tip */
        const double px[3] = {4.25, -4.25, 0.0}, pw[3] = {-3.5, -3.5, 9.0};
        const double pr[3] = {5.25, 5.25, 0.0};
        xlo = ylo = INFINITY;
        xhi = yhi = -INFINITY;
        for (int i = 0; i < 3; i++) {
            double X = c * px[i] + sn * pw[i], Y = -sn * px[i] + c * pw[i];
            xlo = fmin(xlo, X - pr[i]);
            xhi = fmax(xhi, X + pr[i]);
            ylo = fmin(ylo, Y - pr[i]);
            yhi = fmax(yhi, Y + pr[i]);
        }
        xlo *= sk;
        xhi *= sk;
        ylo *= sk;
        yhi *= sk;
    }
    box_range(cx, xlo, xhi, S, &bx->c0, &bx->c1);
    box_range(cy, ylo, yhi, S, &bx->r0, &bx->r1);

    const int n = bx->c1 - bx->c0 + 1;
    for (int row = bx->r0; row <= bx->r1; row++) {
        double Y = ((double)row + 0.5) - cy;
        double ur = -su * Y, wr = cu * Y;
        uint8_t *m = mask + (size_t)(row - bx->r0) * (size_t)n;
        switch (f[0]) {
        case 0:
            square_row(m, n, bx->c0, cx, ur, wr, cu, su);
            break;
        case 1:
            ellipse_row(m, n, bx->c0, cx, ur, wr, cu, su);
            break;
        default:
            heart_row(m, n, bx->c0, cx, ur, wr, cu, su);
            break;
        }
    }
}

void data_render_u8(uint8_t *img, const int f[DATA_K], int S)
{
    uint8_t mask[64 * 64];
    sprite_box bx;
    render_mask(mask, &bx, f, S);
    memset(img, 0, (size_t)S * (size_t)S);
    const int n = bx.c1 - bx.c0 + 1;
    for (int row = bx.r0; row <= bx.r1; row++)
        memcpy(img + (size_t)row * (size_t)S + (size_t)bx.c0,
               mask + (size_t)(row - bx.r0) * (size_t)n, (size_t)n);
}

void data_render(float *img, const int f[DATA_K], int S)
{
    uint8_t mask[64 * 64];
    sprite_box bx;
    render_mask(mask, &bx, f, S);
    memset(img, 0, sizeof *img * (size_t)S * (size_t)S);
    const int n = bx.c1 - bx.c0 + 1;
    for (int row = bx.r0; row <= bx.r1; row++) {
        float *o = img + (size_t)row * (size_t)S + (size_t)bx.c0;
        const uint8_t *m = mask + (size_t)(row - bx.r0) * (size_t)n;
        for (int j = 0; j < n; j++)
            o[j] = (float)m[j];
    }
}
