// Counts the heap allocations of the calling thread, for tests that show a
// hot path allocates nothing. The test executable that links this target
// interposes malloc, calloc, realloc, posix_memalign, aligned_alloc and
// memalign (ELF: the executable's definitions win), forwards each to glibc's
// own implementation and counts it in a thread-local counter.
#ifndef ALLOCATION_COUNTER_H
#define ALLOCATION_COUNTER_H

/// Allocations made so far by the calling thread (0 where the interposer is
/// not available; see `pbt_allocation_counter_active`).
long pbt_thread_allocations(void);

/// 1 when the interposer is compiled in (Linux with glibc), else 0.
int pbt_allocation_counter_active(void);

#endif
