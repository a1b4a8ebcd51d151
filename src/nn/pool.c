/* nn's thread pool: the threads that share one run's kernels.
 *
 * Why not OpenBLAS's own threads: a GEMM that OpenBLAS cuts across its
 * threads is cut by the thread count, and its results then differ in the
 * last bits from one thread count to another, and so did a run's numbers.
 * nn cuts each kernel into tasks fixed by the shapes (nn_impl.h) and runs
 * them here; OpenBLAS is set to one thread once, when the pool starts.
 *
 * One pool per process, like the OpenBLAS pool it replaces: the thread count
 * belongs to the process (`--threads`, set once before any model exists), so
 * it is the one piece of mutable state in nn. The caller of nn_parallel
 * works as slot 0; the workers, slots 1..n-1, start on the first parallel
 * kernel of the process. A child made by fork() has none of its parent's
 * threads: pthread_atfork forgets them there, and the child starts its own.
 *
 * A job is published through one 64-bit word, (generation << 32) | next
 * task: a thread claims a task by a compare-and-swap that also checks the
 * generation, so a worker that wakes late can never take a task of a later
 * job with the function of an earlier one. Workers spin for a few
 * microseconds after a job (a step runs dozens of kernels back to back),
 * then sleep on a condition variable. */
#include "nn_impl.h"
#include "untangle/nn.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

void openblas_set_num_threads(int n);

/* Spins of a waiting thread before it sleeps (a pause is ~10-40 ns). */
enum { SPINS = 2000 };

typedef struct pool {
    pthread_mutex_t mu;
    pthread_cond_t wake;        /* workers: a new job (or quit) */
    pthread_cond_t done;        /* the caller: the last task finished */
    int threads;                /* wanted: the caller + workers */
    int running;                /* workers started in this process */
    int blas_set;               /* OpenBLAS set to one thread */
    int atfork;                 /* the fork handler is registered */
    pthread_t tid[NN_MAX_THREADS];
    _Atomic uint64_t claim;     /* (generation << 32) | next task */
    _Atomic int finished;       /* tasks of the current job done */
    _Atomic(nn_task_fn) fn;     /* the current job */
    _Atomic(void *) ctx;
    _Atomic int n_tasks;
    atomic_int quit;
} pool;

static pool P = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
    .threads = 1,
};

/* Claim and run tasks of generation gen until none is left; 1 when this
 * thread finished the job's last task. */
static int work(uint32_t gen, int slot)
{
    nn_task_fn fn = atomic_load_explicit(&P.fn, memory_order_relaxed);
    void *ctx = atomic_load_explicit(&P.ctx, memory_order_relaxed);
    int n = atomic_load_explicit(&P.n_tasks, memory_order_relaxed);
    int last = 0;
    uint64_t v = atomic_load_explicit(&P.claim, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(v >> 32) != gen || (int)(uint32_t)v >= n)
            return last;
        if (!atomic_compare_exchange_weak_explicit(&P.claim, &v, v + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        fn(ctx, (int)(uint32_t)v, slot);
        last = atomic_fetch_add_explicit(&P.finished, 1, memory_order_acq_rel) + 1 == n;
        v = atomic_load_explicit(&P.claim, memory_order_acquire);
    }
}

static void *worker(void *arg)
{
    const int slot = (int)(intptr_t)arg;
    uint32_t seen = (uint32_t)(atomic_load(&P.claim) >> 32);
    for (;;) {
        int spins = 0;
        uint32_t gen;
        while ((gen = (uint32_t)(atomic_load_explicit(&P.claim, memory_order_acquire) >> 32)) ==
                   seen &&
               !atomic_load(&P.quit)) {
            if (++spins < SPINS) {
                CPU_RELAX();
                continue;
            }
            pthread_mutex_lock(&P.mu);
            while ((uint32_t)(atomic_load(&P.claim) >> 32) == seen && !atomic_load(&P.quit))
                pthread_cond_wait(&P.wake, &P.mu);
            pthread_mutex_unlock(&P.mu);
        }
        if (atomic_load(&P.quit))
            return NULL;
        seen = gen;
        if (work(gen, slot)) {
            pthread_mutex_lock(&P.mu);
            pthread_cond_signal(&P.done);
            pthread_mutex_unlock(&P.mu);
        }
    }
}

/* In a child after fork(): the parent's workers do not exist here. */
static void forget_workers(void)
{
    pthread_mutex_init(&P.mu, NULL);
    pthread_cond_init(&P.wake, NULL);
    pthread_cond_init(&P.done, NULL);
    P.running = 0;
    atomic_store(&P.quit, 0);
}

static void stop_workers(void)
{
    if (!P.running)
        return;
    pthread_mutex_lock(&P.mu);
    atomic_store(&P.quit, 1);
    pthread_cond_broadcast(&P.wake);
    pthread_mutex_unlock(&P.mu);
    for (int i = 1; i <= P.running; i++)
        pthread_join(P.tid[i], NULL);
    P.running = 0;
    atomic_store(&P.quit, 0);
}

/* OpenBLAS single-threaded, and the workers running. Without workers (a
 * thread could not be created) the caller runs every task itself: slower,
 * the same numbers. */
static void start(void)
{
    if (!P.blas_set) {
        openblas_set_num_threads(1);
        P.blas_set = 1;
    }
    if (!P.atfork) {
        pthread_atfork(NULL, NULL, forget_workers);
        P.atfork = 1;
    }
    while (P.running < P.threads - 1) {
        int slot = P.running + 1;
        if (pthread_create(&P.tid[slot], NULL, worker, (void *)(intptr_t)slot) != 0) {
            P.threads = P.running + 1;
            break;
        }
        P.running++;
    }
}

void nn_set_threads(int n)
{
    if (n < 1)
        n = 1;
    if (n > NN_MAX_THREADS)
        n = NN_MAX_THREADS;
    stop_workers();
    P.threads = n;
    if (!P.blas_set) {
        openblas_set_num_threads(1);
        P.blas_set = 1;
    }
}

int nn_threads(void) { return P.threads; }

int nn_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void nn_parallel(int n_tasks, nn_task_fn fn, void *ctx)
{
    if (n_tasks <= 0)
        return;
    if (!P.blas_set || P.running < P.threads - 1)
        start();
    if (P.threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    atomic_store_explicit(&P.fn, fn, memory_order_relaxed);
    atomic_store_explicit(&P.ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&P.n_tasks, n_tasks, memory_order_relaxed);
    atomic_store_explicit(&P.finished, 0, memory_order_relaxed);
    uint32_t gen = (uint32_t)(atomic_load(&P.claim) >> 32) + 1;
    atomic_store_explicit(&P.claim, (uint64_t)gen << 32, memory_order_release);
    pthread_mutex_lock(&P.mu);
    pthread_cond_broadcast(&P.wake);
    pthread_mutex_unlock(&P.mu);
    work(gen, 0);
    for (int spins = 0; atomic_load_explicit(&P.finished, memory_order_acquire) < n_tasks;) {
        if (++spins < SPINS) {
            CPU_RELAX();
            continue;
        }
        pthread_mutex_lock(&P.mu);
        while (atomic_load(&P.finished) < n_tasks)
            pthread_cond_wait(&P.done, &P.mu);
        pthread_mutex_unlock(&P.mu);
    }
}

typedef struct range_job {
    size_t n;
    nn_range_fn fn;
    void *ctx;
} range_job;

static void range_task(void *ctx, int task, int slot)
{
    (void)slot;
    const range_job *j = ctx;
    size_t lo = (size_t)task * NN_ELEM_BLOCK, hi = lo + NN_ELEM_BLOCK;
    j->fn(j->ctx, lo, hi < j->n ? hi : j->n);
}

void nn_parallel_range(size_t n, nn_range_fn fn, void *ctx)
{
    if (n <= NN_ELEM_BLOCK) {
        if (n)
            fn(ctx, 0, n);
        return;
    }
    range_job j = {n, fn, ctx};
    nn_parallel((int)((n + NN_ELEM_BLOCK - 1) / NN_ELEM_BLOCK), range_task, &j);
}
