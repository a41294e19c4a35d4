/* The first layer's products over the ink alone. Part of _sparse_sgd.c, which includes it once,
 * after the parts before it. */

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
