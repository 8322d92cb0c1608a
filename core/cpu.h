/*
** cpu.h — which vector instruction set the kernels run with, chosen once at
** run time from cpuid (not from the compiler flags of the build, so a
** package built for a baseline x86-64 still runs the AVX-512 kernels on a
** CPU that has them), overridable for tests and benchmarks.
*/
#ifndef RAM_CPU_H
#define RAM_CPU_H

enum ram_isa {
    RAM_ISA_PORTABLE = 0, /* plain C, any CPU */
    RAM_ISA_AVX2,         /* AVX2 + FMA, 8 floats a vector */
    RAM_ISA_AVX512,       /* AVX-512 F/VL/DQ/BW, 16 floats a vector */
    RAM_ISA_COUNT
};

/* 1 if this CPU (and its OS, which must save the vector registers) runs isa. */
int ram_cpu_supports(enum ram_isa isa);

/* The widest level this CPU runs, read once. */
enum ram_isa ram_cpu_best(void);

/* The level the kernels use: the environment's RAM_ISA (portable, avx2 or
** avx512; capped at what the CPU runs) if set, else ram_cpu_best(); decided
** once at first use, unless ram_cpu_force changed it. */
enum ram_isa ram_cpu_isa(void);

/* Tests and benchmarks: use isa from now on (process-wide; call it only while
** no kernel runs). Returns 0 if the CPU cannot run it (nothing changes). */
int ram_cpu_force(enum ram_isa isa);

/* "portable", "avx2", "avx512" (static strings). */
const char *ram_cpu_isa_name(enum ram_isa isa);

/* "Intel(R) Xeon(R) ..." from cpuid's brand string, or "" (static buffer, filled once). */
const char *ram_cpu_model(void);

#endif /* RAM_CPU_H */
