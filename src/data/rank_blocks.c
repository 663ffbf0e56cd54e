/* data/rank_blocks.c — blocks of rows shared out over the ranks of one job, written
 * by rank 0 (bf_rank_link, braggflow/data.h; DESIGN §10 "As built"). Used by
 * `sample` (dataset_h5.c) and `sample-peaks` (patches_h5.c). */
#include <stdlib.h>

#include "data/data_internal.h"

bf_status bf_rank_agree(const bf_rank_link *link, bf_status st, bf_error *err)
{
    return link && link->size > 1 ? link->agree(link->user, st, err) : st;
}

/* Round by round every rank makes its block (k = round * size + rank), all agree
 * that none failed, then rank 0 stores its own and receives the others' in row
 * order while they send. After any agreement every rank has the same status, so
 * every rank takes the same number of agreements; a store or send failure of the
 * last round is left to the caller's next agreement. */
bf_status bf_rank_blocks(const bf_rank_link *link, long n_blocks, bf_rank_make_fn make,
                         bf_rank_store_fn store, void *user, bf_status st, bf_error *err)
{
    const int many = link && link->size > 1;
    const int rank = many ? link->rank : 0, size = many ? link->size : 1;
    st = bf_rank_agree(link, st, err);
    if (st != BF_OK)
        return st; /* agreed: no rank starts the rounds */
    for (long k0 = 0; k0 < n_blocks; k0 += size) {
        bf_h5_block own = {0};
        const long k = k0 + rank;
        if (st == BF_OK && k < n_blocks)
            st = make(user, k, &own, err);
        st = bf_rank_agree(link, st, err); /* the same on every rank from here */
        if (st != BF_OK) {
            free(own.bytes);
            break;
        }
        if (rank == 0) {
            for (int j = 0; j < size && k0 + j < n_blocks; j++) {
                bf_h5_block b = own;
                bf_status rs = BF_OK;
                if (j > 0) {
                    void *buf = NULL;
                    bf_error sink = {0};
                    /* received even after a failure here: rank j waits on its send */
                    rs = link->recv_from(link->user, j, &buf, &b.n_bytes,
                                         st == BF_OK ? err : &sink);
                    b.bytes = buf;
                }
                if (st == BF_OK)
                    st = rs != BF_OK ? rs : store(user, k0 + j, &b, err);
                if (j > 0)
                    free(b.bytes);
            }
        } else if (k < n_blocks) {
            st = link->send_to_0(link->user, own.bytes, own.n_bytes, err);
        }
        free(own.bytes);
    }
    return st;
}
