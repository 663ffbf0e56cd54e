/* tests/nn/compare.h — inputs and the difference measure shared by the tests that hold
 * one backend's results against another's (test_backends.c, test_backend_cuda.c). */
#ifndef BF_TEST_COMPARE_H
#define BF_TEST_COMPARE_H

#include <stddef.h>
#include <stdint.h>

/* n floats uniform in [lo, hi) from seed (malloc'd; at least one). */
float *random_floats(size_t n, uint64_t seed, float lo, float hi);
/* n zeros (calloc'd; at least one). */
float *zeros(size_t n);
/* max |a - b| / (1 + max |b|); infinite when the difference is NaN. */
double max_rel_diff(const float *a, const float *b, size_t n);

#endif
