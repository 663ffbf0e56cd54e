/* fuzz/fuzz_safetensors.c — safetensors parser on arbitrary bytes. On success every
 * tensor's bytes are read back, so a range reaching outside the buffer trips ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy: the parser takes ownership, and ASan sees its end. */
    void *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    bf_safetensors st;
    bf_error err = {0};
    if (bf_safetensors_parse(buf, size, "fuzz.safetensors", &st, &err) == BF_OK) {
        volatile unsigned sum = 0;
        for (int i = 0; i < st.n_tensors; i++) {
            const bf_st_tensor *t = &st.tensors[i];
            const uint8_t *b = t->data;
            for (size_t k = 0; k < t->nbytes; k++)
                sum += b[k];
            if (bf_safetensors_find(&st, t->name) == NULL)
                abort(); /* every parsed name must be findable */
        }
        for (int i = 0; i < st.n_meta; i++)
            if (bf_safetensors_meta(&st, st.meta[i].key) == NULL)
                abort();
        (void)sum;
    } else if (err.code == BF_OK || strncmp(err.msg, "fuzz.safetensors: ", 18) != 0) {
        abort(); /* a failure always says what and where */
    }
    bf_safetensors_free(&st);
    return 0;
}
