/* results_impl.h: what the files of src/results share (private to them), and
 * THE description of the results file's format: every other place (results.h,
 * the .c files) points here.
 *
 * The files, one job each:
 *   layout.c    the /runs column layout, the HDF5 compound types, row encode/decode
 *   journal.c   journal records: payloads, framing, CRC, scan, append
 *   writer.c    creating / opening the HDF5 file, appending rows, curves, detail
 *   reader.c    results_reader_*: a file read back
 *   recovery.c  checking the file against the journal, rebuilding either
 *   merge.c     results_merge
 *   aside.c     results_move_aside (--restart), under the writer's lock
 *   results.c   the public create / open / append / flush / close
 * *
 * ==== HDF5 layout (a contract: analysis/ and tests/read_results.py read it) ====
 *
 * /  attributes (strings are variable-length UTF-8: h5py returns str)
 *      format_version    int32, RESULTS_FORMAT_VERSION
 *      untangle_version  str
 *      sweep_name        str    \
 *      sweep_yaml        str     } of the YAML the file was CREATED with
 *      sweep_hash        uint64 /  (later YAMLs: /sweeps)
 *      created           str, ISO 8601 UTC, "2024-05-01T12:34:56Z"
 *      hdf5_version      str, "1.10.8": the library that wrote the file
 *      library_versions  str, the caller's "HDF5 ..; OpenBLAS ..; Open MPI ..; libyaml .."
 *      data_name         str, the data set of every row (data.name; from the
 *                        META record); files written before data sets lack
 *                        it: readers take "dsprites"
 *    written by this program into every file it creates (a rebuild and a
 *    merge too), not from the journal; files of earlier versions lack them and
 *    are not given them on open (readers fall back):
 *      key_help          str, JSON object: every run_keys[i].name -> its help text
 *      metric_units      str, JSON object: run_metric_names[i] -> run_metric_units[i]
 *      traversal_steps   str, JSON list: the RUN_TRAV_STEPS code values of a
 *                        traversal row, linspace(-RUN_TRAV_LIMIT, RUN_TRAV_LIMIT), %.17g
 *
 * /sweeps  1-D compound, one row per sweep YAML used: row 0 is the creating one
 *      (same as the root attributes); a resume with a different YAML adds a
 *      row with its first appended attempt.
 *      {opened S32, sweep_name S128, sweep_hash u64, untangle_version S32,
 *       library_versions vlen str, sweep_yaml vlen str}
 *
 * /runs  1-D extendible chunked (64 rows) compound, one row per finished
 *      attempt, in append order. Fixed-length strings are NUL-terminated (h5py:
 *      bytes, decode them). Columns, in order:
 *        index int64, run_id S17, attempt int32,
 *        model S16, arch S8, then every other key of run_keys in table order
 *          (name S16, image_size, path S1024, steps, batch_size, lr, log_every,
 *          images, samples, pairs, encode S8, hist_images, unsup_images,
 *          latent_dim, beta, gamma, alpha, lambda, c_max,
 *          anneal_steps, estimator S8, discrete S128, c_z_max, c_c_max,
 *          chunks S128, supervision, w_swap, seed): integer keys int64 (-1 =
 *          not applicable), real keys float64 (NaN = not applicable), string
 *          keys S<field size>, list keys S128 written like "[2, 2]" ("[]" = none),
 *        status S12 ("ok", "failed", "diverged", "timeout", "interrupted";
 *          EMPTY = an invalid row that a kill left behind: readers skip it),
 *        error S256, rank int32, host S64,
 *        wall_s, train_s, eval_s, imgs_per_s float64,
 *        steps_done int64 (optimiser steps done; "steps" is the configured key),
 *        recon, kl, elbo, tc, mi, dwkl, mig, mig_hist, gaussian_tc, swap_acc,
 *          loss, chunk_mig, eval_images, beta_vae_score, factor_vae_score,
 *          dci_disentanglement, dci_completeness, dci_informativeness, sap,
 *          modularity, explicitness, gaussian_wasserstein_corr_norm,
 *          mutual_info_score, disc_acc float64 (run_metric_names; NaN = not
 *          computed / not applicable; eval_images = the images of Chen's
 *          estimators: eval.images, or the data set's N with encode full),
 *        mig_<f>, then swap_acc_<f>, then chunk_mig_<f> float64 for f in the
 *          factors of the file's data set (data_describe_name(data_name):
 *          dSprites and its variants shape, scale, orientation, posX, posY;
 *          shapes3d floor_hue, wall_hue, object_hue, scale, shape,
 *          orientation).
 *      Files of earlier versions lack encode, hist_images, unsup_images,
 *      chunk_mig, eval_images, disentanglement_lib's suite, disc_acc and
 *      chunk_mig_<f>: readers take the keys' defaults and NaN; a resume
 *      rebuilds such a file from its journal (its columns are not this
 *      version's), whose ROW records keep the result format they were
 *      written in (run_result_unpack reads every one, the metrics a format
 *      lacks NaN).
 *
 * /evals  (created by the first re-evaluation, `untangle eval`; a file
 *      without it reads and opens as before) 1-D extendible chunked compound,
 *      one row per re-evaluation of a run's saved model, in append order:
 *      the /runs columns, then evaluation int32 (1, 2, ... per run_id; 0 is
 *      never stored: it names the training's own evaluation, the /runs row).
 *      index, run_id and attempt are those of the evaluated /runs row; the
 *      key columns are its configuration with the eval keys (images, samples,
 *      pairs, encode, hist_images, unsup_images) the re-evaluation used; status is always "ok" (a failed
 *      re-evaluation leaves no row); train_s 0, imgs_per_s NaN, steps_done the
 *      trained steps, loss the training's final loss (copied); the other
 *      metric and per-factor columns as measured. (run_id, evaluation) is
 *      unique in a file.
 *
 * /curves  1-D extendible chunked compound, long format, the training curves
 *      of every attempt in append order:
 *      {index int64, run_id S17, attempt int32, step int64, name S16, value float64}
 *
 * A run is identified by its run_id: index is its position in the sweep file
 * it ran under, which moves when a resumed sweep's grid grows; (run_id,
 * attempt) is unique in a file.
 *
 * /detail/<run_id>_<attempt>  one group per row of /runs (e.g.
 *      /detail/787575c816ae4a37_1), and /detail/<run_id>_<attempt>_e<evaluation>
 *      one per row of /evals (e.g. /detail/787575c816ae4a37_1_e2, with an
 *      attribute evaluation int32 too),
 *      attributes index int64, attempt int32, run_id str:
 *        mi         float32 (n_units, K): I(unit; factor) in nats, units = the D
 *                   continuous latents then one per discrete variable, K the
 *                   data set's factors; attribute factors (K str); absent
 *                   when not computed
 *        mig        float64 (K): Chen et al.'s per-factor gap / H(v_k)
 *        swap_acc   float64 (K): per-factor swap accuracy
 *        traversal  uint8 (H, W): image grid of latent traversals; absent when
 *                   the run made none
 *
 * ==== Journal: PATH.journal, the record of truth ====
 *
 * Append-only. Each record: u32 magic "UTNJ", u32 type, u64 payload length,
 * u32 CRC32 (IEEE) of type, length and payload, then the payload; native byte
 * order (the journal never leaves the machine that writes it).
 *   META  (type 1, first record): u32 format, u64 sweep_hash, then strings
 *         (u32 length + bytes): created, untangle_version, sweep_name,
 *         sweep_yaml, hdf5_version, library_versions, and the data set's
 *         name when it is not dsprites (absent: dsprites, so dSprites
 *         records are as before). Everything a rebuild needs for the root
 *         attributes, the columns and /sweeps row 0.
 *   SWEEP (type 2): the same fields, for a later YAML (/sweeps row n).
 *   ROW   (type 3): i64 index, char run_id[17], i32 attempt, i32 rank,
 *         char host[64], u32 n_keys, n_keys x (u8 explicitly set, string key
 *         name, string value as run_config_format writes it), u64 length +
 *         run_result_pack bytes (figures, metrics, detail, curves).
 *   EVAL  (type 4): i32 evaluation (>= 1), then a ROW payload (no curves):
 *         one row of /evals. Journals without EVAL records are unchanged;
 *         an older untangle refuses a journal that has them (a type it
 *         cannot decode) and touches nothing.
 * Append: write the record(s) (fdatasync at most every JOURNAL_SYNC_S and at
 * close), THEN write the HDF5 objects and H5Fflush. Open: scan the journal,
 * resynchronising past damage on the next intact record (magic, a length
 * that fits, a good CRC): a short last record = torn by a kill: truncated
 * away without a copy; any other damage (a bad length, magic or CRC, in the
 * middle or at the end): the whole journal is first copied to
 * PATH.journal.damaged-N, then only the damaged bytes are dropped (the
 * intact records after them are kept: the journal is replaced by its intact
 * records); an intact record this version cannot decode: refused, nothing
 * touched. A file whose global heap HDF5 1.10 would walk forever (an object
 * of size 0, h5util_heaps_sane) counts as unreadable: never handed to HDF5.
 * Every reader_open first reads the whole file in a child process
 * (probe_read in reader.c): a file on which HDF5 crashes (a string's heap
 * reference naming an object its collection lacks) counts as unreadable too.
 * A journal left without an intact META record beside a readable
 * file, or behind the file (the file holds all its records and more), is
 * rewritten from the file into PATH.journal.tmp first; only a complete new
 * journal sends the old one to .behind-N and takes its name, so a rewrite
 * that fails (a full disk) leaves the old journal in place. Then compare the HDF5
 * file with the journal: every /runs and /evals row byte for byte, every
 * curve point, detail array and /sweeps row, each record against the file's
 * next equal row (rows between are rows the journal lost: the file is ahead);
 * on any difference (cannot open, all-zero rows, fewer rows, a torn chunk)
 * rename it to PATH.damaged-N and rebuild it from the journal (into
 * PATH.rebuild, then rename). A file with rows or a sweep its journal lacks
 * that also differs is refused (that journal is not its own), unless this
 * open dropped damaged journal records: then the file is rebuilt and the
 * damaged file's rows the journal lost are appended again. Merge writes the output's journal
 * first (one fsync), then builds the file from it, like a rebuild: every
 * attempt of every input once (rows pair by run_id and attempt, never by
 * index), then every re-evaluation once (by run_id and evaluation).
 *
 * Temporaries and backups (PATH.rebuild, PATH.journal.tmp, .damaged-N,
 * .behind-N, .orphan-N, .bak-STAMP[-N]) are in the file's directory, created
 * exclusively (O_EXCL|O_NOFOLLOW, or H5F_ACC_EXCL after removing whatever
 * non-directory sits at the temporary name, never following it), fsync'ed,
 * and renamed with RENAME_NOREPLACE: nothing is renamed over an existing
 * file except the journal by its repaired self. Every file gets 0666 &
 * ~umask. A write that fails (out of space, quota, EIO) leaves each row in
 * the file or the journal; HDF5's exit-time close is off (h5util), so a file
 * whose close failed cannot crash the exit; `untangle sweep` exits 4.
 *
 * Locking: the writer flocks the journal (one writer per file) and opens the
 * HDF5 file without HDF5's own lock, so readers (h5py in a notebook) can read
 * the flushed rows while a sweep runs, and do not block a resume. The file is
 * written in HDF5's default (oldest compatible) format. */
#ifndef UNTANGLE_RESULTS_IMPL_H
#define UNTANGLE_RESULTS_IMPL_H

#include "untangle/results.h"
#include "untangle/spec.h"

#include "../util/bytes.h"
#include "../util/h5util.h"

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- constants --------------------------------------------------------------- */

#define JOURNAL_MAGIC 0x4a4e5455u /* bytes "UTNJ" */
enum { REC_META = 1, REC_SWEEP = 2, REC_ROW = 3, REC_EVAL = 4 };
enum { REC_HEADER = 20 };         /* magic, type, length, crc */

enum {
    MAX_COLS = 160,
    STATUS_LEN = 12, /* "interrupted" + NUL */
    ERROR_LEN = 256,
    HOST_LEN = 64,
    RUN_ID_LEN = 17,
    LIST_LEN = 128, /* RUN_MAX_LIST values up to 4 digits, ", " between */
    TIME_LEN = 32,
    NAME_LEN = 128,
    VERSION_LEN = 32,
    CURVE_NAME_LEN = 16,
    RUNS_CHUNK = 64,
    CURVES_CHUNK = 1024,
    SWEEPS_CHUNK = 4
};
/* Bounds that keep a damaged file from asking for absurd allocations. */
#define MAX_UNITS 100000
#define MAX_TRAVERSAL ((hsize_t)1 << 30)

_Static_assert(sizeof(((results_row *)0)->run_id) == RUN_ID_LEN, "run_id column size");
_Static_assert(sizeof(((results_row *)0)->host) == HOST_LEN, "host column size");
_Static_assert(sizeof(((run_result *)0)->error) == ERROR_LEN, "error column size");
_Static_assert(sizeof(((run_curve_point *)0)->name) == CURVE_NAME_LEN, "curve name size");

/* ---- layout.c: the /runs row layout, the compound types ----------------------- */

typedef enum col_kind { COL_I64, COL_I32, COL_F64, COL_STR } col_kind;
typedef enum col_src {
    SRC_INDEX, SRC_RUN_ID, SRC_ATTEMPT, SRC_KEY, SRC_STATUS, SRC_ERROR, SRC_RANK, SRC_HOST,
    SRC_WALL, SRC_TRAIN, SRC_EVAL, SRC_IPS, SRC_STEPS, SRC_METRIC, SRC_MIG, SRC_SWAP,
    SRC_EVALUATION, SRC_CHUNK
} col_src;

typedef struct col {
    char name[64];
    col_kind kind;
    size_t size, off; /* bytes in the packed row */
    col_src src;
    int arg;          /* run_keys index, metric or factor */
} col;

/* The packed row of /runs: the memory buffer and the file type are the same
 * bytes, so a row read back can be compared with memcmp. */
typedef struct layout {
    col c[MAX_COLS];
    size_t n, size;
    int status_col;
    char data[16];            /* the data set whose factors the per-factor columns are */
    int K;                    /* its factors */
    const char *const *names; /* (K) their names (static) */
} layout;

typedef struct curve_row {
    int64_t index;
    char run_id[RUN_ID_LEN];
    int32_t attempt;
    int64_t step;
    char name[CURVE_NAME_LEN];
    double value;
    size_t pos; /* position in /curves (not stored): keeps sorting stable */
} curve_row;

/* A sweep YAML as the journal and /sweeps hold it (also the root meta). */
typedef struct sweep_rec {
    uint32_t format;
    uint64_t hash;
    char *time, *untangle_version, *name, *yaml, *hdf5_version, *libs;
    char *data; /* the data set (NULL = "dsprites": records and files before data sets) */
} sweep_rec;

typedef struct sweep_row {
    char opened[TIME_LEN];
    char sweep_name[NAME_LEN];
    uint64_t sweep_hash;
    char untangle_version[VERSION_LEN];
    char *library_versions;
    char *sweep_yaml;
} sweep_row;

/* ---- writer.c --------------------------------------------------------------------- */

typedef struct h5w {
    hid_t file, runs, curves, sweeps, detail;
    hid_t rtype, ctype, stype; /* memory types; rtype is also the file type */
    hsize_t n_runs, n_curves, n_sweeps;
    hid_t evals, etype;        /* /evals (absent until the first re-evaluation) */
    hsize_t n_evals;
} h5w;

/* ---- the results object (results.c) and its journal (journal.c) ------------------- */

typedef struct jrec {
    int type;
    off_t off; /* of the payload */
    size_t len;
} jrec;

struct results {
    char *path, *jpath;
    int jfd;
    off_t jlen;       /* bytes of valid records */
    jrec *rec;
    size_t n_rec, cap_rec;
    layout lay;
    h5w w;
    results_attempt *att;
    size_t n_att, cap_att;
    layout elay;      /* /evals */
    struct eval_note { char run_id[RUN_ID_LEN]; int evaluation; } *ev;
    size_t n_ev, cap_ev;
    sweep_rec first;  /* META */
    sweep_rec last;   /* the last YAML recorded (META or SWEEP) */
    sweep_rec pending;
    int has_first, has_pending, broken;
    int j_damaged;    /* this open's scan dropped damaged journal bytes */
    double last_sync;  /* CLOCK_MONOTONIC seconds of the last journal fdatasync */
    double last_flush; /* ... and of the last H5Fflush */
    int unflushed;     /* rows appended since */
    char note[1536];
};

struct results_reader {
    char *path;
    hid_t file, detail;
    layout lay;
    int present[MAX_COLS];
    int same_layout;  /* /runs has exactly this version's columns */
    uint8_t *rows;    /* (n, lay.size) valid rows */
    size_t n, n_skipped;
    layout elay;      /* /evals, when the file has it: */
    int epresent[MAX_COLS];
    uint8_t *erows;   /* (n_ev, elay.size) valid rows */
    size_t n_ev, n_ev_skipped;
    curve_row *curves; /* sorted by (run_id, attempt, position) */
    size_t n_curves;
    sweep_rec root;
    results_meta meta;
    sweep_rec *sw;
    results_meta *swm;
    size_t n_sw;
};

/* ---- results.c: small helpers -------------------------------------------------- */

/* ISO 8601 UTC now, "2024-05-01T12:34:56Z". */
void res_iso_now(char *buf, size_t n);
/* strdup of s (NULL is ""), and a + b; malloc'd, NULL when out of memory. */
char *res_dup_str(const char *s);
char *res_cat_str(const char *a, const char *b);
int res_path_exists(const char *p);
/* Whether f's journal holds row's attempt (an evaluation: that evaluation). */
int res_recorded(const results *f, const results_row *row);
/* First free "base.suffix-N", N >= 1, into out. */
void res_free_name(const char *base, const char *suffix, char *out, size_t n);
/* Every file this module creates gets 0666 & ~umask (journal, file, copies). */
#define RES_FILE_MODE 0666
/* open(path, flags | O_CREAT | O_EXCL | O_NOFOLLOW): a new file, never an
 * existing one or the target of a link; the fd or -1 (errno). */
int res_create_excl(const char *path, int flags);
/* rename(from, to) that fails with EEXIST when to exists (RENAME_NOREPLACE,
 * or link + unlink where the file system lacks it): 0 or -1 (errno). */
int res_rename_noreplace(const char *from, const char *to);
/* Rename from to the first free "base.suffix-N" (into out), never over an
 * existing name: 0 or -1 (errno). */
int res_move_free(const char *from, const char *base, const char *suffix, char *out, size_t n);
/* Remove whatever non-directory sits at the temporary name tmp (a leftover
 * or a planted link; not what it points to): 0 or ERR_IO. */
int res_clear_tmp(const char *tmp, err *e);
/* fsync the directory holding path (a rename or creation becomes durable);
 * fsync the file path (0 or -1). */
void res_sync_dir(const char *path);
int res_sync_file(const char *path);
/* The directory of path must exist and be writable: 0 or ERR_IO naming it. */
int res_check_dir(const char *path, err *e);
/* Append fmt (two %s: a, b) to f->note, "; " between notes. */
void res_add_note(results *f, const char *fmt, const char *a, const char *b);
/* A results object for path (journal path.journal), nothing open; NULL when
 * out of memory. res_free(NULL) is a no-op. */
results *res_new(const char *path);
void res_free(results *f);
/* "1.10.8": the HDF5 library linked in. */
void res_hdf5_version(char *buf, size_t n);

/* ---- layout.c ------------------------------------------------------------------- */

/* A UTF-8 NUL-terminated string type of size bytes (or H5T_VARIABLE). */
hid_t res_str_type(size_t size);
void layout_init(layout *L, const char *data_name);
/* /evals: the /runs columns, then evaluation int32. */
void layout_init_evals(layout *L, const char *data_name);
/* The layouts of f for the data set of its first sweep record (f->first.data). */
void res_layout_for_first(results *f);
/* The compound type of the layout; present (may be NULL = all) selects the
 * members, at their packed offsets (a subset reads an older file). */
hid_t layout_type(const layout *L, const int *present);
/* s (at most max_src bytes of it) into a zero-padded field of size bytes, and
 * a field of src_size bytes back into a NUL-terminated dst. */
void res_put_str(uint8_t *dst, size_t size, const char *s, size_t max_src);
void res_get_str(char *dst, size_t dst_size, const uint8_t *src, size_t src_size);
/* One /runs row (L->size bytes) from an attempt, and back for the present
 * columns (others keep run_config_defaults / run_result_init; c->set is 0;
 * r must be initialised). */
void row_encode(const layout *L, uint8_t *buf, const results_row *row, const run_config *c,
                const run_result *r);
void row_decode(const layout *L, const uint8_t *buf, const int *present, results_row *row,
                run_config *c, run_result *r);
/* The /curves and /sweeps compound types (packed: the file's). */
hid_t curve_type(int packed);
hid_t sweep_type(int packed);
void sweep_rec_free(sweep_rec *s);
/* s from meta, opened at time, with this HDF5's version: 0 or -1 (no memory). */
int sweep_rec_from_meta(sweep_rec *s, const results_meta *m, const char *time);
/* m's strings point into s. */
void sweep_rec_meta(const sweep_rec *s, results_meta *m);
/* Same YAML text, name and hash. */
int sweep_rec_same(const sweep_rec *a, const sweep_rec *b);
/* A deep copy into dst (freed first): 0 or -1. */
int sweep_rec_copy(sweep_rec *dst, const sweep_rec *src);

/* ---- writer.c ------------------------------------------------------------------- */

/* File access property list: HDF5's file locking for readers, none for the
 * writer (see Locking above). */
hid_t res_make_fapl(int writer);
/* Extent of the 1-D dataset ds (0 on error). */
hsize_t res_ds_len(hid_t ds);
void h5w_init(h5w *w);
void h5w_close(h5w *w);
/* Create path (it must not exist: H5F_ACC_EXCL, never through a link) with the root attributes of m and empty datasets;
 * /sweeps gets m's row. */
int h5w_create(h5w *w, const char *path, const layout *L, const sweep_rec *m, err *e);
int h5w_open(h5w *w, const char *path, const layout *L, err *e);
int h5w_add_sweep(h5w *w, const sweep_rec *s, const char *path, err *e);
/* Curves, detail, then the /runs row (no flush). */
int h5w_add_run(h5w *w, const layout *L, const results_row *row, const run_config *c,
                const run_result *r, const char *path, err *e);
/* A re-evaluation (row->evaluation >= 1): detail, then the /evals row, /evals
 * created with the first one (no flush; no curves). */
int h5w_add_eval(h5w *w, const layout *EL, const results_row *row, const run_config *c,
                 const run_result *r, const char *path, err *e);

/* ---- journal.c ------------------------------------------------------------------ */

/* Payloads of META / SWEEP and ROW records; dec_* return 0 or -1 (r must be
 * initialised; on failure it is left empty). */
void journal_enc_sweep(bytes *b, const sweep_rec *s);
int journal_dec_sweep(const uint8_t *p, size_t len, sweep_rec *s);
int journal_enc_row(bytes *b, const results_row *row, const run_config *c, const run_result *r,
                    err *e);
int journal_dec_row(const uint8_t *p, size_t len, results_row *row, run_config *c,
                    run_result *r);
/* EVAL records: i32 evaluation, then a ROW payload. */
int journal_enc_eval(bytes *b, const results_row *row, const run_config *c, const run_result *r,
                     err *e);
int journal_dec_eval(const uint8_t *p, size_t len, results_row *row, run_config *c,
                     run_result *r);
/* Remember that run_id has re-evaluation number evaluation: 0 or -1. */
int journal_note_eval(results *f, const results_row *row);
/* Create the journal (it must not exist) or open it, and take the writer's lock. */
int journal_create(results *f, err *e);
int journal_open(results *f, err *e);
/* Read every record; cut a torn or bad tail away (a complete but bad record
 * means damage, not a kill: the journal is copied aside first). */
int journal_scan(results *f, err *e);
/* Append one record at the end of the valid journal; with sync, fdatasync.
 * On failure the journal is cut back to where it was. */
int journal_put(results *f, int type, const bytes *b, int sync, err *e);
/* A META or SWEEP record of s, remembered as f->first / f->last. */
int journal_put_sweep(results *f, int type, const sweep_rec *s, err *e);
int journal_sync(results *f, err *e);
/* Payload of record i into a malloc'd buffer. */
int journal_read(const results *f, size_t i, uint8_t **out, err *e);
/* Add an attempt to f->att: 0 or -1 (no memory). */
int journal_note_attempt(results *f, const results_row *row, const run_config *c,
                         const run_result *r);

/* ---- reader.c ------------------------------------------------------------------- */

/* results_reader_open / _close without the error silencing (callers silence). */
int reader_open(results_reader **out, const char *path, err *e);
void reader_free(results_reader *r);
/* Row i with curves and detail; *found_detail tells whether its /detail
 * group exists. */
int reader_get(results_reader *rd, size_t i, results_row *row, run_config *c, run_result *r,
               int *found_detail, err *e);
/* Row i of /evals with its detail (no curves). */
int reader_get_eval(results_reader *rd, size_t i, results_row *row, run_config *c,
                    run_result *r, int *found_detail, err *e);

/* ---- recovery.c ----------------------------------------------------------------- */

/* Write path.rebuild from every journal record, then rename it to path. */
int recover_build_file(results *f, err *e);
/* A file without a journal (copied, or its journal deleted): write one from
 * the file's contents; the caller then opens and scans it. */
int recover_journal_from_file(results *f, err *e);
/* A journal without an intact header record beside a readable file: kept
 * aside and rewritten from the file (ERR_INPUT when the file is unreadable). */
int recover_journal_lost(results *f, err *e);
/* Append an EVAL record for every /evals row of rd whose (run_id,
 * evaluation) the journal does not hold yet (a copy in an earlier input of a
 * merge is dropped). */
int journal_put_evals(results *f, results_reader *rd, err *e);
/* Check the file against the journal; rebuild it when it lacks something,
 * rewrite the journal when the file has more. Then open it for appending. */
int recover_and_open(results *f, err *e);

#endif
