/* results: the HDF5 results file of a sweep (DESIGN.md section 7). Only one
 * process (rank 0) writes it.
 *
 * Every finished attempt is first appended to an append-only journal beside
 * the file (RESULTS.h5.journal), then written as a row of the HDF5 file and
 * flushed. The journal is the record of truth: a file damaged by a kill is
 * rebuilt from it on the next open (the damaged file is kept). The journal is
 * local state; the HDF5 file is the portable artefact. The layout of both,
 * and how they are kept in step, is described in ONE place: the top comment of
 * src/results/results_impl.h. */
#ifndef UNTANGLE_RESULTS_H
#define UNTANGLE_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#include "untangle/err.h"
#include "untangle/spec.h"

enum { RESULTS_FORMAT_VERSION = 1 };

typedef struct results results;               /* a results file open for appending */
typedef struct results_reader results_reader; /* a results file open for reading */

/* What identifies the sweep a file belongs to (root attributes, /sweeps). */
typedef struct results_meta {
    const char *sweep_name;
    const char *sweep_yaml;       /* the full text of the sweep file */
    uint64_t sweep_hash;
    const char *untangle_version;
    const char *library_versions; /* "HDF5 ..; OpenBLAS ..; Open MPI ..; libyaml .." (the
                                     caller's; results itself depends on HDF5 only) */
    const char *created;          /* ISO 8601 UTC; filled by the reader, ignored when
                                     writing (the current time is used) */
    const char *data_name;        /* the sweep's data set (data.name; NULL = "dsprites"):
                                     one per file, its factors name the per-factor
                                     columns; a file of another data set is refused */
} results_meta;

/* One row's identity, beside the run's configuration and result. */
typedef struct results_row {
    long index;       /* position in the expansion, >= 0 */
    char run_id[17];
    int attempt;      /* 1, 2, ... */
    int rank;         /* MPI rank that ran it (0 without MPI) */
    char host[64];
    int evaluation;   /* 0: the training's own row (/runs); 1, 2, ...: a
                         re-evaluation of the run's saved model (/evals) */
} results_row;

/* Create path (it must not exist; the caller handles --restart and moves
 * path.journal aside with it), with the root attributes of meta and the HDF5
 * version, an empty /runs, /curves and /detail, /sweeps holding meta's YAML,
 * and a journal. ERR_IO naming the path and the cause when the directory is
 * missing or not writable or path exists; ERR_INPUT for a NULL name or YAML.
 * A journal left without its file (a kill during a rebuild) is recovered when
 * it belongs to the same sweep (name and hash; see results_recovery), moved
 * aside to path.journal.orphan-N otherwise. */
int results_create(results **out, const char *path, const results_meta *meta, err *e);

/* Open an existing file for appending (resume): drops a torn last journal
 * record, checks every byte of the file's rows, curves, detail and sweeps
 * against the journal, and rebuilds the HDF5 file from the journal when it is
 * damaged, has all-zero rows or lacks rows the journal has (the damaged file
 * is kept as path.damaged-N). meta (may be NULL) is the sweep now run: its
 * YAML is recorded in /sweeps with the first append when it differs from the
 * last one recorded (so a resume refused by the caller records nothing).
 * ERR_IO (missing file, in use by another process), ERR_INPUT (not an
 * untangle file, a journal that belongs to another file), ERR_HDF5. */
int results_open(results **out, const char *path, const results_meta *meta, err *e);

/* Append one finished attempt (status must not be RUN_STATUS_NONE; a
 * (run_id, attempt) already recorded is ERR_INPUT): journal record (written;
 * fdatasync at most every second and at close), /runs row, curves, detail
 * (H5Fflush at most every 50 ms, see results_flush). On return 0 the attempt
 * survives a SIGKILL. When the HDF5 write fails after the journal write (ERR_HDF5), the
 * attempt is kept in the journal and the file is rebuilt by the next open;
 * further appends are refused. */
int results_append(results *f, const results_row *row, const run_config *c,
                   const run_result *r, err *e);
/* With row->evaluation >= 1, results_append records a re-evaluation instead
 * (`untangle eval`): an EVAL journal record, then a row of /evals (created
 * with the first) and its detail; a (run_id, evaluation) already recorded is
 * ERR_INPUT. The highest evaluation number recorded for run_id (0: none). */
int results_last_evaluation(const results *f, const char *run_id);

/* results_append flushes the HDF5 file at most every 50 ms (the journal has
 * every row at once); this flushes what is pending. For idle moments. */
int results_flush(results *f, err *e);

/* The attempts recorded so far (from the journal), in append order, for
 * resume, retries and time estimates. The array belongs to f and is valid
 * until the next append or close. */
typedef struct results_attempt {
    long index;
    char run_id[17];
    int attempt;
    int status;       /* run_status */
    double wall_s;
    char model[16], arch[8];
} results_attempt;
const results_attempt *results_attempts(const results *f, size_t *n);
/* Attempt i of results_attempts as the journal recorded it: its row, its
 * configuration (c->set as recorded; c->takes is not: model_resolve it) and
 * result (r initialised; freed and refilled). For `untangle eval`. 0,
 * ERR_IO, ERR_NOMEM, or ERR_INTERNAL when the record no longer decodes. */
int results_attempt_row(const results *f, size_t i, results_row *row, run_config *c,
                        run_result *r, err *e);

/* The root attributes of the file as created (for "belongs to another
 * sweep" checks): name, hash and text of the FIRST sweep YAML. */
const char *results_sweep_name(const results *f);
uint64_t results_sweep_hash(const results *f);
const char *results_sweep_yaml(const results *f);

/* What create/open had to repair, one line ("" when nothing): a dropped torn
 * journal record, a rebuild and where the damaged file was kept, a journal
 * written from the file, a recovered orphan journal. For the caller to print. */
const char *results_recovery(const results *f);

/* "HDF5 1.10.8": the library results writes with, for results_meta's
 * library_versions. Returns buf (n bytes). */
const char *results_library_version(char *buf, size_t n);

/* Write the encoded full set of run run_id (configuration c) into the codes
 * file path (`untangle eval --codes`; layout: src/results/codes.c and
 * docs/architecture.md section 7): created with the factors when missing or
 * empty, else its group /runs/<run_id> is replaced. Takes an exclusive flock
 * on the file for the write, so concurrent run processes take turns.
 * ERR_IO / ERR_HDF5 naming the file; ERR_INPUT when the file holds another
 * factor grid. */
int results_codes_write(const char *path, const char *run_id, const run_config *c,
                        const run_codes *codes, err *e);

/* Flush and close; NULL is a no-op. */
int results_close(results *f, err *e);

/* --restart: move path and its journal aside to path.bak-<UTC stamp> (then
 * -2, -3, ...: never over an existing name), under the writer's lock on the
 * journal (ERR_IO "in use" while a sweep writes it). A lone journal is moved
 * too. Only a regular file with HDF5's signature and a regular journal are
 * moved: anything else at either name (a directory, device, link, foreign
 * file) is ERR_INPUT, nothing moved. kept: the backup name, "" when nothing
 * was there. */
int results_move_aside(const char *path, char *kept, size_t n, err *e);

/* Merge shard files of one sweep into out (created, with a fresh journal),
 * reading the inputs' HDF5 contents (their journals are not needed): all must
 * have the sweep name and hash of the first (else ERR_INPUT naming the file).
 * Rows are paired by (run_id, attempt), never by index (indices move when a
 * grid grows): every attempt of every input is kept once (of two copies of
 * one attempt, the ok one, then the later input's), in input order. Which
 * runs of a grid are missing is the caller's question (read out back). On
 * error nothing is left at out. */
int results_merge(const char *out, const char *const *inputs, size_t n_inputs, err *e);

/* ---- reading a file back (merge, tests, tools) ------------------------------ */

/* Open path read-only and load its root attributes, /sweeps, the valid rows of
 * /runs (rows with an empty status are skipped and counted) and /curves.
 * ERR_IO when it cannot be opened (missing, locked), ERR_INPUT when it is not
 * an HDF5 file or not an untangle results file, ERR_HDF5 otherwise, also when
 * the file is so damaged that reading it crashes HDF5: a child process reads
 * it first, so the crash is the child's. */
int results_reader_open(results_reader **out, const char *path, err *e);
/* Root attributes; the strings belong to r. */
const results_meta *results_reader_meta(const results_reader *r);
/* The YAML texts the file was written with (/sweeps), oldest first. */
size_t results_reader_n_sweeps(const results_reader *r);
const results_meta *results_reader_sweep(const results_reader *r, size_t i);
/* Valid rows, and all-zero (invalid) rows that were skipped. */
size_t results_reader_count(const results_reader *r);
size_t results_reader_skipped(const results_reader *r);
/* Row i (file order among valid rows): identity, configuration (from the key
 * columns; c->set is 0) and result with curves and detail. res must be
 * initialised (run_result_init); it is freed and refilled. */
int results_reader_row(results_reader *r, size_t i, results_row *row, run_config *c,
                       run_result *res, err *e);
/* The valid rows of /evals (0 when the file has none), and row i of them
 * (row->evaluation >= 1) with its detail; no curves. */
size_t results_reader_count_evals(const results_reader *r);
int results_reader_eval(results_reader *r, size_t i, results_row *row, run_config *c,
                        run_result *res, err *e);
/* NULL is a no-op. */
void results_reader_close(results_reader *r);

#endif
