/* config: a sweep file -> a validated, expanded sweep (docs/architecture.md,
 * the sweep file). Reading the file and the order of the stages live here;
 * the stages are described in config_impl.h. */
#include "config_impl.h"

#include "../util/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "sweeps/quick.yaml" -> "quick". */
static void default_name(const char *path, char *name, size_t n)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strcspn(base, ".");
    if (len == 0) {
        base = "sweep";
        len = 5;
    }
    if (len >= n)
        len = n - 1;
    memcpy(name, base, len);
    name[len] = '\0';
}

void config_free(config_sweep *s)
{
    if (!s)
        return;
    free(s->path);
    free(s->text);
    free(s->runs);
    free(s->run_ids);
    free(s);
}

int config_load_text(config_sweep **out, const char *text, size_t len,
                     const char *name_for_messages, size_t max_runs, err *e)
{
    const char *file = name_for_messages ? name_for_messages : "<text>";
    err scratch_err; /* the checks read back messages: never work without one */
    if (!e)
        e = &scratch_err;
    err_clear(e);
    if (len >= 8 && memcmp(text, "\x89HDF\r\n\x1a\n", 8) == 0)
        return err_set(e, ERR_INPUT,
                       "%s: an HDF5 file (a results file?), not a sweep YAML; the YAML of the "
                       "sweep that wrote a results file is stored in it: `untangle status %s` "
                       "shows where it stands", file, file);
    if (len > CONFIG_MAX_BYTES)
        return err_set(e, ERR_INPUT,
                       "%s: %zu bytes, more than the limit of %d (1 MiB) for a sweep file", file,
                       len, CONFIG_MAX_BYTES);
    doc d = {0};
    chk c = {0};
    int rc = 0;
    config_sweep *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(file)) || !(s->text = malloc(len + 1))) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", file);
        goto cleanup;
    }
    if (len)
        memcpy(s->text, text, len);
    s->text[len] = '\0';
    s->text_len = len;
    /* the sweep hash: stored in results files and compared on resume */
    s->hash = hash_fnv1a(HASH_FNV1A_INIT, s->text, len);
    default_name(file, s->name, sizeof s->name);
    run_config_defaults(&s->base);
    c.x = (ctx){s->path, s->text, len, e};
    c.s = s;
    c.max_runs = max_runs ? max_runs : CONFIG_DEFAULT_MAX_RUNS;
    if ((rc = tree_parse(&c.x, &d)) < 0)
        goto cleanup;
    c.root = d.root;
    if ((rc = check_top(&c)) < 0 || (rc = grid_expand(&c)) < 0)
        goto cleanup;
    list_find_varying(s);
    *out = s;
    s = NULL;
cleanup:
    free(c.seeds);
    tree_free(&d);
    config_free(s);
    return rc;
}

int config_load(config_sweep **out, const char *path, size_t max_runs, err *e)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = err_set(e, ERR_INPUT, "cannot read sweep file '%s': %s", path, strerror(errno));
        goto cleanup;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = err_set(e, ERR_INPUT, "cannot read sweep file '%s': %s", path, strerror(EISDIR));
        goto cleanup;
    }
    /* read at most one byte past the limit: enough to refuse a huge file or
     * an endless stream without holding it */
    if (!(buf = malloc((size_t)CONFIG_MAX_BYTES + 1))) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    while (len <= (size_t)CONFIG_MAX_BYTES) {
        ssize_t k = read(fd, buf + len, (size_t)CONFIG_MAX_BYTES + 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = err_set(e, ERR_INPUT, "cannot read sweep file '%s': %s", path, strerror(errno));
            goto cleanup;
        }
        if (k == 0)
            break;
        len += (size_t)k;
    }
    rc = config_load_text(out, buf, len, path, max_runs, e);
cleanup:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}
