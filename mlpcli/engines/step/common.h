/* The vector type, the limits, and the network and inputs as C sees them. Part of
 * _sparse_sgd.c, which includes it once, after the parts before it. */

/* The vector width is the build's: setup.py compiles _sparse_sgd.c once per instruction set,
 * each as a module of its own (16 floats a vec for x86-64-v4, one AVX-512 register; 8 for
 * x86-64-v3, one AVX2 register; 4 for the baseline, one SSE or NEON register), and
 * compiled.py imports the widest that the CPU runs. A vec must be one register: GCC splits a
 * wider one, and then builds each scalar's broadcast (the s of `s * v`) through memory, so
 * that every use waits on a store-to-load forward (docs/performance.md). */
#ifndef LANES
#define LANES 4
#endif
#ifndef MODULE
#define MODULE _sparse_sgd
#endif
typedef float vec __attribute__((vector_size(LANES * sizeof(float))));
/* vecs summed side by side in one pass over the ink: 64 columns, or 8 registers at most,
 * which leaves room for the operands in the 16 that AVX2 and SSE have */
#define MAX_VECS (64 / LANES < 8 ? 64 / LANES : 8)

/* call(n) for n = nv (1..MAX_VECS), a constant in each case, so that a block's loops over
 * its vecs unroll into registers */
#if MAX_VECS == 8
#define BY_VECS(nv, call)                                                                    \
    switch (nv) {                                                                            \
    case 8: call(8); break;                                                                  \
    case 7: call(7); break;                                                                  \
    case 6: call(6); break;                                                                  \
    case 5: call(5); break;                                                                  \
    case 4: call(4); break;                                                                  \
    case 3: call(3); break;                                                                  \
    case 2: call(2); break;                                                                  \
    case 1: call(1);                                                                         \
    }
#else
#define BY_VECS(nv, call)                                                                    \
    switch (nv) {                                                                            \
    case 4: call(4); break;                                                                  \
    case 3: call(3); break;                                                                  \
    case 2: call(2); break;                                                                  \
    case 1: call(1);                                                                         \
    }
#endif

#define INLINE static inline __attribute__((always_inline))
INLINE vec load(const float *p) { vec v; memcpy(&v, p, sizeof v); return v; }
INLINE void store(float *p, vec v) { memcpy(p, &v, sizeof v); }

enum { RELU, LEAKY_RELU, SIGMOID, TANH, ACTIVATION_COUNT };
/* the activations' names in the enum's order: the module exports them, compiled.py reads them */
#define ACTIVATION_NAMES "relu", "leaky-relu", "sigmoid", "tanh"
#define MAX_LAYERS 16

typedef struct {
    const int64_t *order, *rowptr, *labels; /* order, labels (n,) */
    const uint16_t *cols;
    const uint8_t *pixels;
    float scale, blank;
    int activation;
    float slope;
    const float *masks[MAX_LAYERS]; /* masks[l] (n, size[l]) for hidden layer l, or NULL */
} Inputs;

/* cblas_sgemm's ILP64 form (the 64_ symbol numpy's OpenBLAS exports; engines/blas.py finds
 * it): order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc. */
typedef void (*Gemm)(int, int, int, int64_t, int64_t, int64_t, float, const float *, int64_t,
                     const float *, int64_t, float, float *, int64_t);
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

typedef struct {
    Gemm gemm;                  /* BLAS for the large layers above the first, or NULL */
    int depth;                  /* number of weight layers */
    int64_t size[MAX_LAYERS + 1];  /* size[0] = d ... size[depth] = k */
    float *W[MAX_LAYERS], *b[MAX_LAYERS];
} Net;
