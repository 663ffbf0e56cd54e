/* fuzz/fuzz_rank_block.c — the framing of a packed block that rank 0 receives from
 * another rank (bf_h5_rows_store, DESIGN §10 "As built"): chunk counts and sizes
 * from arbitrary bytes must be checked against the buffer before any chunk is
 * written. The block is copied to an exact-size heap buffer so ASan sees every read
 * past its end; the file lives in memory (HDF5's core driver, no backing store). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static hid_t file = H5I_INVALID_HID;
    static int made = 0;
    if (!made) {
        made = 1;
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        H5Pset_fapl_core(fapl, 1 << 20, 0);
        file = H5Fcreate("fuzz_rank_block.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        H5Pclose(fapl);
    }
    if (file < 0 || size < 1)
        return 0;
    /* first byte: which shape and how many rows (a partial last block included) */
    static int n_ds = 0;
    char name[32];
    snprintf(name, sizeof name, "rows%d", n_ds++);
    hsize_t dims[2] = {(hsize_t)(1 + data[0] % 64), (hsize_t)(1 + data[0] / 64) * 4096};
    bf_dataset_compression comp = bf_dataset_compression_default();
    comp.threaded = (data[0] & 1) == 0; /* odd: the raw-rows framing */
    bf_h5_rows w;
    bf_error err = {0};
    if (bf_h5_rows_create(file, "fuzz.h5", name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, &comp,
                          &w, &err) != BF_OK)
        return 0;
    bf_h5_block b = {.bytes = malloc(size - 1 ? size - 1 : 1), .n_bytes = size - 1};
    if (b.bytes) {
        memcpy(b.bytes, data + 1, size - 1);
        hsize_t nrows = w.chunk_rows ? w.chunk_rows : 1;
        if (nrows > dims[0])
            nrows = dims[0];
        (void)bf_h5_rows_store(&w, 0, nrows, &b, &err);
        free(b.bytes);
    }
    bf_h5_rows_close(&w);
    H5Ldelete(file, name, H5P_DEFAULT);
    return 0;
}
