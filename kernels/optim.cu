// optim.cu: the optimizers' updates of one parameter array, in place, one thread per element.
//
// g is the loss gradient; with L2 weight decay (decay > 0) every update uses g + decay * w.
//   sgd_update   plain (v == nullptr):  w <- w - lr g
//                momentum:              v <- mu v - lr g;  w <- w + v
//                nesterov (nesterov=1): v <- mu v - lr g;  w <- w + mu v - lr g
//   adam_update  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  w <- w - step m / (sqrt(v) + eps)
//                (step and eps carry the bias corrections of step t, see optim.Adam.prepare;
//                1 - b1 and 1 - b2 come from the host, rounded to float32 once, as NumPy does)
//   sdlm_update  w <- w - rate_k g, rate_k per element (frozen for the pass, optim.SDLM)
// The scalars that change between steps (lr, step, eps) are read from device memory (0-d
// arrays that Optimizer.prepare writes), so a captured CUDA graph follows a schedule.
// Each replaces the 2 to 9 elementwise CuPy kernels of the same update written as array maths
// (optim.py's NumPy path, which is the reference it is tested against).
#include "common.cuh"

__device__ inline float decayed(float g, float w, float decay)
{
    return decay != 0.0f ? g + decay * w : g;
}

extern "C" __global__ void sgd_update(float* __restrict__ w, const float* __restrict__ g, int n,
                                      float* __restrict__ v, const float* __restrict__ lr,
                                      float momentum, int nesterov, float decay)
{
    const int e = blockIdx.x * THREADS + threadIdx.x;
    if (e >= n) return;
    const float step = *lr * decayed(g[e], w[e], decay);
    if (v == nullptr) {
        w[e] -= step;
        return;
    }
    const float ve = momentum * v[e] - step;
    v[e] = ve;
    w[e] += nesterov ? momentum * ve - step : ve;
}

extern "C" __global__ void adam_update(float* __restrict__ w, const float* __restrict__ g, int n,
                                       float* __restrict__ m, float* __restrict__ v,
                                       const float* __restrict__ step, const float* __restrict__ eps,
                                       float beta1, float beta2, float one_minus_beta1,
                                       float one_minus_beta2, float decay)
{
    const int e = blockIdx.x * THREADS + threadIdx.x;
    if (e >= n) return;
    const float ge = decayed(g[e], w[e], decay);
    const float me = beta1 * m[e] + one_minus_beta1 * ge;
    const float ve = beta2 * v[e] + one_minus_beta2 * (ge * ge);
    m[e] = me;
    v[e] = ve;
    w[e] -= *step * me / (sqrtf(ve) + *eps);
}

extern "C" __global__ void sdlm_update(float* __restrict__ w, const float* __restrict__ g, int n,
                                       const float* __restrict__ rate, float decay)
{
    const int e = blockIdx.x * THREADS + threadIdx.x;
    if (e >= n) return;
    w[e] -= rate[e] * decayed(g[e], w[e], decay);
}
