/*
** fuzz.h — shared by the libFuzzer targets in tests/fuzz/ and the plain-C
** replay driver tests/test_fuzz_corpus.c.
**
** Each target file defines its entry point as FUZZ_ENTRY(data, size). Built
** alone with clang -fsanitize=fuzzer (make fuzz) that is
** LLVMFuzzerTestOneInput; the replay driver #includes every target after
** defining FUZZ_NAME to a distinct name, so one binary replays all corpora
** through exactly the same code. Static helpers in target files carry the
** target's prefix so the includes do not collide.
*/
#ifndef RAM_FUZZ_H
#define RAM_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_NAME
#define FUZZ_NAME LLVMFuzzerTestOneInput
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif
#define FUZZ_ENTRY(d, n)                       \
    int FUZZ_NAME(const uint8_t *d, size_t n); \
    int FUZZ_NAME(const uint8_t *d, size_t n)

/* The build folder holding bpe_simple_vocab_16e6.txt, ram.so and models/
** (RAM_BUILD, as the other tests; "build" by default). */
static inline const char *fuzz_build_dir(void)
{
    const char *b = getenv("RAM_BUILD");
    return b && *b ? b : "build";
}
#endif
