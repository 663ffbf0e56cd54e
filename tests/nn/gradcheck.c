/* tests/nn/gradcheck.c — see gradcheck.h. */
#include <math.h>
#include <stdio.h>

#include "gradcheck.h"

int fd_check(const char *what, double (*loss)(void *), void *ctx, fd_var *vars,
             int n_vars, float eps, double rel)
{
    int bad = 0;
    for (int v = 0; v < n_vars; v++) {
        double gmax = 0.0;
        for (size_t i = 0; i < vars[v].n; i++)
            gmax = fmax(gmax, fabs(vars[v].grad[i]));
        double floor_tol = rel * 0.05 * gmax + 1e-6;
        for (size_t i = 0; i < vars[v].n; i++) {
            float *x = vars[v].x;
            float orig = x[i];
            x[i] = orig + eps;
            double xp = x[i], lp = loss(ctx);
            x[i] = orig - eps;
            double xm = x[i], lm = loss(ctx);
            x[i] = orig;
            double num = (lp - lm) / (xp - xm);
            double ana = vars[v].grad[i];
            if (!(fabs(num - ana) <= rel * fmax(fabs(num), fabs(ana)) + floor_tol)) {
                if (bad < 5)
                    fprintf(stderr, "  %s: d/d%s[%zu]: analytic %.8g, numeric %.8g\n", what,
                            vars[v].name, i, ana, num);
                bad++;
            }
        }
    }
    return bad;
}
