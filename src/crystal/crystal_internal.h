/* crystal/crystal_internal.h — helpers shared by the files of the crystal layer
 * (not part of the public API). */
#ifndef BRAGGFLOW_CRYSTAL_INTERNAL_H
#define BRAGGFLOW_CRYSTAL_INTERNAL_H

#include "braggflow/crystal.h"

/* Element symbol of an atom-site label ("Ba1" -> "Ba", "O12a" -> "O", "CA" -> "Ca"):
 * the leading letters, trying two letters before one. Returns 0 when no element fits. */
int bf_element_from_label(const char *label, char element[4]);

/* Element and charge of a CIF type symbol: "Ba2+", "Ba+2", "BA2+" -> Ba, +2; "O2-" ->
 * O, -2; "Na+" -> Na, +1; "O1", "Ba1a" (a site label's suffix) -> the neutral atom.
 * 0, -1 when no element fits, -2 for a malformed charge ("Ca2+x", "Ca2+3"). The one
 * parser of type symbols: neutron tables, X-ray form factors and f0 overrides use it. */
int bf_type_symbol_split(const char *symbol, char element[4], int *charge);

/* Brings a fractional translation into [0, 1), mapping values within 1e-9 of 1 to 0
 * so that "x+1" and "x" compare equal. */
double bf_wrap_fraction(double t);

/* Fills t's structure-factor parts (scatterers, groups, anisotropic terms) for its t->n
 * reflections t->hkl (structure_factor.c). On failure the caller frees t. */
bf_status bf_structure_factor_parts(const bf_crystal *c, const bf_radiation *rad,
                                    bf_reflection_table *t, bf_error *err);

#endif
