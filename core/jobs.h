/*
** jobs.h — the one thread pool of core/: parallel jobs for the kernels
** (sgemm, int8 gemm, element-wise ops, attention windows) and the per-caller
** thread count that decides how many of them run at once.
**
** The pool's workers are created once, on first use, and never more than
** the CPU count minus one: the caller always works on its own jobs, so one
** caller keeps every core busy and two callers at once (two SQLite
** connections on two threads) never start more workers than there are free
** cores: a caller that finds no free worker runs its jobs itself.
*/
#ifndef RAM_JOBS_H
#define RAM_JOBS_H

#include <stddef.h>

/* Runs fn on each of the n jobs (job_size bytes apart, n <= RAM_MAX_JOBS).
** The caller runs jobs too; idle pool workers take the others. Which thread
** runs a job is not fixed, so a job must depend only on its own struct.
** Returns when every job has returned. Callable from inside a job (the
** nested jobs then mostly run in the calling thread). */
#define RAM_MAX_JOBS 8
void ram_run_jobs(void *(*fn)(void *), void *jobs, size_t job_size, int n);

/* How many jobs to split work into: the calling thread's count
** (ram_jobs_threads), at most RAM_MAX_JOBS and items, and one per min_work of
** work at least (below that, handing a job over costs more than it saves).
** 1 for small work, decided before anything else is read. */
int ram_job_count(double work, double min_work, long items);

/* Runs fn over units equal units of work cut into n contiguous ranges (n
** as from ram_job_count, <= RAM_MAX_JOBS), each thread that takes part
** claiming one range as it starts (slot = 0.. n - 1, the order of claims:
** a per-range scratch index). A range is sized to the measured speed of the
** vCPU its thread runs on against the others (ram_jobs_speed), so that two
** vCPUs of unequal speed finish together, where equal halves would wait for
** the slower one. The last claim takes what is left; a range may be empty
** (fn is then not called). Which units a range holds never changes what is
** computed for a unit, so callers that cut at whole tiles keep their bits.
** Returns when every range has run. */
void ram_run_split(void (*fn)(void *ctx, int slot, long u0, long u1), void *ctx, long units, int n);

/* The relative speed of each vCPU as the splits measured it (1 = the mean;
** an exponential average of units per CPU second over each split's ranges,
** from splits whose ranges ran on different vCPUs, none of them descheduled). ram_jobs_speed_set pins
** a vCPU's figure (tests: skewed splits) and stops updates while any
** is pinned; cpu < 0 unpins all and restarts from equal speeds. */
double ram_jobs_speed(int cpu);
void ram_jobs_speed_set(int cpu, double speed);

/* Bench probe: over the splits of more than one range since the last reset,
** the thread time they held (threads that ran a range x each split's wall
** time, from its start to its last range's end) and the part of it spent running ranges; the
** rest is a thread waiting for the slowest range (or for a worker to wake).
** Whole process, every caller. */
void ram_jobs_split_probe(double *held_seconds, double *busy_seconds);
void ram_jobs_split_probe_reset(void);

/* The calling thread's thread count: the last ram_jobs_set_threads of this
** thread, else the process default (OPENBLAS_NUM_THREADS or RAM_THREADS if
** set, else the online CPU count). Inside a pool worker it is 1. A per-thread
** value so that two callers (two connections) each choose their own. */
void ram_jobs_set_threads(int n); /* n < 1: back to the default */
int ram_jobs_threads(void);

/* Online CPUs (>= 1), read once. */
int ram_jobs_cpu_count(void);

/* Test probe: the largest number of threads seen at once running jobs
** (callers inside ram_run_jobs plus busy workers) since the last reset, and
** the number of pool workers started in the process so far. */
void ram_jobs_probe(int *peak_busy, int *workers_started);
void ram_jobs_probe_reset(void);

#endif /* RAM_JOBS_H */
