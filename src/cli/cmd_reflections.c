/* cli/cmd_reflections.c — `braggflow reflections`: the reflection list as CSV. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

static const char *usage =
    "usage: braggflow reflections --cif FILE --instprm FILE --cell \"a b c alpha beta gamma\"\n"
    "                             [--tof-min MS --tof-max MS --tof-step REL]\n"
    "                             [--tth-min DEG --tth-max DEG --tth-step DEG] [--scale S]\n\n"
    "Writes to stdout, as CSV, every reflection that contributes to the simulated\n"
    "pattern (Laue-unique, systematic absences removed, by decreasing d).\n"
    "TOF instruments (Type PNT):\n"
    "  h,k,l,mult,d,tof_us,F2,sigma2,gamma,alpha,beta\n"
    "d in Angstrom; F2 = |F|^2 in (1e-12 cm)^2 (GSAS-II's Fcalc2); sigma2 = Gaussian\n"
    "variance (us^2); gamma = Lorentzian FWHM (us); alpha, beta in 1/us.\n"
    "Constant-wavelength instruments (PXC, PNC):\n"
    "  h,k,l,mult,d,two_theta_deg,two_theta2_deg,F2,sig_cdeg2,gam_cdeg,icorr\n"
    "two_theta_deg = Ka1 (or single-line) position incl. Zero; two_theta2_deg = its Ka2\n"
    "partner (0 without Lam2); F2 in electrons^2 (X-rays) or (1e-12 cm)^2 (neutrons);\n"
    "sig = Gaussian variance (centideg^2), gam = Lorentzian FWHM (centideg), as GSAS-II;\n"
    "icorr = scale mult Lorentz-polarisation / V (GSAS-II's Icorr).\n\n"
    "options:\n" BF_CLI_SIM_HELP "\nexample:\n"
    "  braggflow reflections --cif examples/cif/BaTiO3-P4mm.cif \\\n"
    "      --instprm examples/instrument/nomad-like-bank4.instprm --cell \"3.99 3.99 4.04 90 90 90\"\n"
    "  braggflow reflections --cif examples/cif/NaCl.cif \\\n"
    "      --instprm examples/instrument/cw-neutron-1.54A.instprm --cell \"5.64 5.64 5.64 90 90 90\" \\\n"
    "      --tth-min 5 --tth-max 150 --tth-step 0.05\n";

int cmd_reflections(int argc, char **argv)
{
    static const struct option longopts[] = {BF_CLI_SIM_OPTIONS, {0, 0, 0, 0}};
    bf_cli_sim_args a;
    bf_cli_sim_args_defaults(&a);
    int status = bf_cli_sim_parse("reflections", usage, longopts, argc, argv, &a);
    if (status >= 0)
        return status;
    bf_error err = {0};
    if (!a.cif_path || !a.instprm_path || !a.cell_text)
        return bf_cli_usage_error("reflections", "--cif, --instprm and --cell are required");

    bf_cell cell;
    bf_powder_sim *sim = NULL;
    bf_reflection *refl = NULL;
    int n = 0;
    bf_status st = bf_cli_sim_open(&a, &cell, &sim, &err);
    if (st == BF_OK)
        st = bf_powder_sim_reflections(sim, &cell, &refl, &n, &err);
    if (st == BF_OK && bf_powder_sim_grid(sim)->unit == BF_X_TTH_DEG) {
        printf("h,k,l,mult,d,two_theta_deg,two_theta2_deg,F2,sig_cdeg2,gam_cdeg,icorr\n");
        for (int i = 0; i < n; i++) {
            const bf_reflection *r = &refl[i];
            printf("%d,%d,%d,%d,%.9f,%.9f,%.9f,%.9g,%.9g,%.9g,%.9g\n", r->h, r->k, r->l, r->mult,
                   r->d_A, r->tth_deg, r->tth2_deg, r->f2, r->sig_cdeg2, r->gam_cdeg, r->icorr);
        }
    } else if (st == BF_OK) {
        printf("h,k,l,mult,d,tof_us,F2,sigma2,gamma,alpha,beta\n");
        for (int i = 0; i < n; i++) {
            const bf_reflection *r = &refl[i];
            printf("%d,%d,%d,%d,%.9f,%.6f,%.9g,%.9g,%.9g,%.9g,%.9g\n", r->h, r->k, r->l, r->mult,
                   r->d_A, r->tof_us, r->f2, r->sigma2_us2, r->gamma_us, r->alpha_per_us,
                   r->beta_per_us);
        }
        if (fflush(stdout) != 0 || ferror(stdout))
            st = bf_error_set(&err, BF_ERR_IO, "stdout: write failed");
    }
    free(refl);
    bf_powder_sim_destroy(sim);
    return st == BF_OK ? BF_EXIT_OK : bf_cli_fail(&err);
}
