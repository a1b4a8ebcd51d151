/* data: dSprites, built in (rendered on demand from the factors) or read from
 * a file in the official DeepMind HDF5 layout.
 *
 * Factors, in order: shape (3), scale (6), orientation (40), posX (32),
 * posY (32); N = 737,280. Canonical index =
 * (((shape*6 + scale)*40 + orient)*32 + posX)*32 + posY, the official order.
 * Images are S x S (S = 64 or 32), binary, stored as floats 0/1 for training. */
#ifndef UNTANGLE_DATA_H
#define UNTANGLE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "untangle/err.h"
#include "untangle/rng.h"

typedef struct data_source data_source; /* opaque */

enum { DATA_K = 5 };          /* number of factors */
#define DATA_N 737280u        /* images in dSprites */

/* Factor sizes {3, 6, 40, 32, 32} and names {"shape", "scale", "orientation",
 * "posX", "posY"}. */
extern const int data_factor_sizes[DATA_K];
extern const char *const data_factor_names[DATA_K];

/* Which factors Chen et al.'s MIG averages over: every one but shape, as
 * their metric_helpers/mi_metric.py (factor entropies [6, 40, 32, 32]). */
extern const unsigned char data_factor_in_mig[DATA_K];

/* The factors of a data set as data describes them, for code that must not
 * assume dSprites' five (the metrics take K and sizes from here): K factors
 * in canonical order, their names and sizes, n_grid = the product of the
 * sizes (every combination is one image; canonical index = mixed radix over
 * the values, the last factor fastest), in_mig as data_factor_in_mig. The
 * arrays are static. */
typedef struct data_factor_desc {
    int K;
    const int *sizes;
    const char *const *names;
    const unsigned char *in_mig;
    size_t n_grid;
} data_factor_desc;
/* d's factors (a subset source describes its base's grid). */
void data_describe(const data_source *d, data_factor_desc *out);

/* Factor values (the official /latents/values columns 1..5) of factor k at
 * class c: scale linspace(0.5,1,6), orientation linspace(0,2pi,40), positions
 * linspace(0,1,32); shape 1, 2, 3. */
double data_factor_value(int k, int c);

/* Canonical index <-> factor classes f[DATA_K]. */
uint32_t data_index(const int f[DATA_K]);
void data_factors(uint32_t index, int f[DATA_K]);

/* Render the sprite with factor classes f at size S (64 or 32) into img (S*S),
 * row-major, 0/1. A pixel is on when its centre is inside the shape. */
void data_render(float *img, const int f[DATA_K], int S);
void data_render_u8(uint8_t *img, const int f[DATA_K], int S);


/* The built-in renderer at size S (64 or 32). */
int data_open_builtin(data_source **out, int S, err *e);
/* A file in the official layout: /imgs (N,S,S) uint8 0/1, /latents/classes
 * (N,6) int64, /latents/values (N,6) float64 (column 0 is colour). The images
 * are read once and kept bit-packed (N*S*S/8 bytes). Missing, unreadable or
 * malformed files give ERR_INPUT naming the file and the dataset. When
 * S_expected > 0 the file's image size must equal it. */
int data_open_file(data_source **out, const char *path, int S_expected, err *e);
/* A source that draws only the n images idx (canonical indices) of base,
 * which it borrows (base must outlive it). data_count gives n. For fixed
 * training sets (the overfit test) and subsets. */
int data_open_subset(data_source **out, const data_source *base, const uint32_t *idx,
                     size_t n, err *e);
/* NULL is a no-op. */
void data_close(data_source *d);

/* Number of images (DATA_N for the full set) and the image side S. */
size_t data_count(const data_source *d);
int data_size(const data_source *d);

/* Image at canonical index -> img (S*S) floats 0/1; f (may be NULL) gets its
 * factor classes. Thread-safe: d is read-only after open. */
void data_get(const data_source *d, uint32_t index, float *img, int f[DATA_K]);

/* B images drawn uniformly with replacement: x (B, S*S), f (B, DATA_K) classes
 * (may be NULL), idx (B) canonical indices (may be NULL). */
void data_sample(const data_source *d, rng *r, int B, float *x, int *f, uint32_t *idx);

/* Write the built-in set at size S in the official layout to path (created or
 * truncated). progress (may be NULL) is called now and then with done/total. */
int data_write_file(const char *path, int S, void (*progress)(size_t done, size_t total),
                    err *e);

#endif
