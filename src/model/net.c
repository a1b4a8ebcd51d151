/* The encoder and decoder networks of docs/architecture.md section 4 as layer stacks. */
#include "model_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add_layer(net *n, net_kind kind, int in, int out, err *e)
{
    if (n->n == NET_MAX_LAYERS)
        return err_set(e, ERR_INTERNAL, "network deeper than %d layers", NET_MAX_LAYERS);
    net_layer *l = &n->layer[n->n++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->in = in;
    l->out = out;
    return 0;
}

static int reserve(nn_arena *a, const char *pre, int idx, const char *what, size_t size,
                   size_t *off, err *e)
{
    char name[32];
    snprintf(name, sizeof name, "%s%d.%s", pre, idx, what);
    *off = nn_arena_reserve(a, name, size, e);
    return *off == (size_t)-1 ? e->code : 0;
}

static int dense(net *n, nn_arena *a, const char *pre, int in, int out, err *e)
{
    if (add_layer(n, NET_DENSE, in, out, e) < 0)
        return e->code;
    net_layer *l = &n->layer[n->n - 1];
    if (reserve(a, pre, n->n - 1, "w", (size_t)in * out, &l->w, e) < 0 ||
        reserve(a, pre, n->n - 1, "b", (size_t)out, &l->b, e) < 0)
        return e->code;
    return 0;
}

static int act(net *n, net_kind kind, err *e)
{
    int w = n->layer[n->n - 1].out;
    return add_layer(n, kind, w, w, e);
}

/* A K x K, stride 2 layer with padding P on a square map of side `side`. */
static int conv_k(net *n, nn_arena *a, const char *pre, int transpose, int C, int side, int O,
                  int K, int P, err *e)
{
    nn_conv d;
    if (transpose)
        nn_convt2d_dims(&d, C, side, side, O, K, 2, P);
    else
        nn_conv2d_dims(&d, C, side, side, O, K, 2, P);
    if (add_layer(n, transpose ? NET_CONVT : NET_CONV, C * side * side, O * d.OH * d.OW, e) < 0)
        return e->code;
    net_layer *l = &n->layer[n->n - 1];
    l->conv = d;
    if (reserve(a, pre, n->n - 1, "w", (size_t)C * O * K * K, &l->w, e) < 0 ||
        reserve(a, pre, n->n - 1, "b", (size_t)O, &l->b, e) < 0)
        return e->code;
    return 0;
}

/* 4x4, stride 2, padding 1: halves (conv) or doubles (convt) the side. */
static int conv(net *n, nn_arena *a, const char *pre, int transpose, int C, int side, int O,
                err *e)
{
    return conv_k(n, a, pre, transpose, C, side, O, 4, 1, e);
}

/* disentanglement_lib's conv_encoder (methods/shared/architectures.py): its
 * convolutions, all stride 2 with TensorFlow's "same" padding and ReLU, then
 * dense 256 ReLU and the heads. On an even side with stride 2, "same" pads
 * K - 2 in all, half before and half after: 1 for 4x4 (as the conv arch's
 * padding 1), 0 for 2x2, so every layer halves the side. 32x32 input drops
 * the second 32-channel layer, as the conv arch does. Its deconv_decoder is
 * the conv arch's decoder (dense 256, dense 1024, reshape to 64 4x4 maps,
 * convT 4x4/2 "same" = padding 1 with 64, 32, 32, 1 channels), so the
 * decoder builders take "dlib" as "conv". TensorFlow's NHWC reshape and
 * flatten order the dense layers' units differently, a fixed permutation
 * that changes no function the networks can compute. */
typedef struct dlib_conv {
    int O, K;
} dlib_conv;
static const dlib_conv dlib_enc64[] = {{32, 4}, {32, 4}, {64, 2}, {64, 2}};
static const dlib_conv dlib_enc32[] = {{32, 4}, {64, 2}, {64, 2}};

static int dlib_encoder(net *n, nn_arena *a, int C_in, int S, int out, err *e)
{
    const dlib_conv *t = S == 64 ? dlib_enc64 : dlib_enc32;
    int nconv = S == 64 ? 4 : 3, C = C_in, side = S;
    for (int i = 0; i < nconv; i++) {
        if (conv_k(n, a, "enc", 0, C, side, t[i].O, t[i].K, (t[i].K - 2) / 2, e) < 0 ||
            act(n, NET_RELU, e) < 0)
            return e->code;
        C = t[i].O;
        side /= 2;
    }
    if (dense(n, a, "enc", C * side * side, 256, e) < 0 || act(n, NET_RELU, e) < 0 ||
        dense(n, a, "enc", 256, out, e) < 0)
        return e->code;
    return 0;
}

static void finish(net *n)
{
    n->in = n->layer[0].in;
    n->out = n->layer[n->n - 1].out;
}

int net_build_encoder(net *n, nn_arena *a, const char *arch, int C_in, int S, int out, err *e)
{
    memset(n, 0, sizeof *n);
    int P = C_in * S * S; /* input floats per image: C_in planes of S x S */
    if (strcmp(arch, "mlp") == 0) {
        /* Chen et al. 2018: P-1200-1200-out, ReLU */
        if (dense(n, a, "enc", P, 1200, e) < 0 || act(n, NET_RELU, e) < 0 ||
            dense(n, a, "enc", 1200, 1200, e) < 0 || act(n, NET_RELU, e) < 0 ||
            dense(n, a, "enc", 1200, out, e) < 0)
            return e->code;
    } else if (strcmp(arch, "conv") == 0) {
        /* Burgess et al. 2018: 32, 32, 64, 64 channels (64x64 -> 4x4); 32x32
         * input drops the second 32-channel layer. */
        static const int ch64[] = {32, 32, 64, 64}, ch32[] = {32, 64, 64};
        const int *ch = S == 64 ? ch64 : ch32;
        int nconv = S == 64 ? 4 : 3, C = C_in, side = S;
        for (int i = 0; i < nconv; i++) {
            if (conv(n, a, "enc", 0, C, side, ch[i], e) < 0 || act(n, NET_RELU, e) < 0)
                return e->code;
            C = ch[i];
            side /= 2;
        }
        if (dense(n, a, "enc", C * side * side, 256, e) < 0 || act(n, NET_RELU, e) < 0 ||
            dense(n, a, "enc", 256, out, e) < 0)
            return e->code;
    } else if (strcmp(arch, "dlib") == 0) {
        if (dlib_encoder(n, a, C_in, S, out, e) < 0)
            return e->code;
    } else {
        return err_set(e, ERR_INPUT, "arch: unknown architecture '%s' (mlp, conv or dlib)", arch);
    }
    finish(n);
    return 0;
}

int net_build_decoder(net *n, nn_arena *a, const char *arch, int C_out, int S, int in, err *e)
{
    memset(n, 0, sizeof *n);
    int P = C_out * S * S; /* output logits per image: C_out planes of S x S */
    if (strcmp(arch, "mlp") == 0) {
        /* Chen et al. 2018: in-1200-1200-1200-P, tanh */
        if (dense(n, a, "dec", in, 1200, e) < 0 || act(n, NET_TANH, e) < 0 ||
            dense(n, a, "dec", 1200, 1200, e) < 0 || act(n, NET_TANH, e) < 0 ||
            dense(n, a, "dec", 1200, 1200, e) < 0 || act(n, NET_TANH, e) < 0 ||
            dense(n, a, "dec", 1200, P, e) < 0)
            return e->code;
    } else if (strcmp(arch, "conv") == 0 || strcmp(arch, "dlib") == 0) {
        /* dense 256, dense 1024, reshape (64,4,4), convT 64, 32, 32, C_out
         * (32x32: the first 64-channel layer is dropped). */
        const int ch64[] = {64, 32, 32, C_out}, ch32[] = {32, 32, C_out};
        const int *ch = S == 64 ? ch64 : ch32;
        int nconv = S == 64 ? 4 : 3, C = 64, side = 4;
        if (dense(n, a, "dec", in, 256, e) < 0 || act(n, NET_RELU, e) < 0 ||
            dense(n, a, "dec", 256, 1024, e) < 0 || act(n, NET_RELU, e) < 0)
            return e->code;
        for (int i = 0; i < nconv; i++) {
            if (conv(n, a, "dec", 1, C, side, ch[i], e) < 0)
                return e->code;
            if (i + 1 < nconv && act(n, NET_RELU, e) < 0)
                return e->code;
            C = ch[i];
            side *= 2;
        }
    } else {
        return err_set(e, ERR_INPUT, "arch: unknown architecture '%s' (mlp, conv or dlib)", arch);
    }
    finish(n);
    return 0;
}

void net_init(const net *n, nn_arena *a, rng *r)
{
    for (int i = 0; i < n->n; i++) {
        const net_layer *l = &n->layer[i];
        size_t fan_in, nw, nb;
        if (l->kind == NET_DENSE) {
            fan_in = (size_t)l->in;
            nw = (size_t)l->in * l->out;
            nb = (size_t)l->out;
        } else if (l->kind == NET_CONV || l->kind == NET_CONVT) {
            /* PyTorch: fan_in = weight.size(1) * K * K, i.e. C for conv and O
             * for conv-transpose (its weight is (C, O, K, K)). */
            const nn_conv *d = &l->conv;
            fan_in = (size_t)(l->kind == NET_CONV ? d->C : d->O) * d->K * d->K;
            nw = (size_t)d->C * d->O * d->K * d->K;
            nb = (size_t)d->O;
        } else {
            continue;
        }
        float bound = 1.0f / sqrtf((float)fan_in);
        nn_init_uniform(a->param + l->w, nw, bound, r);
        nn_init_uniform(a->param + l->b, nb, bound, r);
    }
}

int net_cache_create(net_cache *c, const net *n, int max_b, err *e)
{
    memset(c, 0, sizeof *c);
    c->max_b = max_b;
    size_t scratch = 0;
    for (int i = 0; i < n->n; i++) {
        const net_layer *l = &n->layer[i];
        size_t sz = (size_t)max_b * l->out;
        c->act[i + 1] = malloc(sz * sizeof(float));
        c->dact[i + 1] = malloc(sz * sizeof(float));
        if (!c->act[i + 1] || !c->dact[i + 1]) {
            net_cache_free(c);
            return err_set(e, ERR_NOMEM, "out of memory for activations (%zu floats)", sz);
        }
        if (l->kind == NET_CONV || l->kind == NET_CONVT) {
            size_t s = nn_conv_scratch(&l->conv, max_b);
            if (s > scratch)
                scratch = s;
        }
    }
    if (scratch) {
        c->scratch = malloc(scratch * sizeof(float));
        if (!c->scratch) {
            net_cache_free(c);
            return err_set(e, ERR_NOMEM, "out of memory for conv scratch (%zu floats)", scratch);
        }
    }
    return 0;
}

void net_cache_free(net_cache *c)
{
    if (!c)
        return;
    for (int i = 1; i <= NET_MAX_LAYERS; i++) {
        free(c->act[i]);
        free(c->dact[i]);
    }
    free(c->scratch);
    memset(c, 0, sizeof *c);
}

float *net_forward(const net *n, net_cache *c, const nn_arena *a, const float *in, int B)
{
    c->act[0] = (float *)in; /* borrowed; never written */
    const float *p = a->param;
    for (int i = 0; i < n->n; i++) {
        const net_layer *l = &n->layer[i];
        const float *x = c->act[i];
        float *y = c->act[i + 1];
        switch (l->kind) {
        case NET_DENSE:
            nn_dense_forward(y, x, p + l->w, p + l->b, B, l->in, l->out);
            break;
        case NET_CONV:
            nn_conv2d_forward(y, c->scratch, x, p + l->w, p + l->b, &l->conv, B);
            break;
        case NET_CONVT:
            nn_convt2d_forward(y, c->scratch, x, p + l->w, p + l->b, &l->conv, B);
            break;
        case NET_RELU:
            nn_relu_forward(y, x, (size_t)B * l->out);
            break;
        case NET_TANH:
            nn_tanh_forward(y, x, (size_t)B * l->out);
            break;
        }
    }
    return c->act[n->n];
}

void net_backward(const net *n, net_cache *c, nn_arena *a, const float *dout, float *din, int B)
{
    const float *p = a->param;
    float *g = a->grad;
    for (int i = n->n - 1; i >= 0; i--) {
        const net_layer *l = &n->layer[i];
        const float *dy = i == n->n - 1 ? dout : c->dact[i + 1];
        float *dx = i == 0 ? din : c->dact[i];
        /* backward accumulates: the intermediate gradient starts at zero */
        if (i > 0)
            nn_zero(dx, (size_t)B * l->in);
        const float *x = c->act[i], *y = c->act[i + 1];
        switch (l->kind) {
        case NET_DENSE:
            nn_dense_backward(dx, g + l->w, g + l->b, dy, x, p + l->w, B, l->in, l->out);
            break;
        case NET_CONV:
            nn_conv2d_backward(dx, g + l->w, g + l->b, c->scratch, dy, x, p + l->w, &l->conv, B);
            break;
        case NET_CONVT:
            nn_convt2d_backward(dx, g + l->w, g + l->b, c->scratch, dy, x, p + l->w, &l->conv, B);
            break;
        case NET_RELU:
            if (dx)
                nn_relu_backward(dx, dy, y, (size_t)B * l->out);
            break;
        case NET_TANH:
            if (dx)
                nn_tanh_backward(dx, dy, y, (size_t)B * l->out);
            break;
        }
    }
}
