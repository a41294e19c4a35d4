/* Activations (nn/activations.py) and the cross-entropy step. Part of _sparse_sgd.c, which
 * includes it once, after the parts before it. */

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
