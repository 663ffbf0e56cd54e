/* crystal/elements.c — coherent neutron scattering lengths and element symbols.
 *
 * Two tables of bound coherent scattering lengths for the natural isotopic mixture,
 * in fm (docs/gsas2.md §9):
 *   gsas2 (the default) — GSAS-II's own (atmdata.py AtmBlens, 'SL' = [b, b''] in
 *     1e-12 cm, as its GetBLtable picks the natural-abundance entry): patterns
 *     compare with GSAS-II's only with these (Ti -3.370 fm, not Sears' -3.438, moves a
 *     Pnma titanate by 0.6 % Rwp). b'' (natural boron) enters F as an imaginary part.
 *     Elements GSAS-II lists with b = 0 (Rh, Cd, In, Sm, Eu, Gd, Er, Yb) are resonant
 *     absorbers whose b depends on the wavelength (a Breit-Wigner entry): refused,
 *     naming the element, until that is implemented.
 *   sears — V. F. Sears, Neutron News 3 (1992) 26 (the NIST table; complex lengths keep
 *     their real part), with GSAS-II's O, Mn and Bi, as braggflow used before. */
#include "crystal_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *symbol;
    double b_fm;
} element_b;

typedef struct {
    const char *symbol;
    double b_fm, b_imag_fm;
    int resonant;               /* b depends on the wavelength: not tabulated here */
} gsas2_b;

static const gsas2_b gsas2_table[] = {
    {"H", -3.7395, 0, 0}, {"D", 6.681, 0, 0}, {"T", 4.792, 0, 0}, {"He", 3.26, 0, 0},
    {"Li", -1.93, 0, 0}, {"Be", 7.79, 0, 0}, {"B", 5.3, -0.213, 0}, {"C", 6.6484, 0, 0},
    {"N", 9.36, 0, 0}, {"O", 5.8037, 0, 0}, {"F", 5.654, 0, 0}, {"Ne", 4.6, 0, 0},
    {"Na", 3.63, 0, 0}, {"Mg", 5.375, 0, 0}, {"Al", 3.449, 0, 0}, {"Si", 4.1507, 0, 0},
    {"P", 5.13, 0, 0}, {"S", 2.847, 0, 0}, {"Cl", 9.579, 0, 0}, {"Ar", 1.909, 0, 0},
    {"K", 3.67, 0, 0}, {"Ca", 4.7, 0, 0}, {"Sc", 12.1, 0, 0}, {"Ti", -3.37, 0, 0},
    {"V", -0.443, 0, 0}, {"Cr", 3.635, 0, 0}, {"Mn", -3.75, 0, 0}, {"Fe", 9.45, 0, 0},
    {"Co", 2.49, 0, 0}, {"Ni", 10.3, 0, 0}, {"Cu", 7.718, 0, 0}, {"Zn", 5.68, 0, 0},
    {"Ga", 7.288, 0, 0}, {"Ge", 8.185, 0, 0}, {"As", 6.58, 0, 0}, {"Se", 7.97, 0, 0},
    {"Br", 6.79, 0, 0}, {"Kr", 7.81, 0, 0}, {"Rb", 7.08, 0, 0}, {"Sr", 7.02, 0, 0},
    {"Y", 7.75, 0, 0}, {"Zr", 7.16, 0, 0}, {"Nb", 7.054, 0, 0}, {"Mo", 6.715, 0, 0},
    {"Ru", 7.02, 0, 0}, {"Rh", 0, 0, 1}, {"Pd", 5.91, 0, 0}, {"Ag", 5.922, 0, 0},
    {"Cd", 0, 0, 1}, {"In", 0, 0, 1}, {"Sn", 6.239, 0, 0}, {"Sb", 5.57, 0, 0},
    {"Te", 5.68, 0, 0}, {"I", 5.28, 0, 0}, {"Xe", 4.69, 0, 0}, {"Cs", 5.42, 0, 0},
    {"Ba", 5.07, 0, 0}, {"La", 8.24, 0, 0}, {"Ce", 4.84, 0, 0}, {"Pr", 4.44, 0, 0},
    {"Nd", 7.87, 0, 0}, {"Sm", 0, 0, 1}, {"Eu", 0, 0, 1}, {"Gd", 0, 0, 1},
    {"Tb", 7.34, 0, 0}, {"Dy", 16.9, 0, 0}, {"Ho", 8.44, 0, 0}, {"Er", 0, 0, 1},
    {"Tm", 7.07, 0, 0}, {"Yb", 0, 0, 1}, {"Lu", 7.21, 0, 0}, {"Hf", 7.77, 0, 0},
    {"Ta", 6.91, 0, 0}, {"W", 4.755, 0, 0}, {"Re", 9.2, 0, 0}, {"Os", 10.7, 0, 0},
    {"Ir", 10.6, 0, 0}, {"Pt", 9.6, 0, 0}, {"Au", 7.9, 0, 0}, {"Hg", 12.66, 0, 0},
    {"Tl", 8.776, 0, 0}, {"Pb", 9.4024, 0, 0}, {"Bi", 8.5242, 0, 0}, {"Th", 10.31, 0, 0},
    {"Pa", 9.1, 0, 0}, {"U", 8.417, 0, 0},
};
#define N_GSAS2 (sizeof gsas2_table / sizeof gsas2_table[0])

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

const char *bf_b_table_name(bf_b_table t)
{
    return t == BF_B_TABLE_SEARS ? "sears" : "gsas2";
}

int bf_b_table_parse(const char *s, bf_b_table *out)
{
    for (int t = BF_B_TABLE_GSAS2; t <= BF_B_TABLE_SEARS; t++)
        if (s && !strcmp(s, bf_b_table_name((bf_b_table)t))) {
            *out = (bf_b_table)t;
            return 0;
        }
    return -1;
}

bf_status bf_neutron_b(const char *element, bf_b_table table, double *b_fm, double *b_imag_fm,
                       bf_error *err)
{
    const char *el = element ? element : "";
    *b_fm = *b_imag_fm = 0;
    if (table == BF_B_TABLE_SEARS) {
        const element_b *e = find_element(el);
        if (e == NULL)
            return bf_error_set(err, BF_ERR_INVALID,
                                "unknown element '%s' (no neutron scattering length)", el);
        *b_fm = e->b_fm;
        return BF_OK;
    }
    for (size_t i = 0; i < N_GSAS2; i++) {
        const gsas2_b *g = &gsas2_table[i];
        if (strcmp(g->symbol, el) != 0)
            continue;
        if (g->resonant)
            return bf_error_set(err, BF_ERR_INVALID,
                                "element %s: a resonant absorber, its scattering length "
                                "depends on the wavelength (GSAS-II's Breit-Wigner entry), which "
                                "braggflow does not model yet; --b-table sears uses its thermal "
                                "value", el);
        *b_fm = g->b_fm;
        *b_imag_fm = g->b_imag_fm;
        return BF_OK;
    }
    return bf_error_set(err, BF_ERR_INVALID,
                        "element '%s': no neutron scattering length in GSAS-II's table%s", el,
                        find_element(el) ? " (--b-table sears has one)" : "");
}

/* Element symbols H (Z = 1) to Cf (Z = 98), and the hydrogen isotopes D and T: what a
 * type symbol or label may start with (the X-ray table covers the same range). */
static const char *const element_symbols[] = {
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
    "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga",
    "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd",
    "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm",
    "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os",
    "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th",
    "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "D", "T",
};

static int is_element(const char *symbol)
{
    for (size_t i = 0; i < sizeof element_symbols / sizeof element_symbols[0]; i++)
        if (strcmp(element_symbols[i], symbol) == 0)
            return 1;
    return 0;
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
        if (is_element(two)) {
            memcpy(element, two, 3);
            return 2;
        }
        two[1] = 0;
    }
    if (!is_element(two))
        return 0;
    memcpy(element, two, 2);
    element[2] = 0;
    return 1;
}

int bf_element_from_label(const char *label, char element[4])
{
    return label != NULL && leading_element(label, element) > 0;
}

int bf_type_symbol_split(const char *symbol, char element[4], int *charge)
{
    const char *s = symbol ? symbol : "";
    *charge = 0;
    const int n = leading_element(s, element);
    if (n == 0)
        return -1;
    /* the charge in either order ("Ba2+", "Ba+2"), a bare sign meaning 1 ("Na+");
     * anything else after the element is a site label's ("O1", "Ba1a": the neutral atom) */
    const char *rest = s + n;
    const size_t d1 = strspn(rest, "0123456789");
    const char sign = rest[d1];
    if (sign != '+' && sign != '-')
        return 0;
    const char *after = rest + d1 + 1;
    const size_t d2 = strspn(after, "0123456789");
    if (after[d2] != 0 || (d1 > 0 && d2 > 0) || d1 + d2 > 2)
        return -2;
    const int q = d1 + d2 == 0 ? 1 : atoi(d1 > 0 ? rest : after);
    *charge = sign == '-' ? -q : q;
    return 0;
}

bf_status bf_element_from_type_symbol(const char *type_symbol, char element[4], bf_error *err)
{
    int charge;
    const char *s = type_symbol ? type_symbol : "";
    switch (bf_type_symbol_split(s, element, &charge)) {
    case 0: return BF_OK;
    case -1: return bf_error_set(err, BF_ERR_INVALID, "unknown element in type symbol '%s'", s);
    default:
        return bf_error_set(err, BF_ERR_INVALID,
                            "type symbol '%s': unknown element or malformed charge", s);
    }
}
