/* The byte buffer and cursor of bytes.h. */
#include "bytes.h"

#include <stdlib.h>
#include <string.h>

void bytes_put(bytes *b, const void *src, size_t n)
{
    if (b->fail)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->fail = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, src, n);
    b->len += n;
}

void bytes_u32(bytes *b, uint32_t v) { bytes_put(b, &v, sizeof v); }
void bytes_u64(bytes *b, uint64_t v) { bytes_put(b, &v, sizeof v); }

void bytes_str(bytes *b, const char *s)
{
    size_t n = strlen(s ? s : "");
    if (n > UINT32_MAX) {
        b->fail = 1;
        return;
    }
    bytes_u32(b, (uint32_t)n);
    bytes_put(b, s ? s : "", n);
}

void bytes_free(bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void cursor_get(cursor *c, void *dst, size_t n)
{
    if (c->fail || c->len - c->at < n) {
        c->fail = 1;
        return;
    }
    if (n)
        memcpy(dst, c->p + c->at, n);
    c->at += n;
}

uint32_t cursor_u32(cursor *c)
{
    uint32_t v = 0;
    cursor_get(c, &v, sizeof v);
    return v;
}

uint64_t cursor_u64(cursor *c)
{
    uint64_t v = 0;
    cursor_get(c, &v, sizeof v);
    return v;
}

char *cursor_str(cursor *c)
{
    uint32_t n = cursor_u32(c);
    if (c->fail || c->len - c->at < n) {
        c->fail = 1;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        c->fail = 1;
        return NULL;
    }
    memcpy(s, c->p + c->at, n);
    s[n] = '\0';
    c->at += n;
    return s;
}
