/* tests/test.h — a tiny test harness: each BF_TEST registers itself, main()
 * runs them all (or the ones named on the command line) and prints
 * "N passed, N failed". A test fails on its first failed CHECK. */
#ifndef BF_TEST_H
#define BF_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*bf_test_fn)(int *failed);
void bf_test_register(const char *name, bf_test_fn fn);

#define BF_TEST(name)                                                                    \
    static void name(int *bf_failed_);                                                   \
    __attribute__((constructor)) static void name##_register(void)                       \
    {                                                                                    \
        bf_test_register(#name, name);                                                   \
    }                                                                                    \
    static void name(int *bf_failed_)

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            *bf_failed_ = 1;                                                             \
            return;                                                                      \
        }                                                                                \
    } while (0)

#define CHECK_MSG(cond, ...)                                                             \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "  %s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
            *bf_failed_ = 1;                                                             \
            return;                                                                      \
        }                                                                                \
    } while (0)

/* |a - b| <= tol */
#define CHECK_NEAR(a, b, tol)                                                            \
    do {                                                                                 \
        double a_ = (a), b_ = (b), t_ = (tol);                                           \
        if (!(fabs(a_ - b_) <= t_)) {                                                    \
            fprintf(stderr, "  %s:%d: CHECK_NEAR failed: %s = %.12g, %s = %.12g, tol %g\n", \
                    __FILE__, __LINE__, #a, a_, #b, b_, t_);                             \
            *bf_failed_ = 1;                                                             \
            return;                                                                      \
        }                                                                                \
    } while (0)

/* |a - b| <= rel * max(|a|, |b|) */
#define CHECK_REL(a, b, rel)                                                             \
    do {                                                                                 \
        double a_ = (a), b_ = (b), r_ = (rel);                                           \
        double m_ = fabs(a_) > fabs(b_) ? fabs(a_) : fabs(b_);                           \
        if (!(fabs(a_ - b_) <= r_ * m_)) {                                               \
            fprintf(stderr, "  %s:%d: CHECK_REL failed: %s = %.12g, %s = %.12g, rel %g\n", \
                    __FILE__, __LINE__, #a, a_, #b, b_, r_);                             \
            *bf_failed_ = 1;                                                             \
            return;                                                                      \
        }                                                                                \
    } while (0)

/* Where the shared reference data lives (../shared next to the checkout); NULL if absent. */
const char *bf_test_shared_dir(void);
/* Repository root (for examples/). */
const char *bf_test_source_dir(void);
/* A fresh scratch directory for this test binary (removed by ctest's fixtures). */
const char *bf_test_tmp_dir(void);

#endif
