/* Private to src/nn: the thread pool that runs a kernel's tasks (pool.c),
 * and the fixed cuts of a kernel into tasks.
 *
 * The rule that makes a run's numbers independent of the thread count: a
 * kernel is cut into tasks whose number and bounds follow from the shapes
 * alone, never from the thread count. A task writes its own part of the
 * output (rows or columns of a GEMM's result, never a slice of its inner
 * dimension; images of a convolution); a sum over tasks (a weight gradient
 * over the images of a batch) goes into one partial per task, and the
 * partials are added in task order afterwards. The threads only decide who
 * runs which task, so every float comes out of the same operations in the
 * same order whatever --threads is. Each task calls OpenBLAS
 * single-threaded. */
#ifndef UNTANGLE_NN_IMPL_H
#define UNTANGLE_NN_IMPL_H

#include <stddef.h>

/* Most threads the pool runs (nn_set_threads clamps to it). */
enum { NN_MAX_THREADS = 256 };

/* One task of a kernel: task in [0, n_tasks), run by the thread in slot
 * (0 = the caller, 1..nn_threads()-1 the pool's workers); a slot indexes the
 * kernel's per-thread scratch. */
typedef void (*nn_task_fn)(void *ctx, int task, int slot);

/* Run fn for every task in [0, n_tasks) on the pool and return when all are
 * done. Tasks run in any order and concurrently: each must write only its
 * own output. Not reentrant: a task never calls nn_parallel. With one
 * thread (or one task) the tasks run here, in order. */
void nn_parallel(int n_tasks, nn_task_fn fn, void *ctx);

/* The width of the blocks a dimension of n is cut into: about target (at
 * least 1), as many blocks as needed, their count made even when it is above
 * one (two threads get equal shares) and the width rounded up to a multiple
 * of 8 (the GEMM kernels' unroll). Depends on n and target only. */
static inline int nn_block_width(int n, int target)
{
    if (target < 1)
        target = 1;
    int count = (n + target - 1) / target;
    if (count > 1 && count % 2)
        count++;
    if (count < 1)
        count = 1;
    int w = (n + count - 1) / count;
    w = (w + 7) / 8 * 8;
    return w < 1 ? 1 : w;
}

/* Blocks of width w that cover n. */
static inline int nn_block_count(int n, int w) { return n > 0 ? (n + w - 1) / w : 0; }

/* Elementwise kernels cut n floats into blocks of this many (a multiple of
 * the 16-float vector loops, so a block's vector and scalar parts are the
 * same as in one pass). */
enum { NN_ELEM_BLOCK = 16384 };

/* Run fn(ctx, lo, hi) over [0, n) in blocks of NN_ELEM_BLOCK on the pool
 * (directly when n is at most one block). For elementwise maps only. */
typedef void (*nn_range_fn)(void *ctx, size_t lo, size_t hi);
void nn_parallel_range(size_t n, nn_range_fn fn, void *ctx);

#endif
