/* The intra-op thread team: one parallel region at a time, split into parts
 * run by the caller (part 0) and persistent workers (parts 1..n-1).
 *
 * Kernels call it for work that is worth splitting (a large GEMM, the batch
 * rows of an RNN's time loop). Workers spin for about half a millisecond
 * after a region, because a training step calls regions back to back and a
 * condition-variable wakeup costs tens of microseconds; then they sleep. A
 * region started while another is running (ops on the inter-op pool, or a
 * nested call) runs whole on its caller's thread: never oversubscribed,
 * never deadlocked. Workers live until the process ends (the libraries are
 * linked -z nodelete so that unloading them cannot pull code from under a
 * spinning worker); a child after fork() starts its own. */
#include "internal.h"

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define MAX_WORKERS 63
#define PARTS_MASK 127u
#define SPIN 20000 /* polls before a worker sleeps (~0.5 ms at 23 ns a pause) */

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  atomic_uint gen;    /* a region's sequence number << 7 | its part count */
  atomic_int pending; /* workers' parts still running */
  atomic_flag busy;   /* a region is running */
  unsigned base_gen;  /* gen when the newest workers were created */
  int started;        /* workers created so far */
  int threads;        /* parts per region, caller included */
  mfi_part_fn fn;
  void *ctx;
} team = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, ATOMIC_FLAG_INIT};

static void *worker(void *arg)
{
  int id = (int)(intptr_t)arg;
  /* Read before the region that created this worker can end (it waits for
   * this worker's part), so no later ensure_workers has changed it. */
  unsigned seen = team.base_gen;
  for (;;) {
    unsigned g;
    int spins = 0;
    while ((g = atomic_load_explicit(&team.gen, memory_order_acquire)) == seen && spins < SPIN)
      cpu_relax(), spins++;
    if (g == seen) {
      pthread_mutex_lock(&team.mu);
      while ((g = atomic_load(&team.gen)) == seen) pthread_cond_wait(&team.cv, &team.mu);
      pthread_mutex_unlock(&team.mu);
    }
    seen = g;
    /* The part count comes in the same word as the wakeup: a worker that
     * sits a region out may read it late, when fn and ctx already belong
     * to the next region (a worker with a part holds its region open). */
    int nparts = (int)(g & PARTS_MASK);
    if (id < nparts) {
      team.fn(team.ctx, id, nparts);
      atomic_fetch_sub_explicit(&team.pending, 1, memory_order_release);
    }
  }
  return NULL;
}

/* The CPUs this process may run on (taskset, cgroup cpusets), not all the
 * machine has: more workers than that would only spin against each other. */
int mfi_usable_cpus(void)
{
  cpu_set_t set;
  long n =
      sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > MAX_WORKERS + 1 ? MAX_WORKERS + 1 : (int)n;
}

/* The running kernel's session's intra-op thread count (0: no limit); set
 * around each kernel by the thread that runs it, so that sessions keep
 * their own settings. */
static _Thread_local int limit;

int mfi_parallel_limit(int n)
{
  int old = limit;
  limit = n;
  return old;
}

void mfi_parallel_set_threads(int n)
{
  if (n < 1) return;
  __atomic_store_n(&team.threads, n > MAX_WORKERS + 1 ? MAX_WORKERS + 1 : n, __ATOMIC_RELAXED);
}

int mfi_parallel_threads(void)
{
  int n = __atomic_load_n(&team.threads, __ATOMIC_RELAXED);
  if (n < 1) {
    n = mfi_usable_cpus();
    __atomic_store_n(&team.threads, n, __ATOMIC_RELAXED);
  }
  return limit > 0 && limit < n ? limit : n;
}

/* A forked child has none of the parent's workers (and no region running). */
static void after_fork_child(void)
{
  team.started = 0;
  atomic_flag_clear(&team.busy);
  pthread_mutex_init(&team.mu, NULL);
  pthread_cond_init(&team.cv, NULL);
}

static void register_fork_handler(void) { pthread_atfork(NULL, NULL, after_fork_child); }

/* Starts workers 1..n-1 that do not exist yet; the count that runs.
 * Workers block every signal: signals are the host's threads' business. */
static int ensure_workers(int n)
{
  if (team.started >= n - 1) return n;
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, register_fork_handler);
  team.base_gen = atomic_load(&team.gen);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  while (team.started < n - 1) {
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &at, worker, (void *)(intptr_t)(team.started + 1));
    pthread_attr_destroy(&at);
    if (rc != 0) break;
    team.started++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return team.started + 1 < n ? team.started + 1 : n;
}

void mfi_parallel(int nparts, mfi_part_fn fn, void *ctx)
{
  int max = mfi_parallel_threads();
  if (nparts > max) nparts = max;
  if (nparts <= 1 || atomic_flag_test_and_set(&team.busy)) {
    fn(ctx, 0, 1);
    return;
  }
  nparts = ensure_workers(nparts);
  if (nparts <= 1) {
    atomic_flag_clear(&team.busy);
    fn(ctx, 0, 1);
    return;
  }
  team.fn = fn, team.ctx = ctx;
  atomic_store(&team.pending, nparts - 1);
  pthread_mutex_lock(&team.mu);
  unsigned g = atomic_load(&team.gen);
  atomic_store_explicit(&team.gen, (((g >> 7) + 1) << 7) | (unsigned)nparts, memory_order_release);
  pthread_cond_broadcast(&team.cv);
  pthread_mutex_unlock(&team.mu);
  fn(ctx, 0, nparts);
  for (int spins = 0; atomic_load_explicit(&team.pending, memory_order_acquire) > 0; spins++) {
    if (spins < SPIN)
      cpu_relax();
    else
      sched_yield();
  }
  atomic_flag_clear(&team.busy);
}
