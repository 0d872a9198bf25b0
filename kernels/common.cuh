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
// (volatile: in the last block of a split reduction the partials are other blocks' writes of
// this same launch, which must be read from L2, not from a cache.)
__device__ inline float warp_sum_partials(const volatile float* partial, int S, int count, int o)
{
    const int lane = threadIdx.x & 31;
    float v = 0.0f;
    for (int s = lane; s < S; s += 32) v += partial[s * count + o];
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;
}

// A split reduction finished in the same launch. The S blocks that write partial sums for one
// output (counter: that output's arrival count, 0 before the launch) each call this after
// writing theirs; it returns true in every thread of the last block to arrive, which then
// sees every block's partials (read them with warp_sum_partials) and adds them in the same
// fixed order as a second launch would: results stay identical run to run, only which block
// adds them varies. It sets the counter back to 0 for the next launch. Every thread of the
// block must call it. (The pattern of CUDA's threadFenceReduction sample; a float atomicAdd
// would make the sum's order, and so its bits, vary.)
__device__ inline bool last_block_to_arrive(int* counter, int S)
{
    __shared__ bool last;
    __threadfence();          // this block's partials are visible device-wide before it counts
    __syncthreads();
    if (threadIdx.x == 0) {
        last = atomicAdd(counter, 1) == S - 1;
        if (last) *counter = 0;
    }
    __syncthreads();
    return last;
}
