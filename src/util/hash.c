/* The checksums of hash.h. */
#include "hash.h"

#include <string.h>

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

uint32_t hash_crc32(uint32_t crc, const void *p, size_t n)
{
    /* The table lives on the stack: no static state. */
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    const uint8_t *q = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ q[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}
