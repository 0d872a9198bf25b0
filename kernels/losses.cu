// losses.cu: a training loss on the network output (N, K), its gradient and the number of
// correct predictions, in one launch of one block (ops/losses.py has the same maths as
// array code, the reference these kernels are tested against).
//
//   softmax_cross_entropy  z logits, m_n = max_k z_nk, s_n = sum_k e^(z_nk - m_n)
//                          loss = 1/N sum_n (log s_n - (z_n,label - m_n))
//                          grad = (e^(z - m) / s - onehot) / N
//   mse_onehot             a outputs, d = a - onehot
//                          loss = 0.5 sum d^2 / N,  grad = d / N
// correct = #{n : the first maximum of row n is at its label}.
// Thread t takes rows t, t + THREADS, ...; the block then adds its per-thread sums with the
// fixed tree of block_sum, so the result is the same on every run. The count is summed as a
// float: exact below 2^24 rows.
#include "common.cuh"

__device__ inline int first_argmax(const float* row, int K)
{
    int arg = 0;
    for (int k = 1; k < K; ++k)
        if (row[k] > row[arg]) arg = k;
    return arg;
}

extern "C" __global__ void softmax_cross_entropy(const float* __restrict__ z,
                                                 const long long* __restrict__ labels, int N, int K,
                                                 float* __restrict__ grad, float* __restrict__ loss,
                                                 int* __restrict__ correct)
{
    float acc[2] = {0.0f, 0.0f};    // loss sum, correct count
    for (int n = threadIdx.x; n < N; n += THREADS) {
        const float* zn = z + n * K;
        const int label = (int)labels[n];
        const int arg = first_argmax(zn, K);
        const float m = zn[arg];
        float s = 0.0f;
        for (int k = 0; k < K; ++k) s += expf(zn[k] - m);
        acc[0] += logf(s) - (zn[label] - m);
        acc[1] += arg == label ? 1.0f : 0.0f;
        for (int k = 0; k < K; ++k)
            grad[n * K + k] = (expf(zn[k] - m) / s - (k == label ? 1.0f : 0.0f)) / (float)N;
    }
    block_sum<2>(acc);
    if (threadIdx.x == 0) {
        *loss = acc[0] / (float)N;
        *correct = (int)acc[1];
    }
}

extern "C" __global__ void mse_onehot(const float* __restrict__ a,
                                      const long long* __restrict__ labels, int N, int K,
                                      float* __restrict__ grad, float* __restrict__ loss,
                                      int* __restrict__ correct)
{
    float acc[2] = {0.0f, 0.0f};    // sum of squares, correct count
    for (int n = threadIdx.x; n < N; n += THREADS) {
        const float* an = a + n * K;
        const int label = (int)labels[n];
        for (int k = 0; k < K; ++k) {
            const float d = an[k] - (k == label ? 1.0f : 0.0f);
            acc[0] += d * d;
            grad[n * K + k] = d / (float)N;
        }
        acc[1] += first_argmax(an, K) == label ? 1.0f : 0.0f;
    }
    block_sum<2>(acc);
    if (threadIdx.x == 0) {
        *loss = 0.5f * acc[0] / (float)N;
        *correct = (int)acc[1];
    }
}
