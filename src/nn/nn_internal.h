/* nn/nn_internal.h — shared inside the nn layer: the CPU backend's kernels. */
#ifndef BF_NN_INTERNAL_H
#define BF_NN_INTERNAL_H

#include "braggflow/nn.h"

/* cpu_kernels.c: fused conv1d -> pool -> LeakyReLU, one pattern per thread at a time. */
bf_status cpu_conv1d_pool_lrelu_forward(float *out, uint8_t *argmax, const float *inp,
                                        const float *w, const float *b, int B, int C_in,
                                        int L_in, int C_out, int K, int stride, float slope,
                                        bf_error *err);
bf_status cpu_conv1d_pool_lrelu_backward(float *dinp, float *dw, float *db, const float *dout,
                                         const float *out, const uint8_t *argmax,
                                         const float *inp, const float *w, int B, int C_in,
                                         int L_in, int C_out, int K, int stride, float slope,
                                         bf_error *err);
void cpu_leaky_relu_inplace(float *x, size_t n, float slope);
void cpu_leaky_relu_mask(float *dout, const float *out, size_t n, float slope);

/* cpu_kernels2d.c: BraggNN's Conv2d (+ LeakyReLU) and non-local block, one sample per
 * thread at a time. Signatures as the bf_backend ops. */
bf_status cpu_conv2d_forward(float *out, const float *inp, const float *w, const float *b, int B,
                             int C_in, int H, int W, int C_out, int K, float slope, bf_error *err);
bf_status cpu_conv2d_backward(float *dinp, float *dw, float *db, float *dout, const float *out,
                              const float *inp, const float *w, int B, int C_in, int H, int W,
                              int C_out, int K, float slope, bf_error *err);
bf_status cpu_nonlocal_forward(float *out, float *ws, const float *x, const float *w, int B,
                               int C, int Ci, int N, float slope, bf_error *err);
bf_status cpu_nonlocal_backward(float *dx, float *dw, float *dout, const float *out,
                                const float *ws, const float *x, const float *w, int B, int C,
                                int Ci, int N, float slope, bf_error *err);


/* model.c: allocates n backend buffers (*bufs[i], sizes[i] bytes, zeroed); on failure
 * frees those already allocated, sets them to NULL and returns the error. */
bf_status bf_model_alloc_buffers(bf_model *m, void **const *bufs, const size_t *sizes, int n,
                                 bf_error *err);
/* Frees n backend buffers and sets them to NULL. */
void bf_model_free_buffers(bf_model *m, void **const *bufs, int n);

#endif
