/* cli/cmd_serve.c — placeholder until the command lands (issue 10). */
#include "cli/cli.h"

#include <stdio.h>

int cmd_serve(int argc, char **argv)
{
    fprintf(stderr, "braggflow: this command is not built yet\n");
    return BF_EXIT_FAIL;
}
