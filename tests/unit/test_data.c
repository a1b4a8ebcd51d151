/* test_data: the data module (docs/architecture.md section 3).
 *
 * - factor tables and the index <-> factors mapping (all 737,280 indices);
 * - the fast renderer against an independent per-pixel reference (pixels whose
 *   centre lies on an edge, within 1e-9 px, may go either way and are counted);
 * - areas, the heart's extent, centres of mass, 0 == 2 pi, S = 32 vs 64;
 * - data_sample: reproducible and uniform;
 * - write the HDF5 file, read it back, bit for bit (S = 32; S = 64 too when
 *   UNTANGLE_SLOW_TESTS is set, about 10 s);
 * - bad files: each case gives ERR_INPUT naming the file and the dataset, and
 *   leaves the out-parameter untouched;
 * - the other data sets: every name's description; color_dsprites (one
 *   colour in [0.5, 1) per image and channel times the sprite) and
 *   noisy_dsprites (sprite pixels 1, background noise of mean 1/2 and
 *   variance 1/12, its own per channel), both a function of (seed, index) in
 *   canonical order and of the caller's stream when drawn (dSprites draws
 *   nothing more than before); shapes3d from a small file the test writes
 *   (sizes from the labels, classes, pixels and the 2x2 means of S = 32, the
 *   factors visible), a table of bad layouts (one line naming file and
 *   dataset), and a full-size sparse file read without the process growing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "untangle/data.h"

static const double PI = 3.14159265358979323846;

/* ---- helpers ------------------------------------------------------------- */

static int render_area(const int f[DATA_K], int S)
{
    uint8_t img[64 * 64];
    data_render_u8(img, f, S);
    int n = 0;
    for (int i = 0; i < S * S; i++)
        n += img[i];
    return n;
}

/* Bounding box of the on pixels: columns c0..c1, rows r0..r1. */
static void render_bbox(const int f[DATA_K], int S, int *c0, int *c1, int *r0, int *r1)
{
    uint8_t img[64 * 64];
    data_render_u8(img, f, S);
    *c0 = *r0 = S;
    *c1 = *r1 = -1;
    for (int r = 0; r < S; r++)
        for (int c = 0; c < S; c++)
            if (img[r * S + c]) {
                *c0 = c < *c0 ? c : *c0;
                *c1 = c > *c1 ? c : *c1;
                *r0 = r < *r0 ? r : *r0;
                *r1 = r > *r1 ? r : *r1;
            }
}

/* Reference shape test in sprite units (u, w), written independently of
 * src/data/render.c: the heart's pentagon is built from its vertices (tip,
 * tangent points, disc centres) with the tangent point found by angles, and
 * tested with cross products. */
typedef struct ref_heart {
    double vx[5], vy[5]; /* T, P+, C+, C-, P- (clockwise as displayed) */
} ref_heart;

static ref_heart ref_heart_make(void)
{
    ref_heart h;
    const double r = 5.25, tx = 0.0, ty = 9.0, cx = 4.25, cy = -3.5;
    double dx = cx - tx, dy = cy - ty, d = sqrt(dx * dx + dy * dy);
    double L = sqrt(d * d - r * r), half = asin(r / d);
    /* Direction from the tip to the right disc centre, turned away from the
     * axis (towards +x) by the half-angle of the tangent cone. */
    double phi = atan2(dy, dx) + half;
    double px = tx + L * cos(phi), py = ty + L * sin(phi);
    double vx[5] = {tx, px, cx, -cx, -px}, vy[5] = {ty, py, cy, cy, py};
    memcpy(h.vx, vx, sizeof vx);
    memcpy(h.vy, vy, sizeof vy);
    return h;
}

static int ref_inside(int shape, const ref_heart *h, double u, double w)
{
    if (shape == 0)
        return fabs(u) <= 10.0 && fabs(w) <= 10.0;
    if (shape == 1)
        return (u / 12.75) * (u / 12.75) + (w / 7.25) * (w / 7.25) <= 1.0;
    for (int sgn = -1; sgn <= 1; sgn += 2) {
        double du = u - sgn * 4.25, dw = w + 3.5;
        if (du * du + dw * dw <= 5.25 * 5.25)
            return 1;
    }
    for (int i = 0; i < 5; i++) {
        int j = (i + 1) % 5;
        double ex = h->vx[j] - h->vx[i], ey = h->vy[j] - h->vy[i];
        double cr = ex * (w - h->vy[i]) - ey * (u - h->vx[i]);
        if (cr > 0.0)
            return 0;
    }
    return 1;
}

/* The spec's sampling of pixel (row, col): docs/architecture.md section 3, with the
 * centre and lengths scaled by S/64. (dx, dy) nudges the sample point. */
static int ref_pixel(const int f[DATA_K], int S, const ref_heart *h, int row, int col,
                     double dx, double dy)
{
    double k = S / 64.0, s = data_factor_value(1, f[1]) * k;
    double a = data_factor_value(2, f[2]);
    double cx = k * (16.0 + 32.0 * data_factor_value(3, f[3]));
    double cy = k * (16.0 + 32.0 * data_factor_value(4, f[4]));
    double X = col + 0.5 - cx + dx, Y = row + 0.5 - cy + dy;
    double u = (cos(a) * X - sin(a) * Y) / s, w = (sin(a) * X + cos(a) * Y) / s;
    return ref_inside(f[0], h, u, w);
}

/* ---- factors and indices ------------------------------------------------- */

static void test_factor_tables(void **state)
{
    (void)state;
    const int sizes[DATA_K] = {3, 6, 40, 32, 32};
    const char *names[DATA_K] = {"shape", "scale", "orientation", "posX", "posY"};
    size_t n = 1;
    for (int k = 0; k < DATA_K; k++) {
        assert_int_equal(data_factor_sizes[k], sizes[k]);
        assert_string_equal(data_factor_names[k], names[k]);
        n *= (size_t)sizes[k];
    }
    assert_int_equal(n, DATA_N);
    for (int c = 0; c < 3; c++)
        assert_true(data_factor_value(0, c) == c + 1);
    for (int c = 0; c < 6; c++)
        assert_true(fabs(data_factor_value(1, c) - (0.5 + 0.1 * c)) < 1e-12);
    assert_true(data_factor_value(1, 0) == 0.5 && data_factor_value(1, 5) == 1.0);
    for (int c = 0; c < 40; c++)
        assert_true(fabs(data_factor_value(2, c) - 2.0 * PI * c / 39.0) < 1e-12);
    assert_true(data_factor_value(2, 0) == 0.0);
    assert_true(data_factor_value(2, 39) == 2.0 * PI); /* numpy's np.pi*2 */
    for (int k = 3; k < 5; k++) {
        for (int c = 0; c < 32; c++)
            assert_true(fabs(data_factor_value(k, c) - c / 31.0) < 1e-12);
        assert_true(data_factor_value(k, 0) == 0.0 && data_factor_value(k, 31) == 1.0);
    }
}

static void test_index_roundtrip(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < DATA_N; i++) {
        int f[DATA_K];
        data_factors(i, f);
        for (int k = 0; k < DATA_K; k++)
            assert_true(f[k] >= 0 && f[k] < data_factor_sizes[k]);
        uint32_t j = data_index(f);
        if (j != i)
            fail_msg("index %u -> (%d,%d,%d,%d,%d) -> %u", i, f[0], f[1], f[2], f[3], f[4], j);
        /* The documented formula, spelled out. */
        assert_int_equal(i, (uint32_t)((((f[0] * 6 + f[1]) * 40 + f[2]) * 32 + f[3]) * 32 + f[4]));
    }
    const int last[DATA_K] = {2, 5, 39, 31, 31};
    assert_int_equal(data_index(last), DATA_N - 1);
}

/* ---- rendering ----------------------------------------------------------- */

static void check_against_reference(int S, uint32_t stride)
{
    const ref_heart h = ref_heart_make();
    uint8_t img[64 * 64];
    float imgf[64 * 64];
    long ties = 0, images = 0, pixels_on = 0;
    for (uint32_t i = 0; i < DATA_N; i += stride) {
        int f[DATA_K];
        data_factors(i, f);
        data_render_u8(img, f, S);
        data_render(imgf, f, S);
        images++;
        for (int r = 0; r < S; r++)
            for (int c = 0; c < S; c++) {
                int got = img[r * S + c];
                pixels_on += got;
                if (imgf[r * S + c] != (float)got)
                    fail_msg("S=%d index %u pixel (%d,%d): float %g vs uint8 %d", S, i, r, c,
                             (double)imgf[r * S + c], got);
                int want = ref_pixel(f, S, &h, r, c, 0.0, 0.0);
                if (got == want)
                    continue;
                /* A centre exactly on an edge: nudged samples disagree. */
                int edge = 0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                        edge |= ref_pixel(f, S, &h, r, c, 1e-9 * dx, 1e-9 * dy) != want;
                if (!edge)
                    fail_msg("S=%d index %u (shape %d scale %d orient %d x %d y %d) pixel "
                             "(row %d, col %d): renderer %d, reference %d",
                             S, i, f[0], f[1], f[2], f[3], f[4], r, c, got, want);
                ties++;
            }
    }
    print_message("S=%d: %ld images match the reference (%ld on pixels, %ld edge ties)\n", S,
                  images, pixels_on, ties);
}

static void test_render_matches_reference_64(void **state)
{
    (void)state;
    check_against_reference(64, 37);
}

static void test_render_matches_reference_32(void **state)
{
    (void)state;
    check_against_reference(32, 11);
}

static void test_square_area(void **state)
{
    (void)state;
    /* Orientation 0: every image within 2% of (20s)^2 (the count is exact up
     * to the centre's phase against the pixel grid). Rotated (class 5, 46
     * degrees: the worst case for the staircase edges): every image at s = 1
     * within 2%, and the mean over 32 positions within 2% at every scale (a
     * single rotated image at s = 0.8 can be 3% off). */
    for (int sc = 0; sc < 6; sc++) {
        double s = data_factor_value(1, sc), want = 400.0 * s * s;
        for (int p = 0; p < 32; p += 5) {
            int f[DATA_K] = {0, sc, 0, p, 31 - p};
            int a = render_area(f, 64);
            if (fabs(a - want) > 0.02 * want)
                fail_msg("square s=%.1f angle 0 at (%d,%d): %d px, want %.1f", s, p, 31 - p, a,
                         want);
        }
        long sum = 0;
        for (int p = 0; p < 32; p++) {
            int f[DATA_K] = {0, sc, 5, p, (p * 7) % 32};
            int a = render_area(f, 64);
            sum += a;
            if (sc == 5 && fabs(a - want) > 0.02 * want)
                fail_msg("square s=%.1f rotated at (%d,%d): %d px, want %.1f", s, p,
                         (p * 7) % 32, a, want);
        }
        double mean = sum / 32.0;
        print_message("square s=%.1f: (20s)^2 = %.1f, rotated mean %.2f px\n", s, want, mean);
        assert_true(fabs(mean - want) <= 0.02 * want);
    }
}

static void test_ellipse_area(void **state)
{
    (void)state;
    for (int sc = 0; sc < 6; sc++) {
        double s = data_factor_value(1, sc), want = PI * 12.75 * 7.25 * s * s;
        for (int o = 0; o < 40; o += 13) {
            long sum = 0;
            for (int p = 0; p < 32; p++) {
                int f[DATA_K] = {1, sc, o, p, (p * 11) % 32};
                int a = render_area(f, 64);
                sum += a;
                if (sc >= 2 && fabs(a - want) > 0.03 * want)
                    fail_msg("ellipse s=%.1f orient %d at (%d,%d): %d px, want %.1f", s, o, p,
                             (p * 11) % 32, a, want);
            }
            double mean = sum / 32.0;
            if (o == 0)
                print_message("ellipse s=%.1f: pi*12.75s*7.25s = %.1f, mean %.2f px\n", s, want,
                              mean);
            assert_true(fabs(mean - want) <= 0.03 * want);
        }
    }
}

static void test_heart_shape(void **state)
{
    (void)state;
    /* s = 1, angle 0, centred at (16 + 32*15/31) ~ 31.5: the shape spans
     * u in [-9.5, 9.5] and w in [-8.75, 9], i.e. 19 x 17.75 px. */
    int f[DATA_K] = {2, 5, 0, 15, 15};
    int c0, c1, r0, r1;
    render_bbox(f, 64, &c0, &c1, &r0, &r1);
    int wdt = c1 - c0 + 1, hgt = r1 - r0 + 1;
    print_message("heart s=1: %d px wide x %d px tall, area %d px\n", wdt, hgt,
                  render_area(f, 64));
    assert_true(wdt >= 19 && wdt <= 20);
    assert_true(hgt >= 17 && hgt <= 18);
    /* Lobes up, tip down: the top rows are two runs (the cleft), the bottom
     * row is narrow and centred. */
    uint8_t img[64 * 64];
    data_render_u8(img, f, 64);
    int runs = 0;
    for (int c = c0; c <= c1; c++)
        runs += img[r0 * 64 + c] && !(c > c0 && img[r0 * 64 + c - 1]);
    assert_int_equal(runs, 2);
    int bottom = 0;
    double bc = 0.0;
    for (int c = c0; c <= c1; c++)
        if (img[r1 * 64 + c]) {
            bottom++;
            bc += c + 0.5;
        }
    assert_true(bottom >= 1 && bottom <= 3);
    assert_true(fabs(bc / bottom - (16.0 + 32.0 * 15.0 / 31.0)) < 1.0);
    /* Heart at every scale: extent grows with s. */
    for (int sc = 0; sc < 6; sc++) {
        int g[DATA_K] = {2, sc, 0, 15, 15};
        render_bbox(g, 64, &c0, &c1, &r0, &r1);
        double s = data_factor_value(1, sc);
        assert_true(fabs((c1 - c0 + 1) - 19.0 * s) <= 1.5);
        assert_true(fabs((r1 - r0 + 1) - 17.75 * s) <= 1.5);
    }
}

static void test_rotation_direction(void **state)
{
    (void)state;
    /* Counter-clockwise as displayed: the heart's tip points down at 0, right
     * at +90 degrees (class 10 is 92.3), up at 180 (class 20 is 184.6). The
     * tip is the on pixel farthest from the disc centres' midpoint. */
    const int cls[3] = {0, 10, 20};
    const double want[3][2] = {{0, 1}, {1, 0}, {0, -1}}; /* (x, y), y down */
    for (int t = 0; t < 3; t++) {
        int f[DATA_K] = {2, 5, cls[t], 15, 15};
        uint8_t img[64 * 64];
        data_render_u8(img, f, 64);
        double mx = 0, my = 0, n = 0;
        for (int r = 0; r < 64; r++)
            for (int c = 0; c < 64; c++)
                if (img[r * 64 + c]) {
                    mx += c + 0.5;
                    my += r + 0.5;
                    n++;
                }
        /* Centre of mass relative to the sprite centre: shifted away from the
         * tip (the lobes hold more area), so the tip direction is -com. */
        double cx = 16.0 + 32.0 * 15.0 / 31.0;
        double dx = -(mx / n - cx), dy = -(my / n - cx), len = sqrt(dx * dx + dy * dy);
        assert_true(len > 0.5);
        double dot = (dx * want[t][0] + dy * want[t][1]) / len;
        if (dot < 0.95)
            fail_msg("heart class %d: tip direction (%.2f, %.2f), want (%g, %g)", cls[t],
                     dx / len, dy / len, want[t][0], want[t][1]);
    }
    /* Ellipse at class 3 (27.7 degrees counter-clockwise): its long axis rises
     * to the right as displayed, so x and y (down) are negatively correlated. */
    int f[DATA_K] = {1, 5, 3, 15, 15};
    uint8_t img[64 * 64];
    data_render_u8(img, f, 64);
    double sxy = 0, cx = 16.0 + 32.0 * 15.0 / 31.0;
    for (int r = 0; r < 64; r++)
        for (int c = 0; c < 64; c++)
            if (img[r * 64 + c])
                sxy += (c + 0.5 - cx) * (r + 0.5 - cx);
    assert_true(sxy < 0.0);
}

static void test_orientation_wraps(void **state)
{
    (void)state;
    for (int S = 32; S <= 64; S *= 2)
        for (int sh = 0; sh < 3; sh++)
            for (int sc = 0; sc < 6; sc++)
                for (int x = 0; x < 32; x++)
                    for (int y = 0; y < 32; y++) {
                        int f0[DATA_K] = {sh, sc, 0, x, y}, f1[DATA_K] = {sh, sc, 39, x, y};
                        uint8_t a[64 * 64], b[64 * 64];
                        data_render_u8(a, f0, S);
                        data_render_u8(b, f1, S);
                        if (memcmp(a, b, (size_t)S * (size_t)S) != 0)
                            fail_msg("S=%d shape %d scale %d (%d,%d): class 0 != class 39", S, sh,
                                     sc, x, y);
                    }
}

static void test_centre_of_mass(void **state)
{
    (void)state;
    /* Square and ellipse are symmetric about their centre at any angle: the
     * centre of mass of the on pixels is (16 + 32 posX, 16 + 32 posY) up to
     * the pixel grid's phase (< 0.5 px per image, ~0 on average). The heart is
     * symmetric about its vertical axis at angle 0: x only. */
    for (int S = 32; S <= 64; S *= 2) {
        double k = S / 64.0, ex = 0.0, ey = 0.0;
        int n_img = 0;
        for (int sh = 0; sh < 3; sh++)
            for (int o = 0; o < 40; o += (sh == 2 ? 40 : 7))
                for (int x = 0; x < 32; x += 3)
                    for (int y = 0; y < 32; y += 5) {
                        int f[DATA_K] = {sh, 3, o, x, y};
                        uint8_t img[64 * 64];
                        data_render_u8(img, f, S);
                        double mx = 0, my = 0, n = 0;
                        for (int r = 0; r < S; r++)
                            for (int c = 0; c < S; c++)
                                if (img[r * S + c]) {
                                    mx += c + 0.5;
                                    my += r + 0.5;
                                    n++;
                                }
                        assert_true(n > 0);
                        double dx = mx / n - k * (16.0 + 32.0 * data_factor_value(3, x));
                        double dy = my / n - k * (16.0 + 32.0 * data_factor_value(4, y));
                        if (fabs(dx) > 0.5 || (sh < 2 && fabs(dy) > 0.5))
                            fail_msg("S=%d shape %d orient %d at (%d,%d): centre of mass off "
                                     "by (%.3f, %.3f) px",
                                     S, sh, o, x, y, dx, dy);
                        if (sh < 2) {
                            ex += dx;
                            ey += dy;
                            n_img++;
                        }
                    }
        ex /= n_img;
        ey /= n_img;
        print_message("S=%d: mean centre-of-mass offset (%.4f, %.4f) px over %d images\n", S,
                      ex, ey, n_img);
        assert_true(fabs(ex) < 0.05 && fabs(ey) < 0.05);
    }
}

static void test_half_resolution(void **state)
{
    (void)state;
    for (int sh = 0; sh < 3; sh++) {
        long a64 = 0, a32 = 0;
        for (int sc = 0; sc < 6; sc++)
            for (int o = 0; o < 40; o += 9)
                for (int x = 0; x < 32; x += 7)
                    for (int y = 0; y < 32; y += 6) {
                        int f[DATA_K] = {sh, sc, o, x, y};
                        a64 += render_area(f, 64);
                        a32 += render_area(f, 32);
                    }
        double ratio = (double)a32 / (double)a64;
        print_message("shape %d: area 32x32 / 64x64 = %.4f\n", sh, ratio);
        assert_true(fabs(ratio - 0.25) < 0.01);
    }
    /* Same place: the 32 sprite's centre of mass is half the 64 one's. */
    int f[DATA_K] = {1, 4, 6, 20, 9};
    uint8_t a[64 * 64], b[32 * 32];
    data_render_u8(a, f, 64);
    data_render_u8(b, f, 32);
    double m64[2] = {0, 0}, m32[2] = {0, 0}, n64 = 0, n32 = 0;
    for (int i = 0; i < 64 * 64; i++)
        if (a[i]) {
            m64[0] += i % 64 + 0.5;
            m64[1] += i / 64 + 0.5;
            n64++;
        }
    for (int i = 0; i < 32 * 32; i++)
        if (b[i]) {
            m32[0] += i % 32 + 0.5;
            m32[1] += i / 32 + 0.5;
            n32++;
        }
    assert_true(fabs(m32[0] / n32 - 0.5 * m64[0] / n64) < 0.5);
    assert_true(fabs(m32[1] / n32 - 0.5 * m64[1] / n64) < 0.5);
}

/* ---- sources --------------------------------------------------------------- */

static void test_builtin_source(void **state)
{
    (void)state;
    err e;
    data_source *d = (data_source *)&e; /* sentinel: must stay on failure */
    assert_int_equal(data_open_builtin(&d, 48, &e), ERR_INPUT);
    assert_ptr_equal(d, (data_source *)&e);
    assert_non_null(strstr(e.msg, "48"));
    for (int S = 32; S <= 64; S *= 2) {
        assert_int_equal(data_open_builtin(&d, S, &e), 0);
        assert_int_equal(data_count(d), DATA_N);
        assert_int_equal(data_size(d), S);
        float x[64 * 64], y[64 * 64];
        int f[DATA_K], g[DATA_K];
        const uint32_t idx[3] = {0, 123457, DATA_N - 1};
        for (int t = 0; t < 3; t++) {
            data_get(d, idx[t], x, f);
            data_factors(idx[t], g);
            assert_memory_equal(f, g, sizeof f);
            data_render(y, g, S);
            assert_memory_equal(x, y, sizeof(float) * (size_t)(S * S));
        }
        data_get(d, 5, x, NULL);
        data_close(d);
    }
    data_close(NULL);
}

static void test_sample(void **state)
{
    (void)state;
    err e;
    data_source *d = NULL;
    assert_int_equal(data_open_builtin(&d, 32, &e), 0);
    enum { B = 500, ROUNDS = 120 };
    float *x = malloc(sizeof *x * B * 32 * 32), *x2 = malloc(sizeof *x2 * B * 32 * 32);
    float img[32 * 32];
    int f[B * DATA_K], f2[B * DATA_K];
    uint32_t idx[B], idx2[B];
    assert_non_null(x);
    assert_non_null(x2);

    /* Same seed, same draws; a different seed, different draws. */
    rng r1, r2;
    rng_seed(&r1, 42, RNG_TEST);
    rng_seed(&r2, 42, RNG_TEST);
    data_sample(d, &r1, B, x, f, idx);
    data_sample(d, &r2, B, x2, f2, idx2);
    assert_memory_equal(idx, idx2, sizeof idx);
    assert_memory_equal(f, f2, sizeof f);
    assert_memory_equal(x, x2, sizeof *x * B * 32 * 32);
    rng_seed(&r2, 43, RNG_TEST);
    data_sample(d, &r2, B, x2, NULL, idx2);
    assert_true(memcmp(idx, idx2, sizeof idx) != 0);
    /* Each draw is consistent: factors of its index, image of its factors. */
    for (int b = 0; b < B; b++) {
        int g[DATA_K];
        data_factors(idx[b], g);
        assert_memory_equal(f + b * DATA_K, g, sizeof g);
        data_get(d, idx[b], img, NULL);
        assert_memory_equal(x + (size_t)b * 32 * 32, img, sizeof img);
    }

    /* Uniform: each class of each factor gets its share of 60,000 draws within
     * 10% (4 standard deviations for the 40 orientations). */
    long count[DATA_K][40];
    memset(count, 0, sizeof count);
    rng_seed(&r1, 7, RNG_TEST);
    for (int t = 0; t < ROUNDS; t++) {
        data_sample(d, &r1, B, x, f, NULL);
        for (int b = 0; b < B; b++)
            for (int k = 0; k < DATA_K; k++)
                count[k][f[b * DATA_K + k]]++;
    }
    for (int k = 0; k < DATA_K; k++) {
        double want = (double)(B * ROUNDS) / data_factor_sizes[k];
        for (int c = 0; c < data_factor_sizes[k]; c++)
            if (fabs(count[k][c] - want) > 0.10 * want)
                fail_msg("%s class %d drawn %ld times, want about %.0f", data_factor_names[k], c,
                         count[k][c], want);
    }
    free(x);
    free(x2);
    data_close(d);
}

/* ---- HDF5 files ------------------------------------------------------------ */

typedef struct file_fixture {
    char dir[64];
    char path32[128];
} file_fixture;

static size_t progress_calls, progress_last, progress_total; /* test-only */

static void on_progress(size_t done, size_t total)
{
    assert_true(done > progress_last);
    assert_true(done <= total);
    progress_last = done;
    progress_total = total;
    progress_calls++;
}

static int files_setup(void **state)
{
    file_fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    strcpy(fx->dir, "/tmp/test_data_XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path32, sizeof fx->path32, "%s/dsprites32.h5", fx->dir);
    err e;
    progress_calls = progress_last = progress_total = 0;
    if (data_write_file(fx->path32, 32, on_progress, &e) != 0) {
        fprintf(stderr, "data_write_file: %s\n", e.msg);
        return -1;
    }
    *state = fx;
    return 0;
}

static int files_teardown(void **state)
{
    file_fixture *fx = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static void roundtrip(const char *path, int S)
{
    err e;
    data_source *file = NULL, *mem = NULL;
    if (data_open_file(&file, path, S, &e) != 0)
        fail_msg("data_open_file: %s", e.msg);
    assert_int_equal(data_open_builtin(&mem, S, &e), 0);
    assert_int_equal(data_count(file), DATA_N);
    assert_int_equal(data_size(file), S);
    float *a = malloc(sizeof *a * (size_t)(S * S)), *b = malloc(sizeof *b * (size_t)(S * S));
    assert_non_null(a);
    assert_non_null(b);
    long on = 0;
    for (uint32_t i = 0; i < DATA_N; i++) {
        int fa[DATA_K], fb[DATA_K];
        data_get(file, i, a, fa);
        data_get(mem, i, b, fb);
        if (memcmp(a, b, sizeof *a * (size_t)(S * S)) != 0)
            fail_msg("S=%d image %u differs between the file and the renderer", S, i);
        assert_memory_equal(fa, fb, sizeof fa);
        on += a[(S / 2) * S + S / 2] != 0.0f;
    }
    assert_true(on > 0);
    /* data_sample from the file: the same images as from the renderer. */
    rng r1, r2;
    rng_seed(&r1, 3, RNG_TEST);
    rng_seed(&r2, 3, RNG_TEST);
    float *xa = malloc(sizeof *xa * 16 * (size_t)(S * S)),
          *xb = malloc(sizeof *xb * 16 * (size_t)(S * S));
    data_sample(file, &r1, 16, xa, NULL, NULL);
    data_sample(mem, &r2, 16, xb, NULL, NULL);
    assert_memory_equal(xa, xb, sizeof *xa * 16 * (size_t)(S * S));
    free(xa);
    free(xb);
    free(a);
    free(b);
    data_close(file);
    data_close(mem);
}

static void test_file_roundtrip_32(void **state)
{
    file_fixture *fx = *state;
    assert_true(progress_calls > 1);
    assert_int_equal(progress_last, DATA_N);
    assert_int_equal(progress_total, DATA_N);
    roundtrip(fx->path32, 32);
    /* S_expected = 0 takes the file's size. */
    err e;
    data_source *d = NULL;
    assert_int_equal(data_open_file(&d, fx->path32, 0, &e), 0);
    assert_int_equal(data_size(d), 32);
    data_close(d);
}

static void test_file_layout(void **state)
{
    /* The official layout: types, shapes and the latents' contents. */
    file_fixture *fx = *state;
    hid_t f = H5Fopen(fx->path32, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    const char *names[3] = {"/imgs", "/latents/classes", "/latents/values"};
    hid_t want_type[3] = {H5T_STD_U8LE, H5T_STD_I64LE, H5T_IEEE_F64LE};
    const hsize_t want_dims[3][3] = {{DATA_N, 32, 32}, {DATA_N, 6, 0}, {DATA_N, 6, 0}};
    for (int t = 0; t < 3; t++) {
        hid_t d = H5Dopen2(f, names[t], H5P_DEFAULT);
        assert_true(d >= 0);
        hid_t ty = H5Dget_type(d), sp = H5Dget_space(d);
        assert_true(H5Tequal(ty, want_type[t]) > 0);
        hsize_t dims[3] = {0, 0, 0};
        int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
        assert_int_equal(rank, t == 0 ? 3 : 2);
        for (int i = 0; i < rank; i++)
            assert_int_equal(dims[i], want_dims[t][i]);
        H5Sclose(sp);
        H5Tclose(ty);
        H5Dclose(d);
    }
    /* Rows 0, 1,000,01 and N-1 of the latents. */
    const hsize_t rows[3] = {0, 100001, DATA_N - 1};
    hid_t dc = H5Dopen2(f, "/latents/classes", H5P_DEFAULT);
    hid_t dv = H5Dopen2(f, "/latents/values", H5P_DEFAULT);
    for (int t = 0; t < 3; t++) {
        hsize_t start[2] = {rows[t], 0}, count[2] = {1, 6};
        int64_t c[6];
        double v[6];
        hid_t ms = H5Screate_simple(2, count, NULL);
        hid_t fs = H5Dget_space(dc);
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        assert_true(H5Dread(dc, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, c) >= 0);
        assert_true(H5Dread(dv, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, v) >= 0);
        H5Sclose(fs);
        H5Sclose(ms);
        int g[DATA_K];
        data_factors((uint32_t)rows[t], g);
        assert_int_equal(c[0], 0);
        assert_true(v[0] == 1.0);
        for (int k = 0; k < DATA_K; k++) {
            assert_int_equal(c[k + 1], g[k]);
            assert_true(v[k + 1] == data_factor_value(k, g[k]));
        }
    }
    H5Dclose(dc);
    H5Dclose(dv);
    H5Fclose(f);
}

static void test_file_roundtrip_64(void **state)
{
    file_fixture *fx = *state;
    if (!getenv("UNTANGLE_SLOW_TESTS")) {
        print_message("S=64 file round trip skipped (set UNTANGLE_SLOW_TESTS=1; ~10 s)\n");
        return;
    }
    char path[160];
    snprintf(path, sizeof path, "%s/dsprites64.h5", fx->dir);
    err e;
    if (data_write_file(path, 64, NULL, &e) != 0)
        fail_msg("data_write_file: %s", e.msg);
    roundtrip(path, 64);
    remove(path);
}

/* Expect data_open_file(path, S) to fail with ERR_INPUT, a message naming
 * path and containing `what`, and *out untouched. */
static void expect_bad(const char *path, int S, const char *what)
{
    err e;
    err_clear(&e);
    data_source *d = (data_source *)&e;
    int rc = data_open_file(&d, path, S, &e);
    if (rc != ERR_INPUT)
        fail_msg("%s: want ERR_INPUT, got %d (%s)", path, rc, e.msg);
    assert_ptr_equal(d, (data_source *)&e);
    if (!strstr(e.msg, path) || !strstr(e.msg, what))
        fail_msg("message \"%s\" should name %s and %s", e.msg, path, what);
    print_message("  %s\n", e.msg);
}

/* Dataset `name` of type `type` and shape dims in file f, never written (a
 * chunked dataset without data costs no space: full-size files are cheap). */
static void make_dataset(hid_t f, const char *name, hid_t type, int rank, const hsize_t *dims)
{
    hsize_t chunk[3] = {1024, 1, 1};
    for (int i = 1; i < rank; i++)
        chunk[i] = dims[i];
    if (dims[0] < chunk[0])
        chunk[0] = dims[0];
    hid_t sp = H5Screate_simple(rank, dims, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, rank, chunk);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(f, name, type, sp, lcpl, pl, H5P_DEFAULT);
    assert_true(d >= 0);
    H5Dclose(d);
    H5Pclose(lcpl);
    H5Pclose(pl);
    H5Sclose(sp);
}

enum { HAS_IMGS = 1, HAS_CLASSES = 2, HAS_VALUES = 4 };

/* An HDF5 file with the requested datasets (unwritten, so all zeros). */
static void make_file(const char *path, unsigned what, hsize_t n, int S, hid_t img_type,
                      hsize_t ncol)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    const hsize_t di[3] = {n, (hsize_t)S, (hsize_t)S}, dl[2] = {n, ncol};
    if (what & HAS_IMGS)
        make_dataset(f, "/imgs", img_type, 3, di);
    if (what & HAS_CLASSES)
        make_dataset(f, "/latents/classes", H5T_STD_I64LE, 2, dl);
    if (what & HAS_VALUES)
        make_dataset(f, "/latents/values", H5T_IEEE_F64LE, 2, dl);
    if (!(what & (HAS_CLASSES | HAS_VALUES))) {
        hid_t g = H5Gcreate2(f, "/latents", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Gclose(g);
    }
    H5Fclose(f);
}

static void test_bad_files(void **state)
{
    file_fixture *fx = *state;
    char p[160];
    const unsigned ALL = HAS_IMGS | HAS_CLASSES | HAS_VALUES;

    snprintf(p, sizeof p, "%s/missing.h5", fx->dir);
    expect_bad(p, 64, "No such file");

    snprintf(p, sizeof p, "%s/empty.h5", fx->dir);
    FILE *fp = fopen(p, "wb");
    fclose(fp);
    expect_bad(p, 64, "not an HDF5 file");

    snprintf(p, sizeof p, "%s/garbage.h5", fx->dir);
    fp = fopen(p, "wb");
    for (int i = 0; i < 1000; i++)
        fprintf(fp, "this is not HDF5 %d\n", i);
    fclose(fp);
    expect_bad(p, 64, "not an HDF5 file");

    expect_bad(fx->dir, 64, "not a regular file"); /* a directory */

    snprintf(p, sizeof p, "%s/noimgs.h5", fx->dir);
    make_file(p, HAS_CLASSES | HAS_VALUES, DATA_N, 64, H5T_STD_U8LE, 6);
    expect_bad(p, 64, "dataset /imgs missing");

    snprintf(p, sizeof p, "%s/nolatents.h5", fx->dir);
    make_file(p, HAS_IMGS, DATA_N, 64, H5T_STD_U8LE, 6);
    expect_bad(p, 64, "dataset /latents/classes missing");

    snprintf(p, sizeof p, "%s/novalues.h5", fx->dir);
    make_file(p, HAS_IMGS | HAS_CLASSES, DATA_N, 64, H5T_STD_U8LE, 6);
    expect_bad(p, 64, "dataset /latents/values missing");

    snprintf(p, sizeof p, "%s/fewrows.h5", fx->dir);
    make_file(p, ALL, 10, 64, H5T_STD_U8LE, 6);
    expect_bad(p, 64, "/imgs has shape (10,64,64)");

    snprintf(p, sizeof p, "%s/notsquare.h5", fx->dir);
    make_file(p, ALL, DATA_N, 64, H5T_STD_U8LE, 6);
    {
        hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
        H5Ldelete(f, "/imgs", H5P_DEFAULT);
        const hsize_t d3[3] = {DATA_N, 64, 48};
        make_dataset(f, "/imgs", H5T_STD_U8LE, 3, d3);
        H5Fclose(f);
    }
    expect_bad(p, 64, "/imgs has shape (737280,64,48)");

    snprintf(p, sizeof p, "%s/float.h5", fx->dir);
    make_file(p, ALL, DATA_N, 64, H5T_IEEE_F32LE, 6);
    expect_bad(p, 64, "dataset /imgs has float type");

    snprintf(p, sizeof p, "%s/rank2.h5", fx->dir);
    {
        hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        const hsize_t d2[2] = {DATA_N, 4096};
        make_dataset(f, "/imgs", H5T_STD_U8LE, 2, d2);
        H5Fclose(f);
    }
    expect_bad(p, 64, "dataset /imgs has rank 2");

    snprintf(p, sizeof p, "%s/size32.h5", fx->dir);
    make_file(p, ALL, DATA_N, 32, H5T_STD_U8LE, 6);
    expect_bad(p, 64, "/imgs holds 32x32 images");

    snprintf(p, sizeof p, "%s/cols5.h5", fx->dir);
    make_file(p, ALL, DATA_N, 64, H5T_STD_U8LE, 5);
    expect_bad(p, 64, "/latents/classes has shape (737280,5)");

    /* Right shapes, unwritten (all-zero) classes: row 1 should be posY 1. */
    snprintf(p, sizeof p, "%s/zeros.h5", fx->dir);
    make_file(p, ALL, DATA_N, 64, H5T_STD_U8LE, 6);
    expect_bad(p, 64, "/latents/classes: row 1 is");

    /* The real S = 32 file opened as 64. */
    expect_bad(fx->path32, 64, "/imgs holds 32x32 images but image_size is 64");
}

static void tamper(const char *path, const char *name, hid_t mem_type, int rank,
                   const hsize_t *start, const hsize_t *count, const void *buf)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), fs = H5Dget_space(d);
    hid_t ms = H5Screate_simple(rank, count, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    assert_true(H5Dwrite(d, mem_type, ms, fs, H5P_DEFAULT, buf) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);
}

static void test_tampered_file(void **state)
{
    /* Runs last in the group: it damages the S = 32 file. */
    file_fixture *fx = *state;
    const hsize_t s1[3] = {500000, 3, 4}, c1[3] = {1, 1, 1};
    const uint8_t two = 2;
    tamper(fx->path32, "/imgs", H5T_NATIVE_UINT8, 3, s1, c1, &two);
    expect_bad(fx->path32, 32, "image 500000 has pixel value 2");

    const hsize_t s2[2] = {1234, 2}, c2[2] = {1, 1};
    const int64_t bad = 5;
    tamper(fx->path32, "/latents/classes", H5T_NATIVE_INT64, 2, s2, c2, &bad);
    expect_bad(fx->path32, 32, "/latents/classes: row 1234 is");
}

static void test_write_errors(void **state)
{
    file_fixture *fx = *state;
    err e;
    char p[160];
    snprintf(p, sizeof p, "%s/no/such/dir/x.h5", fx->dir);
    int rc = data_write_file(p, 32, NULL, &e);
    assert_int_equal(rc, ERR_IO);
    assert_non_null(strstr(e.msg, p));
    assert_int_equal(access(p, F_OK), -1);
    snprintf(p, sizeof p, "%s/x.h5", fx->dir);
    assert_int_equal(data_write_file(p, 16, NULL, &e), ERR_INPUT);
    assert_int_equal(access(p, F_OK), -1);
}


/* ---- the other data sets (color_dsprites, noisy_dsprites, shapes3d) ------- */

/* Every data set by name: channels, factors, grid; an unknown name refused. */
static void test_describe_names(void **state)
{
    (void)state;
    err e;
    data_factor_desc fd;
    const char *names[] = {"dsprites", "color_dsprites", "noisy_dsprites", "shapes3d"};
    const int C[] = {1, 3, 3, 3}, K[] = {5, 5, 5, 6};
    const size_t N[] = {DATA_N, DATA_N, DATA_N, 480000};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(data_describe_name(names[i], &fd, &e), 0);
        assert_string_equal(fd.name, names[i]);
        assert_int_equal(fd.channels, C[i]);
        assert_int_equal(fd.K, K[i]);
        assert_true(fd.n_grid == N[i]);
        assert_int_equal(data_set_find(names[i]), i);
    }
    assert_string_equal(fd.names[5], "orientation");
    assert_int_equal(fd.sizes[5], 15);
    assert_int_equal(data_describe_name("mnist", &fd, &e), ERR_INPUT);
    assert_non_null(strstr(e.msg, "mnist"));
    data_source *d = NULL;
    assert_int_equal(data_open(&d, "mnist", NULL, 64, &e), ERR_INPUT);
    assert_null(d);
    /* shapes3d has no built-in source: its file is required, and said where */
    assert_int_equal(data_open(&d, "shapes3d", "", 64, &e), ERR_INPUT);
    assert_null(d);
    assert_non_null(strstr(e.msg, "https://github.com/deepmind/3d-shapes"));
    assert_non_null(strstr(e.msg, "3dshapes.h5"));
}

/* color_dsprites (disentanglement_lib's ColorDSprites): plane c of an image is
 * the binary sprite times one colour value c_c in [0.5, 1) for the whole
 * image; the colour is a function of (seed, index); a run's draws take it
 * from the run's stream. */
static void test_color_dsprites(void **state)
{
    (void)state;
    err e;
    for (int S = 32; S <= 64; S += 32) {
        data_source *col = NULL, *bin = NULL;
        assert_int_equal(data_open(&col, "color_dsprites", NULL, S, &e), 0);
        assert_int_equal(data_open(&bin, "dsprites", NULL, S, &e), 0);
        assert_int_equal(data_channels(col), 3);
        assert_int_equal(data_channels(bin), 1);
        assert_int_equal(data_count(col), DATA_N);
        const size_t P = (size_t)S * S;
        float *x = malloc(sizeof *x * 3 * P), *y = malloc(sizeof *y * 3 * P), *b = malloc(sizeof *b * P);
        double colours[2][3];
        for (int t = 0; t < 40; t++) {
            uint32_t idx = (uint32_t)(t * 18413u % DATA_N);
            int f1[DATA_MAX_K], f2[DATA_MAX_K];
            data_get_seeded(col, idx, 7, x, f1);
            data_get(bin, idx, b, f2);
            assert_memory_equal(f1, f2, sizeof(int) * DATA_K);
            for (int c = 0; c < 3; c++) {
                double cv = -1;
                for (size_t p = 0; p < P; p++) {
                    float v = x[c * P + p];
                    if (b[p] == 0.0f) {
                        assert_true(v == 0.0f);
                    } else if (cv < 0) {
                        cv = v;
                    } else {
                        assert_true(v == (float)cv); /* one colour per image and channel */
                    }
                }
                assert_true(cv >= 0.5 && cv < 1.0);
                if (t < 2)
                    colours[t][c] = cv;
            }
            /* the same (seed, index): the same image; another seed: another colour */
            data_get_seeded(col, idx, 7, y, NULL);
            assert_memory_equal(x, y, sizeof *x * 3 * P);
            data_get_seeded(col, idx, 8, y, NULL);
            assert_memory_not_equal(x, y, sizeof *x * 3 * P);
        }
        assert_true(colours[0][0] != colours[1][0] || colours[0][1] != colours[1][1]);
        free(x);
        free(y);
        free(b);
        data_close(col);
        data_close(bin);
    }
}

/* noisy_dsprites (disentanglement_lib's NoisyDSprites): min(x + u, 1), u
 * uniform in [0, 1) per pixel and channel: the sprite's pixels are 1 in every
 * channel, the background is noise of mean 1/2 and variance 1/12. */
static void test_noisy_dsprites(void **state)
{
    (void)state;
    err e;
    data_source *nz = NULL, *bin = NULL;
    assert_int_equal(data_open(&nz, "noisy_dsprites", NULL, 64, &e), 0);
    assert_int_equal(data_open(&bin, "dsprites", NULL, 64, &e), 0);
    const size_t P = 64 * 64;
    float *x = malloc(sizeof *x * 3 * P), *b = malloc(sizeof *b * P);
    double sum = 0, sum2 = 0;
    size_t n = 0, same = 0;
    for (int t = 0; t < 10; t++) {
        uint32_t idx = (uint32_t)(t * 73331u % DATA_N);
        data_get_seeded(nz, idx, 3, x, NULL);
        data_get(bin, idx, b, NULL);
        for (size_t p = 0; p < P; p++)
            for (int c = 0; c < 3; c++) {
                float v = x[c * P + p];
                if (b[p] != 0.0f) {
                    assert_true(v == 1.0f);
                    continue;
                }
                assert_true(v >= 0.0f && v < 1.0f);
                sum += v;
                sum2 += (double)v * v;
                n++;
                same += c > 0 && v == x[p];
            }
    }
    double mean = sum / (double)n, var = sum2 / (double)n - mean * mean;
    print_message("  noise: mean %.4f var %.4f over %zu values\n", mean, var, n);
    assert_true(fabs(mean - 0.5) < 0.005);
    assert_true(fabs(var - 1.0 / 12.0) < 0.003);
    assert_true(same < n / 1000); /* each channel its own noise */
    free(x);
    free(b);
    data_close(nz);
    data_close(bin);
}

/* Drawing: the variants take each image's index and then its colour or noise
 * from the caller's stream (reproducible from it); dSprites takes exactly one
 * draw per image, as always, so its batches are what they were. Evaluation's
 * canonical order reads (seed, index) only: any order, any thread. */
static void test_variant_draws(void **state)
{
    (void)state;
    err e;
    data_source *bin = NULL, *col = NULL;
    assert_int_equal(data_open(&bin, "dsprites", NULL, 32, &e), 0);
    assert_int_equal(data_open(&col, "color_dsprites", NULL, 32, &e), 0);
    const size_t P = 32 * 32;
    float *x = malloc(sizeof *x * 8 * 3 * P), *y = malloc(sizeof *y * 8 * 3 * P);
    uint32_t ia[8], ib[8];
    rng r1, r2;
    rng_seed(&r1, 5, RNG_TEST);
    data_sample(bin, &r1, 8, x, NULL, ia);
    rng_seed(&r2, 5, RNG_TEST);
    for (int i = 0; i < 8; i++)
        ib[i] = (uint32_t)rng_below(&r2, DATA_N);
    assert_memory_equal(ia, ib, sizeof ia);
    assert_memory_equal(&r1, &r2, sizeof r1); /* nothing else drawn */
    rng_seed(&r1, 5, RNG_TEST);
    rng_seed(&r2, 5, RNG_TEST);
    data_sample(col, &r1, 8, x, NULL, ia);
    data_sample(col, &r2, 8, y, NULL, ib);
    assert_memory_equal(x, y, sizeof *x * 8 * 3 * P);
    assert_int_equal(ia[0], ib[0]);
    data_sample(col, &r2, 8, y, NULL, NULL); /* the stream moved on: other images */
    assert_memory_not_equal(x, y, sizeof *x * 8 * 3 * P);
    /* canonical order: image 100's colour does not depend on what came before */
    data_get_seeded(col, 100, 9, x, NULL);
    data_get_seeded(col, 5, 9, y, NULL);
    data_get_seeded(col, 100, 9, y, NULL);
    assert_memory_equal(x, y, sizeof *x * 3 * P);
    free(x);
    free(y);
    data_close(bin);
    data_close(col);
}

typedef struct s3_fixture {
    char dir[64], small[128];
} s3_fixture;

static const int s3_small_sizes[6] = {3, 2, 2, 3, 2, 3}; /* N = 216 */

static int sets_setup(void **state)
{
    s3_fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    strcpy(fx->dir, "/tmp/test_sets_XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->small, sizeof fx->small, "%s/small3d.h5", fx->dir);
    err e;
    if (data_write_shapes3d(fx->small, s3_small_sizes, 0, &e) != 0) {
        fprintf(stderr, "data_write_shapes3d: %s\n", e.msg);
        return -1;
    }
    *state = fx;
    return 0;
}

static int sets_teardown(void **state)
{
    s3_fixture *fx = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* /images row i of path as stored: (64, 64, 3) uint8. */
static void read_raw(const char *path, uint32_t i, uint8_t *buf)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, "/images", H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    hsize_t st[4] = {i, 0, 0, 0}, cnt[4] = {1, 64, 64, 3};
    hid_t ms = H5Screate_simple(4, cnt, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, st, NULL, cnt, NULL);
    assert_true(H5Dread(d, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, buf) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);
}

/* A small file of the 3dshapes layout: sizes from the labels' distinct
 * values, classes = the mixed radix digits of the index, images the stored
 * bytes / 255 channel-major, and S = 32 their 2x2 means. */
static void test_shapes3d_small(void **state)
{
    s3_fixture *fx = *state;
    err e;
    data_source *d = NULL, *d32 = NULL;
    if (data_open(&d, "shapes3d", fx->small, 64, &e) != 0)
        fail_msg("data_open: %s", e.msg);
    assert_int_equal(data_open(&d32, "shapes3d", fx->small, 32, &e), 0);
    assert_int_equal(data_count(d), 216);
    assert_int_equal(data_channels(d), 3);
    assert_int_equal(data_size(d32), 32);
    data_factor_desc fd;
    data_describe(d, &fd);
    assert_int_equal(fd.K, 6);
    assert_true(fd.n_grid == 216);
    assert_string_equal(fd.names[0], "floor_hue");
    for (int k = 0; k < 6; k++)
        assert_int_equal(fd.sizes[k], s3_small_sizes[k]);
    float *x = malloc(sizeof *x * 3 * 64 * 64), *h = malloc(sizeof *h * 3 * 32 * 32);
    uint8_t raw[64 * 64 * 3];
    for (uint32_t i = 0; i < 216; i += 7) {
        int f[DATA_MAX_K];
        data_get(d, i, x, f);
        uint32_t q = i;
        for (int k = 5; k >= 0; k--) {
            assert_int_equal(f[k], (int)(q % (uint32_t)s3_small_sizes[k]));
            q /= (uint32_t)s3_small_sizes[k];
        }
        read_raw(fx->small, i, raw);
        for (int p = 0; p < 64 * 64; p++)
            for (int c = 0; c < 3; c++)
                assert_true(x[c * 4096 + p] == (float)raw[3 * p + c] * (1.0f / 255.0f));
        data_get(d32, i, h, NULL);
        for (int yy = 0; yy < 32; yy++)
            for (int xx = 0; xx < 32; xx++)
                for (int c = 0; c < 3; c++) {
                    unsigned s4 = 0;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++)
                            s4 += raw[((2 * yy + dy) * 64 + 2 * xx + dx) * 3 + c];
                    assert_true(fabsf(h[c * 1024 + yy * 32 + xx] - (float)s4 / 1020.0f) < 1e-6f);
                }
    }
    /* the images tell the factors apart: images that differ in one factor
     * differ (from hues floor 1, wall 0, object 1: three distinct colours) */
    float *y = malloc(sizeof *y * 3 * 64 * 64);
    const int f0[6] = {1, 0, 1, 0, 0, 0};
    uint32_t i0 = 0;
    for (int k = 0; k < 6; k++)
        i0 = i0 * (uint32_t)s3_small_sizes[k] + (uint32_t)f0[k];
    data_get(d, i0, x, NULL);
    for (int k = 0; k < 6; k++) {
        int f1[6];
        memcpy(f1, f0, sizeof f1);
        f1[k] = (f0[k] + 1) % s3_small_sizes[k];
        uint32_t i1 = 0;
        for (int j = 0; j < 6; j++)
            i1 = i1 * (uint32_t)s3_small_sizes[j] + (uint32_t)f1[j];
        data_get(d, i1, y, NULL);
        if (memcmp(x, y, sizeof *x * 3 * 4096) == 0)
            fail_msg("factor %s: another class draws the same image", fd.names[k]);
    }
    free(y);
    free(x);
    free(h);
    data_close(d);
    data_close(d32);
}

/* A 3dshapes-layout file with one dataset changed. */
typedef enum { S3_OK, S3_NO_IMAGES, S3_NO_LABELS, S3_IMG_FLOAT, S3_IMG_INT16, S3_IMG_1CH,
               S3_LAB_INT, S3_LAB_5COL, S3_LAB_ROWS, S3_LAB_ORDER, S3_LAB_NOTPROD } s3_flaw;

static void make_s3(const char *path, s3_flaw flaw)
{
    const hsize_t N = 216;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    if (flaw != S3_NO_IMAGES) {
        hsize_t di[4] = {N, 64, 64, flaw == S3_IMG_1CH ? 1 : 3};
        hid_t t = flaw == S3_IMG_FLOAT ? H5T_IEEE_F32LE : flaw == S3_IMG_INT16 ? H5T_STD_I16LE
                                                                             : H5T_STD_U8LE;
        hid_t sp = H5Screate_simple(4, di, NULL);
        hid_t d = H5Dcreate2(f, "images", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dclose(d);
        H5Sclose(sp);
    }
    if (flaw != S3_NO_LABELS) {
        const hsize_t rows = flaw == S3_LAB_ROWS ? N - 1 : N, cols = flaw == S3_LAB_5COL ? 5 : 6;
        double *lab = calloc(rows * cols, sizeof *lab);
        for (hsize_t i = 0; i < rows; i++) {
            hsize_t q = i;
            for (int k = 5; k >= 0; k--) {
                if ((hsize_t)k < cols)
                    lab[i * cols + (hsize_t)k] = 0.5 * (double)(q % (hsize_t)s3_small_sizes[k]);
                q /= (hsize_t)s3_small_sizes[k];
            }
        }
        if (flaw == S3_LAB_ORDER) /* rows 10 and 11 swapped */
            for (hsize_t c = 0; c < cols; c++) {
                double t = lab[10 * cols + c];
                lab[10 * cols + c] = lab[11 * cols + c];
                lab[11 * cols + c] = t;
            }
        if (flaw == S3_LAB_NOTPROD) /* a fourth orientation value */
            lab[20 * cols + 5] = 7.0;
        hsize_t dl[2] = {rows, cols};
        hid_t sp = H5Screate_simple(2, dl, NULL);
        hid_t t = flaw == S3_LAB_INT ? H5T_STD_I32LE : H5T_IEEE_F64LE;
        hid_t d = H5Dcreate2(f, "labels", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, lab) >= 0);
        H5Dclose(d);
        H5Sclose(sp);
        free(lab);
    }
    H5Fclose(f);
}

static void expect_bad_s3(const char *path, const char *what)
{
    err e;
    err_clear(&e);
    data_source *d = (data_source *)&e;
    int rc = data_open(&d, "shapes3d", path, 64, &e);
    if (rc != ERR_INPUT)
        fail_msg("%s: want ERR_INPUT, got %d (%s)", path, rc, e.msg);
    assert_ptr_equal(d, (data_source *)&e);
    if (!strstr(e.msg, path) || !strstr(e.msg, what) || strchr(e.msg, '\n'))
        fail_msg("message \"%s\" should be one line naming %s and %s", e.msg, path, what);
    print_message("  %s\n", e.msg);
}

/* Each bad layout: one line naming the file and the dataset; nothing opened. */
static void test_shapes3d_bad(void **state)
{
    s3_fixture *fx = *state;
    char p[160];
    snprintf(p, sizeof p, "%s/missing.h5", fx->dir);
    expect_bad_s3(p, "https://github.com/deepmind/3d-shapes");
    static const struct {
        s3_flaw flaw;
        const char *what;
    } cases[] = {
        {S3_NO_IMAGES, "dataset /images missing"},
        {S3_NO_LABELS, "dataset /labels missing"},
        {S3_IMG_FLOAT, "dataset /images has float type"},
        {S3_IMG_INT16, "dataset /images is not uint8"},
        {S3_IMG_1CH, "dataset /images has shape (216,64,64,1), expected (N,64,64,3)"},
        {S3_LAB_INT, "dataset /labels has integer type"},
        {S3_LAB_5COL, "dataset /labels has shape (216,5), expected (216,6)"},
        {S3_LAB_ROWS, "dataset /labels has shape (215,6)"},
        {S3_LAB_ORDER, "dataset /labels: row 10 has"},
        {S3_LAB_NOTPROD, "dataset /labels: 216 rows, but its distinct values"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(p, sizeof p, "%s/bad%zu.h5", fx->dir, i);
        make_s3(p, cases[i].flaw);
        expect_bad_s3(p, cases[i].what);
    }
    snprintf(p, sizeof p, "%s/good.h5", fx->dir);
    make_s3(p, S3_OK); /* the same writer without a flaw opens */
    err e;
    data_source *d = NULL;
    assert_int_equal(data_open(&d, "shapes3d", p, 64, &e), 0);
    data_close(d);
    snprintf(p, sizeof p, "%s/garbage.h5", fx->dir);
    FILE *fp = fopen(p, "wb");
    fputs("not hdf5\n", fp);
    fclose(fp);
    expect_bad_s3(p, "not an HDF5 file");
}

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* A file of the official size (480,000 images, 5.9 GB of pixels) written
 * sparse: it takes no disk, opens, and serves batches and a sequential block
 * without the process growing by more than a few MB (256 MB allowed, for
 * the sanitizer build). */
static void test_shapes3d_full_size_sparse(void **state)
{
    s3_fixture *fx = *state;
    char p[160];
    snprintf(p, sizeof p, "%s/full.h5", fx->dir);
    const int sizes[6] = {10, 10, 10, 8, 4, 15};
    err e;
    if (data_write_shapes3d(p, sizes, 1, &e) != 0)
        fail_msg("data_write_shapes3d: %s", e.msg);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    print_message("  full-size sparse file: %lld bytes on disk\n", (long long)st.st_blocks * 512);
    assert_true(st.st_blocks * 512 < 20 * 1024 * 1024);
    long rss0 = max_rss_kb();
    data_source *d = NULL;
    if (data_open(&d, "shapes3d", p, 64, &e) != 0)
        fail_msg("data_open: %s", e.msg);
    assert_int_equal(data_count(d), 480000);
    data_factor_desc fd;
    data_describe(d, &fd);
    for (int k = 0; k < 6; k++)
        assert_int_equal(fd.sizes[k], sizes[k]);
    float *x = malloc(sizeof *x * 64 * 3 * 64 * 64);
    int f[64 * DATA_MAX_K];
    rng r;
    rng_seed(&r, 1, RNG_TEST);
    for (int b = 0; b < 8; b++)
        data_sample(d, &r, 64, x, f, NULL);
    for (uint32_t i = 479000; i < 480000; i++)
        data_get(d, i, x, f);
    assert_int_equal(f[0], 9);
    assert_int_equal(f[5], 14);
    for (int i = 0; i < 3 * 4096; i++)
        assert_true(x[i] == 0.0f); /* unwritten: the fill value */
    long grown = max_rss_kb() - rss0;
    print_message("  peak RSS grew by %ld kB opening and reading it\n", grown);
    /* ~5 MB here; under AddressSanitizer its quarantine of freed blocks
     * adds ~130 MB. Either is far from the 5.9 GB of pixels. */
    assert_true(grown < 256 * 1024);
    free(x);
    data_close(d);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_factor_tables),
        cmocka_unit_test(test_index_roundtrip),
        cmocka_unit_test(test_render_matches_reference_64),
        cmocka_unit_test(test_render_matches_reference_32),
        cmocka_unit_test(test_square_area),
        cmocka_unit_test(test_ellipse_area),
        cmocka_unit_test(test_heart_shape),
        cmocka_unit_test(test_rotation_direction),
        cmocka_unit_test(test_orientation_wraps),
        cmocka_unit_test(test_centre_of_mass),
        cmocka_unit_test(test_half_resolution),
        cmocka_unit_test(test_builtin_source),
        cmocka_unit_test(test_sample),
    };
    const struct CMUnitTest files[] = {
        cmocka_unit_test(test_file_roundtrip_32),
        cmocka_unit_test(test_file_layout),
        cmocka_unit_test(test_file_roundtrip_64),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_tampered_file),
    };
    const struct CMUnitTest sets[] = {
        cmocka_unit_test(test_describe_names),
        cmocka_unit_test(test_color_dsprites),
        cmocka_unit_test(test_noisy_dsprites),
        cmocka_unit_test(test_variant_draws),
        cmocka_unit_test(test_shapes3d_small),
        cmocka_unit_test(test_shapes3d_bad),
        cmocka_unit_test(test_shapes3d_full_size_sparse),
    };
    int fails = cmocka_run_group_tests_name("data", pure, NULL, NULL);
    fails += cmocka_run_group_tests_name("data sets", sets, sets_setup, sets_teardown);
    fails += cmocka_run_group_tests_name("data files", files, files_setup, files_teardown);
    return fails ? 1 : 0;
}
