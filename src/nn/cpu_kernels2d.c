/* nn/cpu_kernels2d.c — the CPU backend's 2-D kernels (BraggNN, DESIGN §7): Conv2d
 * (stride 1, no padding) with a fused LeakyReLU, and the non-local block.
 *
 * One sample per thread at a time: a BraggNN sample's activations (64 x 9 x 9
 * floats, the 81 x 81 attention) fit in L1/L2, so each thread runs the whole op
 * on its sample with the register-blocked products of cpu_gemm.c and per-thread
 * scratch. Weight gradients are
 * summed per thread and added in thread order: the same bits for the same thread
 * count. The reference backend (backend_ref.c) is the specification these are
 * tested against (tests/nn/test_backends.c). */
#include "nn/cpu_simd.h"
#include "nn/nn_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* col (C K K, Ho Wo), rows ld apart: row (c, ky, kx) holds x[c][oy + ky][ox + kx] for
 * every output; with ld = cpu_gemm_panel_cols(Ho Wo) and zeroed tails it is the packed
 * B panel of the convolution's product. */
BF_CLONES static void im2col(float *restrict col, int ld, const float *restrict x, int C, int H,
                             int W, int K)
{
    int Ho = H - K + 1, Wo = W - K + 1, nv = (Wo + VL - 1) / VL; /* vectors a row */
    long n_x = (long)C * H * W;
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                float *dst = col + ((size_t)(c * K + ky) * K + kx) * ld;
                long at = (long)c * H * W + (long)ky * W + kx; /* of the row's source */
                const float *src = x + at;
                /* a row of Wo <= 2 VL floats as whole vectors: the lanes past Wo land in
                 * the next row (written next) or the block's padding, whose products are
                 * never stored (the GEMM stores P columns); for the rows oy < whole, the
                 * vectors stay inside x and col's row (both bounds hoisted out of the
                 * loop: tested per row, a microbenchmark's copy took three times as
                 * long) */
                int whole = 0;
                if (nv <= 2) {
                    long by_x = (n_x - at - nv * VL) / W + 1, by_col = (ld - nv * VL) / Wo + 1;
                    whole = n_x - at < nv * VL || ld < nv * VL ? 0 : Ho;
                    whole = by_x < whole ? (int)by_x : whole;
                    whole = by_col < whole ? (int)by_col : whole;
                }
                int oy = 0;
                if (nv == 1)
                    for (; oy < whole; oy++)
                        vstore(dst + (size_t)oy * Wo, vload(src + (size_t)oy * W));
                else
                    for (; oy < whole; oy++) {
                        vstore(dst + (size_t)oy * Wo, vload(src + (size_t)oy * W));
                        vstore(dst + (size_t)oy * Wo + VL, vload(src + (size_t)oy * W + VL));
                    }
                for (; oy < Ho; oy++)
                    for (int ox = 0; ox < Wo; ox++)
                        dst[(size_t)oy * Wo + ox] = src[(size_t)oy * W + ox];
            }
}

/* dx += the columns' contributions (the adjoint of im2col). col rows hold Ho image rows
 * of rs floats each (rs >= Wo); with rs = VL and zeros past Wo a row is added as one
 * vector (adding those zeros to the pixels past it changes nothing).
 *
 * Where an input row fits in a vector (W <= VL = rs), each input row is summed in a
 * register from the K K rows of col that reach it, each loaded shifted by its kx (the
 * lanes it shifts in are the zeros past Wo of its own or the previous segment), and
 * stored once: added tap by tap, every add read the vector the previous tap had just
 * stored one lane over, a store-forwarding stall each (conv3's input gradient spent
 * 7 us a sample here, two fifths of its backward). */
BF_CLONES static void col2im_add(float *restrict dx, const float *restrict col, int rs, int C,
                                 int H, int W, int K)
{
    int Ho = H - K + 1, Wo = W - K + 1;
    const float *end = dx + (size_t)C * H * W;
    if (rs == VL && W <= VL) {
        for (int c = 0; c < C; c++)
            for (int iy = 0; iy < H; iy++) {
                float *d_ = dx + ((size_t)c * H + iy) * W;
                int whole = d_ + VL <= end; /* else the lanes past W are past dx */
                vf acc = vsplat(0);
                for (int ky = 0; ky < K; ky++) {
                    int oy = iy - ky;
                    if (oy < 0 || oy >= Ho)
                        continue;
                    for (int kx = 0; kx < K; kx++) /* lane ix gets col's ix - kx */
                        acc += vload(col + ((size_t)(c * K + ky) * K + kx) * Ho * rs +
                                     (size_t)oy * rs - kx);
                }
                if (whole) /* lanes past W add zeros to the next row's first pixels */
                    vstore(d_, vload(d_) + acc);
                else
                    for (int ix = 0; ix < W; ix++)
                        d_[ix] += acc[ix];
            }
        return;
    }
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                const float *src = col + ((size_t)(c * K + ky) * K + kx) * Ho * rs;
                float *dst = dx + (size_t)c * H * W + (size_t)ky * W + kx;
                for (int oy = 0; oy < Ho; oy++) {
                    const float *s_ = src + (size_t)oy * rs;
                    float *d_ = dst + (size_t)oy * W;
                    if (rs == VL && d_ + VL <= end)
                        vstore(d_, vload(d_) + vload(s_));
                    else
                        for (int ox = 0; ox < Wo; ox++)
                            d_[ox] += s_[ox];
                }
            }
}

/* The fused activation and its derivative on one sample's block. (cpu_kernels.c's
 * cpu_leaky_relu_inplace/mask do the same on whole batches but open an OpenMP region
 * each call; these run inside the per-sample loop's.) */
BF_CLONES static void activate(float *x, size_t n, float slope)
{
    if (slope >= 0)
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] > 0 ? x[i] : slope * x[i];
}

BF_CLONES static void mask(float *dout, const float *out, size_t n, float slope)
{
    if (slope >= 0)
        for (size_t i = 0; i < n; i++)
            dout[i] = out[i] > 0 ? dout[i] : slope * dout[i];
}

/* db[o] += sum of row o of d (rows, cols): VL partial sums per row, added in a fixed
 * order (one serial chain of scalar adds was bound by the adder's latency). */
BF_CLONES static void add_row_sums(float *db, const float *d, int rows, int cols)
{
    for (int o = 0; o < rows; o++) {
        const float *r = d + (size_t)o * cols;
        vf acc = vsplat(0);
        int i = 0;
        for (; i + VL <= cols; i += VL)
            acc += vload(r + i);
        float s = 0;
        for (int l = 0; l < VL; l++)
            s += acc[l];
        for (; i < cols; i++)
            s += r[i];
        db[o] += s;
    }
}

/* Per-thread gradient accumulators (stride floats per thread), summed into dst in
 * thread order: dst[i] += acc[t stride + offset + i] for i < count. */
static void reduce_threads(float *dst, const float *acc, int threads, size_t stride, size_t count,
                           size_t offset)
{
    for (int t = 0; t < threads; t++)
        for (size_t i = 0; i < count; i++)
            dst[i] += acc[(size_t)t * stride + offset + i];
}

/* ---- Conv2d ------------------------------------------------------------------------- */

/* The wide-grid convolution computes the outputs on a grid of Ho rows of W (not Wo)
 * positions: output q = oy W + ox needs x[c][q + ky W + kx], so for each tap (ky, kx)
 * the product's B rows are the input channels themselves, shifted, and no im2col copy
 * is made (for conv2 of BraggNN im2col wrote 147 KB per sample, more than L1, and took
 * a quarter of the op). The W - Wo extra columns per row are computed and dropped; it
 * is used where they cost no extra column block of the product (a 9x9 input: 63 -> 64
 * columns as 49 -> 64; not 11x11, 99 -> 128 against 81 -> 96). BraggNN's conv2 itself
 * goes by Winograd (cpu_winograd.c), which does fewer than half the multiply-adds. */
static int wide_grid_pays(int H, int W, int K)
{
    int Ho = H - K + 1, Wo = W - K + 1;
    return cpu_gemm_panel_cols(Ho * W) == cpu_gemm_panel_cols(Ho * Wo);
}

/* out (C_out, Ho, Wo) = act(wide (C_out, Ho x W, rows ldw apart) + b), dropping the
 * columns ox >= Wo. In vectors of VL: a row's last vector may spill into the rows after
 * it, which are written later (not past the sample's end); wide must be readable VL
 * floats past its last row. (A scalar loop here branched on the sign of each output and
 * mispredicted half of them: it cost as much as the product.) */
BF_CLONES static void wide_to_out(float *restrict out, const float *restrict wide, int ldw,
                                  const float *restrict b, int C_out, int Ho, int Wo, int W,
                                  float slope)
{
    vf zero = vsplat(0), vs = vsplat(slope);
    size_t n_out = (size_t)C_out * Ho * Wo;
    for (int o = 0; o < C_out; o++) {
        vf bo = vsplat(b ? b[o] : 0.0f);
        for (int oy = 0; oy < Ho; oy++) {
            const float *src = wide + (size_t)o * ldw + (size_t)oy * W;
            size_t at = ((size_t)o * Ho + oy) * Wo; /* of the sample's n_out outputs */
            for (int ox = 0; ox < Wo; ox += VL) {
                vf v = vload(src + ox) + bo;
                if (slope >= 0)
                    v = vselect(v > zero, v, v * vs);
                if (ox + VL <= Wo || at + ox + VL <= n_out)
                    vstore(out + at + ox, v);
                else
                    for (int l = 0; ox + l < Wo; l++)
                        out[at + ox + l] = v[l];
            }
        }
    }
}

/* Direct multiply-adds for convolutions the products serve badly, VW outputs at a
 * time, each input vector loaded once and used by a block of output channels, bias and
 * activation on the way out: out (C_out, P outputs, rows ldo >= P apart) = act(w (C_out,
 * T) X + b), X's row t the P floats from src + off[t] (readable for P rounded up to a
 * vector). Two uses: few taps (C_in K K <= DIRECT_TAPS, BraggNN's first convolution, one
 * input channel), X = the im2col rows (as a product it had K = 9, and the tiles spent
 * longer loading and storing their accumulators than multiplying: 7 % of BraggNN's
 * inference for 2 % of its work); and few output channels (C_out <= DIRECT_OUTPUTS,
 * BraggNN's third, 32 -> 8 channels on 7x7), X = the input itself on the wide grid (its
 * 35 columns in three vectors, where the product's blocks of 32 computed 64, and
 * im2col, 288 rows of 5-float runs, took twice the multiply-adds' time). */
#define DIRECT_TAPS 16
#define DIRECT_OUTPUTS 16

/* Channels [o0, o0 + nb) at the nq vectors of outputs from q0 (nb, nq constants where
 * they can be: the chains then unroll without per-lane tests), stored from the last
 * vector to the first. */
#define DIRECT_TILE(nb, nq)                                                               \
    do {                                                                                  \
        vfw acc[QB][OB];                                                                  \
        for (int j = 0; j < (nq); j++)                                                    \
            for (int r = 0; r < (nb); r++)                                                \
                acc[j][r] = zero + (b ? b[o0 + r] : 0.0f);                                \
        for (int t = 0; t < T; t++) {                                                     \
            const float *x_ = src + off[t] + q0;                                          \
            vfw xv[QB];                                                                   \
            for (int j = 0; j < (nq); j++)                                                \
                xv[j] = vwload(x_ + j * VW);                                              \
            for (int r = 0; r < (nb); r++) {                                              \
                float wr = w[(size_t)(o0 + r) * T + t];                                   \
                for (int j = 0; j < (nq); j++)                                            \
                    acc[j][r] += xv[j] * wr;                                              \
            }                                                                             \
        }                                                                                 \
        for (int j = (nq) - 1; j >= 0; j--)                                               \
            for (int r = 0; r < (nb); r++) {                                              \
                int q = q0 + j * VW;                                                      \
                vfw v = acc[j][r];                                                        \
                if (slope >= 0)                                                           \
                    v = vwselect(v > zero, v, v * vs);                                    \
                float *dst = out + (size_t)(o0 + r) * ldo + q;                            \
                if (q + VW <= ldo || o0 + r + 1 < C_out)                                  \
                    vwstore(dst, v);                                                      \
                else                                                                      \
                    for (int l = 0; q + l < P; l++)                                       \
                        dst[l] = v[l];                                                    \
            }                                                                             \
    } while (0)

/* All the vectors of channels [o0, o0 + nb): the last nvec mod QB first, then QB at a
 * time, down to the first. */
#define DIRECT_CHANNELS(nb)                                                               \
    do {                                                                                  \
        int nv_ = (P + VW - 1) / VW, q0;                                                  \
        if (nv_ % QB == 1) {                                                              \
            q0 = (nv_ -= 1) * VW;                                                         \
            DIRECT_TILE(nb, 1);                                                           \
        } else if (nv_ % QB == 2) {                                                       \
            q0 = (nv_ -= 2) * VW;                                                         \
            DIRECT_TILE(nb, 2);                                                           \
        }                                                                                 \
        while (nv_ > 0) {                                                                 \
            q0 = (nv_ -= QB) * VW;                                                        \
            DIRECT_TILE(nb, QB);                                                          \
        }                                                                                 \
    } while (0)

/* A channel's last vector may spill past its row into the next channel's first
 * outputs: the vectors go from the last to the first, so those are written afterwards;
 * the very last channel's spill, past the sample, is stored lane by lane. */
BF_CLONES static void direct_conv(float *restrict out, int ldo, const float *restrict src,
                                  const int *restrict off, int T, const float *restrict w,
                                  const float *restrict b, int C_out, int P, float slope)
{
    /* OB output channels by QB vectors of outputs at once: 24 independent chains, each
     * input vector used OB times and each weight QB times (one vector at a time, the
     * weights' broadcasts outnumbered the multiply-adds' loads: direct_conv ran at half
     * the multiply-add rate) */
    enum { OB = 8, QB = 3 };
    vfw zero = {}, vs = zero + (slope >= 0 ? slope : 1.0f);
    int o0 = 0;
    for (; o0 + OB <= C_out; o0 += OB)
        DIRECT_CHANNELS(OB);
    if (o0 < C_out) {
        int ob = C_out - o0;
        DIRECT_CHANNELS(ob);
    }
}

static bf_status conv2d_forward_wide(float *out, const float *inp, const float *w,
                                     const float *b, int B, int C_in, int H, int W, int C_out,
                                     int K, float slope, bf_error *err)
{
    int Ho = H - K + 1, Wo = W - K + 1, KK = K * K, T = C_in * KK, Nw = Ho * W;
    int Np = cpu_gemm_panel_cols(Nw);
    size_t HW = (size_t)H * W, in_n = (size_t)C_in * HW;
    int direct = C_out <= DIRECT_OUTPUTS;
    /* the last tap's rows are read for Np columns: past the sample's end by `over`
     * floats, which is the next sample's data but past the buffer for the last one */
    size_t reach = (size_t)(C_in - 1) * HW + (size_t)(K - 1) * W + (K - 1) + Np;
    size_t over = reach > in_n ? reach - in_n : 0;
    /* A (C_out, KK C_in): w reordered tap-major, k = (ky K + kx) C_in + c; kept between
     * calls (cpu_scratch_kept: reordered per call it took ~2 us) */
    size_t n_w = (size_t)C_out * T;
    const int key[CPU_SCRATCH_KEY] = {C_in, H, W, C_out, K};
    int valid;
    float *wt = cpu_scratch_kept(CPU_SCRATCH_CONV, w, n_w, n_w + 2 * (size_t)T, key, &valid);
    if (!wt)
        return bf_error_set(err, BF_ERR_NOMEM, "conv2d: out of memory for the weights");
    /* in the 2 T floats after: the KK taps' offsets, then (direct) every row's, k's */
    int *tap = (int *)(wt + n_w), *off = tap + KK;
    if (!valid) {
        for (int o = 0; o < C_out; o++)
            for (int c = 0; c < C_in; c++)
                for (int t = 0; t < KK; t++)
                    wt[(size_t)o * T + (size_t)t * C_in + c] =
                        w[(size_t)o * T + (size_t)c * KK + t];
        for (int t = 0; t < KK; t++)
            tap[t] = t / K * W + t % K;
        for (int k = 0; direct && k < T; k++)
            off[k] = tap[k / C_in] + k % C_in * (int)HW;
        cpu_scratch_keep(CPU_SCRATCH_CONV, w, n_w, key);
    }
    size_t n_wide = (size_t)C_out * Np + VL; /* wide_to_out reads a vector past it */
    size_t n_scratch = n_wide + (over ? in_n + over : 0);
    int failed = 0;
#pragma omp parallel
    {
        float *wide = cpu_scratch(CPU_SCRATCH_THREAD, n_scratch);
        float *copy = wide ? wide + n_wide : NULL;
        if (wide) /* the copy's tail stays zero */
            memset(wide, 0, sizeof(float) * n_scratch);
        if (!wide) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int n = 0; n < B; n++) {
            if (!wide)
                continue; /* reported below: the whole call fails */
            const float *x = inp + (size_t)n * in_n;
            if (over && n == B - 1) {
                memcpy(copy, x, sizeof(float) * in_n);
                x = copy;
            }
            if (direct)
                direct_conv(wide, Np, x, off, T, wt, NULL, C_out, Nw, -1.0f);
            else
                cpu_gemm_taps(C_out, Nw, C_in, KK, tap, wt, x, (int)HW, wide, Np);
            wide_to_out(out + (size_t)n * C_out * Ho * Wo, wide, Np, b, C_out, Ho, Wo, W, slope);
        }
    }
    if (failed)
        return bf_error_set(err, BF_ERR_NOMEM, "conv2d: %zu bytes of scratch per thread",
                            sizeof(float) * n_scratch);
    return BF_OK;
}

bf_status cpu_conv2d_forward(float *out, const float *inp, const float *w, const float *b, int B,
                             int C_in, int H, int W, int C_out, int K, float slope, bf_error *err)
{
    if (cpu_winograd_applies(C_in, H, W, C_out, K))
        return cpu_conv2d_forward_winograd(out, inp, w, b, B, C_in, H, W, C_out, slope, err);
    if ((wide_grid_pays(H, W, K) || C_out <= DIRECT_OUTPUTS) && C_in * K * K > DIRECT_TAPS)
        return conv2d_forward_wide(out, inp, w, b, B, C_in, H, W, C_out, K, slope, err);
    /* im2col, then few taps directly, more as a product (Pp is a multiple of VW) */
    int Ho = H - K + 1, Wo = W - K + 1, T = C_in * K * K, P = Ho * Wo;
    int Pp = cpu_gemm_panel_cols(P), direct = T <= DIRECT_TAPS;
    int off[DIRECT_TAPS]; /* direct: the im2col rows */
    for (int t = 0; direct && t < T; t++)
        off[t] = t * Pp;
    int failed = 0;
#pragma omp parallel
    {
        float *col = cpu_scratch(CPU_SCRATCH_THREAD, (size_t)T * Pp);
        if (col) /* tails stay zero */
            memset(col, 0, sizeof(float) * (size_t)T * Pp);
        if (!col) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int n = 0; n < B; n++) {
            if (!col)
                continue; /* reported below: the whole call fails */
            float *o = out + (size_t)n * C_out * P;
            im2col(col, Pp, inp + (size_t)n * C_in * H * W, C_in, H, W, K);
            if (direct) {
                direct_conv(o, P, col, off, T, w, b, C_out, P, slope);
                continue;
            }
            cpu_gemm_panel(0, C_out, P, T, w, T, col, o, P, b, NULL);
            activate(o, (size_t)C_out * P, slope);
        }
    }
    if (failed)
        return bf_error_set(err, BF_ERR_NOMEM, "conv2d: %zu bytes of scratch per thread",
                            sizeof(float) * (size_t)T * Pp);
    return BF_OK;
}

bf_status cpu_conv2d_backward(float *dinp, float *dw, float *db, float *dout, const float *out,
                              const float *inp, const float *w, int B, int C_in, int H, int W,
                              int C_out, int K, float slope, bf_error *err)
{
    int Ho = H - K + 1, Wo = W - K + 1, T = C_in * K * K, P = Ho * Wo;
    int Pp = cpu_gemm_panel_cols(P);
    /* the input gradient is itself a 3x3 convolution (of dout padded by 2, the filters
     * flipped): by Winograd after the loop below where the channels allow */
    int dinp_winograd = dinp && cpu_winograd_applies(C_out, Ho, Wo, C_in, K);
    /* dcol's image rows padded to a vector (zeros past Wo) when they fit in one */
    int rs = Wo <= VL ? VL : Wo, Pr = Ho * rs;
    /* per thread: col (T x Pp), d with padded rows (C_out x Pr), dcol (T x Pr) (these two
     * not for Winograd's input gradient), a panel of K x 32 (K = P or C_out) */
    size_t n_col = (size_t)T * Pp, n_dpad = dinp_winograd ? 0 : (size_t)C_out * Pr;
    size_t n_dcol = dinp_winograd ? 0 : (size_t)T * Pr;
    size_t n_panel = (size_t)(P > C_out ? P : C_out) * cpu_gemm_panel_cols(1);
    size_t n_scratch = n_col + n_dpad + n_dcol + n_panel;
    int threads = omp_get_max_threads();
    /* per thread: dw, then db; dw transposed (T x C_out) unless C_out is short of a
     * column block: then as it is, (C_out, T), so that the product's columns are T (conv3,
     * 8 channels: its 8 columns padded to 32 cost four times the multiply-adds) */
    int dw_rows = C_out < cpu_gemm_panel_cols(1);
    size_t nw = (size_t)T * C_out + (size_t)C_out;
    float *acc = cpu_scratch(CPU_SCRATCH_CALL_A, (size_t)threads * nw);
    if (!acc)
        return bf_error_set(err, BF_ERR_NOMEM, "conv2d backward: out of memory");
    memset(acc, 0, sizeof(float) * (size_t)threads * nw);
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        float *tdwT = acc + (size_t)omp_get_thread_num() * nw, *tdb = tdwT + (size_t)T * C_out;
        float *col = cpu_scratch(CPU_SCRATCH_THREAD, n_scratch);
        if (col) /* padding stays zero */
            memset(col, 0, sizeof(float) * n_scratch);
        float *dpad = col ? col + n_col : NULL, *dcol = col ? dpad + n_dpad : NULL;
        float *panel = col ? dcol + n_dcol : NULL;
        if (!col) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int n = 0; n < B; n++) {
            if (!col)
                continue;
            float *d = dout + (size_t)n * C_out * P;
            mask(d, out + (size_t)n * C_out * P, (size_t)C_out * P, slope);
            add_row_sums(tdb, d, C_out, P);
            im2col(col, Pp, inp + (size_t)n * C_in * H * W, C_in, H, W, K);
            if (dw_rows) /* dw (C_out, T) += d (C_out, P) col^T (P, T) */
                cpu_gemm(0, 1, C_out, T, P, d, P, col, Pp, tdwT, T, NULL, tdwT, panel);
            else /* dw^T (T, C_out) += col (T, P) d^T (P, C_out) */
                cpu_gemm(0, 1, T, C_out, P, col, Pp, d, P, tdwT, C_out, NULL, tdwT, panel);
            if (dinp && !dinp_winograd) { /* dcol (T, Pr) = w^T (T, C_out) d (C_out, Pr) */
                for (int co = 0; co < C_out; co++)
                    for (int oy = 0; oy < Ho; oy++)
                        memcpy(dpad + (size_t)co * Pr + (size_t)oy * rs,
                               d + (size_t)co * P + (size_t)oy * Wo, sizeof(float) * Wo);
                cpu_gemm(1, 0, T, Pr, C_out, w, T, dpad, Pr, dcol, Pr, NULL, NULL, panel);
                col2im_add(dinp + (size_t)n * C_in * H * W, dcol, rs, C_in, H, W, K);
            }
        }
    }
    if (!failed && dw && dw_rows)
        reduce_threads(dw, acc, threads, nw, (size_t)C_out * T, 0);
    else if (!failed && dw) /* transposed back, threads in order */
        for (int t = 0; t < threads; t++)
            for (int co = 0; co < C_out; co++)
                for (int k = 0; k < T; k++)
                    dw[(size_t)co * T + k] += acc[(size_t)t * nw + (size_t)k * C_out + co];
    if (!failed && db)
        reduce_threads(db, acc, threads, nw, (size_t)C_out, (size_t)T * C_out);
    if (failed)
        return bf_error_set(err, BF_ERR_NOMEM, "conv2d backward: %zu bytes of scratch per thread",
                            sizeof(float) * n_scratch);
    if (dinp_winograd) /* dout is masked now; acc (CPU_SCRATCH_CALL_A) is free again */
        return cpu_conv2d_backward_input_winograd(dinp, dout, w, B, C_in, Ho, Wo, C_out, err);
    return BF_OK;
}

/* ---- Non-local block ------------------------------------------------------------------
 * Positions-major: per sample the three input 1x1 convs are one product with their
 * weights stacked and transposed, [theta^T phi^T g^T] (N, 3 Ci) = x^T (N, C) W3^T (C,
 * 3 Ci) + b3, x read transposed in place. The products then have N = 81 rows (tiles of
 * 8 rows waste little on the last) and 32-96 columns (whole 32-column tiles): with
 * positions as columns every product computed 96 of them for 81. The workspace keeps
 * one block per sample: [theta^T phi^T g^T] (N, 3 Ci), A^T (N, N), y^T (N, Ci) (this
 * backend's own layout; its size is bf_nonlocal_workspace's). */

typedef struct {
    float *w3t; /* stacked theta/phi/g weights, transposed: (C, 3 Ci) */
    float *b3;  /* their biases (3 Ci); forward only */
    float *wot; /* the out conv's weights transposed (Ci, C); forward only */
} stacked_weights;

/* w in state_dict order: theta.w, theta.b, phi.w, phi.b, g.w, g.b, out.w, out.b. The
 * backward needs w3t only, in the calling thread's CPU_SCRATCH_CALL_B buffer; the
 * forward's stack is kept between calls (cpu_scratch_kept: restacked per call it took
 * ~4 us, a tenth of a batch-1 prediction). */
static int stack_weights(stacked_weights *sw, const float *w, int C, int Ci, int forward)
{
    size_t in = (size_t)Ci * C + Ci, n3 = 3 * (size_t)Ci, n_w = 3 * in + (size_t)C * Ci + C;
    size_t n = n3 * C + (forward ? n3 + (size_t)Ci * C : 0);
    const int key[CPU_SCRATCH_KEY] = {C, Ci};
    int valid = 0;
    sw->w3t = forward ? cpu_scratch_kept(CPU_SCRATCH_NONLOCAL, w, n_w, n, key, &valid)
                      : cpu_scratch(CPU_SCRATCH_CALL_B, n);
    if (!sw->w3t)
        return -1;
    sw->b3 = sw->w3t + n3 * C;
    sw->wot = sw->b3 + n3;
    if (valid)
        return 0;
    for (int k = 0; k < 3; k++) {
        const float *wk = w + k * in;
        for (int i = 0; i < Ci; i++)
            for (int c = 0; c < C; c++)
                sw->w3t[(size_t)c * n3 + (size_t)k * Ci + i] = wk[(size_t)i * C + c];
        if (forward)
            memcpy(sw->b3 + (size_t)k * Ci, wk + (size_t)Ci * C, sizeof(float) * Ci);
    }
    for (int c = 0; forward && c < C; c++)
        for (int i = 0; i < Ci; i++)
            sw->wot[(size_t)i * C + c] = w[3 * in + (size_t)c * Ci + i];
    if (forward)
        cpu_scratch_keep(CPU_SCRATCH_NONLOCAL, w, n_w, key);
    return 0;
}

/* o (C, N) = act(t^T + x): t (N, C) positions-major, x and o channel-major; 8 x 8 blocks
 * through registers, the last C mod 8 channels and N mod 8 positions lane by lane. */
BF_CLONES static void transpose_add_activate(float *restrict o, const float *restrict t,
                                             const float *restrict x, int C, int N,
                                             float slope)
{
    int c8 = C / 8 * 8, n8 = N / 8 * 8;
    vf zero = {}, vs = zero + (slope >= 0 ? slope : 1.0f);
    for (int c0 = 0; c0 < c8; c0 += 8)
        for (int n0 = 0; n0 < n8; n0 += 8) {
            float blk[64];
            TRANSPOSE_8X8(blk, 8, t + (size_t)n0 * C + c0, C);
            for (int i = 0; i < 8; i++) {
                size_t at = (size_t)(c0 + i) * N + n0;
                vf v = vload(blk + 8 * i) + vload(x + at);
                vstore(o + at, vselect(v > zero, v, v * vs));
            }
        }
    for (int c = 0; c < C; c++)
        for (int n = c < c8 ? n8 : 0; n < N; n++) {
            size_t at = (size_t)c * N + n;
            float v = t[(size_t)n * C + c] + x[at];
            o[at] = v > 0 || slope < 0 ? v : slope * v;
        }
}

/* Floats of the per-thread panel the block's products need: K x 32, K <= max(N, C, 3 Ci). */
static size_t nonlocal_panel(int C, int Ci, int N)
{
    int k = N > C ? N : C;
    return (size_t)(k > 3 * Ci ? k : 3 * Ci) * cpu_gemm_panel_cols(1);
}

/* e^x lane by lane for x <= 0 (softmax after the column maximum is subtracted): x = n
 * ln2 + r with |r| <= ln2 / 2 (Cody-Waite split of ln2), e^r by its Taylor polynomial to
 * r^7 (truncation below 2e-8 relative), 2^n through the exponent bits; x below -87 is
 * clamped there (e^-87 ~ 2e-38, negligible next to the maximum's 1). */
#define vwexp_nonpositive(x)                                                              \
    ({                                                                                    \
        vfw x_ = (x);                                                                     \
        x_ = vwselect(x_ < -87.0f, (vfw){} - 87.0f, x_);                                  \
        vfw t_ = x_ * 1.44269504f + 12582912.0f;                                          \
        vfw n_ = t_ - 12582912.0f; /* round to nearest */                                 \
        vfw r_ = x_ - n_ * 0.693145752f - n_ * 1.42860677e-6f;                            \
        vfw p_ = r_ * (1.0f / 5040) + 1.0f / 720;                                         \
        p_ = p_ * r_ + 1.0f / 120;                                                        \
        p_ = p_ * r_ + 1.0f / 24;                                                         \
        p_ = p_ * r_ + 1.0f / 6;                                                          \
        p_ = p_ * r_ + 0.5f;                                                              \
        p_ = p_ * r_ + 1.0f;                                                              \
        p_ = p_ * r_ + 1.0f;                                                              \
        viw e_ = (__builtin_convertvector(n_, viw) + 127) << 23;                          \
        p_ * (vfw)e_;                                                                     \
    })

/* The block keeps the attention transposed, A^T (N, N) with A^T[m][n] = A[n][m]: the
 * softmax over m then runs down columns, VW columns at a time with no horizontal
 * reductions, and y^T = A g^T reads A^T in place as a transposed operand. (Row by row,
 * the softmax took a sixth of the block's time.) */

/* Softmax down each column of a (N, N) in place (the row-wise softmax of a^T); col:
 * scratch of N floats rounded up to a vector. */
BF_CLONES static void softmax_columns(float *a, int N, float *restrict col)
{
    int i = 0;
    for (; i + VW <= N; i += VW) {
        /* the maximum in two independent chains: one compare-and-select chain down
         * the column was bound by its latency (~a third of the softmax's time) */
        vfw m = vwload(a + i), m1 = m;
        int r2 = 1;
        for (; r2 + 1 < N; r2 += 2) {
            vfw v = vwload(a + (size_t)r2 * N + i), v1 = vwload(a + (size_t)(r2 + 1) * N + i);
            m = vwselect(v > m, v, m);
            m1 = vwselect(v1 > m1, v1, m1);
        }
        if (r2 < N) {
            vfw v = vwload(a + (size_t)r2 * N + i);
            m = vwselect(v > m, v, m);
        }
        m = vwselect(m1 > m, m1, m);
        vfw sum = {};
        for (int r = 0; r < N; r++) {
            vfw e = vwexp_nonpositive(vwload(a + (size_t)r * N + i) - m);
            sum += e;
            vwstore(a + (size_t)r * N + i, e);
        }
        vfw inv = 1.0f / sum;
        for (int r = 0; r < N; r++)
            vwstore(a + (size_t)r * N + i, vwload(a + (size_t)r * N + i) * inv);
    }
    /* the last N mod VW columns one at a time, copied into col where the softmax runs
     * down VW rows at once (lane by lane, with expf, BraggNN's 81st column took a
     * quarter of the softmax's time) */
    viw lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    for (int r = N; i < N && r % VW; r++)
        col[r] = 0; /* past the column: finite, and masked out of the sum */
    for (; i < N; i++) {
        float m = a[i];
        for (int r = 0; r < N; r++) {
            col[r] = a[(size_t)r * N + i];
            m = col[r] > m ? col[r] : m;
        }
        vfw sum = {};
        for (int r = 0; r < N; r += VW) {
            vfw e = vwexp_nonpositive(vwload(col + r) - m);
            e = vwselect(lane + r < N, e, (vfw){});
            sum += e;
            vwstore(col + r, e);
        }
        float total = 0;
        for (int l = 0; l < VW; l++)
            total += sum[l];
        float inv = 1.0f / total;
        for (int r = 0; r < N; r++)
            a[(size_t)r * N + i] = col[r] * inv;
    }
}

/* dS = A (dA - sum_r dA_r A_r) down each column (all (N, N), transposed like A): the
 * softmax's Jacobian-vector product. */
BF_CLONES static void softmax_columns_backward(float *restrict dS, const float *restrict dA,
                                               const float *restrict A, int N)
{
    int i = 0;
    for (; i + VW <= N; i += VW) {
        vfw dot = {};
        for (int r = 0; r < N; r++)
            dot += vwload(dA + (size_t)r * N + i) * vwload(A + (size_t)r * N + i);
        for (int r = 0; r < N; r++) {
            size_t at = (size_t)r * N + i;
            vwstore(dS + at, vwload(A + at) * (vwload(dA + at) - dot));
        }
    }
    for (; i < N; i++) {
        float dot = 0;
        for (int r = 0; r < N; r++)
            dot += dA[(size_t)r * N + i] * A[(size_t)r * N + i];
        for (int r = 0; r < N; r++)
            dS[(size_t)r * N + i] = A[(size_t)r * N + i] * (dA[(size_t)r * N + i] - dot);
    }
}

bf_status cpu_nonlocal_forward(float *out, float *ws, const float *x, const float *w, int B,
                               int C, int Ci, int N, float slope, bf_error *err)
{
    stacked_weights sw;
    if (stack_weights(&sw, w, C, Ci, 1))
        return bf_error_set(err, BF_ERR_NOMEM, "nonlocal: out of memory for the weights");
    size_t in = (size_t)Ci * C + Ci, per = bf_nonlocal_workspace(1, Ci, N);
    const float *ob = w + 3 * in + (size_t)C * Ci;
    int failed = 0;
#pragma omp parallel
    {
        /* per thread: the panel, out^T (N, C), and in inference (ws NULL) one sample's
         * workspace, reused, staying in cache */
        size_t n_panel = nonlocal_panel(C, Ci, N), n_outT = (size_t)N * C;
        float *panel = cpu_scratch(CPU_SCRATCH_THREAD, n_panel + n_outT + (ws ? 0 : per));
        float *outT = panel ? panel + n_panel : NULL;
        if (!panel) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int n = 0; n < B; n++) {
            if (!panel)
                continue; /* reported below: the whole call fails */
            int ld = 3 * Ci; /* of tpgT */
            float *tpgT = ws ? ws + (size_t)n * per : outT + n_outT;
            float *AT = tpgT + (size_t)ld * N, *yT = AT + (size_t)N * N;
            const float *xn = x + (size_t)n * C * N, *thetaT = tpgT, *phiT = tpgT + Ci;
            const float *gT = phiT + Ci;
            float *o = out + (size_t)n * C * N;
            cpu_gemm_bias_cols(1, 0, N, ld, C, xn, N, sw.w3t, ld, tpgT, ld, sw.b3, panel);
            /* S^T = phi^T theta, A^T its softmax down columns, y^T = A g^T */
            cpu_gemm(0, 1, N, N, Ci, phiT, ld, thetaT, ld, AT, N, NULL, NULL, panel);
            softmax_columns(AT, N, panel);
            cpu_gemm(1, 0, N, Ci, N, AT, N, gT, ld, yT, Ci, NULL, NULL, panel);
            /* the out conv positions-major, out^T = y^T Wo^T + b (as W y + b its 81
             * columns took whole blocks of 32, and y^T a transposed copy), then back
             * to channels with the residual and the activation */
            cpu_gemm_bias_cols(0, 0, N, C, Ci, yT, Ci, sw.wot, C, outT, C, ob, panel);
            transpose_add_activate(o, outT, xn, C, N, slope);
        }
    }
    if (failed)
        return bf_error_set(err, BF_ERR_NOMEM, "nonlocal: scratch per thread");
    return BF_OK;
}

bf_status cpu_nonlocal_backward(float *dx, float *dw, float *dout, const float *out,
                                const float *ws, const float *x, const float *w, int B, int C,
                                int Ci, int N, float slope, bf_error *err)
{
    size_t in = (size_t)Ci * C + Ci, per = bf_nonlocal_workspace(1, Ci, N);
    /* per thread: the stacked input convs' dW (3 Ci, C) and db (3 Ci), then out's */
    size_t n3 = 3 * (size_t)Ci * C + 3 * (size_t)Ci, nw = n3 + (size_t)C * Ci + C;
    const float *ow = w + 3 * in;
    stacked_weights sw;
    if (stack_weights(&sw, w, C, Ci, 0))
        return bf_error_set(err, BF_ERR_NOMEM, "nonlocal backward: out of memory");
    int threads = omp_get_max_threads();
    float *acc = cpu_scratch(CPU_SCRATCH_CALL_A, (size_t)threads * nw);
    if (!acc)
        return bf_error_set(err, BF_ERR_NOMEM, "nonlocal backward: out of memory");
    memset(acc, 0, sizeof(float) * (size_t)threads * nw);
    size_t scratch = 4 * (size_t)Ci * N + 2 * (size_t)N * N + nonlocal_panel(C, Ci, N);
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        float *tdw = acc + (size_t)omp_get_thread_num() * nw, *tdb = tdw + 3 * (size_t)Ci * C;
        float *dwo = tdw + n3;
        float *s = cpu_scratch(CPU_SCRATCH_THREAD, scratch);
        if (!s) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int n = 0; n < B; n++) {
            if (!s)
                continue;
            /* d[theta; phi; g] (3 Ci, N), channel-major (the forward keeps them transposed) */
            float *dtpg = s, *dth = dtpg, *dph = dth + (size_t)Ci * N, *dg = dph + (size_t)Ci * N;
            float *dy = dg + (size_t)Ci * N, *dA = dy + (size_t)Ci * N, *dS = dA + (size_t)N * N;
            float *panel = dS + (size_t)N * N;
            const float *tpgT = ws + (size_t)n * per, *AT = tpgT + 3 * (size_t)Ci * N;
            const float *thetaT = tpgT, *phiT = tpgT + Ci, *gT = phiT + Ci;
            const float *yT = AT + (size_t)N * N;
            int ld = 3 * Ci; /* of tpgT */
            const float *xn = x + (size_t)n * C * N;
            float *d = dout + (size_t)n * C * N;
            mask(d, out + (size_t)n * C * N, (size_t)C * N, slope);
            float *dxn = dx ? dx + (size_t)n * C * N : NULL;
            if (dxn) /* the residual */
                for (size_t i = 0; i < (size_t)C * N; i++)
                    dxn[i] += d[i];
            /* out conv: dWo (C, Ci) += d y^T, dbo += row sums, dy (Ci, N) = Wo^T d */
            cpu_gemm(0, 0, C, Ci, N, d, N, yT, Ci, dwo, Ci, NULL, dwo, panel);
            add_row_sums(dwo + (size_t)C * Ci, d, C, N);
            cpu_gemm(1, 0, Ci, N, C, ow, Ci, d, N, dy, N, NULL, NULL, panel);
            /* y = g A^T: dg = dy A, dA^T = g^T dy (dA, dS transposed like A; g^T, y^T as kept) */
            cpu_gemm(0, 1, Ci, N, N, dy, N, AT, N, dg, N, NULL, NULL, panel);
            cpu_gemm(0, 0, N, N, Ci, gT, ld, dy, N, dA, N, NULL, NULL, panel);
            softmax_columns_backward(dS, dA, AT, N);
            /* S = theta^T phi: dtheta = phi dS^T, dphi = theta dS */
            cpu_gemm(1, 0, Ci, N, N, phiT, ld, dS, N, dth, N, NULL, NULL, panel);
            cpu_gemm(1, 1, Ci, N, N, thetaT, ld, dS, N, dph, N, NULL, NULL, panel);
            /* the stacked input convs: dW3 (3 Ci, C) += dtpg x^T, db3 += row sums,
             * dx += W3^T dtpg */
            cpu_gemm(0, 1, 3 * Ci, C, N, dtpg, N, xn, N, tdw, C, NULL, tdw, panel);
            add_row_sums(tdb, dtpg, 3 * Ci, N);
            if (dxn)
                cpu_gemm(0, 0, C, N, ld, sw.w3t, ld, dtpg, N, dxn, N, NULL, dxn, panel);
        }
    }
    if (!failed && dw) /* back to state_dict order: (w, b) per conv, then out's */
        for (int k = 0; k < 3; k++) {
            reduce_threads(dw + k * in, acc, threads, nw, (size_t)Ci * C, k * (size_t)Ci * C);
            reduce_threads(dw + k * in + (size_t)Ci * C, acc, threads, nw, (size_t)Ci,
                           3 * (size_t)Ci * C + k * (size_t)Ci);
        }
    if (!failed && dw)
        reduce_threads(dw + 3 * in, acc, threads, nw, (size_t)C * Ci + C, n3);
    if (failed)
        return bf_error_set(err, BF_ERR_NOMEM, "nonlocal backward: %zu bytes of scratch per "
                            "thread", sizeof(float) * scratch);
    return BF_OK;
}
