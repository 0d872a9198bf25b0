// common.cuh: helpers shared by every kernel file.
//
// LENET_THREADS is the block size of every launch; lenet_gpu/cuda.py defines it (-D) for both
// the runtime build and tools/check_kernels.py, so host and device never disagree.
// Reductions here are deterministic: every thread adds its values in a fixed order, then a
// fixed tree combines the threads. There are no atomics, so two runs give identical bits.
#pragma once

#ifndef LENET_THREADS
#error "LENET_THREADS (the block size) must be defined by the build (see lenet_gpu/cuda.py)"
#endif

constexpr int THREADS = LENET_THREADS;
static_assert((THREADS & (THREADS - 1)) == 0 && THREADS >= 64, "THREADS must be a power of two >= 64");

// Sum NV values over the block with a fixed tree in shared memory. Every thread of the block
// must call it; on return every thread holds the block totals in v.
template <int NV>
__device__ void block_sum(float (&v)[NV])
{
    __shared__ float buf[NV][THREADS];
    const int tid = threadIdx.x;
    for (int q = 0; q < NV; ++q) buf[q][tid] = v[q];
    __syncthreads();
    for (int half = THREADS / 2; half > 0; half >>= 1) {
        if (tid < half)
            for (int q = 0; q < NV; ++q) buf[q][tid] += buf[q][tid + half];
        __syncthreads();
    }
    for (int q = 0; q < NV; ++q) v[q] = buf[q][0];
    __syncthreads();  // buf may be reused by the next call
}

// Per-channel partial sums over a (N, C, HW) array: block (c, s) of S blocks per channel sums
// f(addr, c, acc) over the s-th contiguous chunk of channel c's M = N*HW values, where addr is
// the flat index (n*C + c)*HW + hw of the value. Returns the block totals in acc.
template <int NV, class F>
__device__ void channel_chunk_sum(int N, int C, int HW, int c, int s, int S, float (&acc)[NV], F f)
{
    for (int q = 0; q < NV; ++q) acc[q] = 0.0f;
    const int M = N * HW;
    const int chunk = (M + S - 1) / S;
    const int e_end = min(M, (s + 1) * chunk);
    for (int e = s * chunk + threadIdx.x; e < e_end; e += THREADS) {
        const int n = e / HW;
        const int hw = e - n * HW;
        f((n * C + c) * HW + hw, acc);
    }
    block_sum<NV>(acc);
}

// Sum of partial[s * count + o] over s = 0..S-1, by one warp: lane l adds s = l, l+32, ...,
// then a fixed shuffle tree. Every lane of the warp must call it; lane 0 gets the total.
__device__ inline float warp_sum_partials(const float* partial, int S, int count, int o)
{
    const int lane = threadIdx.x & 31;
    float v = 0.0f;
    for (int s = lane; s < S; s += 32) v += partial[s * count + o];
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;
}
