/*
** scratch.h — the products' working memory (the activations a product
** converts before it runs, e.g. gemm_bf16.c's rows rounded to bf16), owned
** by the model-in-use context: one per ram_state (pipeline.c) or Tag2Text
** state, grown on demand, reused by every product of every forward, freed
** with the state. Like the state, one scratch serves one caller at a time.
**
**     struct ram_scratch s = {0};
**     void *p = ram_scratch_get(&s, bytes);   // NULL: out of memory
**     ...                                     // valid until the next get or free
**     ram_scratch_free(&s);
**
** WHY. A full-size forward runs ~200 products; a buffer allocated per call
** (up to 9.4 MB for the decoder's FFN-out with split activations) is a fresh
** mapping each time, whose pages fault on first touch. Kept across calls,
** the buffer reaches its largest size in the first forward and is reused.
*/
#ifndef RAM_SCRATCH_H
#define RAM_SCRATCH_H

#include <stddef.h>

struct ram_scratch {
    void *mem;  /* owned (ram_free in ram_scratch_free); NULL until the first get */
    void *buf;  /* inside mem: 64-byte aligned, 2 MB aligned for large sizes */
    size_t cap; /* bytes usable at buf */
};

/* At least bytes of memory at s (64-byte aligned; 2 MB aligned and marked
** for huge pages from 4 MB), reused when s already has room. The contents
** are not kept across a growth. Borrowed: valid until the next
** ram_scratch_get or ram_scratch_free on s. NULL when out of memory. */
void *ram_scratch_get(struct ram_scratch *s, size_t bytes);

/* Frees s's memory; s is then empty (ready for reuse). s may be NULL. */
void ram_scratch_free(struct ram_scratch *s);

/* Test probe: the number of allocations ram_scratch_get has made in the
** process (growths, and products called without a scratch count one each:
** gemm_bf16.c), so that a test can see a warm forward allocate nothing. */
long ram_scratch_probe_allocs(void);

#endif /* RAM_SCRATCH_H */
