/* rng: explicit, seedable random streams (xoshiro256**, seeded by splitmix64).
 *
 * There is no global generator. Every consumer owns an rng and derives it from
 * (seed, purpose) with rng_seed, so that the data order, the initialisation and
 * the sampling noise of a run are independent streams, each reproducible from
 * the run's seed alone (never from the rank, the host or the time). */
#ifndef UNTANGLE_RNG_H
#define UNTANGLE_RNG_H

#include <stdint.h>

/* Purposes: pass one of these (or any other constant) as rng_seed's stream. */
enum {
    RNG_INIT = 1,  /* parameter initialisation */
    RNG_DATA = 2,  /* training batch order */
    RNG_NOISE = 3, /* reparameterisation / Gumbel noise during training */
    RNG_EVAL = 4,  /* evaluation images and their sampling noise */
    RNG_PAIRS = 5, /* pair sampling (DSD, swap accuracy) */
    RNG_INIT_DISC = 6, /* initialisation of factorvae's discriminator */
    RNG_TEST = 99  /* tests */
};

typedef struct rng {
    uint64_t s[4];
} rng;

/* Seed r as the stream `stream` of `seed`: distinct (seed, stream) pairs give
 * statistically independent sequences. */
void rng_seed(rng *r, uint64_t seed, uint64_t stream);

/* Next 64 random bits. */
uint64_t rng_u64(rng *r);

/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t rng_below(rng *r, uint64_t n);

/* Uniform double in the open interval (0, 1): never 0, never 1. */
double rng_uniform(rng *r);

/* Standard normal draw (Box-Muller; stateless, one draw per call). */
double rng_normal(rng *r);

/* Standard Gumbel draw: -log(-log u), u ~ U(0,1). */
double rng_gumbel(rng *r);

#endif
