/* placeholder: replaced by the CLI dispatcher */
#include "braggflow/core.h"
int main(void) { return 0; }
