// pool2d.cu: 2-D average and max pooling, forward and backward, NCHW float32, no padding.
//
//   window (oh, ow) covers x[n, c, oh*stride + i, ow*stride + j], 0 <= i, j < k
//   avg: y = inv_area * sum of the window;  max: y = first maximum in row-major window order
//
// x/dx (N,C,H,W), y/dy (N,C,OH,OW); `arg` (N,C,OH,OW) int32 holds the max's offset i*k + j.
// pool2d_forward_avg / _max  one thread per output element (flat NCHW index).
// pool2d_backward_avg / _max gather: one thread per dx element sums dy over the windows that
//                            contain it (max: only those whose arg points at it), so rows and
//                            columns past the last window get exactly zero. No atomics.
#include "common.cuh"

extern "C" __global__ void pool2d_forward_avg(const float* __restrict__ x, int NC, int H, int W,
                                              int OH, int OW, int k, int stride, float inv_area,
                                              float* __restrict__ y)
{
    const int e = blockIdx.x * THREADS + threadIdx.x;
    if (e >= NC * OH * OW) return;
    const int ow = e % OW;
    const int oh = (e / OW) % OH;
    const int nc = e / (OH * OW);
    const float* win = x + (nc * H + oh * stride) * W + ow * stride;
    float sum = 0.0f;
    for (int i = 0; i < k; ++i)
        for (int j = 0; j < k; ++j) sum += win[i * W + j];
    y[e] = sum * inv_area;
}

extern "C" __global__ void pool2d_forward_max(const float* __restrict__ x, int NC, int H, int W,
                                              int OH, int OW, int k, int stride,
                                              float* __restrict__ y, int* __restrict__ arg)
{
    const int e = blockIdx.x * THREADS + threadIdx.x;
    if (e >= NC * OH * OW) return;
    const int ow = e % OW;
    const int oh = (e / OW) % OH;
    const int nc = e / (OH * OW);
    const float* win = x + (nc * H + oh * stride) * W + ow * stride;
    float best = win[0];
    int best_q = 0;
    for (int i = 0; i < k; ++i)
        for (int j = 0; j < k; ++j) {
            const float v = win[i * W + j];
            if (v > best) { best = v; best_q = i * k + j; }  // strict: the first maximum wins
        }
    y[e] = best;
    arg[e] = best_q;
}

// The windows containing row h are oh = oh_lo..oh_hi with oh*stride <= h < oh*stride + k.
__device__ inline void window_range(int h, int k, int stride, int OH, int& lo, int& hi)
{
    lo = h < k ? 0 : (h - k) / stride + 1;
    hi = min(h / stride, OH - 1);
}

extern "C" __global__ void pool2d_backward_avg(const float* __restrict__ dy, int NC, int H, int W,
                                               int OH, int OW, int k, int stride, float inv_area,
                                               float* __restrict__ dx)
{
    const int e = blockIdx.x * THREADS + threadIdx.x;
    if (e >= NC * H * W) return;
    const int w = e % W;
    const int h = (e / W) % H;
    const int nc = e / (H * W);
    int oh_lo, oh_hi, ow_lo, ow_hi;
    window_range(h, k, stride, OH, oh_lo, oh_hi);
    window_range(w, k, stride, OW, ow_lo, ow_hi);
    const float* g = dy + nc * OH * OW;
    float acc = 0.0f;
    for (int oh = oh_lo; oh <= oh_hi; ++oh)
        for (int ow = ow_lo; ow <= ow_hi; ++ow) acc += g[oh * OW + ow] * inv_area;
    dx[e] = acc;
}

extern "C" __global__ void pool2d_backward_max(const float* __restrict__ dy, const int* __restrict__ arg,
                                               int NC, int H, int W, int OH, int OW, int k, int stride,
                                               float* __restrict__ dx)
{
    const int e = blockIdx.x * THREADS + threadIdx.x;
    if (e >= NC * H * W) return;
    const int w = e % W;
    const int h = (e / W) % H;
    const int nc = e / (H * W);
    int oh_lo, oh_hi, ow_lo, ow_hi;
    window_range(h, k, stride, OH, oh_lo, oh_hi);
    window_range(w, k, stride, OW, ow_lo, ow_hi);
    const int o = nc * OH * OW;
    float acc = 0.0f;
    for (int oh = oh_lo; oh <= oh_hi; ++oh)
        for (int ow = ow_lo; ow <= ow_hi; ++ow)
            if (arg[o + oh * OW + ow] == (h - oh * stride) * k + (w - ow * stride))
                acc += dy[o + oh * OW + ow];
    dx[e] = acc;
}
