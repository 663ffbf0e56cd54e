/* core/rng.c — counter-style reproducible streams: (seed, stream_id) -> state.
 * SplitMix64 (Steele, Lea & Flood 2014) expands the key into xoshiro256**
 * state (Blackman & Vigna 2018); both written here from their published
 * recurrences. */
#include "braggflow/core.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void bf_rng_init(bf_rng *rng, uint64_t seed, uint64_t stream_id)
{
    /* Mix the stream id through one SplitMix step first so that neighbouring
     * (seed, stream) pairs start far apart. */
    uint64_t key = seed;
    uint64_t mixed_stream = stream_id;
    uint64_t k = splitmix64(&mixed_stream);
    key ^= k;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&key);
}

uint64_t bf_rng_u64(bf_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double bf_rng_uniform(bf_rng *rng) { return (double)(bf_rng_u64(rng) >> 11) * 0x1.0p-53; }

double bf_rng_uniform_range(bf_rng *rng, double lo, double hi)
{
    return lo + (hi - lo) * bf_rng_uniform(rng);
}

double bf_rng_normal(bf_rng *rng)
{
    double u1 = 1.0 - bf_rng_uniform(rng); /* (0, 1]: log is finite */
    double u2 = bf_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}
