/* bytes: a growable byte buffer and a bounds-checked reading cursor, for the
 * flat binary messages of the project (a run result through a pipe or MPI, a
 * journal record). Values are written in native byte order: these buffers
 * never leave the machine (or the set of identical peers) that wrote them.
 *
 * Failure is sticky: a failed allocation or a read past the end sets fail,
 * every later call does nothing, and the caller checks fail once at the end. */
#ifndef UNTANGLE_UTIL_BYTES_H
#define UNTANGLE_UTIL_BYTES_H

#include <stddef.h>
#include <stdint.h>

typedef struct bytes {
    uint8_t *p;     /* malloc'd, owned; NULL while empty */
    size_t len, cap;
    int fail;       /* an allocation failed: the content is incomplete */
} bytes;

/* Append n bytes of src (doubling the capacity as needed). */
void bytes_put(bytes *b, const void *src, size_t n);
void bytes_u32(bytes *b, uint32_t v);
void bytes_u64(bytes *b, uint64_t v);
/* u32 length + the bytes of s (NULL is ""); no NUL. */
void bytes_str(bytes *b, const char *s);
/* Free the buffer; b returns to empty. */
void bytes_free(bytes *b);

typedef struct cursor {
    const uint8_t *p; /* borrowed */
    size_t len, at;
    int fail;         /* a read went past the end (or an allocation failed) */
} cursor;

/* Copy the next n bytes into dst; past the end sets fail and leaves dst. */
void cursor_get(cursor *c, void *dst, size_t n);
uint32_t cursor_u32(cursor *c);
uint64_t cursor_u64(cursor *c);
/* A malloc'd NUL-terminated copy of the next bytes_str string; NULL (and
 * fail set) when it is cut short or memory runs out. */
char *cursor_str(cursor *c);

#endif
