/*
** jobs.c — the persistent thread pool behind ram_run_jobs (see jobs.h).
**
** HOW IT WORKS: a call posts one task (the caller's job array, on its
** stack) and is granted at most min(n - 1, idle workers, free cores)
** helpers, where "free cores" counts every thread currently running jobs
** (callers inside ram_run_jobs and busy workers) against the CPU count. The
** caller and its helpers claim job indices from one atomic counter, so a
** job runs exactly once whoever runs it. When the caller runs out of jobs
** it takes back the grants no worker has picked up yet (a late-waking worker
** must not delay it) and waits only for the helpers already inside its task.
** Workers spin briefly after each task before sleeping, so that the many
** short back-to-back calls of a forward do not pay a wake-up each.
**
** SPLITS (ram_run_split): the vCPUs of a VM need not run at one speed (here
** one ran 130 GFLOP/s and the other 158 in the same minute, and the
** figures drift), so equal halves of a product make the faster thread wait.
** Each thread that takes part in a split claims one contiguous range as it
** starts, sized by its vCPU's measured speed against the mean of the
** others; each range is timed (the thread's CPU time: the time slices of
** other processes on a loaded machine are no property of the vCPU, and a
** range that lost some, or moved, is not used), and the units per CPU second
** of the ranges of one split (on different vCPUs, each long enough to time)
** update the vCPUs' speeds, an exponential average. Cutting finer instead (more jobs
** than threads, claimed as threads come free) costs the sgemm more than it
** wins: each column job streams all of A again (docs/KERNELS.md, session 7).
**
** The pool and the speed table are process state (one per process, like a
** cache: created on first use, never torn down; its threads hold no
** resources of a model). The thread count is per calling thread
** (_Thread_local), not global.
*/
#include "jobs.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define MAX_WORKERS 63
#define SPIN_ROUNDS 2000 /* ~50-250 us of pause (40-140 cycles each) before a worker or caller sleeps */

struct task {
    void *(*fn)(void *);
    char *jobs;
    size_t job_size;
    int n;
    atomic_int next;    /* next unclaimed job index */
    int grants;         /* helpers granted but not yet arrived (pool.mu) */
    atomic_int active;  /* helpers inside the task */
    struct task *qnext; /* pool queue link (pool.mu) */
};

static struct {
    pthread_once_t once;
    pthread_mutex_t mu;
    pthread_cond_t wake;      /* workers: a task was queued */
    pthread_cond_t done;      /* callers: a helper left a task */
    struct task *head, *tail; /* tasks with grants left */
    atomic_int queued;        /* tasks in the queue (read while spinning) */
    int cpus, workers, idle, busy, peak;
} pool = {.once = PTHREAD_ONCE_INIT,
          .mu = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static _Thread_local int tl_threads;   /* 0: the process default */
static _Thread_local int tl_is_worker; /* pool threads run their jobs with 1 thread */
static int default_threads;

static void run_claims(struct task *t)
{
    for (;;) {
        int i = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
        if (i >= t->n) return;
        t->fn(t->jobs + (size_t)i * t->job_size);
    }
}

static void note_busy(int add)
{
    pool.busy += add;
    if (pool.busy > pool.peak) pool.peak = pool.busy;
}

/* Takes one grant of the queue's first task (pool.mu held), or NULL. */
static struct task *take_grant(void)
{
    struct task *t = pool.head;
    if (!t) return NULL;
    if (--t->grants == 0) {
        pool.head = t->qnext;
        if (!pool.head) pool.tail = NULL;
        atomic_fetch_sub_explicit(&pool.queued, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&t->active, 1, memory_order_relaxed);
    return t;
}

static void *worker_main(void *arg)
{
    (void)arg;
    tl_is_worker = 1;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        struct task *t = take_grant();
        if (!t) {
            /* Spin outside the lock for a while: the next call usually comes within microseconds. */
            pthread_mutex_unlock(&pool.mu);
            for (int s = 0; s < SPIN_ROUNDS && !atomic_load_explicit(&pool.queued, memory_order_relaxed); s++)
                cpu_relax();
            pthread_mutex_lock(&pool.mu);
            if (!pool.head) pthread_cond_wait(&pool.wake, &pool.mu);
            continue;
        }
        pthread_mutex_unlock(&pool.mu);
        run_claims(t);
        pthread_mutex_lock(&pool.mu);
        pool.idle++;
        pool.busy--;
        if (atomic_fetch_sub_explicit(&t->active, 1, memory_order_release) == 1) pthread_cond_broadcast(&pool.done);
    }
    return NULL;
}

static int env_threads(const char *name)
{
    const char *s = getenv(name);
    int v = s ? atoi(s) : 0;
    return v > 0 ? v : 0;
}

static void pool_init(void)
{
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    pool.cpus = nc > 0 ? (int)nc : 1;
    default_threads = env_threads("RAM_THREADS");
    if (!default_threads) default_threads = env_threads("OPENBLAS_NUM_THREADS");
    if (!default_threads) default_threads = pool.cpus;
}

/* Starts workers up to min(wanted, cpus - 1) (pool.mu held); a worker
** that cannot be started only means fewer helpers. */
static void grow(int wanted)
{
    int cap = pool.cpus - 1 < MAX_WORKERS ? pool.cpus - 1 : MAX_WORKERS;
    if (wanted > cap) wanted = cap;
    while (pool.workers < wanted) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int ok = pthread_create(&th, &at, worker_main, NULL) == 0;
        pthread_attr_destroy(&at);
        if (!ok) break;
        pool.workers++;
        pool.idle++;
    }
}

void ram_run_jobs(void *(*fn)(void *), void *jobs, size_t job_size, int n)
{
    if (n > RAM_MAX_JOBS) n = RAM_MAX_JOBS;
    if (n <= 0) return;
    if (n == 1) {
        fn(jobs);
        return;
    }
    pthread_once(&pool.once, pool_init);
    struct task t = {.fn = fn, .jobs = jobs, .job_size = job_size, .n = n};
    atomic_init(&t.next, 0);
    atomic_init(&t.active, 0);

    pthread_mutex_lock(&pool.mu);
    grow(n - 1);
    note_busy(1);
    int g = n - 1;
    if (g > pool.idle) g = pool.idle;
    if (g > pool.cpus - pool.busy) g = pool.cpus - pool.busy;
    if (g > 0) {
        t.grants = g;
        pool.idle -= g;
        note_busy(g);
        if (pool.tail)
            pool.tail->qnext = &t;
        else
            pool.head = &t;
        pool.tail = &t;
        atomic_fetch_add_explicit(&pool.queued, 1, memory_order_relaxed);
        if (g == 1)
            pthread_cond_signal(&pool.wake);
        else
            pthread_cond_broadcast(&pool.wake);
    }
    pthread_mutex_unlock(&pool.mu);

    run_claims(&t);

    pthread_mutex_lock(&pool.mu);
    if (t.grants > 0) { /* take back what no worker picked up */
        struct task **p = &pool.head, *prev = NULL;
        while (*p != &t) prev = *p, p = &(*p)->qnext;
        *p = t.qnext;
        if (pool.tail == &t) pool.tail = prev;
        atomic_fetch_sub_explicit(&pool.queued, 1, memory_order_relaxed);
        pool.idle += t.grants;
        pool.busy -= t.grants;
        t.grants = 0;
    }
    pool.busy--;
    if (atomic_load_explicit(&t.active, memory_order_acquire) > 0) {
        pthread_mutex_unlock(&pool.mu);
        for (int s = 0; s < SPIN_ROUNDS && atomic_load_explicit(&t.active, memory_order_acquire) > 0; s++) cpu_relax();
        pthread_mutex_lock(&pool.mu);
        while (atomic_load_explicit(&t.active, memory_order_acquire) > 0) pthread_cond_wait(&pool.done, &pool.mu);
    }
    pthread_mutex_unlock(&pool.mu);
}

int ram_jobs_cpu_count(void)
{
    pthread_once(&pool.once, pool_init);
    return pool.cpus;
}

void ram_jobs_set_threads(int n) { tl_threads = n < 1 ? 0 : n; }

int ram_jobs_threads(void)
{
    if (tl_is_worker) return 1;
    if (tl_threads) return tl_threads;
    pthread_once(&pool.once, pool_init);
    return default_threads;
}

int ram_job_count(double work, double min_work, long items)
{
    double by_work = work / min_work;
    if (by_work < 2 || items < 2) return 1;
    int t = ram_jobs_threads();
    if (t > RAM_MAX_JOBS) t = RAM_MAX_JOBS;
    if (t > by_work) t = (int)by_work;
    if (t > items) t = (int)items;
    return t < 1 ? 1 : t;
}

void ram_jobs_probe(int *peak_busy, int *workers_started)
{
    pthread_once(&pool.once, pool_init);
    pthread_mutex_lock(&pool.mu);
    if (peak_busy) *peak_busy = pool.peak;
    if (workers_started) *workers_started = pool.workers;
    pthread_mutex_unlock(&pool.mu);
}

void ram_jobs_probe_reset(void)
{
    pthread_once(&pool.once, pool_init);
    pthread_mutex_lock(&pool.mu);
    pool.peak = pool.busy;
    pthread_mutex_unlock(&pool.mu);
}

/* ---- splits sized by vCPU speed ---- */
#define SPEED_CPUS 64          /* vCPUs whose speed is kept; any other counts as the mean */
#define SPEED_ONE 1024         /* fixed point: 1.0 */
#define SPEED_MIN_SECONDS 2e-4 /* a shorter range's timing is mostly noise: not used */
#define SPEED_SHIFT 3          /* each split moves a speed 1/8 of the way to its measurement */
#define UNIT_BITS 40           /* a claim word: claims so far above, the first unclaimed unit below */

static atomic_int speed[SPEED_CPUS];  /* 0: not measured yet (SPEED_ONE) */
static atomic_int speed_pinned;       /* ram_jobs_speed_set: no updates */
static double probe_held, probe_busy; /* ram_jobs_split_probe (pool.mu) */

static int speed_of(int cpu)
{
    int v = cpu >= 0 && cpu < SPEED_CPUS ? atomic_load_explicit(&speed[cpu], memory_order_relaxed) : 0;
    return v > 0 ? v : SPEED_ONE;
}

/* The mean speed of the vCPUs other than cpu: the later ranges run there. */
static double others_speed(int cpu)
{
    int n = pool.cpus < SPEED_CPUS ? pool.cpus : SPEED_CPUS, k = 0;
    double sum = 0;
    for (int c = 0; c < n; c++)
        if (c != cpu) sum += speed_of(c), k++;
    return k ? sum / k : SPEED_ONE;
}

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

struct split {
    void (*fn)(void *ctx, int slot, long u0, long u1);
    void *ctx;
    long units;
    int n;
    _Atomic long long claim;
    struct {
        int cpu; /* -1: the range moved to another vCPU or lost it to another thread (not timed) */
        long units;
        double seconds;     /* wall */
        double cpu_seconds; /* the thread's CPU time: the vCPU's own speed */
        const void *thread; /* who ran it (a _Thread_local's address) */
    } done[RAM_MAX_JOBS];   /* by slot; read by the caller once every job has returned */
};

/* One job of a split: claims the next range (every job claims exactly one, so the n-th takes the rest). */
static void *split_job(void *arg)
{
    struct split *s = *(struct split **)arg;
    int cpu = sched_getcpu();
    double me = speed_of(cpu), rest = others_speed(cpu);
    long long c = atomic_load_explicit(&s->claim, memory_order_relaxed), next;
    int slot;
    long u0, u1;
    do {
        slot = (int)(c >> UNIT_BITS), u0 = (long)(c & ((1LL << UNIT_BITS) - 1));
        long left = s->units - u0, take = left;
        if (s->n - slot > 1) take = (long)((double)left * me / (me + (s->n - slot - 1) * rest) + 0.5);
        u1 = u0 + (take < left ? take : left);
        next = ((long long)(slot + 1) << UNIT_BITS) | u1;
    } while (!atomic_compare_exchange_weak_explicit(&s->claim, &c, next, memory_order_relaxed, memory_order_relaxed));
    double t0 = now_s(), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    if (u1 > u0) s->fn(s->ctx, slot, u0, u1);
    double wall = now_s() - t0, used = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    /* Only a range that kept its vCPU to itself measures that vCPU: other
    ** processes' time slices (a loaded machine) would rate it by their load. */
    s->done[slot].cpu = used >= 0.95 * wall && sched_getcpu() == cpu ? cpu : -1;
    s->done[slot].units = u1 - u0, s->done[slot].seconds = wall, s->done[slot].cpu_seconds = used;
    s->done[slot].thread = &tl_is_worker;
    return NULL;
}

/* Moves the speeds of the split's vCPUs toward its measured units per second,
** scaled so that their sum stays as it was. */
static void speed_update(const struct split *s)
{
    int cpu[RAM_MAX_JOBS], k = 0;
    double units[RAM_MAX_JOBS], sec[RAM_MAX_JOBS];
    for (int i = 0; i < s->n; i++) {
        int c = s->done[i].cpu, j = 0;
        if (s->done[i].units <= 0) continue;
        if (c < 0 || c >= SPEED_CPUS || s->done[i].cpu_seconds < SPEED_MIN_SECONDS) return;
        while (j < k && cpu[j] != c) j++;
        if (j == k) cpu[k] = c, units[k] = 0, sec[k] = 0, k++;
        units[j] += (double)s->done[i].units, sec[j] += s->done[i].cpu_seconds;
    }
    if (k < 2 || atomic_load_explicit(&speed_pinned, memory_order_relaxed)) return;
    double have = 0, rate = 0;
    for (int j = 0; j < k; j++) have += speed_of(cpu[j]), rate += units[j] / sec[j];
    for (int j = 0; j < k; j++) {
        double old = speed_of(cpu[j]), want = units[j] / sec[j] * have / rate;
        double v = old + (want - old) / (1 << SPEED_SHIFT);
        /* learnt speeds stay within 2x of the mean: a bad estimate then costs at most an 80/20 split */
        if (v < SPEED_ONE / 2) v = SPEED_ONE / 2;
        if (v > SPEED_ONE * 2) v = SPEED_ONE * 2;
        atomic_store_explicit(&speed[cpu[j]], (int)(v + 0.5), memory_order_relaxed);
    }
}

void ram_run_split(void (*fn)(void *ctx, int slot, long u0, long u1), void *ctx, long units, int n)
{
    if (units <= 0) return;
    if (n > RAM_MAX_JOBS) n = RAM_MAX_JOBS;
    if (n <= 1 || units >= 1LL << UNIT_BITS) {
        fn(ctx, 0, 0, units);
        return;
    }
    pthread_once(&pool.once, pool_init);
    struct split s = {.fn = fn, .ctx = ctx, .units = units, .n = n};
    atomic_init(&s.claim, 0);
    struct split *jobs[RAM_MAX_JOBS];
    for (int i = 0; i < n; i++) jobs[i] = &s;
    double t0 = now_s();
    ram_run_jobs(split_job, jobs, sizeof jobs[0], n);
    double span = now_s() - t0, busy = 0;
    speed_update(&s);
    int threads = 0; /* that took part: a caller that ran every range held one thread, not n */
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int k = 0; k < i; k++) seen |= s.done[k].thread == s.done[i].thread;
        threads += !seen;
        busy += s.done[i].seconds;
    }
    pthread_mutex_lock(&pool.mu);
    probe_held += threads * span, probe_busy += busy;
    pthread_mutex_unlock(&pool.mu);
}

double ram_jobs_speed(int cpu) { return (double)speed_of(cpu) / SPEED_ONE; }

void ram_jobs_speed_set(int cpu, double v)
{
    if (cpu < 0) {
        for (int c = 0; c < SPEED_CPUS; c++) atomic_store(&speed[c], 0);
        atomic_store(&speed_pinned, 0);
        return;
    }
    if (cpu >= SPEED_CPUS) return;
    if (!(v >= 0.25)) v = 0.25;
    if (v > 4) v = 4;
    atomic_store(&speed_pinned, 1);
    atomic_store(&speed[cpu], (int)(v * SPEED_ONE + 0.5));
}

void ram_jobs_split_probe(double *held_seconds, double *busy_seconds)
{
    pthread_once(&pool.once, pool_init);
    pthread_mutex_lock(&pool.mu);
    if (held_seconds) *held_seconds = probe_held;
    if (busy_seconds) *busy_seconds = probe_busy;
    pthread_mutex_unlock(&pool.mu);
}

void ram_jobs_split_probe_reset(void)
{
    pthread_once(&pool.once, pool_init);
    pthread_mutex_lock(&pool.mu);
    probe_held = probe_busy = 0;
    pthread_mutex_unlock(&pool.mu);
}
