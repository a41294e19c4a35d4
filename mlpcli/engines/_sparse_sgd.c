/* Mini-batch training that skips the blank pixels: the compiled step behind
 * mlpcli/engines/compiled.py.
 *
 * The math is that of mlpcli/nn (model.py, optim.py: read those first); only the first layer's
 * two products change. An MNIST image is mostly blank paper: about 150 of its 784 pixels
 * hold ink. With x = s + v (v the normalized value of a blank pixel, s the ink, zero on
 * blank paper) and the first layer's W kept as Ws - 1 c^T (c a shift shared by every row),
 *     x W + b  = s Ws - sum(s) c + v colsum(Ws) - v d c + b
 *     W -= x^T dZ  is  Ws -= s^T dZ (ink rows only),  c += v sum_i dZ_i
 * so both products touch only the inked rows of W. colsum(Ws) is kept up to date by
 * colsum -= sum_i sum(s_i) dZ_i, and Ws - 1 c^T is written back into W at the end.
 *
 * That shared shift holds for plain SGD alone, whose step is linear in the gradient. Every
 * other optimizer (and weight decay, and max-norm) takes the dense path: W's gradient is
 *     dW = s^T dZ + v 1 (1^T dZ)      (row p: the ink's part, if p is inked, plus v sum_i dZ_i)
 * and every row of W takes the optimizer's step with it (optimize()), colsum(W) summed anew
 * as the rows are written. Hidden dropout multiplies each A_l by the mask Python drew (so
 * that the masks are the reference's), and the gradient below it by the same mask.
 *
 * Shapes (row-major float32): W_l (fan_in, fan_out), b_l (fan_out,), logits (n, k). Layers
 * above the first also keep W_l^T (fan_out, fan_in) for the call, so that every inner loop
 * runs along a contiguous row. Inputs come as CSR: for dataset row r, its ink columns
 * cols[rowptr[r]:rowptr[r+1]] and uint8 pixels, x = pixel * scale + v.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

/* The vector width is the build's: setup.py compiles this file once per instruction set, each
 * as a module of its own (16 floats a vec for x86-64-v4, one AVX-512 register; 8 for
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

enum { RELU, LEAKY_RELU, SIGMOID, TANH };
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

typedef struct {
    int depth;                  /* number of weight layers */
    int64_t size[MAX_LAYERS + 1];  /* size[0] = d ... size[depth] = k */
    float *W[MAX_LAYERS], *b[MAX_LAYERS];
} Net;

/* ---- the first layer: sparse rows of x against W ---- */

/* The inputs' fields as locals: a store through memcpy (store()) might change any field as
 * far as the compiler knows, so it would read each one again in the innermost loop. */
#define INK_LOCALS(in)                                                                       \
    const int64_t *order = (in)->order, *rowptr = (in)->rowptr;                               \
    const uint16_t *cols = (in)->cols;                                                        \
    const uint8_t *pixels = (in)->pixels;                                                     \
    const float scale = (in)->scale
/* Ws, Z and dZ have rows of P floats, P = H rounded up to LANES, zero past H: every vec of
 * a row is then aligned (unaligned ones straddle cache lines, and ran much slower). */

/* Z[i, h0:h0+nv*LANES] for the batch's rows, W's columns h0.. in registers
 * (nv <= MAX_VECS), and each row's sum(s) into ink_sum (summed exactly as integers, then
 * scaled once). */
INLINE void ink_forward_block(int nv, int64_t h0, const Inputs *in, int64_t first,
                              int64_t rows, int64_t P, const float *Ws, const float *base,
                              const float *c, float *ink_sum, float *Z) {
    INK_LOCALS(in);
    for (int64_t i = 0; i < rows; i++) {
        int64_t r = order[first + i], end = rowptr[r + 1], sum = 0;
        vec acc[MAX_VECS];
        for (int q = 0; q < nv; q++) acc[q] = load(base + h0 + q * LANES);
        for (int64_t k = rowptr[r]; k < end; k++) {
            const float *w = Ws + (int64_t)cols[k] * P + h0;
            float s = pixels[k] * scale;
            sum += pixels[k];
            for (int q = 0; q < nv; q++) acc[q] += s * load(w + q * LANES);
        }
        ink_sum[i] = (float)sum * scale;
        for (int q = 0; q < nv; q++)
            store(Z + i * P + h0 + q * LANES, acc[q] - ink_sum[i] * load(c + h0 + q * LANES));
    }
}

/* Z[:, lo:hi] = s Ws + base - sum(s) c, row by row (lo, hi multiples of LANES), and each
 * row's sum(s) into ink_sum. */
INLINE void ink_forward(const Inputs *in, int64_t first, int64_t rows, int64_t lo, int64_t hi,
                        int64_t P, const float *Ws, const float *base, const float *c,
                        float *ink_sum, float *Z) {
    int64_t h0 = lo;
#define FORWARD(nv) ink_forward_block(nv, h0, in, first, rows, P, Ws, base, c, ink_sum, Z)
    for (; h0 + MAX_VECS * LANES <= hi; h0 += MAX_VECS * LANES) FORWARD(MAX_VECS);
    BY_VECS((hi - h0) / LANES, FORWARD) /* the last few vecs in one pass over the ink */
#undef FORWARD
}

/* The batch's ink column by column (CSC), for the update: pixel p's entries are
 * [start[p], start[p + 1]), each a row of the batch and its s. */
typedef struct {
    int64_t *start; /* (d + 1,) */
    int32_t *row;
    float *value;
} Columns;

/* columns->row and value have room for the batch's ink (prepare() saw to that). */
INLINE void by_columns(const Inputs *in, int64_t first, int64_t rows, int64_t d,
                       Columns *columns) {
    INK_LOCALS(in);
    int64_t *start = columns->start; /* count, then turn counts into starts */
    int32_t *row = columns->row;
    float *value = columns->value;
    memset(start, 0, (d + 1) * sizeof(int64_t));
    for (int64_t i = 0; i < rows; i++) {
        int64_t r = order[first + i], end = rowptr[r + 1];
        for (int64_t k = rowptr[r]; k < end; k++) start[cols[k] + 1]++;
    }
    for (int64_t p = 0; p < d; p++) start[p + 1] += start[p];
    for (int64_t i = 0; i < rows; i++) { /* fill, each start moving to the next free place */
        int64_t r = order[first + i], end = rowptr[r + 1];
        for (int64_t k = rowptr[r]; k < end; k++) {
            int64_t place = start[cols[k]]++;
            row[place] = (int32_t)i;
            value[place] = pixels[k] * scale;
        }
    }
    memmove(start + 1, start, d * sizeof(int64_t)); /* back to starts */
    start[0] = 0;
}

/* Ws[p, h0:h0+nv*LANES] -= sum over p's entries of s dZ[row, ...]: each row of Ws is
 * written once per step, not once per ink pixel (a large part of 784-800-10's step). */
INLINE void ink_update_block(int nv, int64_t h0, const Columns *cols, int64_t d, int64_t P,
                             float *Ws, const float *dZ) {
    const int64_t *start = cols->start; /* locals: the compiler must assume that a store */
    const int32_t *row = cols->row;      /* through memcpy changes any field it would */
    const float *value = cols->value;    /* otherwise read again at every step */
    for (int64_t p = 0; p < d; p++) {
        int64_t end = start[p + 1];
        if (start[p] == end) continue;
        vec acc[MAX_VECS] = {0};
        for (int64_t e = start[p]; e < end; e++) {
            const float *g = dZ + (int64_t)row[e] * P + h0;
            for (int q = 0; q < nv; q++) acc[q] += value[e] * load(g + q * LANES);
        }
        float *w = Ws + p * P + h0;
        for (int q = 0; q < nv; q++) store(w + q * LANES, load(w + q * LANES) - acc[q]);
    }
}

/* The same update row by row of the batch: Ws[p, h0:...] -= s_ip dZ[i, h0:...] for each
 * ink pixel. It writes a row of Ws per ink pixel, but needs no by_columns(): cheaper when a
 * thread's columns fit in registers (as at 784-64-10, batch 64, on one thread). */
INLINE void ink_update_rows_block(int nv, int64_t h0, const Inputs *in, int64_t first,
                                  int64_t rows, int64_t P, float *Ws, const float *dZ) {
    INK_LOCALS(in);
    for (int64_t i = 0; i < rows; i++) {
        int64_t r = order[first + i], end = rowptr[r + 1];
        vec g[MAX_VECS];
        for (int q = 0; q < nv; q++) g[q] = load(dZ + i * P + h0 + q * LANES);
        for (int64_t k = rowptr[r]; k < end; k++) {
            float *w = Ws + (int64_t)cols[k] * P + h0;
            float s = pixels[k] * scale;
            for (int q = 0; q < nv; q++) store(w + q * LANES, load(w + q * LANES) - s * g[q]);
        }
    }
}

/* Ws[:, lo:hi] -= s^T dZ[:, lo:hi]: by columns (cols) when there is more than one block of
 * MAX_VECS vecs, else by rows (cols NULL). */
INLINE void ink_update(const Inputs *in, int64_t first, int64_t rows, const Columns *cols,
                       int64_t d, int64_t lo, int64_t hi, int64_t P, float *Ws,
                       const float *dZ) {
    int64_t h0 = lo;
#define BY_ROWS(nv) ink_update_rows_block(nv, h0, in, first, rows, P, Ws, dZ)
#define BY_COLUMNS(nv) ink_update_block(nv, h0, cols, d, P, Ws, dZ)
    if (!cols) {
        for (; h0 + MAX_VECS * LANES <= hi; h0 += MAX_VECS * LANES) BY_ROWS(MAX_VECS);
        BY_VECS((hi - h0) / LANES, BY_ROWS)
        return;
    }
    for (; h0 + MAX_VECS * LANES <= hi; h0 += MAX_VECS * LANES) BY_COLUMNS(MAX_VECS);
    BY_VECS((hi - h0) / LANES, BY_COLUMNS)
#undef BY_ROWS
#undef BY_COLUMNS
}

/* ---- optimizers (optim.py) ---- */

enum { PLAIN_SGD, SGD, MOMENTUM, NESTEROV, ADAM, ADAMW };
/* their names in the enum's order, exported as ACTIVATION_NAMES is */
#define OPTIMIZER_NAMES "plain-sgd", "sgd", "momentum", "nesterov", "adam", "adamw"

typedef struct { /* the optimizer as Python gave it */
    int kind;
    double lr, momentum, beta1, beta2, eps, decay, max_norm;
    int64_t steps; /* taken before this chunk: Adam's t counts on from it */
} Optim;

typedef struct { /* one step's constants, in float32 as optim.py computes them */
    int kind;
    float lr, mu, keep1, beta2, keep2, eps, decay, step_size, root2, shrink;
} Rule;

/* The constants of step t (1-based) of `o`. */
static Rule rule_of(const Optim *o, int64_t t) {
    Rule r = {.kind = o->kind, .lr = (float)o->lr, .mu = (float)o->momentum,
              .keep1 = (float)(1 - o->beta1), .beta2 = (float)o->beta2,
              .keep2 = (float)(1 - o->beta2), .eps = (float)o->eps, .decay = (float)o->decay,
              .shrink = 1};
    if (o->kind == ADAM || o->kind == ADAMW) {
        r.step_size = (float)(o->lr / (1 - pow(o->beta1, (double)t)));
        r.root2 = (float)sqrt(1 - pow(o->beta2, (double)t));
    }
    if (o->kind == ADAMW) r.shrink = (float)(1 - o->lr * o->decay), r.decay = 0;
    return r;
}

/* p -= the step for gradient g, elementwise over `count` floats; m and s are the optimizer's
 * buffers for p (velocity, or Adam's mean and mean square). One loop per kind: each
 * vectorizes. */
INLINE void optimize(const Rule *r, float *restrict p, const float *restrict g,
                     float *restrict m, float *restrict s, int64_t count) {
    float lr = r->lr, mu = r->mu, decay = r->decay;
    switch (r->kind) {
    case SGD:
        for (int64_t j = 0; j < count; j++) p[j] -= lr * (g[j] + decay * p[j]);
        break;
    case MOMENTUM:
        for (int64_t j = 0; j < count; j++) {
            float v = m[j] * mu + (g[j] + decay * p[j]);
            m[j] = v, p[j] -= lr * v;
        }
        break;
    case NESTEROV:
        for (int64_t j = 0; j < count; j++) {
            float gj = g[j] + decay * p[j], v = m[j] * mu + gj;
            m[j] = v, p[j] -= lr * (gj + mu * v);
        }
        break;
    default: { /* ADAM, ADAMW: decay is 0 for ADAMW, whose shrink is 1 - lr wd */
        float keep1 = r->keep1, beta2 = r->beta2, keep2 = r->keep2, eps = r->eps;
        float step_size = r->step_size, root2 = r->root2, shrink = r->shrink;
        for (int64_t j = 0; j < count; j++) {
            float pj = p[j] * shrink, gj = g[j] + decay * p[j];
            float mj = m[j] + keep1 * (gj - m[j]), sj = s[j] * beta2 + keep2 * gj * gj;
            m[j] = mj, s[j] = sj;
            p[j] = pj - step_size * (mj / (sqrtf(sj) / root2 + eps));
        }
    }
    }
}

/* The factor that brings a column of squared norm `squares` back to max_norm (1 if shorter),
 * as optim.limit_unit_norms computes it. */
INLINE float norm_factor(float squares, float max_norm) {
    float norm = sqrtf(squares), factor = max_norm / (norm > 1e-12f ? norm : 1e-12f);
    return factor < 1 ? factor : 1;
}

/* ---- dense layers ---- */

INLINE void axpy(float alpha, const float *restrict x, float *restrict y, int64_t n) {
    for (int64_t j = 0; j < n; j++) y[j] += alpha * x[j];
}

/* A dense layer fi -> fo for the call: W (fi, fo) in rows of sz floats for the forward pass
 * and its mirror WT = W^T (fo, fi) in rows of sa floats for the backward one, so that each
 * product runs along rows and needs no sum across a vec's lanes; b (fo,) padded to sz.
 * A and dA (rows, fi) have rows of sa floats, Z and dZ (rows, fo) rows of sz. Pad columns
 * stay zero. */
typedef struct {
    int64_t fi, fo, sa, sz;
    float *W, *WT, *b;
    float *m, *s, *bm, *bs; /* the optimizer's buffers for WT (fo, sa) and b (sz), or NULL */
} Dense;

#define ROWS_TOGETHER 8 /* rows summed side by side: one sum alone waits on each add */

/* Z[i:i+m, o0:o0+LANES] = A[i:i+m] W[:, o0:o0+LANES] + b[o0:...], for m <= ROWS_TOGETHER. */
INLINE void dense_forward_rows(int m, const Dense *layer, const float *A, int64_t i,
                               int64_t o0, float *Z) {
    const float *W = layer->W;
    int64_t fi = layer->fi, sa = layer->sa, sz = layer->sz;
    vec acc[ROWS_TOGETHER];
    for (int r = 0; r < m; r++) acc[r] = load(layer->b + o0);
    for (int64_t j = 0; j < fi; j++) {
        vec w = load(W + j * sz + o0);
        for (int r = 0; r < m; r++) acc[r] += A[(i + r) * sa + j] * w;
    }
    for (int r = 0; r < m; r++) store(Z + (i + r) * sz + o0, acc[r]);
}

/* Z = A W + b. */
INLINE void dense_forward(const Dense *layer, const float *A, int64_t rows, float *Z) {
    for (int64_t o0 = 0; o0 < layer->sz; o0 += LANES) {
        int64_t i = 0;
        for (; i + ROWS_TOGETHER <= rows; i += ROWS_TOGETHER)
            dense_forward_rows(ROWS_TOGETHER, layer, A, i, o0, Z);
        for (; i < rows; i++) dense_forward_rows(1, layer, A, i, o0, Z);
    }
}

/* dA[:, j0:j0+nv*LANES] = dZ WT[:, j0:...] (nv <= MAX_VECS), row by row in registers. */
INLINE void dense_gradient_block(int nv, const Dense *layer, const float *dZ, int64_t rows,
                                 int64_t j0, float *dA) {
    const float *WT = layer->WT;
    int64_t fo = layer->fo, sa = layer->sa, sz = layer->sz;
    for (int64_t i = 0; i < rows; i++) {
        vec acc[MAX_VECS] = {0};
        for (int64_t o = 0; o < fo; o++) {
            float g = dZ[i * sz + o];
            for (int q = 0; q < nv; q++) acc[q] += g * load(WT + o * sa + j0 + q * LANES);
        }
        for (int q = 0; q < nv; q++) store(dA + i * sa + j0 + q * LANES, acc[q]);
    }
}

/* WT[:, j0:j0+nv*LANES] -= (A^T dZ)^T, a row of WT at a time in registers, and the same
 * values into W's rows j0.. so that the two stay mirrors. With `rule`, (A^T dZ)^T is the
 * gradient the optimizer steps with instead (dZ then holds dL/dZ, not lr times it). */
INLINE void dense_update_block(int nv, Dense *layer, const float *A, const float *dZ,
                               int64_t rows, int64_t j0, const Rule *rule) {
    float *W = layer->W, *WT = layer->WT;
    int64_t fi = layer->fi, fo = layer->fo, sa = layer->sa, sz = layer->sz;
    int64_t j_end = j0 + nv * LANES < fi ? j0 + nv * LANES : fi;
    for (int64_t o = 0; o < fo; o++) {
        vec acc[MAX_VECS] = {0};
        for (int64_t i = 0; i < rows; i++) {
            float g = dZ[i * sz + o];
            for (int q = 0; q < nv; q++) acc[q] += g * load(A + i * sa + j0 + q * LANES);
        }
        float *row = WT + o * sa;
        if (rule) {
            float gradient[MAX_VECS * LANES];
            for (int q = 0; q < nv; q++) store(gradient + q * LANES, acc[q]);
            optimize(rule, row + j0, gradient, layer->m + o * sa + j0, layer->s + o * sa + j0,
                     j_end - j0);
        } else {
            for (int q = 0; q < nv; q++)
                store(row + j0 + q * LANES, load(row + j0 + q * LANES) - acc[q]);
        }
        for (int64_t j = j0; j < j_end; j++) W[j * sz + o] = row[j];
    }
}

/* Each column of W (row of WT) longer than max_norm scaled back to it, in both copies. */
static void dense_limit_norms(Dense *layer, float max_norm) {
    for (int64_t o = 0; o < layer->fo; o++) {
        float *row = layer->WT + o * layer->sa, squares = 0;
        for (int64_t j = 0; j < layer->fi; j++) squares += row[j] * row[j];
        float factor = norm_factor(squares, max_norm);
        for (int64_t j = 0; j < layer->fi; j++)
            layer->W[j * layer->sz + o] = row[j] *= factor;
    }
}

/* dA = dZ W^T with W as it is, then W -= A^T dZ and b -= sum_i dZ_i (with `rule`, the
 * optimizer's steps for those gradients). */
INLINE void dense_backward(Dense *layer, const float *A, const float *dZ, int64_t rows,
                           float *dA, const Rule *rule) {
    int64_t j0 = 0;
#define GRADIENT(nv) dense_gradient_block(nv, layer, dZ, rows, j0, dA)
#define UPDATE(nv) dense_update_block(nv, layer, A, dZ, rows, j0, rule)
    for (; j0 + MAX_VECS * LANES <= layer->sa; j0 += MAX_VECS * LANES) GRADIENT(MAX_VECS);
    BY_VECS((layer->sa - j0) / LANES, GRADIENT)
    for (j0 = 0; j0 + MAX_VECS * LANES <= layer->sa; j0 += MAX_VECS * LANES) UPDATE(MAX_VECS);
    BY_VECS((layer->sa - j0) / LANES, UPDATE)
#undef GRADIENT
#undef UPDATE
    for (int64_t o0 = 0; o0 < layer->sz; o0 += LANES) {
        vec sum = {0};
        for (int64_t i = 0; i < rows; i++) sum += load(dZ + i * layer->sz + o0);
        if (rule) {
            float gradient[LANES], *b = layer->b + o0;
            int64_t count = layer->fo - o0 < LANES ? layer->fo - o0 : LANES;
            store(gradient, sum);
            optimize(rule, b, gradient, layer->bm + o0, layer->bs + o0, count);
        } else {
            store(layer->b + o0, load(layer->b + o0) - sum);
        }
    }
}

/* ---- activations (nn/activations.py) and the cross-entropy step (nn/losses.py) ---- */

INLINE void activate(const Inputs *in, const float *restrict Z, float *restrict A,
                     int64_t count) {
    float slope = in->slope; /* one loop per activation, so that each vectorizes */
    switch (in->activation) {
    case RELU:
        for (int64_t j = 0; j < count; j++) A[j] = Z[j] > 0 ? Z[j] : 0;
        break;
    case LEAKY_RELU:
        for (int64_t j = 0; j < count; j++) A[j] = Z[j] > 0 ? Z[j] : Z[j] * slope;
        break;
    case SIGMOID:
        for (int64_t j = 0; j < count; j++) {
            float e = expf(-fabsf(Z[j])); /* exp of a non-positive number: no overflow */
            A[j] = Z[j] >= 0 ? 1 / (1 + e) : e / (1 + e);
        }
        break;
    default:
        for (int64_t j = 0; j < count; j++) A[j] = tanhf(Z[j]);
    }
}

/* dZ *= f'(Z) given A = f(Z); with `dropped` (A holds f(Z) times a dropout mask), f(Z) is
 * taken anew from Z, as model.backward does. */
INLINE void times_derivative(const Inputs *in, const float *restrict Z,
                             const float *restrict A, int dropped, float *restrict dZ,
                             int64_t count) {
    float slope = in->slope;
    switch (in->activation) {
    case RELU:
        for (int64_t j = 0; j < count; j++) dZ[j] = Z[j] > 0 ? dZ[j] : 0;
        break;
    case LEAKY_RELU:
        for (int64_t j = 0; j < count; j++) dZ[j] = Z[j] > 0 ? dZ[j] : dZ[j] * slope;
        break;
    case SIGMOID:
        if (!dropped) {
            for (int64_t j = 0; j < count; j++) dZ[j] *= A[j] * (1 - A[j]);
            break;
        }
        for (int64_t j = 0; j < count; j++) {
            float e = expf(-fabsf(Z[j])), a = Z[j] >= 0 ? 1 / (1 + e) : e / (1 + e);
            dZ[j] *= a * (1 - a);
        }
        break;
    default:
        if (!dropped) {
            for (int64_t j = 0; j < count; j++) dZ[j] *= 1 - A[j] * A[j];
            break;
        }
        for (int64_t j = 0; j < count; j++) {
            float a = tanhf(Z[j]);
            dZ[j] *= 1 - a * a;
        }
    }
}

/* A[i, 0:width] *= mask[i, 0:width] for `rows` rows: A's rows `stride` floats apart, the
 * mask's `width`. */
INLINE void apply_mask(const float *restrict mask, float *restrict A, int64_t rows,
                       int64_t width, int64_t stride) {
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < width; j++) A[i * stride + j] *= mask[i * width + j];
}

/* Sums over a chunk of what its rows' logits were as they were trained on. */
typedef struct {
    double loss;     /* cross-entropy, as losses.cross_entropy; NaN or inf once diverged */
    int64_t correct; /* rows whose argmax (the first, as numpy's) is their label */
} Tally;

/* G = (softmax(Z) - onehot(y)) * step, row by row with the max subtracted; Z and G have
 * rows of `stride` floats, k used. Each row's loss and argmax go into the tally, here
 * where the max and sum are at hand (in numpy they were 7% of an epoch at batch 64). */
INLINE void cross_entropy_step(const float *Z, const int64_t *labels, int64_t rows, int64_t k,
                               int64_t stride, float step, float *G, Tally *tally) {
    for (int64_t i = 0; i < rows; i++) {
        const float *z = Z + i * stride;
        float *g = G + i * stride, top = -INFINITY, sum = 0;
        int64_t best = 0;
        for (int64_t j = 0; j < k; j++)
            if (z[j] > top) top = z[j], best = j;
        for (int64_t j = 0; j < k; j++) sum += g[j] = expf(z[j] - top);
        float scale = step / sum;
        for (int64_t j = 0; j < k; j++) g[j] *= scale;
        g[labels[i]] -= step;
        tally->loss += (double)top + log((double)sum) - z[labels[i]];
        tally->correct += best == labels[i];
    }
}

/* ---- one chunk ---- */

/* Subnormal floats flushed to zero, as inputs and as results, on this thread: the previous
 * mode, to put back. A unit that stays dead for thousands of steps decays its momentum or
 * Adam buffers geometrically into the subnormal range, and each multiply-add on a subnormal
 * takes a slow microcode path on x86 (per-sample momentum ran 20 times slower once there).
 * What is flushed is below 1.2e-38: nothing the reference's steps would notice. */
static unsigned flush_subnormals(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned before = _mm_getcsr();
    _mm_setcsr(before | 0x8040); /* FTZ (bit 15) and DAZ (bit 6) */
    return before;
#else
    return 0;
#endif
}

static void restore_subnormals(unsigned before) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(before);
#else
    (void)before;
#endif
}

static int64_t padded(int64_t size) { return (size + LANES - 1) / LANES * LANES; }

/* An aligned, zeroed block of `count` floats, or NULL. */
static float *floats(int64_t count) {
    size_t bytes = (size_t)padded(count) * sizeof(float);
    float *block = aligned_alloc(LANES * sizeof(float), bytes);
    if (block) memset(block, 0, bytes);
    return block;
}

typedef struct { /* the call's working copies and buffers; zero past each row's width */
    float *Ws, *c, *colsum, *base, *ink_sum, *grad, *below;
    float *vg, *m1, *s1, *bm1, *bs1; /* the dense path: v sum_i dZ_i, W_1's and b_1's buffers */
    float *ink_grad; /* the dense path by rows: minus the ink's part of W_1's gradient */
    Columns columns;
    float *Z[MAX_LAYERS + 1], *A[MAX_LAYERS + 1];
    Dense dense[MAX_LAYERS];
} Work;

/* The optimizer's buffers as Python holds them: first[i] (velocity or mean) and second[i]
 * (mean square) for parameter i of W_1, b_1, W_2, ..., NULL where the optimizer has none. */
typedef struct {
    float *first[2 * MAX_LAYERS], *second[2 * MAX_LAYERS];
} State;

static void release(Work *work, int depth) {
    void *blocks[] = {work->Ws, work->c,  work->colsum, work->base, work->ink_sum, work->grad,
                      work->below, work->vg, work->m1, work->s1, work->bm1, work->bs1,
                      work->ink_grad};
    for (size_t j = 0; j < sizeof blocks / sizeof *blocks; j++) free(blocks[j]);
    free(work->columns.start), free(work->columns.row), free(work->columns.value);
    for (int l = 1; l <= depth; l++) free(work->Z[l]), free(work->A[l]);
    for (int l = 1; l < depth; l++) {
        Dense *layer = &work->dense[l];
        free(layer->W), free(layer->WT), free(layer->b);
        free(layer->m), free(layer->s), free(layer->bm), free(layer->bs);
    }
}

/* Python's (rows, cols) matrix `from` (NULL: zeros) into `to`, rows of `stride` floats;
 * transposed (to[c * stride + r]) with `transpose`. */
static void copy_in(float *to, const float *from, int64_t rows, int64_t cols, int64_t stride,
                    int transpose) {
    if (!from) return; /* floats() zeroed it */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            to[transpose ? c * stride + r : r * stride + c] = from[r * cols + c];
}

/* The reverse of copy_in. */
static void copy_out(float *to, const float *from, int64_t rows, int64_t cols, int64_t stride,
                     int transpose) {
    if (!to) return;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            to[r * cols + c] = from[transpose ? c * stride + r : r * stride + c];
}

/* The working copies of `net` (and with `state`, of the optimizer's buffers) for `threads`
 * training on order[0:n] in batches of `batch`, and with `by_rows` the dense path's
 * ink_grad: 0, or -1 out of memory. */
static int prepare(Work *work, const Net *net, const Inputs *in, int64_t n, int64_t batch,
                   int threads, const State *state, int by_rows) {
    int L = net->depth;
    int64_t d = net->size[0], H = net->size[1], P = padded(H), widest = 0, most_ink = 1;
    memset(work, 0, sizeof *work);
    for (int64_t first = 0; first < n; first += batch) {
        int64_t ink = 0;
        for (int64_t i = first; i < n && i < first + batch; i++)
            ink += in->rowptr[in->order[i] + 1] - in->rowptr[in->order[i]];
        most_ink = ink > most_ink ? ink : most_ink;
    }
    for (int l = 1; l <= L; l++) widest = padded(net->size[l]) > widest ? padded(net->size[l]) : widest;
    int ok = (work->Ws = floats(d * P)) && (work->c = floats(P)) && (work->colsum = floats(P)) &&
             (work->base = floats(P)) && (work->ink_sum = floats(threads * batch)) &&
             (work->grad = floats(batch * widest)) && (work->below = floats(batch * widest)) &&
             (work->columns.start = malloc((d + 1) * sizeof(int64_t))) &&
             (work->columns.row = malloc(most_ink * sizeof(int32_t))) &&
             (work->columns.value = malloc(most_ink * sizeof(float)));
    for (int l = 1; l <= L && ok; l++)
        ok = (work->Z[l] = floats(batch * padded(net->size[l]))) &&
             (work->A[l] = floats(batch * padded(net->size[l])));
    for (int l = 1; l < L && ok; l++) {
        Dense *layer = &work->dense[l];
        layer->fi = net->size[l], layer->fo = net->size[l + 1];
        layer->sa = padded(layer->fi), layer->sz = padded(layer->fo);
        ok = (layer->W = floats(layer->fi * layer->sz)) &&
             (layer->WT = floats(layer->fo * layer->sa)) && (layer->b = floats(layer->sz));
        for (int64_t i = 0; ok && i < layer->fi; i++)
            for (int64_t o = 0; o < layer->fo; o++)
                layer->W[i * layer->sz + o] = layer->WT[o * layer->sa + i] =
                    net->W[l][i * layer->fo + o];
        if (ok) memcpy(layer->b, net->b[l], layer->fo * sizeof(float));
        if (ok && state) {
            ok = (layer->m = floats(layer->fo * layer->sa)) &&
                 (layer->s = floats(layer->fo * layer->sa)) && (layer->bm = floats(layer->sz)) &&
                 (layer->bs = floats(layer->sz));
            if (ok) {
                copy_in(layer->m, state->first[2 * l], layer->fi, layer->fo, layer->sa, 1);
                copy_in(layer->s, state->second[2 * l], layer->fi, layer->fo, layer->sa, 1);
                copy_in(layer->bm, state->first[2 * l + 1], 1, layer->fo, layer->sz, 0);
                copy_in(layer->bs, state->second[2 * l + 1], 1, layer->fo, layer->sz, 0);
            }
        }
    }
    if (ok && state) {
        ok = (work->vg = floats(P)) && (work->m1 = floats(d * P)) && (work->s1 = floats(d * P)) &&
             (work->bm1 = floats(P)) && (work->bs1 = floats(P)) &&
             (!by_rows || (work->ink_grad = floats(d * P)));
        if (ok) {
            copy_in(work->m1, state->first[0], d, H, P, 0);
            copy_in(work->s1, state->second[0], d, H, P, 0);
            copy_in(work->bm1, state->first[1], 1, H, P, 0);
            copy_in(work->bs1, state->second[1], 1, H, P, 0);
        }
    }
    if (!ok) {
        release(work, L);
        return -1;
    }
    for (int64_t p = 0; p < d; p++) {
        memcpy(work->Ws + p * P, net->W[0] + p * H, H * sizeof(float));
        axpy(1, net->W[0] + p * H, work->colsum, H);
    }
    return 0;
}

/* The weights back into `net`: W_1 = Ws - 1 c^T, and each W_l and b_l of the layers above;
 * with `state`, the optimizer's buffers back into it. */
static void finish(Work *work, Net *net, State *state) {
    int64_t d = net->size[0], H = net->size[1], P = padded(H);
    for (int64_t p = 0; p < d; p++)
        for (int64_t h = 0; h < H; h++) net->W[0][p * H + h] = work->Ws[p * P + h] - work->c[h];
    for (int l = 1; l < net->depth; l++) {
        const Dense *layer = &work->dense[l];
        for (int64_t i = 0; i < layer->fi; i++)
            memcpy(net->W[l] + i * layer->fo, layer->W + i * layer->sz, layer->fo * sizeof(float));
        memcpy(net->b[l], layer->b, layer->fo * sizeof(float));
        if (state) {
            copy_out(state->first[2 * l], layer->m, layer->fi, layer->fo, layer->sa, 1);
            copy_out(state->second[2 * l], layer->s, layer->fi, layer->fo, layer->sa, 1);
            copy_out(state->first[2 * l + 1], layer->bm, 1, layer->fo, layer->sz, 0);
            copy_out(state->second[2 * l + 1], layer->bs, 1, layer->fo, layer->sz, 0);
        }
    }
    if (state) {
        copy_out(state->first[0], work->m1, d, H, P, 0);
        copy_out(state->second[0], work->s1, d, H, P, 0);
        copy_out(state->first[1], work->bm1, 1, H, P, 0);
        copy_out(state->second[1], work->bs1, 1, H, P, 0);
    }
}

/* The layers above the first for one step, forward and back, ending with the first
 * layer's dZ in work->grad (one thread): lr times dL/dZ_1 on plain SGD's path, dL/dZ_1 with
 * `rule` (the dense path), whose steps the layers above take. */
INLINE void upper_layers(const Inputs *in, Net *net, Work *work, int64_t first, int64_t rows,
                         double lr, float *logits, Tally *tally, const Rule *rule,
                         float max_norm) {
    int L = net->depth;
    int64_t k = net->size[L], out = padded(k);
    for (int l = 1; l < L; l++) {
        int64_t width = net->size[l], stride = padded(width);
        if (l > 1) { /* A_1 is the threads' work, by columns */
            activate(in, work->Z[l], work->A[l], rows * stride);
            if (in->masks[l]) apply_mask(in->masks[l] + first * width, work->A[l], rows, width, stride);
        }
        dense_forward(&work->dense[l], work->A[l], rows, work->Z[l + 1]);
    }
    for (int64_t i = 0; i < rows; i++)
        memcpy(logits + (first + i) * k, work->Z[L] + i * out, k * sizeof(float));
    /* plain SGD folds lr into the gradient, lr / n in float32 as engines/fast_numpy.py */
    float step = rule ? (float)(1.0 / rows) : (float)(lr / rows);
    cross_entropy_step(work->Z[L], in->labels + first, rows, k, out, step, work->grad, tally);
    for (int l = L - 1; l >= 1; l--) {
        dense_backward(&work->dense[l], work->A[l], work->grad, rows, work->below, rule);
        if (max_norm > 0) dense_limit_norms(&work->dense[l], max_norm);
        int64_t width = net->size[l], stride = padded(width), count = rows * stride;
        if (in->masks[l]) apply_mask(in->masks[l] + first * width, work->below, rows, width, stride);
        times_derivative(in, work->Z[l], work->A[l], in->masks[l] != NULL, work->below, count);
        memcpy(work->grad, work->below, count * sizeof(float));
    }
}

/* The dense path's first-layer step on columns h0..h0+nv*LANES (those below `top` real):
 * each row p of W takes the optimizer's step with its gradient, the ink's part plus
 * vg = v sum_i dZ_i; then, with max_norm, each column is scaled back onto the ball; colsum
 * gets the new column sums. The ink's part comes by columns (cols), or, with cols NULL,
 * from ink_grad, which ink_update() filled with minus it by rows and which is zeroed here:
 * cheaper where a thread's columns fit in registers, as for plain SGD. */
INLINE void first_layer_block(int nv, int64_t h0, int64_t top, const Columns *cols, int64_t d,
                              int64_t P, float *Ws, const float *dZ, const float *vg,
                              float *m, float *s, const Rule *rule, float max_norm,
                              float *colsum, float *ink_grad) {
    const int64_t *start = cols ? cols->start : NULL; /* locals, as in ink_update_block */
    const int32_t *row = cols ? cols->row : NULL;
    const float *value = cols ? cols->value : NULL;
    int64_t count = top - h0 < nv * LANES ? top - h0 : nv * LANES;
    vec sum[MAX_VECS] = {0}, squares[MAX_VECS] = {0}, zero = {0};
    for (int64_t p = 0; p < d; p++) {
        vec acc[MAX_VECS];
        for (int q = 0; q < nv; q++) acc[q] = load(vg + h0 + q * LANES);
        if (!cols) {
            float *minus = ink_grad + p * P + h0;
            for (int q = 0; q < nv; q++)
                acc[q] -= load(minus + q * LANES), store(minus + q * LANES, zero);
        } else {
            for (int64_t e = start[p]; e < start[p + 1]; e++) {
                const float *g = dZ + (int64_t)row[e] * P + h0;
                for (int q = 0; q < nv; q++) acc[q] += value[e] * load(g + q * LANES);
            }
        }
        float gradient[MAX_VECS * LANES], *w = Ws + p * P + h0;
        for (int q = 0; q < nv; q++) store(gradient + q * LANES, acc[q]);
        optimize(rule, w, gradient, m + p * P + h0, s + p * P + h0, count);
        for (int q = 0; q < nv; q++) {
            vec x = load(w + q * LANES);
            sum[q] += x, squares[q] += x * x;
        }
    }
    if (max_norm > 0) {
        float factor[MAX_VECS * LANES] = {0}, squared[MAX_VECS * LANES];
        int shrinks = 0;
        for (int q = 0; q < nv; q++) store(squared + q * LANES, squares[q]);
        for (int64_t j = 0; j < count; j++)
            factor[j] = norm_factor(squared[j], max_norm), shrinks |= factor[j] < 1;
        if (shrinks) {
            for (int64_t p = 0; p < d; p++)
                for (int64_t j = 0; j < count; j++) Ws[p * P + h0 + j] *= factor[j];
            for (int q = 0; q < nv; q++) sum[q] *= load(factor + q * LANES);
        }
    }
    for (int q = 0; q < nv; q++) store(colsum + h0 + q * LANES, sum[q]);
}

/* first_layer_block over the columns lo..hi (multiples of LANES). */
INLINE void first_layer_step(int64_t lo, int64_t hi, int64_t top, const Columns *cols,
                             int64_t d, int64_t P, Work *work, const Rule *rule,
                             float max_norm) {
#define STEP(nv)                                                                             \
    first_layer_block(nv, h0, top, cols, d, P, work->Ws, work->grad, work->vg, work->m1,       \
                      work->s1, rule, max_norm, work->colsum, work->ink_grad)
    for (int64_t h0 = lo; h0 < hi && h0 < top; h0 += MAX_VECS * LANES) {
        int64_t nv = (hi - h0) / LANES < MAX_VECS ? (hi - h0) / LANES : MAX_VECS;
        BY_VECS(nv, STEP)
    }
#undef STEP
}

/* Asks the cache for the ink of rows order[first:last] and for the row pointers of the batch
 * after: the rows are shuffled, so no hardware prefetcher sees them coming (asking made a
 * step at 784-64-10 faster; docs/performance.md). */
INLINE void prefetch_ink(const Inputs *in, int64_t first, int64_t last, int64_t n, int64_t batch) {
    for (int64_t i = first; i < last && i < n; i++) {
        int64_t r = in->order[i];
        int64_t start = in->rowptr[r], end = in->rowptr[r + 1];
        for (int64_t q = start; q < end; q += 32) /* a line holds 32 cols, 64 pixels */
            __builtin_prefetch(in->cols + q), __builtin_prefetch(in->pixels + q);
        if (start < end) /* the last line, which the steps of 32 may have stepped over */
            __builtin_prefetch(in->cols + end - 1), __builtin_prefetch(in->pixels + end - 1);
        if (i + batch < n) __builtin_prefetch(in->rowptr + in->order[i + batch]);
    }
}

/* Trains on rows order[0:n] in batches of `batch`, their logits (n, k) into `logits` and
 * their loss and hits into `tally`, on up to `threads` threads: 0, or -1 if out of memory
 * (nothing changed then).
 *
 * Each thread owns a range of the first layer's columns (hidden units): its slice of Ws
 * stays in its core's cache through forward pass and update. Per step:
 *   every thread: the first layer forward on its columns;        then all wait
 *   one thread: the layers above, forward and back;  another: the batch's ink by columns
 *   every thread: the first layer's update on its columns.
 * A thread's update and its next forward touch only its own columns: no wait between. */
static int train_chunk(const Inputs *in, Net *net, int64_t n, int64_t batch,
                           const Optim *optim, State *state, int threads, float *logits,
                           Tally *tally) {
    int L = net->depth;
    int64_t d = net->size[0], H = net->size[1], P = padded(H), blocks = P / LANES;
    int64_t most = P / 64 > 1 ? P / 64 : 1; /* 64 columns a thread, or it loses */
    threads = threads < most ? threads : (int)most;  /* (784-64-10 ran slower on 2) */
    if (batch == 1) /* a sample alone is too little to share: waits cost more than it saves */
        threads = 1; /* (784-800-10 per sample ran slower on 2) */
    int dense = optim->kind != PLAIN_SGD; /* the dense path: every row of W_1 steps */
    int by_rows = blocks <= MAX_VECS * threads; /* every thread's columns in one pass */
    float max_norm = dense ? (float)optim->max_norm : 0;
    double lr = optim->lr;
    if (!dense) state = NULL;
    Work work;
    if (prepare(&work, net, in, n, batch, threads, state, by_rows)) return -1;
#pragma omp parallel num_threads(threads)
    {
        unsigned mode = flush_subnormals();
#ifdef _OPENMP
        int t = omp_get_thread_num(), T = omp_get_num_threads();
#else
        int t = 0, T = 1;
#endif
        int64_t lo = blocks * t / T * LANES, hi = blocks * (t + 1) / T * LANES;
        int64_t top = hi < H ? hi : H; /* past H, only zeros */
        float *ink_sum = work.ink_sum + t * batch;
        for (int64_t first = 0; first < n; first += batch) {
            int64_t rows = n - first < batch ? n - first : batch;
            Rule rule = rule_of(optim, optim->steps + first / batch + 1);
            prefetch_ink(in, first + batch, first + 2 * batch, n, batch);
            for (int64_t h = lo; h < top; h++)
                work.base[h] = net->b[0][h] + in->blank * (work.colsum[h] - (float)d * work.c[h]);
            ink_forward(in, first, rows, lo, hi, P, work.Ws, work.base, work.c, ink_sum,
                        work.Z[1]);
            if (L > 1)
                for (int64_t i = 0; i < rows; i++) {
                    activate(in, work.Z[1] + i * P + lo, work.A[1] + i * P + lo, hi - lo);
                    if (in->masks[1])
                        for (int64_t h = lo; h < top; h++)
                            work.A[1][i * P + h] *= in->masks[1][(first + i) * H + h];
                }
#pragma omp barrier
#pragma omp sections
            {
#pragma omp section
                upper_layers(in, net, &work, first, rows, lr, logits, tally,
                             dense ? &rule : NULL, max_norm);
#pragma omp section
                if (!by_rows) by_columns(in, first, rows, d, &work.columns);
            }
            if (dense) { /* b_1's step, then W_1's by rows (the file's top) */
                for (int64_t h0 = lo; h0 < top; h0 += LANES) {
                    vec g_sum = {0};
                    for (int64_t i = 0; i < rows; i++) g_sum += load(work.grad + i * P + h0);
                    store(work.vg + h0, in->blank * g_sum);
                    float gradient[LANES];
                    store(gradient, g_sum);
                    optimize(&rule, net->b[0] + h0, gradient, work.bm1 + h0, work.bs1 + h0,
                             top - h0 < LANES ? top - h0 : LANES);
                }
                if (by_rows) /* minus the ink's part into ink_grad, by rows */
                    ink_update(in, first, rows, NULL, d, lo, hi, P, work.ink_grad, work.grad);
                first_layer_step(lo, hi, top, by_rows ? NULL : &work.columns, d, P, &work, &rule,
                                 max_norm);
                continue;
            }
            for (int64_t h0 = lo; h0 < hi; h0 += LANES) { /* b, c, colsum(Ws): the file's top */
                vec g_sum = {0}, ink_g_sum = {0}; /* sums over the batch, in registers */
                for (int64_t i = 0; i < rows; i++) {
                    vec g = load(work.grad + i * P + h0);
                    g_sum += g, ink_g_sum += ink_sum[i] * g;
                }
                store(work.c + h0, load(work.c + h0) + in->blank * g_sum);
                store(work.colsum + h0, load(work.colsum + h0) - ink_g_sum);
                for (int64_t h = h0; h < top && h < h0 + LANES; h++) net->b[0][h] -= g_sum[h - h0];
            }
            ink_update(in, first, rows, by_rows ? NULL : &work.columns, d, lo, hi, P, work.Ws,
                       work.grad);
        }
        restore_subnormals(mode);
    }
    finish(&work, net, state);
    release(&work, net->depth);
    return 0;
}

/* ---- Python binding ---- */

typedef struct {
    Py_buffer views[8 * MAX_LAYERS + 8];
    int count;
} Buffers;

static void *take(Buffers *buffers, PyObject *object, Py_ssize_t bytes, int writable,
                  const char *name) {
    Py_buffer *view = &buffers->views[buffers->count];
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, view, flags) < 0) return NULL;
    buffers->count++;
    if (view->len != bytes) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, expected %zd", name, view->len,
                     bytes);
        return NULL;
    }
    return view->buf;
}

/* Each entry of `tuple` (None, or a C-contiguous float32 array of bytes[i] bytes) into
 * to[i]: 0, or -1 with an exception set. */
static int take_optional(Buffers *buffers, PyObject *tuple, Py_ssize_t count,
                         const Py_ssize_t *bytes, float **to, const char *name) {
    if (PyTuple_GET_SIZE(tuple) != count) {
        PyErr_Format(PyExc_ValueError, "%s must hold %zd entries", name, count);
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        to[i] = item == Py_None ? NULL : take(buffers, item, bytes[i], 1, name);
        if (item != Py_None && !to[i]) return -1;
    }
    return 0;
}

enum { INDICES_FIT, BAD_ROW, BAD_ROWPTR, BAD_COLUMN };

/* Every index is trusted only after it is checked: a bad one would write out of bounds.
 * Which check fails first, or INDICES_FIT. (Its own function, on plain pointers, so that the
 * column scan vectorizes: it reads every ink entry of the chunk.) */
static int bad_index(const int64_t *order, const int64_t *labels, const int64_t *rowptr,
                     const uint16_t *cols, int64_t n, int64_t rows_total, int64_t classes,
                     int64_t width, int64_t nnz) {
    for (int64_t i = 0; i < n; i++) {
        int64_t r = order[i], label = labels[i];
        if (r < 0 || r >= rows_total || label < 0 || label >= classes) return BAD_ROW;
        int64_t start = rowptr[r], end = rowptr[r + 1];
        if (start < 0 || start > end || end > nnz) return BAD_ROWPTR;
        uint16_t widest = 0; /* a max, not a branch per column: it vectorizes */
        for (int64_t q = start; q < end; q++) widest = cols[q] > widest ? cols[q] : widest;
        if (start < end && widest >= width) return BAD_COLUMN;
    }
    return INDICES_FIT;
}

static PyObject *py_train_chunk(PyObject *self, PyObject *args, PyObject *kwargs) {
    PyObject *order, *rowptr, *cols, *pixels, *labels, *weights, *biases, *out;
    PyObject *firsts, *seconds, *masks;
    Py_ssize_t n, batch, rows_total;
    long long steps;
    int threads;
    Inputs in = {0};
    Optim optim;
    static char *names[] = {"order", "rowptr", "cols", "pixels", "labels", "n", "rows_total",
                            "scale", "blank", "activation", "slope", "weights", "biases", "lr",
                            "logits", "batch", "threads", "optimizer", "momentum", "beta1",
                            "beta2", "eps", "weight_decay", "max_norm", "steps", "firsts",
                            "seconds", "masks", NULL};
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "OOOOOnnffifO!O!dOniiddddddLO!O!O!", names, &order, &rowptr, &cols,
            &pixels, &labels, &n, &rows_total, &in.scale, &in.blank, &in.activation, &in.slope,
            &PyTuple_Type, &weights, &PyTuple_Type, &biases, &optim.lr, &out, &batch, &threads,
            &optim.kind, &optim.momentum, &optim.beta1, &optim.beta2, &optim.eps, &optim.decay,
            &optim.max_norm, &steps, &PyTuple_Type, &firsts, &PyTuple_Type, &seconds,
            &PyTuple_Type, &masks))
        return NULL;
    optim.steps = steps;
    Net net;
    net.depth = (int)PyTuple_GET_SIZE(weights);
    if (net.depth < 1 || net.depth > MAX_LAYERS || PyTuple_GET_SIZE(biases) != net.depth)
        return PyErr_Format(PyExc_ValueError, "expected 1 to %d layers", MAX_LAYERS);
    Buffers buffers = {.count = 0};
    PyObject *result = NULL;
    /* shapes come from the weights' own buffers; every other length is checked against them */
    for (int l = 0; l < net.depth; l++) {
        Py_buffer *view = &buffers.views[buffers.count];
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(weights, l), view,
                               PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_ND) <
            0)
            goto done;
        buffers.count++;
        if (view->ndim != 2 || strcmp(view->format, "f") != 0 ||
            (l && view->shape[0] != net.size[l])) {
            PyErr_SetString(PyExc_ValueError, "weights must be chained float32 matrices");
            goto done;
        }
        net.size[l] = view->shape[0], net.size[l + 1] = view->shape[1];
        net.W[l] = view->buf;
    }
    for (int l = 0; l < net.depth; l++)
        if (!(net.b[l] = take(&buffers, PyTuple_GET_ITEM(biases, l),
                              net.size[l + 1] * sizeof(float), 1, "a bias")))
            goto done;
    int64_t nnz_bytes;
    {
        Py_buffer *view = &buffers.views[buffers.count];
        if (PyObject_GetBuffer(pixels, view, PyBUF_C_CONTIGUOUS) < 0) goto done;
        buffers.count++;
        nnz_bytes = view->len;
        in.pixels = view->buf;
    }
    if (!(in.order = take(&buffers, order, n * sizeof(int64_t), 0, "order")) ||
        !(in.labels = take(&buffers, labels, n * sizeof(int64_t), 0, "labels")) ||
        !(in.rowptr = take(&buffers, rowptr, (rows_total + 1) * sizeof(int64_t), 0, "rowptr")) ||
        !(in.cols = take(&buffers, cols, nnz_bytes * sizeof(uint16_t), 0, "cols")))
        goto done;
    float *logits = take(&buffers, out, n * net.size[net.depth] * sizeof(float), 1, "logits");
    if (!logits) goto done;
    if (batch < 1 || threads < 1 || in.activation < RELU || in.activation > TANH ||
        optim.kind < PLAIN_SGD || optim.kind > ADAMW || steps < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "batch and threads must be >= 1, activation 0-3, optimizer 0-5");
        goto done;
    }
    State state = {{0}, {0}};
    Py_ssize_t param_bytes[2 * MAX_LAYERS], mask_bytes[MAX_LAYERS];
    for (int l = 0; l < net.depth; l++) {
        param_bytes[2 * l] = net.size[l] * net.size[l + 1] * sizeof(float);
        param_bytes[2 * l + 1] = net.size[l + 1] * sizeof(float);
        mask_bytes[l] = n * net.size[l] * sizeof(float);
    }
    float *mask_of[MAX_LAYERS];
    if (take_optional(&buffers, firsts, 2 * net.depth, param_bytes, state.first, "buffers") ||
        take_optional(&buffers, seconds, 2 * net.depth, param_bytes, state.second, "buffers") ||
        take_optional(&buffers, masks, net.depth, mask_bytes, mask_of, "masks"))
        goto done;
    for (int l = 0; l < net.depth; l++) in.masks[l] = mask_of[l];
    int needs_first = optim.kind >= MOMENTUM, needs_second = optim.kind >= ADAM;
    for (int i = 0; i < 2 * net.depth; i++)
        if ((needs_first && !state.first[i]) || (needs_second && !state.second[i])) {
            PyErr_SetString(PyExc_ValueError, "the optimizer's buffers are missing");
            goto done;
        }
    if (in.masks[0]) {
        PyErr_SetString(PyExc_ValueError, "the input takes no dropout mask here");
        goto done;
    }
    switch (bad_index(in.order, in.labels, in.rowptr, in.cols, n, rows_total,
                      net.size[net.depth], net.size[0], nnz_bytes)) {
    case BAD_ROW:
        PyErr_SetString(PyExc_IndexError, "an order or label index is out of range");
        goto done;
    case BAD_ROWPTR:
        PyErr_SetString(PyExc_ValueError, "rowptr must rise from 0 to the number of cols");
        goto done;
    case BAD_COLUMN:
        PyErr_SetString(PyExc_IndexError, "a column index is out of range");
        goto done;
    }
    int status;
    Tally tally = {0, 0};
    Py_BEGIN_ALLOW_THREADS;
    status = train_chunk(&in, &net, n, batch, &optim, &state, threads, logits, &tally);
    Py_END_ALLOW_THREADS;
    if (status) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_BuildValue("(dL)", tally.loss, (long long)tally.correct);
done:
    for (int i = 0; i < buffers.count; i++) PyBuffer_Release(&buffers.views[i]);
    return result;
}

/* count_ink(pixels, n, d, rowptr, threads): rowptr[r] = the non-zero pixels in rows 0..r-1
 * of pixels (n, d), for r = 0..n: where each row's ink will start in gather_ink's output. */
static PyObject *py_count_ink(PyObject *self, PyObject *args) {
    PyObject *pixels, *rowptr;
    Py_ssize_t n, d;
    int threads;
    if (!PyArg_ParseTuple(args, "OnnOi", &pixels, &n, &d, &rowptr, &threads)) return NULL;
    Buffers buffers = {.count = 0};
    const uint8_t *X = take(&buffers, pixels, n * d, 0, "pixels");
    int64_t *start = X ? take(&buffers, rowptr, (n + 1) * sizeof(int64_t), 1, "rowptr") : NULL;
    if (start) {
        Py_BEGIN_ALLOW_THREADS;
#pragma omp parallel for num_threads(threads > 0 ? threads : 1)
        for (int64_t r = 0; r < n; r++) {
            uint32_t inked = 0; /* a narrow sum the compiler vectorizes */
            for (int64_t p = 0; p < d; p++) inked += X[r * d + p] != 0;
            start[r + 1] = inked;
        }
        start[0] = 0;
        for (int64_t r = 0; r < n; r++) start[r + 1] += start[r];
        Py_END_ALLOW_THREADS;
    }
    for (int i = 0; i < buffers.count; i++) PyBuffer_Release(&buffers.views[i]);
    return start ? Py_NewRef(Py_None) : NULL;
}

/* gather_ink(pixels, n, d, rowptr, cols, values, threads): each row's non-zero pixels and
 * their columns into cols and values, row r's from rowptr[r] on (count_ink's rowptr). */
static PyObject *py_gather_ink(PyObject *self, PyObject *args) {
    PyObject *pixels, *rowptr, *cols, *values;
    Py_ssize_t n, d;
    int threads;
    if (!PyArg_ParseTuple(args, "OnnOOOi", &pixels, &n, &d, &rowptr, &cols, &values, &threads))
        return NULL;
    threads = threads > 0 ? threads : 1;
    Buffers buffers = {.count = 0};
    PyObject *result = NULL;
    const uint8_t *X = take(&buffers, pixels, n * d, 0, "pixels");
    const int64_t *start = X ? take(&buffers, rowptr, (n + 1) * sizeof(int64_t), 0, "rowptr")
                             : NULL;
    if (!start) goto done;
    int64_t total = start[n];
    uint16_t *where = take(&buffers, cols, total * sizeof(uint16_t), 1, "cols");
    uint8_t *value = where ? take(&buffers, values, total, 1, "values") : NULL;
    if (!value) goto done;
    /* Branch-free: every pixel is written to its thread's scratch row, the place moves on at
     * ink only (ink is 1 pixel in 5, too unpredictable for a branch). */
    uint16_t *scratch_cols = malloc(threads * d * sizeof(uint16_t));
    uint8_t *scratch_values = malloc(threads * d);
    int fits = 1;
    if (!scratch_cols || !scratch_values) {
        free(scratch_cols), free(scratch_values);
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS;
    /* The output's fresh pages faulted in by one thread first: two threads faulting them in
     * at once were several times slower than this and the gather after it together. */
    for (int64_t q = 0; q < total; q += 2048) where[q] = 0, value[q] = 0;
#pragma omp parallel for num_threads(threads) reduction(&& : fits)
    for (int64_t r = 0; r < n; r++) {
#ifdef _OPENMP
        int t = omp_get_thread_num();
#else
        int t = 0;
#endif
        uint16_t *row_cols = scratch_cols + t * d;
        uint8_t *row_values = scratch_values + t * d;
        const uint8_t *row = X + r * d;
        int64_t inked = 0;
        for (int64_t p0 = 0; p0 < d; p0 += 8) {
            int64_t end = p0 + 8 < d ? p0 + 8 : d;
            uint64_t eight = 1; /* a short last group is always looked at */
            if (end - p0 == 8) memcpy(&eight, row + p0, 8);
            if (!eight) continue; /* 8 pixels of blank paper, most of an image */
            for (int64_t p = p0; p < end; p++) {
                row_cols[inked] = (uint16_t)p, row_values[inked] = row[p];
                inked += row[p] != 0;
            }
        }
        int row_fits = start[r] >= 0 && start[r + 1] - start[r] == inked && start[r + 1] <= total;
        if (row_fits) {
            memcpy(where + start[r], row_cols, inked * sizeof(uint16_t));
            memcpy(value + start[r], row_values, inked);
        }
        fits = fits && row_fits;
    }
    Py_END_ALLOW_THREADS;
    free(scratch_cols), free(scratch_values);
    if (!fits) PyErr_SetString(PyExc_ValueError, "rowptr does not match the pixels' ink");
    else result = Py_NewRef(Py_None);
done:
    for (int i = 0; i < buffers.count; i++) PyBuffer_Release(&buffers.views[i]);
    return result;
}

/* cpu_runs(): the instruction sets of the other builds that this CPU (and its operating
 * system, which must save the wider registers) runs, widest first: a module built for one is
 * imported only where it is listed here. */
static PyObject *py_cpu_runs(PyObject *self, PyObject *unused) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
    int avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    if (avx512) return Py_BuildValue("(ss)", "avx512", "avx2");
    if (avx2) return Py_BuildValue("(s)", "avx2");
#endif
    return PyTuple_New(0);
}

/* ---- distortions: data/augment.py's bilinear sampling, fused ---- */

/* Each step below is rounded to float32 on its own, in the order Warper.warp takes them in
 * NumPy, so that both give the same bytes: no multiply-add is contracted here. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

/* q of one axis at a pixel: coefficients (a, b, c) times the grid's (gx, gy, 1), summed in
 * that order as einsum does, plus the elastic field, clipped to [0, most]. */
static inline float coordinate(const float *abc, float gx, float gy, float field, float most) {
    float q = abc[0] * gx;
    q = q + abc[1] * gy;
    q = q + abc[2];
    q = q + field;
    q = q > 0 ? q : 0; /* np.clip: maximum, then minimum */
    return q < most ? q : most;
}

/* out[i] = image i sampled bilinearly where Warper.warp samples it: at q = coefficients
 * (2, m, 3) times the grid (3, h w) plus field (2, m, h, w) or none, in the coordinates of
 * the image padded with one blank pixel before and two after in each axis, clipped to
 * [0, w + 1] and [0, h + 1]; rounded to the nearest level. `padded` has room for
 * (h + 3) (w + 3) floats. */
static void sample_bilinear(const uint8_t *images, const float *coefficients, const float *grid,
                            const float *field, int64_t m, int64_t h, int64_t w, float *padded,
                            uint8_t *out) {
    int64_t stride = w + 3, count = h * w;
    memset(padded, 0, (h + 3) * stride * sizeof(float));
    for (int64_t i = 0; i < m; i++) {
        const uint8_t *image = images + i * count;
        const float *along_x = coefficients + 3 * i, *along_y = coefficients + 3 * (m + i);
        for (int64_t r = 0; r < h; r++)
            for (int64_t c = 0; c < w; c++) padded[(r + 1) * stride + c + 1] = image[r * w + c];
        for (int64_t p = 0; p < count; p++) {
            float fx_field = field ? field[i * count + p] : 0, fy_field = 0;
            if (field) fy_field = field[(m + i) * count + p];
            float x = coordinate(along_x, grid[p], grid[count + p], fx_field, (float)(w + 1));
            float y = coordinate(along_y, grid[p], grid[count + p], fy_field, (float)(h + 1));
            int32_t x0 = (int32_t)x, y0 = (int32_t)y; /* the floor, as x, y >= 0 */
            float fx = x - (float)x0, fy = y - (float)y0;
            const float *corner = padded + y0 * stride + x0;
            float top = corner[0], right = corner[1];
            float bottom = corner[stride], bottom_right = corner[stride + 1];
            right = (right - top) * fx;
            top = top + right;
            bottom_right = (bottom_right - bottom) * fx;
            bottom = bottom + bottom_right;
            bottom = (bottom - top) * fy;
            top = top + bottom;
            top = top + 0.5f;
            out[i * h * w + p] = (uint8_t)top;
        }
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

/* sample_bilinear(images, coefficients, grid, field, m, h, w, out): images (m, h, w) uint8,
 * coefficients (2, m, 3), grid (3, h w) and field (2, m, h, w) or None float32, out (m, h, w)
 * uint8; see Warper.warp in data/augment.py. */
static PyObject *py_sample_bilinear(PyObject *self, PyObject *args) {
    PyObject *images, *coefficients, *grid, *field, *out;
    Py_ssize_t m, h, w;
    if (!PyArg_ParseTuple(args, "OOOOnnnO", &images, &coefficients, &grid, &field, &m, &h, &w,
                          &out))
        return NULL;
    if (m < 0 || h < 1 || w < 1 || h > 65535 || w > 65535)
        return PyErr_Format(PyExc_ValueError, "bad image shape");
    Buffers buffers = {.count = 0};
    PyObject *result = NULL;
    Py_ssize_t count = m * h * w;
    const uint8_t *pixels = take(&buffers, images, count, 0, "images");
    const float *abc = pixels ? take(&buffers, coefficients, 6 * m * sizeof(float), 0, "abc")
                              : NULL;
    const float *at = abc ? take(&buffers, grid, 3 * h * w * sizeof(float), 0, "grid") : NULL;
    const float *moved = NULL;
    if (at && field != Py_None)
        moved = take(&buffers, field, 2 * count * sizeof(float), 0, "field");
    uint8_t *sampled = at && (field == Py_None || moved) ? take(&buffers, out, count, 1, "out")
                                                         : NULL;
    if (sampled) {
        float *padded = malloc((h + 3) * (w + 3) * sizeof(float));
        if (!padded) {
            PyErr_NoMemory();
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS;
        sample_bilinear(pixels, abc, at, moved, m, h, w, padded, sampled);
        Py_END_ALLOW_THREADS;
        free(padded);
        result = Py_NewRef(Py_None);
    }
done:
    for (int i = 0; i < buffers.count; i++) PyBuffer_Release(&buffers.views[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"sample_bilinear", py_sample_bilinear, METH_VARARGS,
     "sample_bilinear(images, coefficients, grid, field, m, h, w, out): see "
     "mlpcli/data/augment.py"},
    {"cpu_runs", py_cpu_runs, METH_NOARGS,
     "cpu_runs() -> the instruction sets of the other builds this CPU runs, widest first"},
    {"count_ink", py_count_ink, METH_VARARGS,
     "count_ink(pixels, n, d, rowptr, threads): see mlpcli/engines/compiled.py"},
    {"gather_ink", py_gather_ink, METH_VARARGS,
     "gather_ink(pixels, n, d, rowptr, cols, values, threads): see mlpcli/engines/compiled.py"},
    {"train_chunk", (PyCFunction)(void (*)(void))py_train_chunk, METH_VARARGS | METH_KEYWORDS,
     "train_chunk(*, order, rowptr, cols, pixels, labels, n, rows_total, scale, blank, "
     "activation, slope, weights, biases, lr, logits, batch, threads, optimizer, momentum, "
     "beta1, beta2, eps, weight_decay, max_norm, steps, firsts, seconds, masks) "
     "-> (summed loss, correct), called by keyword: see mlpcli/engines/compiled.py"},
    {NULL, NULL, 0, NULL}};

#define TEXT(name) #name
#define NAME(name) TEXT(name)
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, NAME(MODULE),
                                    "Compiled mini-batch SGD step; see mlpcli/engines/compiled.py.",
                                    -1, methods};

#define INIT_OF(name) PyInit_##name
#define INIT(name) INIT_OF(name)
PyMODINIT_FUNC INIT(MODULE)(void) {
    PyObject *self = PyModule_Create(&module);
    if (self && (PyModule_AddIntConstant(self, "LANES", LANES) < 0 ||
                 PyModule_AddIntConstant(self, "MAX_LAYERS", MAX_LAYERS) < 0 ||
                 PyModule_AddObject(self, "ACTIVATIONS",
                                    Py_BuildValue("(ssss)", ACTIVATION_NAMES)) < 0 ||
                 PyModule_AddObject(self, "OPTIMIZERS",
                                    Py_BuildValue("(ssssss)", OPTIMIZER_NAMES)) < 0)) {
        Py_DECREF(self);
        return NULL;
    }
    return self;
}
