/* tests/nn/gradcheck.h — finite-difference gradient checks shared by the nn tests. */
#ifndef BF_TEST_GRADCHECK_H
#define BF_TEST_GRADCHECK_H

#include <stddef.h>

typedef struct {
    const char *name;
    float *x;           /* perturbed in place */
    size_t n;
    const float *grad;  /* analytic d loss / d x */
} fd_var;

/* Compares each analytic gradient with a central difference of loss(ctx) (forward in
 * float, difference in double, step = the float-rounded x+eps minus x-eps); an element
 * passes when |num - ana| <= rel max(|num|, |ana|) + 0.05 rel max|grad| + 1e-6.
 * Returns the number of mismatches (printing the first few). */
int fd_check(const char *what, double (*loss)(void *), void *ctx, fd_var *vars, int n_vars,
             float eps, double rel);

/* One variable. */
static inline int fd_check1(const char *what, double (*loss)(void *), void *ctx, float *x,
                            const float *grad, size_t n, float eps, double rel)
{
    fd_var v = {"x", x, n, grad};
    return fd_check(what, loss, ctx, &v, 1, eps, rel);
}

#endif
