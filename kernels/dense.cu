// dense.cu: the matrix products of the dense and RBF layers, float32, row-major.
//
//   C[z, m, n] = sum_{k in chunk z} opA[m, k] opB[k, n]   (+ bias[n] if bias is not null)
//   opA = A (stored M x K) or, with TA, A^T (A stored K x M)
//   opB = B (stored K x N) or, with TB, B^T (B stored N x K)
//
// Dense layer, x (batch, in), W (in, out):
//   y  = x W + b     matmul<false, false>   M = batch, K = in,  N = out, bias b
//   dx = dy W^T      matmul<false, true>    M = batch, K = out, N = in
//   dW = x^T dy      matmul<true, false>    M = in,    K = batch, N = out, split over K
//
// matmul<TA,TB>  one TILE x TILE tile of C per block: thread t computes C[m0 + t / TILE,
//                n0 + t % TILE]. K is walked in steps of TILE through shared memory; a transposed
//                operand is read along its rows (coalesced) and stored transposed in the tile.
//                blockIdx.z is the chunk of K (`chunk` values each): with gridDim.z > 1 each
//                chunk writes its own C[z] and cuda.sum_partials adds them in a fixed order, so
//                a long K (the batch, for dW) is spread over many blocks and the result is the
//                same bits on every run. bias is added only when gridDim.z == 1.
// Not cuBLAS: CuPy cannot capture cuBLAS calls in a CUDA graph (see lenet_gpu/step.py).
#include "common.cuh"

constexpr int TILE = 16;
static_assert(TILE * TILE == THREADS, "matmul maps one thread to each element of a TILE x TILE tile");

template <bool TA, bool TB>
__global__ void matmul(const float* __restrict__ A, const float* __restrict__ B,
                       const float* __restrict__ bias, int M, int N, int K, int chunk,
                       float* __restrict__ C)
{
    __shared__ float As[TILE][TILE + 1];   // As[r][c] = opA[m0 + r, k0 + c]  (+1: no bank conflicts)
    __shared__ float Bs[TILE][TILE + 1];   // Bs[r][c] = opB[k0 + r, n0 + c]
    const int r = threadIdx.x / TILE;
    const int c = threadIdx.x % TILE;      // fastest-varying: consecutive threads, consecutive addresses
    const int m0 = blockIdx.y * TILE;
    const int n0 = blockIdx.x * TILE;
    const int k_begin = blockIdx.z * chunk;
    const int k_end = min(K, k_begin + chunk);

    float acc = 0.0f;
    for (int k0 = k_begin; k0 < k_end; k0 += TILE) {
        if (TA) {   // A stored (K, M): this thread reads A[k0 + r, m0 + c] = opA[m0 + c, k0 + r]
            const int k = k0 + r, m = m0 + c;
            As[c][r] = (k < k_end && m < M) ? A[k * M + m] : 0.0f;
        } else {    // A stored (M, K): reads A[m0 + r, k0 + c]
            const int m = m0 + r, k = k0 + c;
            As[r][c] = (m < M && k < k_end) ? A[m * K + k] : 0.0f;
        }
        if (TB) {   // B stored (N, K): reads B[n0 + r, k0 + c] = opB[k0 + c, n0 + r]
            const int n = n0 + r, k = k0 + c;
            Bs[c][r] = (n < N && k < k_end) ? B[n * K + k] : 0.0f;
        } else {    // B stored (K, N): reads B[k0 + r, n0 + c]
            const int k = k0 + r, n = n0 + c;
            Bs[r][c] = (k < k_end && n < N) ? B[k * N + n] : 0.0f;
        }
        __syncthreads();
        for (int t = 0; t < TILE; ++t) acc += As[r][t] * Bs[t][c];
        __syncthreads();
    }
    const int m = m0 + r, n = n0 + c;
    if (m < M && n < N) {
        if (bias != nullptr) acc += bias[n];
        C[(blockIdx.z * M + m) * N + n] = acc;
    }
}
