/* tests/crystal/test_crystal.c — unit cells, operators, scattering lengths,
 * CIF reading and reflections, against independent facts: d-spacings from
 * explicit basis vectors, F-centring absences, m-3m multiplicities, a
 * structure factor computed by hand, GSAS-II's atom tables. */
#include <complex.h>
#include <stdio.h>
#include <stdlib.h>

#include "braggflow/crystal.h"
#include "test.h"

#define DEG (M_PI / 180.0)

/* d from the reciprocal basis built out of explicit direct basis vectors
 * (a* = b x c / V ...), independent of the metric-tensor code under test. */
static double d_from_vectors(const bf_cell *c, int h, int k, int l)
{
    double ca = cos(c->alpha * DEG), cb = cos(c->beta * DEG), cg = cos(c->gamma * DEG),
           sg = sin(c->gamma * DEG);
    double A[3] = {c->a, 0, 0};
    double B[3] = {c->b * cg, c->b * sg, 0};
    double cx = c->c * cb, cy = c->c * (ca - cb * cg) / sg;
    double C[3] = {cx, cy, sqrt(c->c * c->c - cx * cx - cy * cy)};
    double bxc[3] = {B[1] * C[2] - B[2] * C[1], B[2] * C[0] - B[0] * C[2], B[0] * C[1] - B[1] * C[0]};
    double cxa[3] = {C[1] * A[2] - C[2] * A[1], C[2] * A[0] - C[0] * A[2], C[0] * A[1] - C[1] * A[0]};
    double axb[3] = {A[1] * B[2] - A[2] * B[1], A[2] * B[0] - A[0] * B[2], A[0] * B[1] - A[1] * B[0]};
    double v = A[0] * bxc[0] + A[1] * bxc[1] + A[2] * bxc[2];
    double g[3];
    for (int i = 0; i < 3; i++)
        g[i] = (h * bxc[i] + k * cxa[i] + l * axb[i]) / v;
    return 1.0 / sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]);
}

BF_TEST(d_spacings_cubic_tetragonal_rhombohedral_triclinic)
{
    bf_cell cubic = {4, 4, 4, 90, 90, 90};
    CHECK_REL(bf_cell_d_spacing(&cubic, 1, 1, 1), 4.0 / sqrt(3.0), 1e-14);
    CHECK_REL(bf_cell_d_spacing(&cubic, 2, 1, 0), 4.0 / sqrt(5.0), 1e-14);
    bf_cell tet = {4, 4, 5, 90, 90, 90};
    CHECK_REL(bf_cell_d_spacing(&tet, 1, 0, 1), 1.0 / sqrt(1.0 / 16 + 1.0 / 25), 1e-14);
    /* rhombohedral: 1/d^2 = [(h2+k2+l2) sin^2 a + 2(hk+kl+hl)(cos^2 a - cos a)] /
     * [a^2 (1 - 3 cos^2 a + 2 cos^3 a)] */
    bf_cell rh = {5, 5, 5, 60.57, 60.57, 60.57};
    double ca = cos(60.57 * DEG), sa = sin(60.57 * DEG);
    int h = 2, k = 1, l = -1;
    double inv = ((h * h + k * k + l * l) * sa * sa + 2.0 * (h * k + k * l + h * l) * (ca * ca - ca)) /
                 (25.0 * (1 - 3 * ca * ca + 2 * ca * ca * ca));
    CHECK_REL(bf_cell_d_spacing(&rh, h, k, l), 1.0 / sqrt(inv), 1e-12);
    bf_cell tri = {5.1, 6.3, 7.7, 81.0, 97.5, 104.2};
    for (int i = -3; i <= 3; i++)
        for (int j = -2; j <= 2; j++) {
            if (i == 0 && j == 0)
                continue;
            CHECK_REL(bf_cell_d_spacing(&tri, i, j, 2), d_from_vectors(&tri, i, j, 2), 1e-12);
        }
    CHECK_REL(bf_cell_volume(&tet), 80.0, 1e-14);
    /* index box: |h| <= a / dmin */
    int hm, km, lm;
    bf_cell_index_bounds(&tet, 0.5, &hm, &km, &lm);
    CHECK(hm == 8 && km == 8 && lm == 10);
}

BF_TEST(impossible_cells_are_rejected)
{
    bf_error err = {0};
    bf_cell neg = {-4, 4, 4, 90, 90, 90};
    CHECK(bf_cell_validate(&neg, "--cell", &err) == BF_ERR_INVALID);
    CHECK(strstr(err.msg, "--cell") && strstr(err.msg, "a = -4"));
    bf_cell open = {4, 4, 4, 10, 10, 170};
    bf_error err2 = {0};
    CHECK(bf_cell_validate(&open, "cell", &err2) == BF_ERR_INVALID);
    bf_cell nan_cell = {NAN, 4, 4, 90, 90, 90};
    CHECK(bf_cell_validate(&nan_cell, "cell", NULL) == BF_ERR_INVALID);
}

BF_TEST(symmetry_operators_parse)
{
    bf_symop op;
    bf_error err = {0};
    CHECK(bf_symop_parse("-y+1/2, x, z+0.25", &op, &err) == BF_OK);
    CHECK(op.rot[0][1] == -1 && op.rot[1][0] == 1 && op.rot[2][2] == 1);
    CHECK_NEAR(op.trans[0], 0.5, 1e-15);
    CHECK_NEAR(op.trans[2], 0.25, 1e-15);
    CHECK(bf_symop_parse("1/2+X,x-Y-1,z+1/3", &op, &err) == BF_OK);
    CHECK(op.trans[1] == 0.0 && op.rot[1][0] == 1 && op.rot[1][1] == -1);
    CHECK_NEAR(op.trans[2], 1.0 / 3.0, 1e-15);
    const char *bad[] = {"x,y", "x,x,z", "x,y,z,", "a,b,c", "x y,z,z", "x,y,1/0+z", "2x/3,y,z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bf_error e = {0};
        CHECK_MSG(bf_symop_parse(bad[i], &op, &e) == BF_ERR_PARSE, "'%s' accepted", bad[i]);
        CHECK(strstr(e.msg, bad[i]) != NULL);
    }
}

BF_TEST(operators_from_spglib_symbols)
{
    struct {
        const char *symbol;
        int n;
    } cases[] = {{"F m -3 m", 192}, {"Fm-3m", 192}, {"P 4 m m", 8},  {"-P 3* 2n", 12},
                 {"R -3 c :R", 12}, {"R -3 c :H", 36}, {"-F 4 2 3", 192}, {"P 1", 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bf_symop *ops = NULL;
        int n = 0;
        bf_error err = {0};
        CHECK_MSG(bf_symops_from_symbol(cases[i].symbol, &ops, &n, &err) == BF_OK, "%s", err.msg);
        CHECK_MSG(n == cases[i].n, "%s: %d operators", cases[i].symbol, n);
        free(ops);
    }
    bf_symop *ops = NULL;
    int n = 0;
    bf_error err = {0};
    CHECK(bf_symops_from_symbol("Q 9 z", &ops, &n, &err) == BF_ERR_INVALID);
    CHECK(ops == NULL && strstr(err.msg, "Q 9 z"));
}

BF_TEST(scattering_lengths_and_type_symbols)
{
    /* the seven of docs/gsas2.md §9, in fm: the same in both tables */
    struct {
        const char *el;
        double b;
    } seven[] = {{"Ba", 5.07}, {"Bi", 8.5242}, {"La", 8.24}, {"Mn", -3.75},
                 {"K", 3.67},  {"Nb", 7.054}, {"O", 5.8037}};
    double b, bi;
    for (int i = 0; i < 7; i++)
        for (int t = BF_B_TABLE_GSAS2; t <= BF_B_TABLE_SEARS; t++) {
            CHECK(bf_neutron_b(seven[i].el, (bf_b_table)t, &b, &bi, NULL) == BF_OK);
            CHECK_NEAR(b, seven[i].b, 1e-9);
        }
    /* where they differ (../shared/reference/gsas2_cw/README.md §8.8) */
    CHECK(bf_neutron_b("Ti", BF_B_TABLE_GSAS2, &b, &bi, NULL) == BF_OK && b == -3.37 && bi == 0);
    CHECK(bf_neutron_b("Ti", BF_B_TABLE_SEARS, &b, &bi, NULL) == BF_OK && b == -3.438);
    CHECK(bf_neutron_b("V", BF_B_TABLE_GSAS2, &b, &bi, NULL) == BF_OK && b == -0.443);
    CHECK(bf_neutron_b("B", BF_B_TABLE_GSAS2, &b, &bi, NULL) == BF_OK && b == 5.3 && bi == -0.213);
    CHECK(bf_neutron_b("B", BF_B_TABLE_SEARS, &b, &bi, NULL) == BF_OK && bi == 0);
    /* GSAS-II's resonant absorbers are refused, naming the element; Sears has a value */
    const char *resonant[] = {"Rh", "Cd", "In", "Sm", "Eu", "Gd", "Er", "Yb"};
    for (int i = 0; i < 8; i++) {
        bf_error e = {0};
        CHECK_MSG(bf_neutron_b(resonant[i], BF_B_TABLE_GSAS2, &b, &bi, &e) == BF_ERR_INVALID,
                  "%s", resonant[i]);
        CHECK_MSG(strstr(e.msg, resonant[i]) && strstr(e.msg, "resonant"), "%s", e.msg);
        CHECK(bf_neutron_b(resonant[i], BF_B_TABLE_SEARS, &b, &bi, NULL) == BF_OK && b != 0);
    }
    bf_error e = {0};
    CHECK(bf_neutron_b("Tc", BF_B_TABLE_GSAS2, &b, &bi, &e) == BF_ERR_INVALID);
    CHECK(strstr(e.msg, "Tc") && strstr(e.msg, "sears"));
    /* every element from H to Bi has a Sears value */
    const char *all[] = {"H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si",
        "P", "S", "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn",
        "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh",
        "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd",
        "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re",
        "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi"};
    CHECK(sizeof all / sizeof all[0] == 83);
    for (size_t i = 0; i < 83; i++)
        CHECK_MSG(bf_neutron_b(all[i], BF_B_TABLE_SEARS, &b, &bi, NULL) == BF_OK, "%s", all[i]);
    bf_b_table t;
    CHECK(bf_b_table_parse("sears", &t) == 0 && t == BF_B_TABLE_SEARS);
    CHECK(bf_b_table_parse("gsas2", &t) == 0 && t == BF_B_TABLE_GSAS2);
    CHECK(bf_b_table_parse("nist", &t) == -1);
    char el[4];
    const char *ok[][2] = {{"Ba2+", "Ba"}, {"Ba+2", "Ba"}, {"La+3", "La"}, {"O-2", "O"},
                           {"Nb5+", "Nb"}, {"Fe", "Fe"},   {"CA", "Ca"},   {"O2-", "O"}};
    for (int i = 0; i < 8; i++) {
        CHECK(bf_element_from_type_symbol(ok[i][0], el, NULL) == BF_OK);
        CHECK_MSG(strcmp(el, ok[i][1]) == 0, "%s -> %s", ok[i][0], el);
    }
    bf_error err = {0};
    CHECK(bf_element_from_type_symbol("Xx", el, &err) == BF_ERR_INVALID);
    CHECK(strstr(err.msg, "Xx") != NULL);
    /* letters or digits after the element are a label's suffix: the neutral atom */
    CHECK(bf_element_from_type_symbol("Oxx", el, NULL) == BF_OK && strcmp(el, "O") == 0);
    CHECK(bf_element_from_type_symbol("Ca2+x", el, NULL) == BF_ERR_INVALID);
    CHECK(bf_element_from_type_symbol("Cf3+", el, NULL) == BF_OK && strcmp(el, "Cf") == 0);
    CHECK(bf_neutron_b("Qq", BF_B_TABLE_SEARS, &b, &bi, NULL) == BF_ERR_INVALID);
}

static void example_path(char *out, size_t n, const char *rel)
{
    snprintf(out, n, "%s/examples/cif/%s", bf_test_source_dir(), rel);
}

BF_TEST(example_cifs_read)
{
    char path[4096];
    bf_crystal c;
    bf_error err = {0};
    example_path(path, sizeof path, "NaCl.cif");
    CHECK_MSG(bf_crystal_read_cif(path, &c, &err) == BF_OK, "%s", err.msg);
    CHECK(c.n_ops == 192 && c.n_atoms == 2);
    CHECK_NEAR(c.cell.a, 5.6402, 1e-12);
    CHECK(strcmp(c.atoms[1].element, "Cl") == 0);
    CHECK_NEAR(c.atoms[0].uiso_A2, 0.0125, 1e-15);
    bf_crystal_free(&c);
    example_path(path, sizeof path, "BaTiO3-P4mm.cif");
    CHECK_MSG(bf_crystal_read_cif(path, &c, &err) == BF_OK, "%s", err.msg);
    CHECK(c.n_ops == 8 && c.n_atoms == 4);
    CHECK_NEAR(c.atoms[0].uiso_A2, 0.40 / (8 * M_PI * M_PI), 1e-15); /* from Biso */
    bf_crystal_free(&c);
    example_path(path, sizeof path, "LaAlO3-R-3c-rhombohedral.cif");
    CHECK_MSG(bf_crystal_read_cif(path, &c, &err) == BF_OK, "%s", err.msg);
    CHECK(c.n_ops == 12 && c.n_atoms == 3);
    CHECK_NEAR(c.cell.alpha, 60.10, 1e-12);
    bf_crystal_free(&c);
}

/* The seed CIFs as GSAS-II read them (reference/gsas2/atoms_*.csv). */
BF_TEST(seed_cifs_match_gsas2_atom_tables)
{
    const char *shared = bf_test_shared_dir();
    if (shared == NULL)
        return;
    struct {
        const char *cif;
        int n_atoms;
        double uiso, a;
        const char *first_element;
    } cases[] = {{"1001460.cif", 5, 0.01, 8.767, "Ba"},
                 {"1522004.cif", 3, 0.0, 5.4679, "La"},
                 {"1531431.cif", 4, 0.0, 3.996, "Nb"}};
    for (int i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/reference/seed-workflow/%s", shared, cases[i].cif);
        bf_crystal c;
        bf_error err = {0};
        CHECK_MSG(bf_crystal_read_cif(path, &c, &err) == BF_OK, "%s", err.msg);
        CHECK(c.n_atoms == cases[i].n_atoms);
        CHECK_NEAR(c.cell.a, cases[i].a, 1e-9);
        for (int k = 0; k < c.n_atoms; k++)
            CHECK_NEAR(c.atoms[k].uiso_A2, cases[i].uiso, 1e-12);
        int found = 0;
        for (int k = 0; k < c.n_atoms; k++)
            found |= strcmp(c.atoms[k].element, cases[i].first_element) == 0;
        CHECK(found);
        bf_crystal_free(&c);
    }
}

static bf_status read_text(const char *text, bf_crystal *c, bf_error *err)
{
    return bf_crystal_read_cif_text(text, strlen(text), "bad.cif", c, err);
}

#define CELL_AND_SG                                                                      \
    "data_t\n_symmetry_space_group_name_H-M 'P 1'\n_cell_length_a 4\n_cell_length_b 4\n" \
    "_cell_length_c 4\n"

BF_TEST(bad_cifs_name_file_line_and_item)
{
    bf_crystal c;
    bf_error err = {0};
    CHECK(read_text("data_t\n_cell_length_a 4\n_cell_length_b 'unterminated\n", &c, &err) ==
          BF_ERR_PARSE);
    CHECK_MSG(strstr(err.msg, "bad.cif:3") != NULL, "%s", err.msg);
    bf_error e2 = {0};
    CHECK(read_text("data_t\n_symmetry_space_group_name_H-M 'P 1'\nloop_\n_atom_site_label\n"
                    "_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nO1 0 0 0\n",
                    &c, &e2) == BF_ERR_INVALID);
    CHECK_MSG(strstr(e2.msg, "_cell_length_a") && strstr(e2.msg, "bad.cif"), "%s", e2.msg);
    bf_error e3 = {0};
    CHECK(read_text(CELL_AND_SG "loop_\n_atom_site_label\n_atom_site_type_symbol\n"
                                "_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
                                "Q1 Xx 0 0 0\n",
                    &c, &e3) == BF_ERR_INVALID);
    CHECK_MSG(strstr(e3.msg, "Xx") && strstr(e3.msg, "bad.cif:"), "%s", e3.msg);
    bf_error e4 = {0};
    CHECK(read_text(CELL_AND_SG "_cell_angle_alpha abc\n", &c, &e4) == BF_ERR_PARSE);
    CHECK_MSG(strstr(e4.msg, "bad.cif:6: _cell_angle_alpha"), "%s", e4.msg);
    bf_error e5 = {0};
    CHECK(read_text("", &c, &e5) == BF_ERR_PARSE);
    bf_error e6 = {0};
    CHECK(read_text(CELL_AND_SG "loop_\n_symmetry_equiv_pos_as_xyz\n'x,x,z'\n", &c, &e6) ==
          BF_ERR_PARSE);
    CHECK_MSG(strstr(e6.msg, "_symmetry_equiv_pos_as_xyz") && strstr(e6.msg, "x,x,z"), "%s",
              e6.msg);
    bf_error e7 = {0};
    CHECK(read_text(CELL_AND_SG, &c, &e7) == BF_ERR_INVALID); /* no atoms */
    CHECK(strstr(e7.msg, "no atom sites"));
}

/* The warnings bf_warn emits, collected. */
static char warned[4][512];
static int n_warned;
static void collect_warning(const char *msg, void *user)
{
    (void)user;
    if (n_warned < 4)
        snprintf(warned[n_warned++], sizeof warned[0], "%s", msg);
}

#define ATOMS_O1                                                                          \
    "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n" \
    "O1 0 0 0\n"

/* What CIF 1.1 readers tolerate (gsas2_cw/README.md: COD's own test inputs): '[' or ']'
 * inside an unquoted value (SHELXL's extinction expression), a global block before the
 * structure's; each is read with one warning. What cannot be meant is still refused. */
BF_TEST(cif_1_1_quirks_are_tolerated_with_a_warning)
{
    bf_set_warning_handler(collect_warning, NULL);
    bf_crystal c;
    bf_error err = {0};
    const char *bracket = CELL_AND_SG
        "_refine_ls_extinction_expression Fc^*^=kFc[1+0.001xFc^2^\\l^3^/sin(2\\q)]^-1/4^\n"
        ATOMS_O1;
    CHECK_MSG(read_text(bracket, &c, &err) == BF_OK, "%s", err.msg);
    CHECK(c.n_atoms == 1 && c.cell.a == 4);
    CHECK_MSG(n_warned == 1 && strstr(warned[0], "bad.cif:6:") && strstr(warned[0], "unquoted"),
              "%d: %s", n_warned, warned[0]);
    bf_crystal_free(&c);
    /* the same file again: no second warning (a CIF is read once per class, set, rank) */
    CHECK(read_text(bracket, &c, NULL) == BF_OK && n_warned == 1);
    bf_crystal_free(&c);
    /* CIF 2.0 (magic line): brackets are lists there, so a bare ']' stays an error */
    char cif2[1024];
    snprintf(cif2, sizeof cif2, "#\\#CIF_2.0\n%s", bracket);
    CHECK(read_text(cif2, &c, NULL) == BF_ERR_PARSE);
    /* a global block first, then the structure's: the block with atom sites is read */
    err = (bf_error){0};
    CHECK_MSG(read_text("data_global\n_journal_year 2001\n" CELL_AND_SG ATOMS_O1, &c, &err) ==
                  BF_OK, "%s", err.msg);
    CHECK(strcmp(c.name, "t") == 0 && c.n_atoms == 1);
    CHECK_MSG(n_warned == 2 && strstr(warned[1], "2 data blocks") && strstr(warned[1], "data_t"),
              "%d: %s", n_warned, warned[1]);
    bf_crystal_free(&c);
    /* still refused: an atom loop with a missing value */
    err = (bf_error){0};
    CHECK(read_text(CELL_AND_SG "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n"
                                "_atom_site_fract_z\nO1 0 0\n", &c, &err) != BF_OK);
    bf_set_warning_handler(NULL, NULL);
}

static bf_crystal nacl(void)
{
    char path[4096];
    bf_crystal c;
    example_path(path, sizeof path, "NaCl.cif");
    if (bf_crystal_read_cif(path, &c, NULL) != BF_OK)
        memset(&c, 0, sizeof c);
    return c;
}

static int find_hkl(const bf_reflection_table *t, const bf_crystal *c, int h, int k, int l)
{
    for (int i = 0; i < t->n; i++)
        if (bf_hkl_equivalent(c, t->hkl[i].h, t->hkl[i].k, t->hkl[i].l, h, k, l))
            return i;
    return -1;
}

/* F by brute force over every operator image, independent of the table. */
static double complex brute_force_f(const bf_crystal *c, int h, int k, int l)
{
    double complex f = 0;
    for (int a = 0; a < c->n_atoms; a++) {
        double seen[192][3];
        int n = 0;
        for (int o = 0; o < c->n_ops; o++) {
            const bf_symop *op = &c->ops[o];
            double x[3] = {c->atoms[a].x, c->atoms[a].y, c->atoms[a].z}, r[3];
            for (int j = 0; j < 3; j++) {
                r[j] = op->rot[j][0] * x[0] + op->rot[j][1] * x[1] + op->rot[j][2] * x[2] + op->trans[j];
                r[j] -= floor(r[j] + 1e-9);
            }
            int dup = 0;
            for (int s = 0; s < n && !dup; s++)
                dup = fabs(seen[s][0] - r[0]) < 1e-6 && fabs(seen[s][1] - r[1]) < 1e-6 &&
                      fabs(seen[s][2] - r[2]) < 1e-6;
            if (dup)
                continue;
            memcpy(seen[n++], r, sizeof r);
            double b = 0, b_imag = 0;
            bf_neutron_b(c->atoms[a].element, BF_B_TABLE_GSAS2, &b, &b_imag, NULL);
            f += (b + I * b_imag) * cexp(2.0 * M_PI * I * (h * r[0] + k * r[1] + l * r[2]));
        }
    }
    return f;
}

BF_TEST(f_centring_absences_and_m3m_multiplicities)
{
    bf_crystal c = nacl();
    CHECK(c.n_ops == 192);
    /* move Cl off its special position so the test sees a general F */
    c.atoms[1].x = 0.13, c.atoms[1].y = 0.27, c.atoms[1].z = 0.41;
    bf_reflection_table t;
    CHECK(bf_reflection_table_build(&c, &(bf_radiation){.kind = BF_RADIATION_NEUTRON, .b_table = BF_B_TABLE_GSAS2}, 6, 6, 6, &t, NULL) == BF_OK);
    int mixed[][3] = {{1, 0, 0}, {1, 1, 0}, {2, 1, 0}, {2, 1, 1}, {3, 2, 0}, {4, 2, 1}};
    for (int i = 0; i < 6; i++) {
        CHECK(find_hkl(&t, &c, mixed[i][0], mixed[i][1], mixed[i][2]) < 0);
        CHECK(cabs(brute_force_f(&c, mixed[i][0], mixed[i][1], mixed[i][2])) < 1e-9);
    }
    for (int i = 0; i < t.n; i++) {
        int p = (t.hkl[i].h & 1) + (t.hkl[i].k & 1) + (t.hkl[i].l & 1);
        CHECK(p == 0 || p == 3); /* all even or all odd */
    }
    bf_reflection_table_free(&t);
    /* multiplicities need the whole Laue class: use P m -3 m's operators */
    bf_crystal p = c;
    CHECK(bf_symops_from_symbol("P m -3 m", &p.ops, &p.n_ops, NULL) == BF_OK);
    CHECK(bf_reflection_table_build(&p, &(bf_radiation){.kind = BF_RADIATION_NEUTRON, .b_table = BF_B_TABLE_GSAS2}, 4, 4, 4, &t, NULL) == BF_OK);
    int hkl[][4] = {{1, 0, 0, 6}, {1, 1, 0, 12}, {1, 1, 1, 8}, {2, 1, 0, 24}, {3, 2, 1, 48},
                    {4, 2, 0, 24}, {3, 3, 3, 8}, {4, 4, 0, 12}};
    for (int i = 0; i < 8; i++) {
        int at = find_hkl(&t, &p, hkl[i][0], hkl[i][1], hkl[i][2]);
        CHECK(at >= 0);
        CHECK_MSG(t.hkl[at].mult == hkl[i][3], "%d%d%d: mult %d", hkl[i][0], hkl[i][1],
                  hkl[i][2], t.hkl[at].mult);
    }
    bf_reflection_table_free(&t);
    free(p.ops);
    bf_crystal_free(&c);
}

/* NaCl, Fm-3m, Na at 0 0 0, Cl at 1/2 1/2 1/2: four formula units, so
 * F(hkl all even) = 4 (b_Na + b_Cl), F(all odd) = 4 (b_Na - b_Cl) times the
 * Debye-Waller factors exp(-2 pi^2 U / d^2). */
BF_TEST(structure_factor_by_hand_nacl)
{
    bf_crystal c = nacl();
    CHECK(c.n_atoms == 2);
    bf_reflection_table t;
    CHECK(bf_reflection_table_build(&c, &(bf_radiation){.kind = BF_RADIATION_NEUTRON, .b_table = BF_B_TABLE_GSAS2}, 4, 4, 4, &t, NULL) == BF_OK);
    const double b_na = 3.63, b_cl = 9.579, u_na = 0.0125, u_cl = 0.0105; /* GSAS-II's b */
    int odd = find_hkl(&t, &c, 1, 1, 1), even = find_hkl(&t, &c, 2, 0, 0);
    CHECK(odd >= 0 && even >= 0);
    double d111 = 5.6402 / sqrt(3.0), d200 = 5.6402 / 2.0;
    double dw_na = exp(-2 * M_PI * M_PI * u_na / (d111 * d111)),
           dw_cl = exp(-2 * M_PI * M_PI * u_cl / (d111 * d111));
    double f111 = 4.0 * (b_na * dw_na - b_cl * dw_cl);
    CHECK_REL(bf_reflection_table_f2(&t, odd, d111, NULL), f111 * f111 / 100.0, 1e-12);
    dw_na = exp(-2 * M_PI * M_PI * u_na / (d200 * d200));
    dw_cl = exp(-2 * M_PI * M_PI * u_cl / (d200 * d200));
    double f200 = 4.0 * (b_na * dw_na + b_cl * dw_cl);
    CHECK_REL(bf_reflection_table_f2(&t, even, d200, NULL), f200 * f200 / 100.0, 1e-12);
    CHECK(t.hkl[odd].mult == 8 && t.hkl[even].mult == 6);
    bf_reflection_table_free(&t);
    bf_crystal_free(&c);
}

/* The same by hand with --b-table sears (Cl 9.577), and with Na's sites taken by natural
 * boron (GSAS-II: b = 5.3 + i (-0.213) fm): F(111) = 4 ((b + i b'') w_B - b_Cl w_Cl), so
 * |F|^2 gains (4 b'' w_B)^2, the imaginary part never cancelling against the real ones. */
BF_TEST(structure_factor_by_hand_b_tables_and_absorber)
{
    bf_crystal c = nacl();
    bf_reflection_table t;
    CHECK(bf_reflection_table_build(&c, &(bf_radiation){.kind = BF_RADIATION_NEUTRON, .b_table = BF_B_TABLE_SEARS}, 4, 4, 4, &t, NULL) == BF_OK);
    const double u_na = 0.0125, u_cl = 0.0105, d111 = 5.6402 / sqrt(3.0);
    double w_na = exp(-2 * M_PI * M_PI * u_na / (d111 * d111)),
           w_cl = exp(-2 * M_PI * M_PI * u_cl / (d111 * d111));
    int odd = find_hkl(&t, &c, 1, 1, 1);
    double f111 = 4.0 * (3.63 * w_na - 9.577 * w_cl);
    CHECK(odd >= 0);
    CHECK_REL(bf_reflection_table_f2(&t, odd, d111, NULL), f111 * f111 / 100.0, 1e-12);
    bf_reflection_table_free(&t);
    for (int a = 0; a < c.n_atoms; a++)
        if (!strcmp(c.atoms[a].element, "Na"))
            snprintf(c.atoms[a].element, sizeof c.atoms[a].element, "B");
    CHECK(bf_reflection_table_build(&c, &(bf_radiation){.kind = BF_RADIATION_NEUTRON, .b_table = BF_B_TABLE_GSAS2}, 4, 4, 4, &t, NULL) == BF_OK);
    odd = find_hkl(&t, &c, 1, 1, 1);
    double re = 4.0 * (5.3 * w_na - 9.579 * w_cl), im = 4.0 * (-0.213 * w_na);
    CHECK(odd >= 0);
    CHECK_REL(bf_reflection_table_f2(&t, odd, d111, NULL), (re * re + im * im) / 100.0, 1e-12);
    bf_reflection_table_free(&t);
    /* a resonant absorber in GSAS-II's table: an error naming the file and the atom */
    snprintf(c.atoms[0].element, sizeof c.atoms[0].element, "Gd");
    bf_error e = {0};
    CHECK(bf_reflection_table_build(&c, &(bf_radiation){.kind = BF_RADIATION_NEUTRON, .b_table = BF_B_TABLE_GSAS2}, 4, 4, 4, &t, &e) == BF_ERR_INVALID);
    CHECK_MSG(strstr(e.msg, "NaCl.cif") && strstr(e.msg, c.atoms[0].label) &&
                  strstr(e.msg, "Gd"), "%s", e.msg);
    bf_crystal_free(&c);
}
