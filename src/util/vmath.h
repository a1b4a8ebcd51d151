/* util/vmath.h: exp, expm1 and log1p in float for the loops that take one per
 * element (Chen's estimators, tanh, the Bernoulli loss). libm's are a call per
 * element (15-25 ns here) and are not vectorised without -ffast-math, which
 * the project forbids; these are branch-free polynomials that gcc vectorises
 * (with -fno-trapping-math, which lets it if-convert their clamps: it changes
 * no value). Within a build their numbers are fixed; an FMA build and one
 * without differ in the last bits (MADD). */
#ifndef UNTANGLE_VMATH_H
#define UNTANGLE_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* a*b + c, fused where the target has FMA (one rounding) */
#if defined(__FMA__)
#define MADD(a, b, c) fmaf((a), (b), (c))
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

/* Declares k and r with x = k ln2 + r, |r| <= ln2/2 (Cody-Waite), for x <= 0
 * (below -87 taken as -87): k in [-126, 0], whose 2^k each function builds
 * from the exponent bits. A macro, not a helper function: gcc vectorises
 * Chen's loops around exp_le0 only when it is one self-contained function
 * (with a helper returning r and 2^k, those loops ran 3x slower). For the
 * same reason exp_le0 and expm1_le0 each write out their polynomial and 2^k:
 * with those as shared float helpers, one of the two instances of Chen's
 * Gaussian loop stayed scalar. */
#define VM_REDUCE(x, k, r)                                                              \
    x = x > -87.0f ? x : -87.0f;                                                        \
    float k = MADD(x, 1.44269504088896341f, 12582912.0f) - 12582912.0f; /* round */   \
    float r = MADD(k, -0.693359375f, x);                                                \
    r = MADD(k, 2.12194440e-4f, r)

/* exp(x) for x <= 0 (x below -87: exp(-87) ~ 1.6e-38): 2^k times the
 * degree-7 Taylor polynomial of e^r (relative error < 1e-8 before rounding). */
static inline float exp_le0(float x)
{
    VM_REDUCE(x, kf, r);
    float p = 1.0f / 5040.0f;
    p = MADD(p, r, 1.0f / 720.0f);
    p = MADD(p, r, 1.0f / 120.0f);
    p = MADD(p, r, 1.0f / 24.0f);
    p = MADD(p, r, 1.0f / 6.0f);
    p = MADD(p, r, 0.5f);
    p = MADD(p, r, 1.0f);
    p = MADD(p, r, 1.0f);
    int32_t bits = ((int32_t)kf + 127) * 8388608; /* (k + 127) << 23 */
    float s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
}

/* exp(x) - 1 for x <= 0: 2^k expm1(r) + (2^k - 1), expm1(r) = r times the
 * degree-6 Taylor polynomial of (e^r - 1)/r (relative error < 2e-8), so that
 * a small x keeps its digits (k = 0: the result is expm1(r) itself). */
static inline float expm1_le0(float x)
{
    VM_REDUCE(x, kf, r);
    float q = 1.0f / 5040.0f;
    q = MADD(q, r, 1.0f / 720.0f);
    q = MADD(q, r, 1.0f / 120.0f);
    q = MADD(q, r, 1.0f / 24.0f);
    q = MADD(q, r, 1.0f / 6.0f);
    q = MADD(q, r, 0.5f);
    q = MADD(q, r, 1.0f);
    int32_t bits = ((int32_t)kf + 127) * 8388608;
    float s;
    memcpy(&s, &bits, sizeof s);
    return MADD(s, q * r, s - 1.0f);
}

/* log(1 + e) for e in [0, 1]: 1 + e = 2^k m with m in [sqrt(1/2), sqrt 2],
 * log m = 2 atanh(u), u = (m - 1)/(m + 1) taken from e directly (k = 0:
 * u = e/(2 + e), exact for a tiny e; k = 1: u = (e - 1)/(e + 3)), |u| <=
 * 0.172, and 2 atanh(u) = 2u (1 + u^2/3 + ... + u^8/9) (relative error
 * < 3e-9). */
static inline float log1p_01(float e)
{
    const int one = e > 0.41421356f; /* k */
    float u = (one ? e - 1.0f : e) / (one ? e + 3.0f : e + 2.0f), u2 = u * u, v = 2.0f * u;
    float p = 1.0f / 9.0f;
    p = MADD(p, u2, 1.0f / 7.0f);
    p = MADD(p, u2, 1.0f / 5.0f);
    p = MADD(p, u2, 1.0f / 3.0f);
    return MADD(v * u2, p, v) + (one ? 0.69314718f : 0.0f); /* 2u, then the rest */
}

#endif
