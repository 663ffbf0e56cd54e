/* core/half.c — IEEE 754 binary16 <-> binary32 (core.h). binary16: 1 sign bit, 5
 * exponent bits (bias 15), 10 fraction bits; normals 2^-14 .. 65504, subnormals in
 * steps of 2^-24. Used by the ONNX export's float16 weights (docs/serve.md). */
#include "braggflow/core.h"

#include <math.h>
#include <string.h>

/* q + 1 when the dropped bits rem (out of 2^shift) are above half, or exactly half and
 * q is odd: round to nearest, ties to even. */
static uint32_t round_even(uint32_t q, uint32_t rem, int shift)
{
    uint32_t half = 1u << (shift - 1);
    return q + (rem > half || (rem == half && (q & 1)));
}

uint16_t bf_half_from_float(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: a quiet NaN keeping the payload's top bits */
        return sign | 0x7e00 | (uint16_t)((a >> 13) & 0x3ff);
    if (a >= 0x477ff000u) /* >= 65520 = 65504 + half a step (ties to the even inf), and inf */
        return sign | 0x7c00;
    if (a >= 0x38800000u) { /* >= 2^-14: a normal half; rebias 127 -> 15, drop 13 bits */
        uint32_t r = a - 0x38000000u;
        /* a carry out of the fraction correctly steps the exponent up */
        return sign | (uint16_t)round_even(r >> 13, r & 0x1fffu, 13);
    }
    if (a <= 0x33000000u) /* <= 2^-25: rounds to zero (2^-25 itself is a tie, to even 0) */
        return sign;
    /* a subnormal half: units of 2^-24. x = mant 2^(e - 150), so units = mant >> (126 - e) */
    int e = (int)(a >> 23);                   /* 102 .. 112 here */
    uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    int shift = 126 - e;                      /* 14 .. 24 */
    uint32_t q = round_even(mant >> shift, mant & ((1u << shift) - 1), shift);
    return sign | (uint16_t)q;                /* q = 0x400 is the smallest normal: right */
}

float bf_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, f = h & 0x3ff, u;
    if (e == 0x1f)
        u = sign | 0x7f800000u | (f << 13);
    else if (e)
        u = sign | ((e + 112) << 23) | (f << 13);
    else { /* zero or subnormal: f 2^-24, exact in float */
        float v = ldexpf((float)f, -24);
        return sign ? -v : v;
    }
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}
