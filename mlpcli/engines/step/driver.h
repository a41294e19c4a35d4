/* One chunk of steps: the layers above, the first layer, the threads. Part of _sparse_sgd.c,
 * which includes it once, after the parts before it. */

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

/* Plain SGD's update of the first layer on a thread's columns lo..hi (real below `top`): b_1
 * steps, the shared shift c takes the blank pixels' part, colsum(Ws) follows, and only the
 * inked rows of Ws step (_sparse_sgd.c's top). */
INLINE void shifted_update(const Inputs *in, Net *net, Work *work, int64_t first, int64_t rows,
                           int64_t lo, int64_t hi, int64_t top, int by_rows,
                           const float *ink_sum) {
    int64_t d = net->size[0], P = padded(net->size[1]);
    for (int64_t h0 = lo; h0 < hi; h0 += LANES) {
        vec g_sum = {0}, ink_g_sum = {0}; /* sums over the batch, in registers */
        for (int64_t i = 0; i < rows; i++) {
            vec g = load(work->grad + i * P + h0);
            g_sum += g, ink_g_sum += ink_sum[i] * g;
        }
        store(work->c + h0, load(work->c + h0) + in->blank * g_sum);
        store(work->colsum + h0, load(work->colsum + h0) - ink_g_sum);
        for (int64_t h = h0; h < top && h < h0 + LANES; h++) net->b[0][h] -= g_sum[h - h0];
    }
    ink_update(in, first, rows, by_rows ? NULL : &work->columns, d, lo, hi, P, work->Ws,
               work->grad);
}

/* Every other optimizer's (the dense path): b_1's step, then each row of W_1 steps with its
 * gradient, the ink's part plus the blank pixels' (_sparse_sgd.c's top). */
INLINE void dense_update(const Inputs *in, Net *net, Work *work, int64_t first, int64_t rows,
                         int64_t lo, int64_t hi, int64_t top, int by_rows, const Rule *rule,
                         float max_norm) {
    int64_t d = net->size[0], P = padded(net->size[1]);
    for (int64_t h0 = lo; h0 < top; h0 += LANES) {
        vec g_sum = {0};
        for (int64_t i = 0; i < rows; i++) g_sum += load(work->grad + i * P + h0);
        store(work->vg + h0, in->blank * g_sum);
        float gradient[LANES];
        store(gradient, g_sum);
        optimize(rule, net->b[0] + h0, gradient, work->bm1 + h0, work->bs1 + h0,
                 top - h0 < LANES ? top - h0 : LANES);
    }
    if (by_rows) /* minus the ink's part into ink_grad, by rows */
        ink_update(in, first, rows, NULL, d, lo, hi, P, work->ink_grad, work->grad);
    first_layer_step(lo, hi, top, by_rows ? NULL : &work->columns, d, P, work, rule, max_norm);
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
    for (int l = 1; l < L; l++) /* BLAS's threads take the cores for a large layer above; */
        if (net->gemm && net->size[l] * net->size[l + 1] >= GEMM_FROM_WEIGHTS)
            threads = 1; /* a thread of ours would spin at each barrier meanwhile */
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
            if (dense)
                dense_update(in, net, &work, first, rows, lo, hi, top, by_rows, &rule, max_norm);
            else
                shifted_update(in, net, &work, first, rows, lo, hi, top, by_rows, ink_sum);
        }
        restore_subnormals(mode);
    }
    finish(&work, net, state);
    release(&work, net->depth);
    return 0;
}
