/* nn/nn_internal.h — shared inside the nn layer: the CPU backend's kernels. */
#ifndef BF_NN_INTERNAL_H
#define BF_NN_INTERNAL_H

#include "braggflow/nn.h"

/* backend_cpu.c: the memory and optimiser ops of both host-memory backends (cpu,
 * reference): free, upload/download (memmove), zero, clipping and Adam by the reference
 * functions of params.c. */
void host_free(void *p);
bf_status host_transfer(void *dst, const void *src, size_t nbytes, bf_error *err);
bf_status host_zero(void *p, size_t nbytes, bf_error *err);
bf_status host_grad_norm_clip(float *grad, size_t n, double max_norm, double *norm,
                              bf_error *err);
bf_status host_adam_step(bf_adam *opt, float *value, const float *grad, bf_error *err);

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
/* cpu_scratch.c: the calling thread's scratch buffer `slot`, at least n floats, contents
 * undefined, kept for its next call (NULL when it cannot be allocated).
 * CPU_SCRATCH_THREAD is what each thread of a kernel's parallel region uses;
 * CPU_SCRATCH_CALL_A/B what the calling thread takes for the whole call before the
 * region; CPU_SCRATCH_WINOGRAD, _NONLOCAL and _CONV keep what those kernels derive from
 * their weights (cpu_scratch_kept). cpu_scratch_release frees the calling thread's
 * buffers. */
enum { CPU_SCRATCH_THREAD, CPU_SCRATCH_CALL_A, CPU_SCRATCH_CALL_B, CPU_SCRATCH_WINOGRAD,
       CPU_SCRATCH_NONLOCAL, CPU_SCRATCH_CONV, CPU_SCRATCH_SLOTS };
float *cpu_scratch(int slot, size_t n);
void cpu_scratch_release(void);
/* What a kernel derives from its weights w (n_w floats; transposed, transformed), kept in
 * the calling thread's buffer `slot` from one call to the next: inference runs each
 * layer chunk after chunk on the same weights. cpu_scratch_kept returns room for n
 * floats (NULL when out of memory) and *valid = 1 when they hold what the last
 * cpu_scratch_keep there recorded for the same weights (bit for bit, compared with a
 * copy) and the same key (the kernel's shape, unused ints zero), the buffer not reallocated since; the
 * kernel fills them otherwise, then calls cpu_scratch_keep. */
#define CPU_SCRATCH_KEY 6 /* ints of a key */
float *cpu_scratch_kept(int slot, const float *w, size_t n_w, size_t n,
                        const int key[CPU_SCRATCH_KEY], int *valid);
void cpu_scratch_keep(int slot, const float *w, size_t n_w, const int key[CPU_SCRATCH_KEY]);

/* cpu_winograd.c: 3x3 Conv2d + activation by F(4x4, 3x3), where it applies (channel
 * counts in whole vectors of 16). */
int cpu_winograd_applies(int C_in, int H, int W, int C_out, int K);
bf_status cpu_conv2d_forward_winograd(float *out, const float *inp, const float *w,
                                      const float *b, int B, int C_in, int H, int W, int C_out,
                                      float slope, bf_error *err);
/* dinp (B, C_in, Ho + 2, Wo + 2) += the input gradient from dout (B, C_out, Ho, Wo), masked
 * by the activation already (the transposed convolution, by F(4x4, 3x3) too). */
bf_status cpu_conv2d_backward_input_winograd(float *dinp, const float *dout, const float *w,
                                             int B, int C_in, int Ho, int Wo, int C_out,
                                             bf_error *err);
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


/* cpu_gemm.c: C (M, N) = add + bias[row] + op(A) op(B), row-major; add (M, N) with C's
 * row stride, may be C itself (C +=) or NULL, as may bias; A is (M, K) with row stride
 * lda, or (K, M) when trans_a, likewise
 * B (K, N) / (N, K). cpu_gemm uses panel (K x 32 floats of the caller's scratch) for
 * the blocks of B it packs; cpu_gemm_panel takes all of B packed (rows of
 * cpu_gemm_panel_cols(N) floats, padded with zeros). */
int cpu_gemm_panel_cols(int N);
void cpu_gemm_panel(int trans_a, int M, int N, int K, const float *A, int lda, const float *panel,
                    float *C, int ldc, const float *bias, const float *add);
void cpu_gemm(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
              const float *B, int ldb, float *C, int ldc, const float *bias, const float *add,
              float *panel);
/* cpu_gemm with bias[j] added to column j of C instead of per row (and no addend). */
void cpu_gemm_bias_cols(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
                        const float *B, int ldb, float *C, int ldc, const float *bias,
                        float *panel);
/* C (M, N) = A (M, ntaps Kc) B with B's row s Kc + c at B + tap[s] + c ldb (the taps of
 * a convolution over its input image, read in place): every row must be readable for
 * cpu_gemm_panel_cols(N) floats. */
void cpu_gemm_taps(int M, int N, int Kc, int ntaps, const int *tap, const float *A,
                   const float *B, int ldb, float *C, int ldc);

/* backend_cuda.cu (only in builds with BF_HAVE_CUDA): the CUDA backend on device `device`
 * (`name` as the caller spelt it, for messages); BF_ERR_UNSUPPORTED without a device. */
#ifdef BF_HAVE_CUDA
bf_status bf_backend_cuda_get(const char *name, int device, const bf_backend **out,
                              bf_error *err);
#endif

/* model.c: allocates n backend buffers (*bufs[i], sizes[i] bytes, zeroed); on failure
 * frees those already allocated, sets them to NULL and returns the error. */
bf_status bf_model_alloc_buffers(bf_model *m, void **const *bufs, const size_t *sizes, int n,
                                 bf_error *err);
/* BF_ERR_RANGE unless 1 <= B <= the reserved batch (message names the model). */
bf_status bf_model_check_batch(const bf_model *m, int B, bf_error *err);
/* Frees n backend buffers and sets them to NULL. */
void bf_model_free_buffers(bf_model *m, void **const *bufs, int n);

#endif
