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
