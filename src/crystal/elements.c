/* crystal/elements.c — coherent neutron scattering lengths and element symbols.
 *
 * Values are bound coherent scattering lengths for the natural isotopic mixture
 * in fm (V. F. Sears, Neutron News 3 (1992) 26; the NIST table). Absorbing
 * nuclides with complex lengths (B, Cd, Sm, Eu, Gd) keep the real part. Three
 * entries follow GSAS-II's table (docs/gsas2.md §9) where it differs from Sears
 * in the third or fourth digit (O 5.8037 vs 5.803, Mn -3.75 vs -3.73, Bi 8.5242
 * vs 8.532), so that patterns compare with GSAS-II's to well under 0.1 %. */
#include "crystal_internal.h"

#include <ctype.h>
#include <string.h>

typedef struct {
    const char *symbol;
    double b_fm;
} element_b;

static const element_b b_table[] = {
    {"H", -3.739},  {"D", 6.671},   {"He", 3.26},   {"Li", -1.90},  {"Be", 7.79},
    {"B", 5.30},    {"C", 6.646},   {"N", 9.36},    {"O", 5.8037},  {"F", 5.654},
    {"Ne", 4.566},  {"Na", 3.63},   {"Mg", 5.375},  {"Al", 3.449},  {"Si", 4.1491},
    {"P", 5.13},    {"S", 2.847},   {"Cl", 9.577},  {"Ar", 1.909},  {"K", 3.67},
    {"Ca", 4.70},   {"Sc", 12.29},  {"Ti", -3.438}, {"V", -0.3824}, {"Cr", 3.635},
    {"Mn", -3.75},  {"Fe", 9.45},   {"Co", 2.49},   {"Ni", 10.3},   {"Cu", 7.718},
    {"Zn", 5.680},  {"Ga", 7.288},  {"Ge", 8.185},  {"As", 6.58},   {"Se", 7.970},
    {"Br", 6.795},  {"Kr", 7.81},   {"Rb", 7.09},   {"Sr", 7.02},   {"Y", 7.75},
    {"Zr", 7.16},   {"Nb", 7.054},  {"Mo", 6.715},  {"Tc", 6.8},    {"Ru", 7.03},
    {"Rh", 5.88},   {"Pd", 5.91},   {"Ag", 5.922},  {"Cd", 4.87},   {"In", 4.065},
    {"Sn", 6.225},  {"Sb", 5.57},   {"Te", 5.80},   {"I", 5.28},    {"Xe", 4.92},
    {"Cs", 5.42},   {"Ba", 5.07},   {"La", 8.24},   {"Ce", 4.84},   {"Pr", 4.58},
    {"Nd", 7.69},   {"Pm", 12.6},   {"Sm", 0.80},   {"Eu", 7.22},   {"Gd", 6.5},
    {"Tb", 7.38},   {"Dy", 16.9},   {"Ho", 8.01},   {"Er", 7.79},   {"Tm", 7.07},
    {"Yb", 12.43},  {"Lu", 7.21},   {"Hf", 7.7},    {"Ta", 6.91},   {"W", 4.86},
    {"Re", 9.2},    {"Os", 10.7},   {"Ir", 10.6},   {"Pt", 9.60},   {"Au", 7.63},
    {"Hg", 12.692}, {"Tl", 8.776},  {"Pb", 9.405},  {"Bi", 8.5242}, {"Th", 10.31},
    {"U", 8.417},
};
#define N_ELEMENTS (sizeof b_table / sizeof b_table[0])

static const element_b *find_element(const char *symbol)
{
    for (size_t i = 0; i < N_ELEMENTS; i++)
        if (strcmp(b_table[i].symbol, symbol) == 0)
            return &b_table[i];
    return NULL;
}

bf_status bf_neutron_b_coh_fm(const char *element, double *b_fm, bf_error *err)
{
    const element_b *e = element ? find_element(element) : NULL;
    if (e == NULL)
        return bf_error_set(err, BF_ERR_INVALID,
                            "unknown element '%s' (no neutron scattering length)",
                            element ? element : "");
    *b_fm = e->b_fm;
    return BF_OK;
}

/* The element spelled by the first one or two letters of s, in canonical case
 * ("CA" and "ca" -> "Ca"); two letters win when both spell an element. */
static int leading_element(const char *s, char element[4])
{
    if (!isalpha((unsigned char)s[0]))
        return 0;
    char two[3] = {(char)toupper((unsigned char)s[0]), 0, 0};
    if (isalpha((unsigned char)s[1])) {
        two[1] = (char)tolower((unsigned char)s[1]);
        if (find_element(two)) {
            memcpy(element, two, 3);
            return 2;
        }
        two[1] = 0;
    }
    if (!find_element(two))
        return 0;
    memcpy(element, two, 2);
    element[2] = 0;
    return 1;
}

int bf_element_from_label(const char *label, char element[4])
{
    return label != NULL && leading_element(label, element) > 0;
}

/* Type symbols: the element, then an optional charge in either order ("Ba2+",
 * "Ba+2", "O-", "O2-"), e.g. "Nb+5", "La3+". Anything else after the element
 * (as in "Oxx" or "Fe2+x") is rejected, since it may be a different species. */
bf_status bf_element_from_type_symbol(const char *type_symbol, char element[4], bf_error *err)
{
    const char *s = type_symbol ? type_symbol : "";
    int n = leading_element(s, element);
    if (n == 0)
        return bf_error_set(err, BF_ERR_INVALID, "unknown element in type symbol '%s'", s);
    const char *rest = s + n;
    size_t digits = strspn(rest, "0123456789");
    size_t signs = strspn(rest + digits, "+-");
    if (digits == 0 && signs > 0)
        digits = strspn(rest + signs, "0123456789");
    if (rest[digits + signs] != '\0')
        return bf_error_set(err, BF_ERR_INVALID,
                            "type symbol '%s': unknown element or malformed charge", s);
    return BF_OK;
}
