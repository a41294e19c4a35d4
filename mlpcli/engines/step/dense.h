/* The layers above the first. Part of _sparse_sgd.c, which includes it once, after the parts
 * before it. */

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
    Gemm gemm; /* a large layer's products by BLAS, or NULL. With it, W alone is kept (no
                * WT), and m and s are laid out as W (fi, sz): nothing is transposed */
    float *G;  /* with gemm: W's gradient (fi, sz) */
} Dense;

/* Layers of at least this many weights take BLAS's products when it is there: below, a
 * call's own cost outweighs what its blocking saves (docs/performance.md). */
#define GEMM_FROM_WEIGHTS (1 << 17)

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
    if (layer->gemm) { /* Z = b, then Z += A W */
        for (int64_t i = 0; i < rows; i++)
            memcpy(Z + i * layer->sz, layer->b, layer->sz * sizeof(float));
        layer->gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, rows, layer->fo, layer->fi, 1, A, layer->sa,
                    layer->W, layer->sz, 1, Z, layer->sz);
        return;
    }
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
    if (layer->gemm) { /* W alone: the columns' squares summed row by row */
        float *squares = layer->G; /* free until the next step's gradient */
        memset(squares, 0, layer->sz * sizeof(float));
        for (int64_t j = 0; j < layer->fi; j++)
            for (int64_t o = 0; o < layer->fo; o++)
                squares[o] += layer->W[j * layer->sz + o] * layer->W[j * layer->sz + o];
        for (int64_t o = 0; o < layer->fo; o++) squares[o] = norm_factor(squares[o], max_norm);
        for (int64_t j = 0; j < layer->fi; j++)
            for (int64_t o = 0; o < layer->fo; o++) layer->W[j * layer->sz + o] *= squares[o];
        return;
    }
    for (int64_t o = 0; o < layer->fo; o++) {
        float *row = layer->WT + o * layer->sa, squares = 0;
        for (int64_t j = 0; j < layer->fi; j++) squares += row[j] * row[j];
        float factor = norm_factor(squares, max_norm);
        for (int64_t j = 0; j < layer->fi; j++)
            layer->W[j * layer->sz + o] = row[j] *= factor;
    }
}

/* dense_backward's products by BLAS: dA = dZ W^T with W as it is (its pad columns zeroed,
 * as the kernels leave them), G = A^T dZ, then each row of W steps with its row of G. */
INLINE void gemm_backward(Dense *layer, const float *A, const float *dZ, int64_t rows,
                          float *dA, const Rule *rule) {
    int64_t fi = layer->fi, fo = layer->fo, sa = layer->sa, sz = layer->sz;
    layer->gemm(ROW_MAJOR, NO_TRANS, TRANS, rows, fi, fo, 1, dZ, sz, layer->W, sz, 0, dA, sa);
    for (int64_t i = 0; i < rows; i++) memset(dA + i * sa + fi, 0, (sa - fi) * sizeof(float));
    layer->gemm(ROW_MAJOR, TRANS, NO_TRANS, fi, fo, rows, 1, A, sa, dZ, sz, 0, layer->G, sz);
    for (int64_t j = 0; j < fi; j++) {
        float *row = layer->W + j * sz, *gradient = layer->G + j * sz;
        if (rule)
            optimize(rule, row, gradient, layer->m + j * sz, layer->s + j * sz, fo);
        else
            for (int64_t o = 0; o < fo; o++) row[o] -= gradient[o];
    }
}

/* dA = dZ W^T with W as it is, then W -= A^T dZ and b -= sum_i dZ_i (with `rule`, the
 * optimizer's steps for those gradients). */
INLINE void dense_backward(Dense *layer, const float *A, const float *dZ, int64_t rows,
                           float *dA, const Rule *rule) {
    if (layer->gemm)
        gemm_backward(layer, A, dZ, rows, dA, rule);
    else {
        int64_t j0 = 0;
#define GRADIENT(nv) dense_gradient_block(nv, layer, dZ, rows, j0, dA)
#define UPDATE(nv) dense_update_block(nv, layer, A, dZ, rows, j0, rule)
        for (; j0 + MAX_VECS * LANES <= layer->sa; j0 += MAX_VECS * LANES) GRADIENT(MAX_VECS);
        BY_VECS((layer->sa - j0) / LANES, GRADIENT)
        for (j0 = 0; j0 + MAX_VECS * LANES <= layer->sa; j0 += MAX_VECS * LANES) UPDATE(MAX_VECS);
        BY_VECS((layer->sa - j0) / LANES, UPDATE)
#undef GRADIENT
#undef UPDATE
    }
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
