/* nn/nn_internal.h — shared inside the nn layer: the CPU backend's kernels. */
#ifndef BF_NN_INTERNAL_H
#define BF_NN_INTERNAL_H

#include "braggflow/nn.h"

/* cpu_kernels.c: fused, one pattern per thread at a time (see the file comment). */
void cpu_conv1d_pool_lrelu_forward(float *out, uint8_t *argmax, const float *inp, const float *w,
                                   const float *b, int B, int C_in, int L_in, int C_out, int K,
                                   int stride, float slope);
void cpu_conv1d_pool_lrelu_backward(float *dinp, float *dw, float *db, const float *dout,
                                    const float *out, const uint8_t *argmax, const float *inp,
                                    const float *w, int B, int C_in, int L_in, int C_out, int K,
                                    int stride, float slope);
void cpu_leaky_relu_inplace(float *x, size_t n, float slope);
void cpu_leaky_relu_mask(float *dout, const float *out, size_t n, float slope);
void cpu_minmax_scale(float *x, int B, int L);

#endif
