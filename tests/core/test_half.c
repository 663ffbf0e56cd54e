/* tests/core/test_half.c — float32 <-> IEEE 754 binary16: known encodings, ties to
 * even, subnormals, overflow to infinity, NaN, and an exhaustive round trip. */
#include "braggflow/core.h"
#include "test.h"

#include <math.h>
#include <stdint.h>

BF_TEST(half_known_values_encode_exactly)
{
    static const struct {
        float x;
        uint16_t h;
    } v[] = {
        {0.0f, 0x0000},    {-0.0f, 0x8000},   {1.0f, 0x3c00},      {-2.0f, 0xc000},
        {0.5f, 0x3800},    {65504.0f, 0x7bff}, {0.333251953125f, 0x3555},
        {6.103515625e-05f, 0x0400},            /* 2^-14: smallest normal */
        {5.9604644775390625e-08f, 0x0001},     /* 2^-24: smallest subnormal */
        {6.0975551605224609e-05f, 0x03ff},     /* 1023 x 2^-24: largest subnormal */
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        CHECK_MSG(bf_half_from_float(v[i].x) == v[i].h, "%g -> 0x%04x, want 0x%04x",
                  (double)v[i].x, bf_half_from_float(v[i].x), v[i].h);
        CHECK(bf_half_to_float(v[i].h) == v[i].x);
    }
    /* 0.1 lies between 0x2e66 (0.0999755859375) and 0x2e67 (0.10003662109375): nearer
     * the first */
    CHECK(bf_half_from_float(0.1f) == 0x2e66);
}

BF_TEST(half_rounds_to_nearest_with_ties_to_even)
{
    /* 1 + 2^-11 is halfway between 1 (0x3c00, even) and 1 + 2^-10 (0x3c01) */
    CHECK(bf_half_from_float(1.0f + ldexpf(1, -11)) == 0x3c00);
    /* 1 + 3 x 2^-11 is halfway between 0x3c01 and 0x3c02 (even) */
    CHECK(bf_half_from_float(1.0f + 3 * ldexpf(1, -11)) == 0x3c02);
    /* just above a tie goes up */
    CHECK(bf_half_from_float(nextafterf(1.0f + ldexpf(1, -11), 2)) == 0x3c01);
    /* subnormal ties: 2^-25 -> 0 (even), 3 x 2^-25 -> 2 units, 5 x 2^-25 -> 2 units */
    CHECK(bf_half_from_float(ldexpf(1, -25)) == 0x0000);
    CHECK(bf_half_from_float(nextafterf(ldexpf(1, -25), 1)) == 0x0001);
    CHECK(bf_half_from_float(3 * ldexpf(1, -25)) == 0x0002);
    CHECK(bf_half_from_float(5 * ldexpf(1, -25)) == 0x0002);
    CHECK(bf_half_from_float(-3 * ldexpf(1, -25)) == 0x8002);
    /* halfway between the largest subnormal and the smallest normal: to the even normal */
    CHECK(bf_half_from_float(ldexpf(2047, -25)) == 0x0400);
    /* float32 subnormals are far below half precision's range */
    CHECK(bf_half_from_float(1e-40f) == 0x0000);
    CHECK(bf_half_from_float(-1e-40f) == 0x8000);
}

BF_TEST(half_overflows_to_infinity_only_from_65520)
{
    CHECK(bf_half_from_float(65519.996f) == 0x7bff);   /* below the midpoint: 65504 */
    CHECK(bf_half_from_float(65520.0f) == 0x7c00);     /* the midpoint: ties to even = inf */
    CHECK(bf_half_from_float(-1e10f) == 0xfc00);
    CHECK(bf_half_from_float(INFINITY) == 0x7c00);
    CHECK(bf_half_from_float(-INFINITY) == 0xfc00);
    CHECK(isinf(bf_half_to_float(0x7c00)) && bf_half_to_float(0x7c00) > 0);
    uint16_t n = bf_half_from_float(NAN);
    CHECK((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    CHECK(isnan(bf_half_to_float(n)));
}

BF_TEST(half_every_value_survives_a_round_trip_through_float)
{
    long bad = 0;
    for (uint32_t h = 0; h <= 0xffff; h++) {
        float x = bf_half_to_float((uint16_t)h);
        if (isnan(x))
            bad += !isnan(bf_half_to_float(bf_half_from_float(x)));
        else
            bad += bf_half_from_float(x) != h;
    }
    CHECK_MSG(bad == 0, "%ld values changed", bad);
}

BF_TEST(half_of_a_float_is_the_nearest_half)
{
    /* against a brute-force nearest over a spread of floats (random bits, both signs) */
    bf_rng rng;
    bf_rng_init(&rng, 5, 0);
    long bad = 0;
    for (int i = 0; i < 20000; i++) {
        uint32_t u = (uint32_t)bf_rng_u64(&rng);
        u = (u & 0x80000000u) | (0x30000000u + u % 0x17800000u); /* ~2^-31 .. 2^16 */
        float x;
        memcpy(&x, &u, sizeof x);
        uint16_t h = bf_half_from_float(x);
        double got = bf_half_to_float(h), e = fabs(got - x);
        /* neither neighbour is nearer (isinf: the overflow rule, checked above) */
        if (isinf(got))
            continue;
        double up = bf_half_to_float((uint16_t)(h + 1)), down = h & 0x7fff
                                                           ? bf_half_to_float((uint16_t)(h - 1))
                                                           : -got;
        bad += (!isinf(up) && fabs(up - x) < e) || fabs(down - x) < e;
    }
    CHECK_MSG(bad == 0, "%ld not nearest", bad);
}
