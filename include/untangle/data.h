/* data: the data sets (docs/architecture.md section 3), chosen by data.name:
 *   dsprites        built in (rendered on demand from the factors) or read
 *                   from a file in the official DeepMind HDF5 layout; 1
 *                   channel, binary
 *   color_dsprites  disentanglement_lib's variant: the sprite times a random
 *                   RGB colour, each channel uniform in [0.5, 1); 3 channels
 *   noisy_dsprites  disentanglement_lib's variant: min(sprite + noise, 1),
 *                   noise uniform in [0, 1) per pixel and channel; 3 channels
 *   shapes3d        DeepMind's 3dshapes.h5 (data.path), read by hyperslab;
 *                   3 channels, values /255
 *
 * dSprites' factors, in order: shape (3), scale (6), orientation (40), posX
 * (32), posY (32); N = 737,280. Canonical index =
 * (((shape*6 + scale)*40 + orient)*32 + posX)*32 + posY, the official order.
 * Every data set's canonical index is the mixed radix of its factor classes,
 * the last factor fastest. Images are C x S x S floats in [0, 1], channel-
 * major (plane c at offset c*S*S); S = 64 or 32. */
#ifndef UNTANGLE_DATA_H
#define UNTANGLE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "untangle/err.h"
#include "untangle/rng.h"

typedef struct data_source data_source; /* opaque */

enum { DATA_K = 5 };          /* dSprites' factors */
enum { DATA_MAX_K = 8 };      /* the most factors of any data set */
#define DATA_N 737280u        /* images in dSprites */

/* Factor sizes {3, 6, 40, 32, 32} and names {"shape", "scale", "orientation",
 * "posX", "posY"}. */
extern const int data_factor_sizes[DATA_K];
extern const char *const data_factor_names[DATA_K];

/* Which factors Chen et al.'s MIG averages over: every one but shape, as
 * their metric_helpers/mi_metric.py (factor entropies [6, 40, 32, 32]). */
extern const unsigned char data_factor_in_mig[DATA_K];

/* The data sets, by data.name. */
typedef enum data_set {
    DATA_DSPRITES, DATA_COLOR_DSPRITES, DATA_NOISY_DSPRITES, DATA_SHAPES3D, DATA_N_SETS
} data_set;
extern const char *const data_set_names[DATA_N_SETS];
/* The set called name, or -1. */
int data_set_find(const char *name);

/* A data set as data describes it, for code that must not assume dSprites
 * (the metrics take K and sizes from here, the networks the channels, the
 * results file the names): its name and channels C, K factors in canonical
 * order, their names and sizes, n_grid = the product of the sizes (every
 * combination is one image; canonical index = mixed radix over the values,
 * the last factor fastest), in_mig: the factors Chen et al.'s MIG averages
 * over (dSprites variants: data_factor_in_mig; shapes3d: all six, as
 * disentanglement_lib's MIG). The arrays live as long as the source (static
 * for the sets rendered on demand). */
typedef struct data_factor_desc {
    const char *name;
    int channels;
    int K;
    const int *sizes;
    const char *const *names;
    const unsigned char *in_mig;
    size_t n_grid;
} data_factor_desc;
/* d's data set (a subset source describes its base's grid). */
void data_describe(const data_source *d, data_factor_desc *out);
/* The data set called name without opening it (shapes3d: the official
 * file's sizes 10, 10, 10, 8, 4, 15). ERR_INPUT for an unknown name. */
int data_describe_name(const char *name, data_factor_desc *out, err *e);

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


/* The data set called name (data.name) at image size S (64 or 32; 0 = the
 * file's) from path ("" or NULL: built in; shapes3d needs its file). The
 * one entry point of a run. Errors as the functions below. */
int data_open(data_source **out, const char *name, const char *path, int S, err *e);
/* The built-in renderer at size S (64 or 32). */
int data_open_builtin(data_source **out, int S, err *e);
/* A dSprites variant (set DATA_DSPRITES, DATA_COLOR_DSPRITES or
 * DATA_NOISY_DSPRITES) on top of a dSprites source base, which it takes
 * over (closed with it, also on failure). */
int data_open_variant(data_source **out, data_set set, data_source *base, err *e);
/* DeepMind's 3dshapes file (/images (N,64,64,3) uint8, /labels (N,6)
 * float64, rows in canonical product order; the factor sizes are the numbers
 * of distinct label values of each column). Images are read by hyperslab on
 * demand, never held; S = 32 averages 2x2 blocks. A missing file says where
 * to get it; every bad layout gives one line naming the file and dataset. */
int data_open_shapes3d(data_source **out, const char *path, int S, err *e);
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

/* Number of images (DATA_N for the full dSprites set), the image side S and
 * the channels C (1 or 3). */
size_t data_count(const data_source *d);
int data_size(const data_source *d);
int data_channels(const data_source *d);

/* Image at canonical index -> img (C*S*S); f (may be NULL) gets its K factor
 * classes. The variants' random colour or noise is drawn from (seed, index)
 * alone (a counter-based stream), so an image is the same at any time and
 * on any thread; data_get uses seed 0. Thread-safe for the sets rendered on
 * demand (d is read-only after open); a shapes3d source serialises its reads. */
void data_get(const data_source *d, uint32_t index, float *img, int *f);
void data_get_seeded(const data_source *d, uint32_t index, uint64_t seed, float *img, int *f);
/* The same with the colour or noise drawn from r (training). */
void data_get_rng(const data_source *d, uint32_t index, rng *r, float *img, int *f);

/* B images drawn uniformly with replacement: x (B, C*S*S), f (B, K) classes
 * (may be NULL), idx (B) canonical indices (may be NULL). Each image's index
 * and then its colour or noise come from r (dSprites draws only the index). */
void data_sample(const data_source *d, rng *r, int B, float *x, int *f, uint32_t *idx);

/* Write the built-in set at size S in the official layout to path (created or
 * truncated). progress (may be NULL) is called now and then with done/total. */
int data_write_file(const char *path, int S, void (*progress)(size_t done, size_t total),
                    err *e);
/* Write a file of the 3dshapes layout with sizes[6] values per factor (the
 * official file: 10, 10, 10, 8, 4, 15; smaller for tests), its images a
 * function of the factors (hues as colours, a square of the scale, turned by
 * the orientation, shape as its fill pattern), so that a model can learn
 * them. sparse: the same layout with /images chunked and never written (a
 * file of any size that takes no disk; every image reads as zeros). */
int data_write_shapes3d(const char *path, const int sizes[6], int sparse, err *e);

#endif
