/* Private to src/model: the network description, the model struct the
 * methods share, and the method table row. */
#ifndef UNTANGLE_MODEL_IMPL_H
#define UNTANGLE_MODEL_IMPL_H

#include "untangle/model.h"
#include "untangle/nn.h"

enum { NET_MAX_LAYERS = 16 };

typedef enum net_kind { NET_DENSE, NET_CONV, NET_CONVT, NET_RELU, NET_TANH } net_kind;

typedef struct net_layer {
    net_kind kind;
    int in, out;        /* floats per image in and out */
    size_t w, b;        /* arena offsets of weight and bias (dense, conv) */
    nn_conv conv;       /* conv and convt */
} net_layer;

/* A feed-forward stack of layers over one arena. Its activations live in a
 * net_cache, so that one net can run several times in a step (DSD). */
typedef struct net {
    int n;
    net_layer layer[NET_MAX_LAYERS];
    int in, out;        /* floats per image */
} net;

typedef struct net_cache {
    int max_b;
    float *act[NET_MAX_LAYERS + 1];  /* act[0] = the input (borrowed), act[i+1] = layer i's output (max_b, out) */
    float *dact[NET_MAX_LAYERS + 1]; /* gradients of act[1..n-1] (act[n]'s comes from the caller) */
    float *scratch;                  /* conv im2col space */
} net_cache;

/* Build the encoder (C*S*S -> out) or decoder (in -> C*S*S logits) of arch
 * ("mlp", "conv" or "dlib") into n, reserving parameters in a (layout phase). C is
 * the data set's channels (data_factor_desc.channels): the conv stack's
 * first layer reads C planes and its last transposed conv writes C. */
int net_build_encoder(net *n, nn_arena *a, const char *arch, int C, int S, int out, err *e);
int net_build_decoder(net *n, nn_arena *a, const char *arch, int C, int S, int in, err *e);
/* Initialise n's parameters (after nn_arena_alloc). */
void net_init(const net *n, nn_arena *a, rng *r);
/* Activation buffers for batches up to max_b. */
int net_cache_create(net_cache *c, const net *n, int max_b, err *e);
void net_cache_free(net_cache *c);
/* Run n on in (B, n->in); returns the output (B, n->out), owned by c. */
float *net_forward(const net *n, net_cache *c, const nn_arena *a, const float *in, int B);
/* Backward through the last forward on c: dout (B, out) given; parameter
 * gradients accumulate into a->grad; din (B, in) += input gradient (NULL: skip). */
void net_backward(const net *n, net_cache *c, nn_arena *a, const float *dout, float *din, int B);

typedef struct model_method model_method;

struct model {
    const model_method *method;
    run_config cfg;
    int B, S, C, P;       /* batch, image side, channels, values per image C*S*S */
    int D, K, code_dim;   /* continuous latents, sum of categories, decoder input width */
    int enc_out;          /* encoder output width */
    size_t n_data;        /* data set size */
    nn_arena arena;
    net enc, dec;
    net_cache ce, cd;     /* the main caches, batch B */
    /* buffers of the common VAE path, all batch B */
    float *x;             /* (B, P) images */
    int *f;               /* (B, K) their factor classes (K <= DATA_MAX_K) */
    float *mu, *lv;       /* (B, D) */
    float *dmu, *dlv;     /* (B, D) */
    float *eps, *z, *dz;  /* (B, D) */
    float *code, *dcode;  /* (B, code_dim) decoder input and its gradient */
    float *dh;            /* (B, enc_out) encoder output gradient */
    float *logits;        /* (B, P) decoder output (borrowed from cd) */
    float *dlogits;       /* (B, P) */
    void *priv;           /* the method's own state */
};

struct model_method {
    const char *name;
    const char *const *params; /* model keys it takes, NULL-terminated */
    const char *const *terms;  /* loss terms, terms[0] = "loss" */
    int n_terms;
    int stochastic;            /* encoder gives (mu, logvar) */
    /* defaults for unset keys and consistency checks */
    int (*resolve)(run_config *c, err *e);
    /* encoder output width and code width for c */
    void (*widths)(const run_config *c, int *enc_out, int *code_dim, int *D, int *K);
    /* optional: method buffers (after the common ones exist) */
    int (*init)(model *m, err *e);
    void (*fini)(model *m);
    /* forward + backward of one step into a->grad (no optimiser); terms out */
    int (*step)(model *m, const data_source *d, rng *dr, rng *nr, long t, double *terms);
    /* optional, for a method with parameters outside the networks' arena
     * (factorvae's discriminator and its own Adam): update applies the
     * gradients its step left after the networks' Adam step; discard drops
     * them when the step's loss was not finite */
    void (*update)(model *m);
    void (*discard)(model *m);
    /* optional: the method's own state, appended to the networks' block of
     * model_state_get (its size for a checkpoint, optimizer 1, or a saved
     * model, optimizer 0; 0 bytes when none) */
    size_t (*state_size)(const model *m, int optimizer);
    void (*state_get)(const model *m, int optimizer, void *out);
    void (*state_set)(model *m, int optimizer, const void *in);
};

/* An arena as a state block: param [, m, v, t] (model_state_get's layout). */
size_t model_arena_state_size(const nn_arena *a, int optimizer);
void model_arena_state_get(const nn_arena *a, int optimizer, void *out);
void model_arena_state_set(nn_arena *a, int optimizer, const void *in);

/* Nonzero when the key called name was set explicitly in c. */
int model_key_set(const run_config *c, const char *name);

/* beta from beta64 (beta stated for 64x64 images of one channel, 4,096
 * values; README, "Methods"): the reconstruction term sums C*S*S values, so
 * the same balance of the two terms needs beta = beta64 * C*S*S / 4096 (Higgins
 * et al. normalise beta by the input size for this reason). Neither set:
 * beta = dflt. Both set: an input error. */
int model_beta64(run_config *c, double dflt, err *e);

/* The common VAE path, shared by the Gaussian-latent methods.
 * vae_forward: sample the batch, encode, split mu/lv, draw eps, z = reparam,
 * code[:, :D] = z (the method fills code[:, D:] when it has discrete
 * latents, before calling vae_decode), zero dmu/dlv/dz/dcode. */
void vae_encode_batch(model *m, const data_source *d, rng *dr, rng *nr);
/* Decode m->code, returns the batch-mean reconstruction loss and sets
 * m->dlogits from it. */
double vae_decode_batch(model *m);
/* Backward: decoder (dlogits -> dcode), dz += dcode[:, :D], reparam (dz ->
 * dmu, dlv), pack dmu/dlv (and the method's dh extras) into dh, encoder.
 * vae_backward = vae_backward_decoder then vae_backward_encoder; a method
 * whose encoder has outputs beyond (mu, lv) runs the two halves itself and
 * adds their gradients (read from dcode[:, D:]) into dh[:, 2D:] in between. */
void vae_backward(model *m);
/* Decoder half: dcode (B, code_dim) += d recon / d code, parameter grads. */
void vae_backward_decoder(model *m);
/* Encoder half: dz += dcode[:, :D], reparam, dh[:, :2D] += (dmu, dlv), encoder. */
void vae_backward_encoder(model *m);
/* Helpers for the latent losses. */
double vae_capacity(double c_max, long anneal_steps, long t);
/* The widths of a method whose encoder gives (mu, logvar) of D = latent_dim
 * and whose decoder reads z: enc_out 2D, code_dim D, no categories. */
void vae_gaussian_widths(const run_config *c, int *enc_out, int *code_dim, int *D, int *K);

extern const model_method model_vae, model_betavae, model_annealedvae, model_betatcvae,
    model_factorvae, model_dipvae1, model_dipvae2, model_jointvae, model_dsd;

/* ---- beta-TCVAE minibatch estimators (tc.c) --------------------------------
 * Chen et al. 2018, section 4 and appendix C (docs/architecture.md section 4). For a
 * batch of B posteriors q(z|x_k) = N(mu_k, diag(exp(lv_k))) and one sample z_i
 * of each, L[i,k,j] = log q(z_ij | x_k) and, per sample i:
 *   lqzx[i] = log q(z_i|x_i)  = sum_j L[i,i,j]
 *   lqz[i]  = log q(z_i)      = logsumexp_k(lw[i,k] + sum_j L[i,k,j])
 *   lqzj[i] = sum_j log q(z_ij) = sum_j logsumexp_k(lw[i,k] + L[i,k,j])
 *   lpz[i]  = log p(z_i)      = sum_j log N(z_ij; 0, 1)
 * lw = log weights: MWS -log(N*B) everywhere; MSS log W with W[i,i] = 1/N,
 * W[i,(i+1) mod B] = (N-M)/(N*M), else 1/M, M = B-1 (the intended matrix, not
 * the authors' column-0 version). All tables are sized at create: forward and
 * backward never allocate. */
typedef struct tc_est {
    int B, D;
    int mss;          /* 1: minibatch stratified sampling, 0: weighted sampling */
    double N;         /* data set size */
    float *lw;        /* (B, B) lw[i,k] */
    float *iv;        /* (B, D) exp(-lv): inverse variances */
    float *cst;       /* (B, D) -0.5*(log 2pi + lv) */
    float *L;         /* (B, B, D) L[i,k,j] */
    float *R;         /* (B, B, D) per-dim softmax over k: d lqz_ij / d L[i,k,j] */
    float *r;         /* (B, B) joint softmax over k: d lqz_i / d L[i,k,j] (any j) */
    float *mx;        /* (D) scratch: per-dim max over k */
    double *sj;       /* (D) scratch: per-dim sums of exp */
    double *lqzx, *lqz, *lqzj, *lpz; /* (B) per-sample outputs of the last forward */
} tc_est;

/* Size the tables for batch B (>= 2), D latents, data set size N (>= B for
 * MSS); mss selects the estimator. 0, ERR_INPUT or ERR_NOMEM. */
int tc_create(tc_est *t, int B, int D, double N, int mss, err *e);
/* Free the tables (t zeroed); NULL or a zeroed t is a no-op. */
void tc_free(tc_est *t);
/* mu, lv, z (B, D) -> t->lqzx, lqz, lqzj, lpz (B) and the softmax tables. */
void tc_forward(tc_est *t, const float *mu, const float *lv, const float *z);
/* Backward of sum_i (c_qzx*lqzx[i] + c_qz*lqz[i] + c_qzj*lqzj[i] + c_pz*lpz[i])
 * through the last forward: ACCUMULATES into dmu, dlv, dz (B, D), z's
 * gradient taken with mu and lv fixed (the caller backpropagates z through
 * the reparameterisation). */
void tc_backward(const tc_est *t, const float *mu, const float *z, double c_qzx, double c_qz,
                 double c_qzj, double c_pz, float *dmu, float *dlv, float *dz);

/* ---- JointVAE's discrete latent (jointvae.c), one variable of K categories --
 * la = log alpha = log_softmax(logits); y = softmax((la + g)/lambda) is the
 * Gumbel-softmax (Concrete) sample of Jang et al. 2017 / Maddison et al. 2017. */
/* la (K) = log_softmax(logits (K)). */
void jointvae_log_softmax(float *la, const float *logits, int K);
/* y (K) = softmax((la + g)/lambda); la, g (K). */
void jointvae_gumbel_softmax(float *y, const float *la, const float *g, int K, double lambda);
/* dlogits (K) += d/dlogits of sum_c dy_c * y_c, through the sample and the
 * log_softmax; y, la from the forward. */
void jointvae_gumbel_softmax_backward(float *dlogits, const float *dy, const float *y,
                                      const float *la, int K, double lambda);
/* KL(alpha || uniform) = log K + sum_c alpha_c log alpha_c, from la (K). */
double jointvae_kl_cat(const float *la, int K);
/* dlogits (K) += scale * d KL / d logits. */
void jointvae_kl_cat_backward(float *dlogits, const float *la, int K, double scale);
/* The latent part of the JointVAE loss for a batch (Dupont 2018's
 * capacity-controlled objective):
 * gamma*|KL_z - C_z| + gamma*|KL_c - C_c| with KL_z the analytic Gaussian KL
 * and KL_c the sum over the discrete variables of jointvae_kl_cat (both batch
 * means). mu, lv (B, D); la (B, K) log alpha blocks of c->discrete; writes
 * *kl_z and *kl_c; accumulates the gradient into dmu, dlv (B, D) and dlogits
 * (rows of stride ldl, columns 0..K-1). */
double jointvae_capacity_loss(const run_config *c, const float *mu, const float *lv,
                              const float *la, int B, int D, int K, double C_z, double C_c,
                              double *kl_z, double *kl_c, float *dmu, float *dlv,
                              float *dlogits, int ldl);

/* ---- FactorVAE's discriminator (factorvae.c) --------------------------------
 * disentanglement_lib's fc_discriminator: D -> 1000 -> ... (six hidden layers
 * of 1000, leaky ReLU 0.2) -> 2 logits, in an arena of its own. Two slots of
 * activations, so that z and its permutation are both held for their
 * backward passes. Everything is sized at create. */
enum { FVAE_HIDDEN = 1000, FVAE_LAYERS = 7 /* dense layers: 6 hidden + logits */ };

typedef struct fvae_disc {
    int D, max_b;
    int width[FVAE_LAYERS + 1];          /* D, 1000 x 6, 2 */
    size_t w[FVAE_LAYERS], b[FVAE_LAYERS]; /* arena offsets */
    nn_arena arena;                      /* D's parameters, gradients, Adam moments */
    const float *in[2];                  /* each slot's input (borrowed) */
    float *h[2][FVAE_LAYERS + 1];        /* h[s][l+1]: layer l's output (max_b, width[l+1]) */
    float *g[3];                         /* (max_b, 1000) backward scratch */
} fvae_disc;

/* Build D for D latents and batches up to max_b, parameters drawn from
 * (seed, RNG_INIT_DISC). 0, ERR_NOMEM (free with factorvae_disc_free). */
int factorvae_disc_create(fvae_disc *d, int D, int max_b, uint64_t seed, err *e);
void factorvae_disc_free(fvae_disc *d);
/* logits (B, 2) of z (B, D) in slot 0 or 1 (owned by d). */
const float *factorvae_disc_forward(fvae_disc *d, int slot, const float *z, int B);
/* Backward through slot's last forward: dz (B, D) += input gradient (NULL:
 * skip); with train_params the parameter gradients accumulate into
 * d->arena.grad, without them D's parameters get nothing. */
void factorvae_disc_backward(fvae_disc *d, int slot, const float *dlogits, float *dz,
                             int train_params, int B);
/* loss_D = -(0.5 mean_b log p(z_b)_0 + 0.5 mean_b log p(zperm_b)_1), p the
 * softmax of the logits clipped to [1e-6, 1 - 1e-6] (disentanglement_lib);
 * lq, lp (B, 2); dlq, dlp (B, 2) += its gradient. */
double factorvae_disc_loss(const float *lq, const float *lp, int B, float *dlq, float *dlp);
/* zp (B, D) = z with each dimension permuted across the batch on its own. */
void factorvae_permute(float *zp, const float *z, int B, int D, rng *r);

/* ---- DIP-VAE's covariance penalty (dipvae.c) ---------------------------------
 * Kumar et al. 2018, eqs. 6-7, as disentanglement_lib: Cov = the batch
 * covariance of mu (B, D) (E[mu mu^T] - E[mu]E[mu]^T, divided by B), plus
 * diag(mean over the batch of exp(lv)) when lv is given (DIP-VAE-II; NULL:
 * DIP-VAE-I). Returns lambda_od * sum_{i!=j} Cov_ij^2 + lambda_d * sum_i
 * (Cov_ii - 1)^2 and, when dmu is not NULL, ACCUMULATES its gradient into
 * dmu (and dlv when lv is given). cov, g (D, D) and mean (D) are scratch;
 * cov holds Cov afterwards. */
double dipvae_penalty(const float *mu, const float *lv, int B, int D, double lambda_od,
                      double lambda_d, float *dmu, float *dlv, double *cov, double *g,
                      double *mean);

/* ---- DSD pairs (dsd.c) ------------------------------------------------------
 * Draw npairs pairs of images into x (2*npairs, S*S): pair p is rows 2p (a)
 * and 2p+1 (b); labeled pairs come first. Each pair is labeled with
 * probability `supervision`: factor k uniform, a's classes uniform, b's
 * classes uniform except b[k] = a[k]. An unlabeled pair is two independent
 * uniform images with a uniform k. k (npairs) gets each pair's factor/chunk,
 * f (2*npairs, K) the classes (may be NULL). Returns the number of
 * labeled pairs. */
int dsd_sample_pairs(const data_source *d, rng *r, int npairs, double supervision, float *x,
                     int *f, int *k);

#endif
