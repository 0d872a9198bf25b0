// conv2d.cu: 2-D convolution (cross-correlation), forward and backward, NCHW float32.
//
//   y[n,k,oh,ow] = b[k] + sum_{c,i,j} T[k,c] W[k,c,i,j] x[n, c, oh*stride - pad + i, ow*stride - pad + j]
//
// x (N,C,H,W), W (K,C,KH,KW), b (K,) or null, table T (K,C) bool or null (null: all connected),
// y/dy (N,K,OH,OW). Out-of-range input positions are the zero padding.
// Templates take KH_, KW_ = 5, 5 (LeNet, loops unrolled) or 0, 0 (sizes read from KH, KW).
//
// conv2d_forward<KH_,KW_,KT>   one thread per output position p = (n,oh,ow) and KT consecutive
//                              output channels k0 = blockIdx.y*KT ...; each x value it loads
//                              feeds KT accumulators. W addresses are the same for the whole
//                              block (broadcast loads). An input channel that no k of the block
//                              uses (table) is skipped.
// conv2d_backward_data<KH_,KW_> gather: one thread per dx[n,c,h,w] (c = blockIdx.y) sums
//                              W[k,c,i,j] dy[n,k,oh,ow] over the (oh,ow) whose window covers (h,w).
// conv2d_backward_weights<KH_,KW_>  block (kc = k*C + c, s): thread-private sums of dy * x
//                              over a strided share of the s-th chunk of the N*OH*OW positions,
//                              then a fixed tree over the block -> partial[s][k][c][i][j]; the
//                              last of kc's S blocks to finish adds the S partials of each
//                              (i, j) in a fixed order (one warp each) -> dW[k][c][i][j].
// conv2d_backward_bias         block (k, s): partial[s][k] = sum of dy[:,k] over chunk s; the
//                              last of k's blocks adds them -> db[k] (also the dense layers').
// sum_partials                 out[o] = sum_s partial[s][o] in a fixed order (one warp per o),
//                              for split reductions done in two launches (dense.cu's split K).
// Both gradients are therefore bit-identical from run to run (last_block_to_arrive in
// common.cuh: no float atomics).
#include "common.cuh"

template <int KH_, int KW_, int KT>
__global__ void conv2d_forward(const float* __restrict__ x, const float* __restrict__ Wt,
                               const float* __restrict__ b, const bool* __restrict__ table,
                               int N, int C, int H, int W, int K, int OH, int OW,
                               int KH, int KW, int stride, int pad, float* __restrict__ y)
{
    const int kh = KH_ > 0 ? KH_ : KH;
    const int kw = KW_ > 0 ? KW_ : KW;
    const int OHW = OH * OW;
    const int p = blockIdx.x * THREADS + threadIdx.x;
    if (p >= N * OHW) return;
    const int n = p / OHW;
    const int oh = (p - n * OHW) / OW;
    const int ow = p - n * OHW - oh * OW;
    const int k0 = blockIdx.y * KT;
    const int ih0 = oh * stride - pad;
    const int iw0 = ow * stride - pad;

    float acc[KT];
    for (int t = 0; t < KT; ++t) acc[t] = 0.0f;

    for (int c = 0; c < C; ++c) {
        bool used[KT];
        bool any = false;
        for (int t = 0; t < KT; ++t) {
            const int k = k0 + t;
            used[t] = k < K && (table == nullptr || table[k * C + c]);
            any = any || used[t];
        }
        if (!any) continue;  // the same for the whole block: absent connections cost nothing
        const float* xc = x + (n * C + c) * H * W;
        const float* wc = Wt + (k0 * C + c) * kh * kw;  // W[k0, c, 0, 0]; W[k0+t] is t*C*kh*kw further
        for (int i = 0; i < kh; ++i) {
            const int ih = ih0 + i;
            if (ih < 0 || ih >= H) continue;
            for (int j = 0; j < kw; ++j) {
                const int iw = iw0 + j;
                if (iw < 0 || iw >= W) continue;
                const float xv = xc[ih * W + iw];
                for (int t = 0; t < KT; ++t)
                    if (used[t]) acc[t] += xv * wc[t * C * kh * kw + i * kw + j];
            }
        }
    }
    for (int t = 0; t < KT; ++t) {
        const int k = k0 + t;
        if (k < K) y[(n * K + k) * OHW + oh * OW + ow] = acc[t] + (b != nullptr ? b[k] : 0.0f);
    }
}

template <int KH_, int KW_>
__global__ void conv2d_backward_data(const float* __restrict__ dy, const float* __restrict__ Wt,
                                     const bool* __restrict__ table,
                                     int N, int C, int H, int W, int K, int OH, int OW,
                                     int KH, int KW, int stride, int pad, float* __restrict__ dx)
{
    const int kh = KH_ > 0 ? KH_ : KH;
    const int kw = KW_ > 0 ? KW_ : KW;
    const int HW = H * W;
    const int e = blockIdx.x * THREADS + threadIdx.x;  // (n, h, w) for channel c
    if (e >= N * HW) return;
    const int c = blockIdx.y;
    const int n = e / HW;
    const int h = (e - n * HW) / W;
    const int w = e - n * HW - h * W;
    const int OHW = OH * OW;

    // Output (oh, ow) reads input (oh*stride - pad + i, ow*stride - pad + j), so (h, w) gets
    // dy[oh, ow] W[i, j] for every i with (h + pad - i) = oh*stride, 0 <= oh < OH (same for j).
    float acc = 0.0f;
    for (int i = 0; i < kh; ++i) {
        const int th = h + pad - i;
        if (th < 0) break;  // th only decreases with i
        if (th % stride != 0) continue;
        const int oh = th / stride;
        if (oh >= OH) continue;
        for (int j = 0; j < kw; ++j) {
            const int tw = w + pad - j;
            if (tw < 0) break;
            if (tw % stride != 0) continue;
            const int ow = tw / stride;
            if (ow >= OW) continue;
            const float* g = dy + n * K * OHW + oh * OW + ow;   // dy[n, k, oh, ow] = g[k*OHW]
            const float* wij = Wt + c * kh * kw + i * kw + j;   // W[k, c, i, j] = wij[k*C*kh*kw]
            for (int k = 0; k < K; ++k) {
                if (table != nullptr && !table[k * C + c]) continue;
                acc += wij[k * C * kh * kw] * g[k * OHW];
            }
        }
    }
    dx[(n * C + c) * HW + h * W + w] = acc;
}

template <int KH_, int KW_>
__global__ void conv2d_backward_weights(const float* __restrict__ x, const float* __restrict__ dy,
                                        const bool* __restrict__ table,
                                        int N, int C, int H, int W, int K, int OH, int OW,
                                        int KH, int KW, int stride, int pad, int S,
                                        float* partial, int* counter, float* __restrict__ dW)
{
    const int kh = KH_ > 0 ? KH_ : KH;
    const int kw = KW_ > 0 ? KW_ : KW;
    constexpr int QB = KH_ > 0 ? KH_ * KW_ : 8;  // kernel offsets q = i*kw + j summed per pass
    const int Q = kh * kw;
    const int kc = blockIdx.x;                    // = k*C + c
    const int k = kc / C;
    const int c = kc - k * C;
    const int s = blockIdx.y;
    float* out = partial + (s * K * C + kc) * Q;  // partial[s, k, c, :, :]
    if (table != nullptr && !table[kc]) {         // absent connection: zero gradient, no work
        if (s == 0)
            for (int q = threadIdx.x; q < Q; q += THREADS) dW[kc * Q + q] = 0.0f;
        return;
    }
    const int OHW = OH * OW;
    const int R = N * OHW;
    const int chunk = (R + S - 1) / S;
    const int r_end = min(R, (s + 1) * chunk);

    for (int q0 = 0; q0 < Q; q0 += QB) {
        float acc[QB];
        for (int t = 0; t < QB; ++t) acc[t] = 0.0f;
        for (int r = s * chunk + threadIdx.x; r < r_end; r += THREADS) {
            const int n = r / OHW;
            const int oh = (r - n * OHW) / OW;
            const int ow = r - n * OHW - oh * OW;
            const float g = dy[(n * K + k) * OHW + oh * OW + ow];
            const float* xc = x + (n * C + c) * H * W;
            const int ih0 = oh * stride - pad;
            const int iw0 = ow * stride - pad;
            for (int t = 0; t < QB; ++t) {
                const int q = q0 + t;
                if (q >= Q) break;
                const int ih = ih0 + q / kw;
                const int iw = iw0 + q % kw;
                if (ih >= 0 && ih < H && iw >= 0 && iw < W) acc[t] += g * xc[ih * W + iw];
            }
        }
        block_sum<QB>(acc);
        if (threadIdx.x == 0)
            for (int t = 0; t < QB && q0 + t < Q; ++t) out[q0 + t] = acc[t];
    }
    if (!last_block_to_arrive(counter + kc, S)) return;
    const int lane = threadIdx.x & 31;
    for (int q = threadIdx.x / 32; q < Q; q += THREADS / 32) {   // one warp per (i, j)
        const float total = warp_sum_partials(partial, S, K * C * Q, kc * Q + q);
        if (lane == 0) dW[kc * Q + q] = total;
    }
}

extern "C" __global__ void conv2d_backward_bias(const float* __restrict__ dy, int N, int K, int OHW,
                                                int S, float* partial, int* counter,
                                                float* __restrict__ db)
{
    const int k = blockIdx.x;
    const int s = blockIdx.y;
    float acc[1];
    channel_chunk_sum<1>(N, K, OHW, k, s, S, acc, [&](int addr, float (&a)[1]) { a[0] += dy[addr]; });
    if (threadIdx.x == 0) partial[s * K + k] = acc[0];
    if (!last_block_to_arrive(counter + k, S) || threadIdx.x >= 32) return;
    const float total = warp_sum_partials(partial, S, K, k);
    if (threadIdx.x == 0) db[k] = total;
}

extern "C" __global__ void sum_partials(const float* __restrict__ partial, int S, int count,
                                        float* __restrict__ out)
{
    const int o = (blockIdx.x * THREADS + threadIdx.x) / 32;  // one warp per output
    if (o >= count) return;                                   // whole warps only
    const float total = warp_sum_partials(partial, S, count, o);
    if ((threadIdx.x & 31) == 0) out[o] = total;
}
