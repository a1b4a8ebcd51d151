/* nn arena: parameters, gradients and Adam's moments in one allocation, and
 * the optimiser step over it.
 *
 * Layout of the single 64-byte aligned allocation (stride = n rounded up to 16
 * floats, so that every block starts on a 64-byte boundary):
 *     [ param (stride) | grad (stride) | m (stride) | v (stride) ]
 * Every slot's offset is also a multiple of 16 floats, so each named tensor is
 * 64-byte aligned in all four blocks; the few padding floats between slots are
 * zero in every block and stay zero under Adam (m = v = g = 0 gives a zero
 * update).
 *
 * Adam runs on the thread pool in blocks of NN_ELEM_BLOCK floats (a multiple
 * of its 16-float vectors): an elementwise map, the same numbers for any
 * thread count. */
#include "nn_impl.h"
#include "untangle/nn.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

/* Alignment unit in floats: 16 floats = 64 bytes, one cache line, one zmm. */
#define ARENA_ALIGN 16

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

void nn_arena_init(nn_arena *a)
{
    memset(a, 0, sizeof *a);
}

size_t nn_arena_reserve(nn_arena *a, const char *name, size_t size, err *e)
{
    assert(a->param == NULL && "nn_arena_reserve after nn_arena_alloc");
    if (a->n_slots == a->cap_slots) {
        size_t cap = a->cap_slots ? 2 * a->cap_slots : 16;
        nn_slot *s = realloc(a->slots, cap * sizeof *s);
        if (!s) {
            err_set(e, ERR_NOMEM, "nn_arena_reserve: cannot grow the slot table to %zu slots "
                    "(reserving \"%s\")", cap, name);
            return (size_t)-1;
        }
        a->slots = s;
        a->cap_slots = cap;
    }
    size_t offset = round_up(a->n, ARENA_ALIGN);
    if (size > SIZE_MAX / 8 - offset) { /* 4 blocks * 4 bytes must not overflow later */
        err_set(e, ERR_NOMEM, "nn_arena_reserve: \"%s\" of %zu floats is too large", name, size);
        return (size_t)-1;
    }
    nn_slot *s = &a->slots[a->n_slots++];
    /* Names longer than the field are truncated: they are labels, not keys. */
    snprintf(s->name, sizeof s->name, "%s", name);
    s->offset = offset;
    s->size = size;
    a->n = offset + size;
    return offset;
}

int nn_arena_alloc(nn_arena *a, err *e)
{
    assert(a->param == NULL && "nn_arena_alloc called twice");
    size_t stride = round_up(a->n, ARENA_ALIGN);
    if (stride == 0)
        stride = ARENA_ALIGN; /* aligned_alloc(64, 0) is not portable */
    if (stride > SIZE_MAX / (4 * sizeof(float)))
        return err_set(e, ERR_NOMEM, "nn_arena_alloc: %zu parameters overflow size_t", a->n);
    size_t bytes = 4 * stride * sizeof(float); /* a multiple of 64, as aligned_alloc needs */
    float *base = aligned_alloc(64, bytes);
    if (!base)
        return err_set(e, ERR_NOMEM, "nn_arena_alloc: cannot allocate %zu bytes for %zu parameters "
                       "(param, grad, m, v)", bytes, a->n);
    memset(base, 0, bytes);
    a->param = base;
    a->grad = base + stride;
    a->m = base + 2 * stride;
    a->v = base + 3 * stride;
    a->t = 0;
    return 0;
}

void nn_arena_free(nn_arena *a)
{
    if (!a)
        return;
    free(a->param); /* the base of the single allocation */
    free(a->slots);
    nn_arena_init(a);
}

void nn_arena_zero_grad(nn_arena *a)
{
    if (a->grad)
        memset(a->grad, 0, a->n * sizeof(float));
}

/* ---- Adam --------------------------------------------------------------- */

/* Why not a plain loop over sqrtf: C's sqrtf may set errno (for a negative
 * argument), so without -fno-math-errno (which the build does not use, and the
 * optimize attribute/pragma does not switch off for a builtin) gcc keeps a
 * scalar sqrtss plus a branch to the library call and refuses to vectorise the
 * loop; measured over 14.2M floats: 14 GB/s scalar against 58-60 GB/s
 * vectorised. And at -O2 gcc 12 vectorises only loops whose trip count needs no
 * scalar epilogue. So the main loop works on GCC vector types of 16 floats with
 * the one target-specific operation, the square root, done by the correctly
 * rounded vector instruction (IEEE sqrt, identical to sqrtf); the tail uses the
 * same arithmetic in scalar form. ISO C mode (-std=c11) disables FMA
 * contraction, so vector and scalar lanes give bit-identical results. */
typedef float adam_v16 __attribute__((vector_size(64)));

/* *x = sqrt(*x) lane by lane. By pointer: a 64-byte vector passed by value has
 * a different ABI with and without AVX-512 (gcc warns, -Werror stops). */
static inline void adam_vsqrt(adam_v16 *x)
{
#if defined(__AVX512F__)
    *x = (adam_v16)_mm512_sqrt_ps((__m512)*x);
#elif defined(__AVX__)
    __m256 lo, hi;
    memcpy(&lo, (const char *)x, 32);
    memcpy(&hi, (const char *)x + 32, 32);
    lo = _mm256_sqrt_ps(lo);
    hi = _mm256_sqrt_ps(hi);
    memcpy((char *)x, &lo, 32);
    memcpy((char *)x + 32, &hi, 32);
#else
    for (int j = 0; j < 16; j++)
        (*x)[j] = sqrtf((*x)[j]);
#endif
}

/* One pass over n floats. PyTorch's Adam:
 *     m = b1*m + (1-b1)*g;   v = b2*v + (1-b2)*g^2
 *     p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps),  bc_i = 1 - b_i^t
 * with step = lr/bc1 and ibc2 = 1/sqrt(bc2) hoisted out of the loop; g = 0. */
static void adam_block(float *restrict p, float *restrict g, float *restrict m,
                       float *restrict v, size_t n, float b1, float b2, float step,
                       float ibc2, float eps)
{
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    const size_t nv = n / 16 * 16;
    for (size_t i = 0; i < nv; i += 16) {
        adam_v16 gi, mi, vi, pi;
        /* memcpy = unaligned vector load/store, without aliasing casts */
        memcpy(&gi, g + i, sizeof gi);
        memcpy(&mi, m + i, sizeof mi);
        memcpy(&vi, v + i, sizeof vi);
        memcpy(&pi, p + i, sizeof pi);
        mi = b1 * mi + c1 * gi;
        vi = b2 * vi + c2 * gi * gi;
        adam_v16 si = vi;
        adam_vsqrt(&si);
        pi -= step * mi / (si * ibc2 + eps);
        memcpy(m + i, &mi, sizeof mi);
        memcpy(v + i, &vi, sizeof vi);
        memcpy(p + i, &pi, sizeof pi);
        memset(g + i, 0, sizeof gi);
    }
    for (size_t i = nv; i < n; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= step * mi / (sqrtf(vi) * ibc2 + eps);
        g[i] = 0.0f;
    }
}

typedef struct adam_job {
    nn_arena *a;
    float b1, b2, step, ibc2, eps;
} adam_job;

static void adam_range(void *ctx, size_t lo, size_t hi)
{
    const adam_job *j = ctx;
    nn_arena *a = j->a;
    adam_block(a->param + lo, a->grad + lo, a->m + lo, a->v + lo, hi - lo, j->b1, j->b2,
               j->step, j->ibc2, j->eps);
}

void nn_adam_step(nn_arena *a, float lr, float beta1, float beta2, float eps)
{
    a->t++;
    /* Bias corrections in double: 1 - 0.999^t loses digits in float for small t. */
    double bc1 = 1.0 - pow((double)beta1, (double)a->t);
    double bc2 = 1.0 - pow((double)beta2, (double)a->t);
    adam_job j = {a, beta1, beta2, (float)((double)lr / bc1), (float)(1.0 / sqrt(bc2)), eps};
    nn_parallel_range(a->n, adam_range, &j);
}

/* ---- initialisation ----------------------------------------------------- */

void nn_init_uniform(float *w, size_t n, float bound, rng *r)
{
    for (size_t i = 0; i < n; i++)
        w[i] = (float)((2.0 * rng_uniform(r) - 1.0) * bound);
}
