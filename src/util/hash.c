/* The checksums of hash.h. */
#include "hash.h"

#include <string.h>
#include <zlib.h>

uint64_t hash_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t hash_fnv1a_str(uint64_t h, const char *s) { return hash_fnv1a(h, s, strlen(s)); }

/* zlib's CRC-32 is this one (the IEEE polynomial, reflected, ~0 in and out)
 * and runs several bytes per cycle; a checkpoint holds tens of MB. */
uint32_t hash_crc32(uint32_t crc, const void *p, size_t n)
{
    return (uint32_t)crc32_z(crc, p, n);
}
