// activations.cu: the element-wise activations, forward and backward, one thread per element
// (ops/activations.py has the same maths as array code: the reference these are tested against).
//
//   kind 0 tanh         y = tanh(x)                 dx = dy (1 - y^2)
//   kind 1 scaled_tanh  y = A tanh(S x)             dx = dy S/A (A^2 - y^2),  A = 1.7159, S = 2/3
//   kind 2 relu         y = max(x, 0)               dx = dy [y > 0]
//   kind 3 sigmoid      y = 1 / (1 + e^-x)          dx = dy y (1 - y)
// The backward passes use the forward output y. Each is one launch where the array maths
// takes up to six. relu keeps NaN (as NumPy's maximum does), so a diverged run still shows.
#include "common.cuh"

constexpr float A = 1.7159f, S = 2.0f / 3.0f;

extern "C" __global__ void activation_forward(const float* __restrict__ x, int n, int kind,
                                              float* __restrict__ y)
{
    const int e = blockIdx.x * THREADS + threadIdx.x;
    if (e >= n) return;
    const float xe = x[e];
    float ye;
    switch (kind) {
    case 0: ye = tanhf(xe); break;
    case 1: ye = A * tanhf(S * xe); break;
    case 2: ye = xe < 0.0f ? 0.0f : xe; break;
    default: {     // e^-|x| only: no overflow for large |x|
        const float t = expf(-fabsf(xe));
        ye = xe >= 0.0f ? 1.0f / (1.0f + t) : t / (1.0f + t);
    }
    }
    y[e] = ye;
}

extern "C" __global__ void activation_backward(const float* __restrict__ y,
                                               const float* __restrict__ dy, int n, int kind,
                                               float* __restrict__ dx)
{
    const int e = blockIdx.x * THREADS + threadIdx.x;
    if (e >= n) return;
    const float ye = y[e];
    float d;
    switch (kind) {
    case 0: d = 1.0f - ye * ye; break;
    case 1: d = (A * A - ye * ye) * (S / A); break;
    case 2: d = ye > 0.0f ? 1.0f : 0.0f; break;
    default: d = (1.0f - ye) * ye;
    }
    dx[e] = dy[e] * d;
}
