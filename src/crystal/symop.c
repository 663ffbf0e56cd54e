/* crystal/symop.c — symmetry operators written as CIF "x,y,z" strings
 * (_symmetry_equiv_pos_as_xyz, _space_group_symop_operation_xyz).
 * Accepted: "x,y,z", "-y+1/2,-x+1/2,-z+1/2", "1/2+x,y,1/2+z", "x-y,x,z+1/6",
 * "0.25+x", spaces anywhere, upper-case X/Y/Z. The rotation part must have
 * determinant +-1, which rejects typos such as "x,x,z". */
#include "crystal_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

double bf_wrap_fraction(double t)
{
    double w = t - floor(t);
    if (w > 1.0 - 1e-9)
        w = 0.0;
    return w;
}

static const char *skip_spaces(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static int axis_index(char c)
{
    switch (c) {
    case 'x': case 'X': return 0;
    case 'y': case 'Y': return 1;
    case 'z': case 'Z': return 2;
    default: return -1;
    }
}

/* Reads an unsigned decimal "3", "0.25", ".5" at *p (no exponents or hex, which
 * have no place in an operator). */
static int parse_unsigned_decimal(const char **p, double *value)
{
    const char *s = *p;
    double v = 0.0;
    int digits = 0;
    while (isdigit((unsigned char)*s)) {
        v = 10.0 * v + (*s++ - '0');
        digits++;
    }
    if (*s == '.') {
        s++;
        double scale = 0.1;
        while (isdigit((unsigned char)*s)) {
            v += scale * (*s++ - '0');
            scale *= 0.1;
            digits++;
        }
    }
    if (digits == 0)
        return 0;
    *p = s;
    *value = v;
    return 1;
}

/* Reads an unsigned number "3", "0.25" or a fraction "1/2" at *p. */
static int parse_unsigned_number(const char **p, double *value)
{
    const char *s = *p;
    double num, den;
    if (!parse_unsigned_decimal(&s, &num))
        return 0;
    const char *after = skip_spaces(s);
    if (*after == '/') {
        s = skip_spaces(after + 1);
        if (!parse_unsigned_decimal(&s, &den) || den == 0.0)
            return 0;
        num /= den;
    }
    *p = s;
    *value = num;
    return 1;
}

/* One component ("-x+y+1/3") -> integer coefficients of x, y, z and a translation.
 * Stops at ',' or the end. Returns 0 on malformed text. */
static int parse_component(const char **p, int coef[3], double *trans)
{
    const char *s = skip_spaces(*p);
    int n_terms = 0;
    coef[0] = coef[1] = coef[2] = 0;
    *trans = 0.0;
    while (*s != '\0' && *s != ',') {
        double sign = 1.0;
        if (*s == '+' || *s == '-') {
            sign = *s == '-' ? -1.0 : 1.0;
            s = skip_spaces(s + 1);
        } else if (n_terms > 0) {
            return 0; /* two terms without an operator between them */
        }
        double number = 1.0;
        int has_number = parse_unsigned_number(&s, &number);
        s = skip_spaces(s);
        if (*s == '*' && has_number)
            s = skip_spaces(s + 1);
        int axis = axis_index(*s);
        if (axis >= 0) {
            double c = sign * number;
            if (fabs(c - round(c)) > 1e-9)
                return 0; /* rotation parts are integers */
            coef[axis] += (int)lround(c);
            s = skip_spaces(s + 1);
        } else if (has_number) {
            *trans += sign * number;
        } else {
            return 0;
        }
        n_terms++;
    }
    *p = s;
    return n_terms > 0;
}

static int determinant3(const int m[3][3])
{
    return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
           m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
           m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

bf_status bf_symop_parse(const char *xyz, bf_symop *op, bf_error *err)
{
    if (xyz == NULL)
        return bf_error_set(err, BF_ERR_PARSE, "symmetry operator: missing text");
    bf_symop parsed;
    const char *p = xyz;
    for (int row = 0; row < 3; row++) {
        if (!parse_component(&p, parsed.rot[row], &parsed.trans[row]))
            return bf_error_set(err, BF_ERR_PARSE,
                                "symmetry operator '%s': component %d is not of the form "
                                "'-x+y+1/2'",
                                xyz, row + 1);
        if (row < 2) {
            if (*p != ',')
                return bf_error_set(err, BF_ERR_PARSE,
                                    "symmetry operator '%s': expected 3 comma-separated "
                                    "components",
                                    xyz);
            p++;
        }
    }
    p = skip_spaces(p);
    if (*p != '\0')
        return bf_error_set(err, BF_ERR_PARSE,
                            "symmetry operator '%s': unexpected text after the third component",
                            xyz);
    int det = determinant3((const int(*)[3])parsed.rot);
    if (det != 1 && det != -1)
        return bf_error_set(err, BF_ERR_PARSE,
                            "symmetry operator '%s': rotation part has determinant %d, not +-1",
                            xyz, det);
    for (int i = 0; i < 3; i++)
        parsed.trans[i] = bf_wrap_fraction(parsed.trans[i]);
    *op = parsed;
    return BF_OK;
}
