// OpenBLAS's CBLAS interface (Debian: libopenblas-dev), plus tiny inline helpers Swift cannot
// spell itself.
#include <cblas.h>

/// The CPU's spin-wait hint (x86 PAUSE), for busy-waiting threads.
static inline void tailor_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/// Asks the CPU to start loading the cache line at p (for streaming weights in decode).
static inline void tailor_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 0);
}


/// The same into every cache level (prefetcht0).
static inline void tailor_prefetch_l1(const void *p) {
    __builtin_prefetch(p, 0, 3);
}

/// Atomic 64-bit word operations on plain memory (relaxed: the words only hand out work items;
/// the thread pool's own barrier orders the data).
static inline unsigned long long tailor_atomic_load64(const unsigned long long *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void tailor_atomic_store64(unsigned long long *p, unsigned long long v) {
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
/// Replaces *p by desired if it holds *expected (returns 1); otherwise loads *p into *expected.
static inline int tailor_atomic_cas64(unsigned long long *p, unsigned long long *expected, unsigned long long desired) {
    return __atomic_compare_exchange_n(p, expected, desired, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}
