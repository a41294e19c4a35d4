/* A chunk's workspace: allocated, filled and written back. Part of _sparse_sgd.c, which
 * includes it once, after the parts before it. */

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
        free(layer->W), free(layer->WT), free(layer->b), free(layer->G);
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
        Gemm gemm = layer->gemm = layer->fi * layer->fo >= GEMM_FROM_WEIGHTS ? net->gemm : NULL;
        /* the optimizer's buffers laid out as WT (the kernels) or as W (BLAS) */
        int64_t rows = gemm ? layer->fi : layer->fo, stride = gemm ? layer->sz : layer->sa;
        ok = (layer->W = floats(layer->fi * layer->sz)) && (layer->b = floats(layer->sz)) &&
             (gemm ? (layer->G = floats(layer->fi * layer->sz)) != NULL
                   : (layer->WT = floats(layer->fo * layer->sa)) != NULL);
        for (int64_t i = 0; ok && i < layer->fi; i++)
            memcpy(layer->W + i * layer->sz, net->W[l] + i * layer->fo, layer->fo * sizeof(float));
        if (ok && !gemm) copy_in(layer->WT, net->W[l], layer->fi, layer->fo, layer->sa, 1);
        if (ok) memcpy(layer->b, net->b[l], layer->fo * sizeof(float));
        if (ok && state) {
            ok = (layer->m = floats(rows * stride)) && (layer->s = floats(rows * stride)) &&
                 (layer->bm = floats(layer->sz)) && (layer->bs = floats(layer->sz));
            if (ok) {
                copy_in(layer->m, state->first[2 * l], layer->fi, layer->fo, stride, !gemm);
                copy_in(layer->s, state->second[2 * l], layer->fi, layer->fo, stride, !gemm);
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
            int64_t stride = layer->gemm ? layer->sz : layer->sa;
            copy_out(state->first[2 * l], layer->m, layer->fi, layer->fo, stride, !layer->gemm);
            copy_out(state->second[2 * l], layer->s, layer->fi, layer->fo, stride, !layer->gemm);
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
