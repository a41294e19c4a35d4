/* The optimizers' steps (nn/optim.py). Part of _sparse_sgd.c, which includes it once, after the
 * parts before it. */

/* ---- optimizers (optim.py) ---- */

enum { PLAIN_SGD, SGD, MOMENTUM, NESTEROV, ADAM, ADAMW, OPTIMIZER_COUNT };
/* their names in the enum's order, exported as ACTIVATION_NAMES is */
#define OPTIMIZER_NAMES "plain-sgd", "sgd", "momentum", "nesterov", "adam", "adamw"

/* Which of the buffers Python holds an optimizer keeps: a first (velocity, or Adam's mean)
 * and a second (Adam's mean square). */
static int keeps_first(int kind) { return kind >= MOMENTUM; }
static int keeps_second(int kind) { return kind >= ADAM; }

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
