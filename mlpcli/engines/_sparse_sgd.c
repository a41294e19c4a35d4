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

#include "step/common.h"
#include "step/ink.h"
#include "step/optim.h"
#include "step/dense.h"
#include "step/activations.h"
#include "step/workspace.h"
#include "step/driver.h"

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
    unsigned long long gemm_address; /* cblas_sgemm64_'s address, or 0: the own kernels */
    int threads;
    Inputs in = {0};
    Optim optim;
    static char *names[] = {"order", "rowptr", "cols", "pixels", "labels", "n", "rows_total",
                            "scale", "blank", "activation", "slope", "weights", "biases", "lr",
                            "logits", "batch", "threads", "optimizer", "momentum", "beta1",
                            "beta2", "eps", "weight_decay", "max_norm", "steps", "firsts",
                            "seconds", "masks", "gemm", NULL};
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "OOOOOnnffifO!O!dOniiddddddLO!O!O!K", names, &order, &rowptr, &cols,
            &pixels, &labels, &n, &rows_total, &in.scale, &in.blank, &in.activation, &in.slope,
            &PyTuple_Type, &weights, &PyTuple_Type, &biases, &optim.lr, &out, &batch, &threads,
            &optim.kind, &optim.momentum, &optim.beta1, &optim.beta2, &optim.eps, &optim.decay,
            &optim.max_norm, &steps, &PyTuple_Type, &firsts, &PyTuple_Type, &seconds,
            &PyTuple_Type, &masks, &gemm_address))
        return NULL;
    optim.steps = steps;
    Net net;
    net.gemm = (Gemm)(uintptr_t)gemm_address;
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
    if (batch < 1 || threads < 1 || in.activation < 0 || in.activation >= ACTIVATION_COUNT ||
        optim.kind < 0 || optim.kind >= OPTIMIZER_COUNT || steps < 0) {
        PyErr_SetString(PyExc_ValueError, "batch and threads must be >= 1, activation and "
                                          "optimizer indices into ACTIVATIONS and OPTIMIZERS");
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
    int needs_first = keeps_first(optim.kind), needs_second = keeps_second(optim.kind);
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

#include "step/sampler.h"

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
     "beta1, beta2, eps, weight_decay, max_norm, steps, firsts, seconds, masks, gemm) "
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
