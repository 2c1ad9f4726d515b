#include "AllocationCounter.h"

#include <errno.h>  // (and through it features.h, which defines __GLIBC__)
#include <stddef.h>

#if defined(__linux__) && defined(__GLIBC__)

// glibc's implementations, exported under these names for interposers.
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static __thread long allocations __attribute__((tls_model("initial-exec")));

void *malloc(size_t size) { allocations++; return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { allocations++; return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { allocations++; return __libc_realloc(p, size); }
void *memalign(size_t alignment, size_t size) { allocations++; return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { allocations++; return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    allocations++;
    void *p = __libc_memalign(alignment, size);
    if (p == NULL && size != 0) return ENOMEM;
    *out = p;
    return 0;
}

long pbt_thread_allocations(void) { return allocations; }
int pbt_allocation_counter_active(void) { return 1; }
#else
long pbt_thread_allocations(void) { return 0; }
int pbt_allocation_counter_active(void) { return 0; }
#endif
