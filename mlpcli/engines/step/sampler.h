/* The distortions' bilinear sampling (data/augment.py). Part of _sparse_sgd.c, which includes
 * it once, after the parts before it. */

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
