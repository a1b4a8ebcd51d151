/* hash: the two checksums of the project. FNV-1a (64 bit) names things: run
 * ids and the sweep hash (stable across hosts and versions; not a security
 * boundary). CRC-32 (IEEE 802.3) guards bytes on disk: journal records and
 * checkpoints. */
#ifndef UNTANGLE_UTIL_HASH_H
#define UNTANGLE_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV1A_INIT 0xcbf29ce484222325ULL

/* FNV-1a of n bytes at p, continued from h (HASH_FNV1A_INIT to start). */
uint64_t hash_fnv1a(uint64_t h, const void *p, size_t n);
/* The same over a NUL-terminated string (without its NUL). */
uint64_t hash_fnv1a_str(uint64_t h, const char *s);

/* CRC-32 (reflected polynomial 0xEDB88320) of n bytes, continued from crc
 * (0 to start). */
uint32_t hash_crc32(uint32_t crc, const void *p, size_t n);

#endif
