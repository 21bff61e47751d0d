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

#include <unistd.h>
#include <sys/syscall.h>

/// Asks Linux for permission to use AMX tile data in this process (arch_prctl
/// ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); 0 on success. Needed once before the first tile
/// instruction.
static inline long tailor_amx_request(void) {
#if defined(__x86_64__)
    return syscall(SYS_arch_prctl, 0x1023, 18);
#else
    return -1;
#endif
}

#if defined(__AMX_TILE__) && defined(__AMX_INT8__)
#include <immintrin.h>
/// The tile shapes of the packed kernels (palette 1): tiles 0 and 1 accumulate 16 × 16 int32
/// (16 tokens × 16 weight rows); tiles 2 and 3 hold 16 token rows × 32 activation bytes; tiles
/// 4 and 5 hold 8 rows (values 4j…4j+3) × 16 weight rows × 4 bytes.
static inline void tailor_amx_configure(void) {
    struct __attribute__((packed)) { unsigned char palette, start; unsigned char reserved[14];
                                     unsigned short colsb[16]; unsigned char rows[16]; } cfg = {0};
    cfg.palette = 1;
    cfg.colsb[0] = 64; cfg.rows[0] = 16; cfg.colsb[1] = 64; cfg.rows[1] = 16;
    cfg.colsb[2] = 32; cfg.rows[2] = 16; cfg.colsb[3] = 32; cfg.rows[3] = 16;
    cfg.colsb[4] = 64; cfg.rows[4] = 8;  cfg.colsb[5] = 64; cfg.rows[5] = 8;
    _tile_loadconfig(&cfg);
}
static inline void tailor_amx_release(void) { _tile_release(); }

/// Starts one 32-value block of 16 tokens × 16 weight rows on tile set 0 or 1: c = a (16 rows of
/// 32 signed bytes, `lda` apart) · b (8 rows of 64 bytes: 16 weight rows × 4 values, signed for
/// _ss, unsigned for _su). `tailor_amx_finish` stores c (16 rows of 16 int32). Two sets let one
/// block's product run while the previous one is stored.
static inline void tailor_amx_start_ss0(const void *a, long lda, const void *b) {
    _tile_zero(0); _tile_loadd(2, a, lda); _tile_loadd(4, b, 64); _tile_dpbssd(0, 2, 4);
}
static inline void tailor_amx_start_ss1(const void *a, long lda, const void *b) {
    _tile_zero(1); _tile_loadd(3, a, lda); _tile_loadd(5, b, 64); _tile_dpbssd(1, 3, 5);
}
static inline void tailor_amx_start_su0(const void *a, long lda, const void *b) {
    _tile_zero(0); _tile_loadd(2, a, lda); _tile_loadd(4, b, 64); _tile_dpbsud(0, 2, 4);
}
static inline void tailor_amx_start_su1(const void *a, long lda, const void *b) {
    _tile_zero(1); _tile_loadd(3, a, lda); _tile_loadd(5, b, 64); _tile_dpbsud(1, 3, 5);
}
static inline void tailor_amx_finish0(void *c) { _tile_stored(0, c, 64); }
/// `count` pairs of independent tile products on zeroed tiles (the int8 peak of these shapes).
static inline void tailor_amx_peak(long count) {
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3); _tile_zero(4); _tile_zero(5);
    for (long i = 0; i < count; i++) { _tile_dpbssd(0, 2, 4); _tile_dpbssd(1, 3, 5); }
}
static inline void tailor_amx_finish1(void *c) { _tile_stored(1, c, 64); }

/// The K-quant kernel's shapes: tiles 0–2 accumulate 16 × 16 int32 (16 tokens × 16 weight rows,
/// one per piece of the weights), tiles 3 and 7 hold 16 token rows × 64 activation bytes, tiles 4–6
/// the pieces' 16 rows (values 4j…4j+3) × 16 weight rows × 4 bytes.
static inline void tailor_amxk_configure(void) {
    struct __attribute__((packed)) { unsigned char palette, start; unsigned char reserved[14];
                                     unsigned short colsb[16]; unsigned char rows[16]; } cfg = {0};
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) { cfg.colsb[i] = 64; cfg.rows[i] = 16; }
    _tile_loadconfig(&cfg);
}
static inline void tailor_amxk_zero(void) { _tile_zero(0); _tile_zero(1); _tile_zero(2); }
/// c_p += a (16 tokens × 64 signed bytes, `lda` apart, loaded into tile A: 3 or 7, alternating so
/// that loading the next 64 values need not wait for the products still reading the previous ones)
/// · b_p (1 KiB each; signed weight bytes for _tile_dpbssd, unsigned for _tile_dpbsud) for the
/// three pieces.
#define TAILOR_AMXK_STEP(NAME, A, DP) \
static inline void NAME(const void *a, long lda, const void *b) { \
    const char *bb = (const char *)b; \
    _tile_loadd(A, a, lda); \
    _tile_loadd(4, bb, 64); DP(0, A, 4); \
    _tile_loadd(5, bb + 1024, 64); DP(1, A, 5); \
    _tile_loadd(6, bb + 2048, 64); DP(2, A, 6); \
}
TAILOR_AMXK_STEP(tailor_amxk_step3, 3, _tile_dpbssd)
TAILOR_AMXK_STEP(tailor_amxk_step3b, 7, _tile_dpbssd)
TAILOR_AMXK_STEP(tailor_amxk_step3u, 3, _tile_dpbsud)
TAILOR_AMXK_STEP(tailor_amxk_step3ub, 7, _tile_dpbsud)
static inline void tailor_amxk_store3(void *c) {
    char *cc = (char *)c;
    _tile_stored(0, cc, 64); _tile_stored(1, cc + 1024, 64); _tile_stored(2, cc + 2048, 64);
}
#endif
