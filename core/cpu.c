/*
** cpu.c — run-time instruction-set detection for the kernels (cpu.h).
** cpuid says what the CPU implements, xgetbv whether the OS saves the
** registers (an AVX-512 CPU under an OS or hypervisor that does not enable
** the ZMM state must not run AVX-512 code). The choice is a cache of a fact
** about the machine: written once under pthread_once, then only read (except
** by ram_cpu_force, a test hook).
*/
#include "cpu.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define RAM_X86 1
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int supported[RAM_ISA_COUNT];
static atomic_int chosen;
static char model[49];

#ifdef RAM_X86
static unsigned long long xgetbv0(void)
{
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

static void detect(void)
{
    supported[RAM_ISA_PORTABLE] = 1;
#ifdef RAM_X86
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
        unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
        int ymm_os = (xcr0 & 0x6) == 0x6, zmm_os = (xcr0 & 0xe6) == 0xe6;
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            int avx2 = (b >> 5) & 1;
            int avx512 = ((b >> 16) & 1) /* F */ && ((b >> 17) & 1) /* DQ */ && ((b >> 30) & 1) /* BW */ &&
                         ((b >> 31) & 1) /* VL */;
            supported[RAM_ISA_AVX2] = avx && fma && avx2 && ymm_os;
            supported[RAM_ISA_AVX512] = supported[RAM_ISA_AVX2] && avx512 && zmm_os;
        }
    }
    unsigned r[12];
    if (__get_cpuid(0x80000000u, &a, &b, &c, &d) && a >= 0x80000004u) {
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        memcpy(model, r, 48);
        model[48] = 0;
        char *s = model; /* the brand string is padded with leading spaces on some CPUs */
        while (*s == ' ') s++;
        memmove(model, s, strlen(s) + 1);
    }
#endif
    enum ram_isa best = RAM_ISA_PORTABLE;
    for (int i = RAM_ISA_COUNT - 1; i > 0; i--)
        if (supported[i]) {
            best = (enum ram_isa)i;
            break;
        }
    enum ram_isa pick = best;
    const char *e = getenv("RAM_ISA");
    if (e && *e) {
        for (int i = 0; i < RAM_ISA_COUNT; i++)
            if (!strcmp(e, ram_cpu_isa_name((enum ram_isa)i))) pick = (enum ram_isa)i < best ? (enum ram_isa)i : best;
    }
    atomic_store(&chosen, (int)pick);
}

int ram_cpu_supports(enum ram_isa isa)
{
    pthread_once(&once, detect);
    return (unsigned)isa < RAM_ISA_COUNT && supported[isa];
}

enum ram_isa ram_cpu_best(void)
{
    for (int i = RAM_ISA_COUNT - 1; i > 0; i--)
        if (ram_cpu_supports((enum ram_isa)i)) return (enum ram_isa)i;
    return RAM_ISA_PORTABLE;
}

enum ram_isa ram_cpu_isa(void)
{
    pthread_once(&once, detect);
    return (enum ram_isa)atomic_load_explicit(&chosen, memory_order_relaxed);
}

int ram_cpu_force(enum ram_isa isa)
{
    if (!ram_cpu_supports(isa)) return 0;
    atomic_store(&chosen, (int)isa);
    return 1;
}

const char *ram_cpu_isa_name(enum ram_isa isa)
{
    static const char *const names[RAM_ISA_COUNT] = {"portable", "avx2", "avx512"};
    return (unsigned)isa < RAM_ISA_COUNT ? names[isa] : "?";
}

const char *ram_cpu_model(void)
{
    pthread_once(&once, detect);
    return model;
}
