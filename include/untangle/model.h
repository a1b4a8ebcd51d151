/* model: the architectures (encoder/decoder) and the loss of each method.
 *
 * A method is one entry in a table {name, parameter schema, terms, defaults,
 * check, step}; adding a method is one file under src/model/ plus one row in
 * src/model/model.c. Every method shares the same networks, optimiser and
 * data: model_create builds them from the configuration, model_step runs one
 * optimisation step (batch sampling, forward, loss, backward, Adam).
 *
 * The code a decoder reads has code_dim = D + sum(K_i) units: D continuous
 * latents, then one block of K_i categories per discrete variable (JointVAE).
 * Metrics see a run's representation through model_encode / model_decode. */
#ifndef UNTANGLE_MODEL_H
#define UNTANGLE_MODEL_H

#include "untangle/data.h"
#include "untangle/err.h"
#include "untangle/rng.h"
#include "untangle/spec.h"

enum { MODEL_MAX_TERMS = 12 };

typedef struct model model; /* opaque */

/* What a trained model's representation looks like, for metrics. */
typedef struct model_info {
    const char *method;  /* "vae", "betavae", "annealedvae", ... */
    int D;               /* continuous latents */
    int stochastic;      /* 1: q(z|x) is a Gaussian with logvar; 0: deterministic code (dsd) */
    int n_discrete;      /* discrete variables */
    int discrete[RUN_MAX_LIST]; /* their category counts */
    int code_dim;        /* D + sum(discrete) */
    int n_chunks;        /* dsd: code chunks, one per factor; else 0 */
    int chunks[RUN_MAX_LIST];
    int S;               /* image side */
    int C;               /* channels: an image is C*S*S values, channel-major */
    int n_terms;         /* loss terms reported by model_step */
    const char *const *terms; /* their names; terms[0] is "loss" */
} model_info;

/* The parameter schema: names of the model keys a method takes
 * (NULL-terminated), or NULL when the method does not exist. Used by config
 * validation before a configuration is resolved. */
const char *const *model_params(const char *method);
/* Nonzero when method names a model. */
int model_exists(const char *method);
/* Fill c->takes from the schema of c->model (nothing else changes), for a
 * configuration read back from a results file. ERR_INPUT for an unknown model. */
int model_takes(run_config *c, err *e);
/* Resolve c for its method: fill c->takes (model_takes), refuse a
 * model key set that the method does not take, fill the method's defaults for
 * its keys that are not set, and check consistency (unknown model or arch,
 * chunks not summing to latent_dim, ...). ERR_INPUT naming the key. Every
 * configuration is resolved once, before its run id is taken or it runs. */
int model_resolve(run_config *c, err *e);

/* Build the networks and buffers for c (resolved) and initialise the
 * parameters from c->seed. n_data is the data set size (beta-TCVAE's N).
 * Everything a step needs is allocated here. */
int model_create(model **out, const run_config *c, size_t n_data, err *e);
/* NULL is a no-op. */
void model_destroy(model *m);
void model_get_info(const model *m, model_info *info);

/* The model's state as one flat block of model_state_size(m, optimizer)
 * bytes: the parameters, then with optimizer also Adam's moments and step
 * count and the method's own trained state (factorvae's discriminator with
 * its Adam: a checkpoint); without, the networks' parameters alone (a saved
 * model, all that evaluation needs). The
 * layout is fixed by the configuration, so a block fits every model created
 * from the same configuration. model_state_set refuses a block of another
 * size (ERR_INPUT). */
size_t model_state_size(const model *m, int optimizer);
void model_state_get(const model *m, int optimizer, void *out);
int model_state_set(model *m, int optimizer, const void *in, size_t n, err *e);

/* One optimisation step t (1-based): the method samples its batch from d with
 * data_rng, draws its noise from noise_rng, and writes its loss terms into
 * terms[info.n_terms]. Returns 0, or ERR_NUMERIC (e filled) when the loss or a
 * term is not finite (the parameters are then not updated). */
int model_step(model *m, const data_source *d, rng *data_rng, rng *noise_rng, long t,
               double *terms, err *e);

/* Encode n images x (n, S*S) in chunks of the training batch size:
 * mu (n, D), lv (n, D) (NULL allowed; zeros for deterministic models),
 * alpha (n, sum K_i) category probabilities (NULL allowed; unused when there is
 * no discrete variable). Deterministic: no noise. */
void model_encode(model *m, const float *x, size_t n, float *mu, float *lv, float *alpha);
/* Decode n codes (n, code_dim) into logits (n, S*S). */
void model_decode(model *m, const float *code, size_t n, float *logits);
/* The evaluation code of encoded values: mu, then one-hot(argmax alpha_i) for
 * each discrete variable -> code (n, code_dim). */
void model_eval_code(const model *m, const float *mu, const float *alpha, size_t n, float *code);

#endif
