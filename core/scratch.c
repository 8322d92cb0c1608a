/*
** scratch.c — the growable working memory of the products (scratch.h).
**
** A growth frees the old block and allocates the new size exactly: the
** largest product of a forward sets the size once, and nothing is copied
** (a product writes its buffer before reading it). Large blocks are 2 MB
** aligned with a huge-page hint, so that their first touch faults 512x
** fewer pages where the kernel gives them.
*/
#include "scratch.h"

#include "internal.h"

#include <stdatomic.h>
#include <stdint.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define HUGE_PAGE ((size_t)2 << 20)

/* The test probe (scratch.h): a count, never read by the products. */
static atomic_long g_allocs;

void *ram_scratch_get(struct ram_scratch *s, size_t bytes)
{
    if (s->mem && bytes <= s->cap) return s->buf;
    const size_t align = bytes >= 2 * HUGE_PAGE ? HUGE_PAGE : 64;
    if (bytes > SIZE_MAX - align) return NULL;
    ram_scratch_free(s);
    void *mem = ram_malloc(bytes + align);
    if (!mem) return NULL;
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
    void *buf = (void *)(((uintptr_t)mem + align - 1) & ~(uintptr_t)(align - 1));
#if defined(MADV_HUGEPAGE)
    if (align == HUGE_PAGE) madvise(buf, bytes / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE); /* a hint */
#endif
    s->mem = mem;
    s->buf = buf;
    s->cap = bytes;
    return buf;
}

void ram_scratch_free(struct ram_scratch *s)
{
    if (!s) return;
    ram_free(s->mem);
    s->mem = s->buf = NULL;
    s->cap = 0;
}

long ram_scratch_probe_allocs(void) { return atomic_load_explicit(&g_allocs, memory_order_relaxed); }
