// batch_norm.cu: batch normalization, training forward, inference forward and backward, float32.
//
// Input viewed as (N, C, HW): 4-D (N,C,H,W) has HW = H*W, 2-D (N,F) has C = F, HW = 1.
// Statistics per channel c over its M = N*HW values (biased variance to normalize):
//   mean = sum x / M,  var = sum (x - mean)^2 / M,  invstd = 1 / sqrt(var + eps)
//   y = gamma (x - mean) invstd + beta
//   backward: dbeta = sum dy, dgamma = sum dy xhat,
//             dx = gamma invstd / M (M dy - dbeta - xhat dgamma)
//
// bn_mean / bn_var / bn_grad
//     block (c, s) sums over the s-th contiguous chunk of channel c (thread-private sums in a
//     fixed order, then a fixed tree) -> partial[s][c] (grad: two such arrays); the last of
//     channel c's S blocks to finish adds the S partials in a fixed order (one warp) and applies
//     the formulas above (bn_var also updates the running statistics in place). One launch
//     each, and bit-identical from run to run (last_block_to_arrive in common.cuh).
// bn_apply_train / bn_apply_infer / bn_backward_dx
//     one thread per element (flat index e, channel c = (e / HW) % C).
#include "common.cuh"

extern "C" __global__ void bn_mean(const float* __restrict__ x, int N, int C, int HW, int S,
                                   float* partial, int* counter, float* __restrict__ mean)
{
    const int c = blockIdx.x, s = blockIdx.y;
    float acc[1];
    channel_chunk_sum<1>(N, C, HW, c, s, S, acc, [&](int addr, float (&a)[1]) { a[0] += x[addr]; });
    if (threadIdx.x == 0) partial[s * C + c] = acc[0];
    if (!last_block_to_arrive(counter + c, S) || threadIdx.x >= 32) return;
    const float sum = warp_sum_partials(partial, S, C, c);
    if (threadIdx.x == 0) mean[c] = sum / (float)(N * HW);
}

// keep = 1 - momentum, var_weight = momentum * M / (M - 1) (unbiased variance for the running value)
extern "C" __global__ void bn_var(const float* __restrict__ x, const float* __restrict__ mean,
                                  int N, int C, int HW, int S, float eps, float momentum, float keep,
                                  float var_weight, float* partial, int* counter,
                                  float* __restrict__ invstd, float* __restrict__ running_mean,
                                  float* __restrict__ running_var)
{
    const int c = blockIdx.x, s = blockIdx.y;
    const float m = mean[c];
    float acc[1];
    channel_chunk_sum<1>(N, C, HW, c, s, S, acc, [&](int addr, float (&a)[1]) {
        const float d = x[addr] - m;
        a[0] += d * d;
    });
    if (threadIdx.x == 0) partial[s * C + c] = acc[0];
    if (!last_block_to_arrive(counter + c, S) || threadIdx.x >= 32) return;
    const float sum = warp_sum_partials(partial, S, C, c);
    if (threadIdx.x == 0) {
        const float var = sum / (float)(N * HW);
        invstd[c] = 1.0f / sqrtf(var + eps);
        running_mean[c] = running_mean[c] * keep + momentum * m;
        running_var[c] = running_var[c] * keep + var_weight * var;
    }
}

extern "C" __global__ void bn_grad(const float* __restrict__ dy, const float* __restrict__ x,
                                   const float* __restrict__ mean, const float* __restrict__ invstd,
                                   int N, int C, int HW, int S, float* partial_dbeta,
                                   float* partial_dgamma, int* counter,
                                   float* __restrict__ dbeta, float* __restrict__ dgamma)
{
    const int c = blockIdx.x, s = blockIdx.y;
    const float m = mean[c], is = invstd[c];
    float acc[2];
    channel_chunk_sum<2>(N, C, HW, c, s, S, acc, [&](int addr, float (&a)[2]) {
        const float g = dy[addr];
        a[0] += g;
        a[1] += g * ((x[addr] - m) * is);
    });
    if (threadIdx.x == 0) {
        partial_dbeta[s * C + c] = acc[0];
        partial_dgamma[s * C + c] = acc[1];
    }
    if (!last_block_to_arrive(counter + c, S) || threadIdx.x >= 32) return;
    const float db = warp_sum_partials(partial_dbeta, S, C, c);
    const float dg = warp_sum_partials(partial_dgamma, S, C, c);
    if (threadIdx.x == 0) {
        dbeta[c] = db;
        dgamma[c] = dg;
    }
}

extern "C" __global__ void bn_apply_train(const float* __restrict__ x, const float* __restrict__ mean,
                                          const float* __restrict__ invstd, const float* __restrict__ gamma,
                                          const float* __restrict__ beta, int total, int C, int HW,
                                          float* __restrict__ y)
{
    const int e = blockIdx.x * THREADS + threadIdx.x;
    if (e >= total) return;
    const int c = (e / HW) % C;
    y[e] = (x[e] - mean[c]) * invstd[c] * gamma[c] + beta[c];
}

extern "C" __global__ void bn_apply_infer(const float* __restrict__ x, const float* __restrict__ running_mean,
                                          const float* __restrict__ running_var, const float* __restrict__ gamma,
                                          const float* __restrict__ beta, int total, int C, int HW, float eps,
                                          float* __restrict__ y)
{
    const int e = blockIdx.x * THREADS + threadIdx.x;
    if (e >= total) return;
    const int c = (e / HW) % C;
    const float scale = gamma[c] / sqrtf(running_var[c] + eps);
    y[e] = x[e] * scale + (beta[c] - running_mean[c] * scale);
}

extern "C" __global__ void bn_backward_dx(const float* __restrict__ dy, const float* __restrict__ x,
                                          const float* __restrict__ mean, const float* __restrict__ invstd,
                                          const float* __restrict__ gamma, const float* __restrict__ dbeta,
                                          const float* __restrict__ dgamma, int total, int C, int HW, int M,
                                          float* __restrict__ dx)
{
    const int e = blockIdx.x * THREADS + threadIdx.x;
    if (e >= total) return;
    const int c = (e / HW) % C;
    const float xhat = (x[e] - mean[c]) * invstd[c];
    const float scale = gamma[c] * invstd[c] / (float)M;
    dx[e] = scale * ((float)M * dy[e] - dbeta[c] - xhat * dgamma[c]);
}
