/* crystal/spacegroup.c — symmetry operators for a Hermann-Mauguin or Hall
 * symbol from spglib's database of the 530 Hall settings.
 *
 * Matching ignores spaces, underscores and case. An H-M symbol may carry a
 * setting suffix as in ITA/CIF (":R", ":H", ":1", ":2"). Without one, the
 * first setting spglib lists wins, except that origin choice 2 (the one with
 * the inversion centre at the origin, as GSAS-II uses) is preferred over 1. */
#include "crystal_internal.h"

#include <ctype.h>
#include <spglib.h>
#include <stdlib.h>
#include <string.h>

#define N_HALL_SETTINGS 530

/* Lower-case copy without spaces and underscores. */
static void normalise_symbol(const char *in, char *out, size_t outsz)
{
    size_t n = 0;
    for (; *in && n + 1 < outsz; in++) {
        if (*in == ' ' || *in == '_' || *in == '\t')
            continue;
        out[n++] = (char)tolower((unsigned char)*in);
    }
    out[n] = 0;
}

static int symbol_matches(const SpglibSpacegroupType *t, const char *want, const char *choice)
{
    char hall[64], shrt[64], full[64];
    normalise_symbol(t->hall_symbol, hall, sizeof hall);
    if (choice == NULL && strcmp(hall, want) == 0)
        return 1;
    normalise_symbol(t->international_short, shrt, sizeof shrt);
    normalise_symbol(t->international_full, full, sizeof full);
    if (strcmp(shrt, want) != 0 && strcmp(full, want) != 0)
        return 0;
    if (choice == NULL)
        return 1;
    char got[16];
    normalise_symbol(t->choice, got, sizeof got);
    return strcmp(got, choice) == 0;
}

static int find_hall_number(const char *symbol)
{
    char want[64], *choice = NULL;
    normalise_symbol(symbol, want, sizeof want);
    char *colon = strchr(want, ':');
    if (colon) {
        *colon = 0;
        choice = colon + 1;
    }
    int first = 0;
    for (int hall = 1; hall <= N_HALL_SETTINGS; hall++) {
        SpglibSpacegroupType t = spg_get_spacegroup_type(hall);
        if (t.number == 0 || !symbol_matches(&t, want, choice))
            continue;
        if (choice != NULL || strcmp(t.choice, "2") == 0)
            return hall;
        if (first == 0)
            first = hall;
    }
    return first;
}

bf_status bf_symops_from_symbol(const char *hm_or_hall, bf_symop **ops, int *n_ops,
                                bf_error *err)
{
    *ops = NULL;
    *n_ops = 0;
    int hall = hm_or_hall ? find_hall_number(hm_or_hall) : 0;
    if (hall == 0)
        return bf_error_set(err, BF_ERR_INVALID, "space group '%s': not a known H-M or Hall symbol",
                            hm_or_hall ? hm_or_hall : "");
    int(*rot)[3][3] = malloc(192 * sizeof *rot);
    double(*trans)[3] = malloc(192 * sizeof *trans);
    bf_symop *out = NULL;
    bf_status st = BF_OK;
    if (rot == NULL || trans == NULL) {
        st = bf_error_set(err, BF_ERR_NOMEM, "space group '%s': out of memory", hm_or_hall);
        goto done;
    }
    int n = spg_get_symmetry_from_database(rot, trans, hall);
    out = n > 0 ? malloc((size_t)n * sizeof *out) : NULL;
    if (out == NULL) {
        st = bf_error_set(err, n > 0 ? BF_ERR_NOMEM : BF_ERR_INVALID,
                          "space group '%s': spglib returned no operators", hm_or_hall);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        memcpy(out[i].rot, rot[i], sizeof out[i].rot);
        for (int j = 0; j < 3; j++)
            out[i].trans[j] = bf_wrap_fraction(trans[i][j]);
    }
    *ops = out;
    *n_ops = n;
done:
    free(rot);
    free(trans);
    return st;
}
