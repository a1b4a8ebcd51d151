/* nn: the numerical core. Tensors are plain float arrays, row-major, whose
 * shapes are written next to every argument: B batch, C/O channels in/out,
 * H, W spatial, I/O features in/out, D latents, P pixels per image.
 *
 * Every layer is a pair of free functions in the style
 *     X_forward(out, ..., in, params..., dims)
 *     X_backward(din, dparams..., dout, in/out..., params..., dims)
 * Backward ACCUMULATES into din and dparams (+=): gradients are zeroed once per
 * step, so a value used twice needs no temporary. A NULL din skips the input
 * gradient (first layer). Nothing here allocates except the *_create functions;
 * scratch buffers are passed in, sized by the *_scratch functions.
 *
 * The parameter arena holds parameters, gradients and Adam's two moments, each
 * one contiguous block of n floats carved into named tensors at the same
 * offsets: the optimiser is one flat loop and zero-grad is one memset. */
#ifndef UNTANGLE_NN_H
#define UNTANGLE_NN_H

#include <stddef.h>

#include "untangle/err.h"
#include "untangle/rng.h"

/* ---- threads and the BLAS library --------------------------------------- */

/* Threads that share each kernel in this process (n >= 1, at most 256; the
 * default is 1): nn's own pool, with OpenBLAS single-threaded inside each
 * task. Every kernel is cut into tasks by its shapes alone and sums over
 * tasks are added in a fixed order, so results are bit-identical for any n.
 * Set it before creating what nn_conv_scratch sizes (scratch is per thread). */
void nn_set_threads(int n);
/* The thread count nn_set_threads set. */
int nn_threads(void);
/* Cores this process may run on (its CPU affinity, e.g. a SLURM task's). */
int nn_cores(void);
/* "OpenBLAS <version> <build options> <kernel>" into buf (n bytes). */
void nn_library_version(char *buf, size_t n);

/* ---- parameter arena ---------------------------------------------------- */

typedef struct nn_slot {
    char name[32]; /* e.g. "enc.fc1.w" */
    size_t offset; /* in floats, into each of param, grad, m, v */
    size_t size;   /* in floats */
} nn_slot;

typedef struct nn_arena {
    size_t n;            /* total floats per block */
    size_t n_slots, cap_slots;
    nn_slot *slots;
    float *param;        /* (n) one allocation holds param, grad, m, v */
    float *grad;         /* (n) */
    float *m;            /* (n) Adam first moment */
    float *v;            /* (n) Adam second moment */
    long t;              /* Adam steps taken */
} nn_arena;

/* Empty arena in the layout phase. */
void nn_arena_init(nn_arena *a);
/* Layout phase: reserve a named tensor of `size` floats; returns its offset,
 * or (size_t)-1 when out of memory (e filled). Only before nn_arena_alloc. */
size_t nn_arena_reserve(nn_arena *a, const char *name, size_t size, err *e);
/* Allocate the four blocks (64-byte aligned, zeroed). 0 or ERR_NOMEM. */
int nn_arena_alloc(nn_arena *a, err *e);
/* Free everything; the arena returns to the empty state. NULL is a no-op. */
void nn_arena_free(nn_arena *a);
/* grad = 0 (one memset). */
void nn_arena_zero_grad(nn_arena *a);

/* Adam (beta1, beta2, eps) with bias correction, ONE fused pass over the whole
 * block: increments a->t, updates m, v and param from grad, and sets grad to 0
 * in the same pass (so no separate zero-grad is needed after a step). */
void nn_adam_step(nn_arena *a, float lr, float beta1, float beta2, float eps);

/* Initialisers (PyTorch's defaults): weights and biases ~ U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)). */
void nn_init_uniform(float *w, size_t n, float bound, rng *r);

/* ---- dense -------------------------------------------------------------- */

/* out (B,O) = in (B,I) . w^T + b;  w (O,I), b (O). sgemm. */
void nn_dense_forward(float *out, const float *in, const float *w, const float *b,
                      int B, int n_in, int n_out);
/* din (B,I) += dout . w;  dw (O,I) += dout^T . in;  db (O) += sum_b dout.
 * din may be NULL (first layer); dw and db may be NULL (the input gradient
 * alone, through parameters that another loss trains). */
void nn_dense_backward(float *din, float *dw, float *db, const float *dout,
                       const float *in, const float *w, int B, int n_in, int n_out);

/* ---- convolutions (NCHW) ------------------------------------------------ */

typedef struct nn_conv {
    int C, H, W;   /* input channels and size */
    int O, OH, OW; /* output channels and size */
    int K, S, P;   /* square kernel, stride, zero padding */
    int transpose; /* 0: conv2d, 1: conv-transpose2d */
} nn_conv;

/* Fill d for a conv2d: OH = (H + 2P - K)/S + 1, same for OW. */
void nn_conv2d_dims(nn_conv *d, int C, int H, int W, int O, int K, int S, int P);
/* Fill d for a conv-transpose2d (the adjoint of conv2d):
 * OH = (H - 1)*S - 2P + K, same for OW. */
void nn_convt2d_dims(nn_conv *d, int C, int H, int W, int O, int K, int S, int P);
/* Floats of scratch that forward and backward need for a batch of B. */
size_t nn_conv_scratch(const nn_conv *d, int B);

/* conv2d: out (B,O,OH,OW) = conv(in (B,C,H,W), w (O,C,K,K)) + b (O). */
void nn_conv2d_forward(float *out, float *scratch, const float *in, const float *w,
                       const float *b, const nn_conv *d, int B);
void nn_conv2d_backward(float *din, float *dw, float *db, float *scratch,
                        const float *dout, const float *in, const float *w,
                        const nn_conv *d, int B);

/* conv-transpose2d: out (B,O,OH,OW) = convT(in (B,C,H,W), w (C,O,K,K)) + b (O);
 * w laid out as PyTorch's ConvTranspose2d (in channels first). */
void nn_convt2d_forward(float *out, float *scratch, const float *in, const float *w,
                        const float *b, const nn_conv *d, int B);
void nn_convt2d_backward(float *din, float *dw, float *db, float *scratch,
                         const float *dout, const float *in, const float *w,
                         const nn_conv *d, int B);

/* ---- activations (elementwise over n floats; in-place allowed: out == in) -- */

/* x (n) = 0, on the thread pool (a gradient buffer before a backward). */
void nn_zero(float *x, size_t n);

void nn_relu_forward(float *out, const float *in, size_t n);
/* din += dout * (out > 0); uses the forward OUTPUT. */
void nn_relu_backward(float *din, const float *dout, const float *out, size_t n);
/* out = in > 0 ? in : slope*in (slope > 0: leaky ReLU, Maas et al. 2013). */
void nn_leaky_relu_forward(float *out, const float *in, float slope, size_t n);
/* din += dout * (out > 0 ? 1 : slope); uses the forward OUTPUT (slope > 0
 * keeps its sign). */
void nn_leaky_relu_backward(float *din, const float *dout, const float *out, float slope,
                            size_t n);
void nn_tanh_forward(float *out, const float *in, size_t n);
/* din += dout * (1 - out^2); uses the forward OUTPUT. */
void nn_tanh_backward(float *din, const float *dout, const float *out, size_t n);

/* ---- losses and the Gaussian latent ------------------------------------- */

/* Bernoulli NLL with logits, stable form max(l,0) - x*l + log(1 + exp(-|l|)),
 * summed over the P pixels of each image: per (B) (may be NULL) gets each
 * image's sum; returns the mean over the batch. logits, x (B,P). */
double nn_bce_logits_forward(float *per, const float *logits, const float *x, int B, int P);
/* dlogits (B,P) += scale * (sigmoid(l) - x). (scale = 1/B for the batch mean.) */
void nn_bce_logits_backward(float *dlogits, const float *logits, const float *x,
                            int B, int P, float scale);

/* Analytic KL(N(mu, exp(lv)) || N(0,1)) = sum_j 0.5*(mu^2 + exp(lv) - lv - 1).
 * per (B) (may be NULL) gets each sample's sum over D, per_dim (D) (may be NULL)
 * gets the batch mean of each dim; returns the batch mean. mu, lv (B,D). */
double nn_gauss_kl_forward(float *per, float *per_dim, const float *mu, const float *lv,
                           int B, int D);
/* dmu += scale*mu;  dlv += scale*0.5*(exp(lv) - 1). */
void nn_gauss_kl_backward(float *dmu, float *dlv, const float *mu, const float *lv,
                          int B, int D, float scale);

/* Reparameterisation z = mu + exp(0.5*lv) * eps, eps (n) given (drawn by the
 * caller, so forward and backward see the same noise). */
void nn_reparam_forward(float *z, const float *mu, const float *lv, const float *eps, size_t n);
/* dmu += dz;  dlv += dz * eps * 0.5 * exp(0.5*lv). */
void nn_reparam_backward(float *dmu, float *dlv, const float *dz, const float *lv,
                         const float *eps, size_t n);

#endif
