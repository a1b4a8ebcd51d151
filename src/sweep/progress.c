/* The progress record of a run in flight, beside the results file:
 * RESULTS.h5.runs/<run_id>.progress (docs/architecture.md section 7). The
 * run's process writes it at most once a second while it trains (a text file
 * of "key value" lines, replaced by rename, so a reader never sees half of
 * one); the worker removes it when the run's process has ended. `untangle
 * status` reads it without disturbing the sweep. */
#include "sweep_impl.h"

#include "../util/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double sweep_wall_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int sweep_progress_write(const char *path, const sweep_progress *p)
{
    char text[2048];
    int n = snprintf(text, sizeof text,
                     "run_id %s\nindex %ld\nattempt %d\nmodel %s\nhost %s\nrank %d\npid %ld\n"
                     "step %ld\nsteps %ld\nstarted %.3f\nupdated %.3f\n",
                     p->run_id, p->index, p->attempt, p->model, p->host, p->rank, p->pid, p->step,
                     p->steps, p->started, p->updated);
    for (int i = 0; i < p->n_terms && n > 0 && (size_t)n < sizeof text; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "term %s %.9g\n", p->names[i],
                      p->values[i]);
    if (n < 0 || (size_t)n >= sizeof text)
        return -1;
    /* a temporary of this process, created exclusively (never through a
     * link), then renamed over the record */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0)
        return -1;
    int rc = fileio_write_all(fd, text, (size_t)n);
    if (close(fd) < 0)
        rc = -1;
    if (rc < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* The rest of line after "key ", or NULL. */
static const char *field(const char *line, const char *key)
{
    size_t k = strlen(key);
    return strncmp(line, key, k) == 0 && line[k] == ' ' ? line + k + 1 : NULL;
}

int sweep_progress_read(const char *path, sweep_progress *p)
{
    memset(p, 0, sizeof *p);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    int have = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        const char *v;
        if ((v = field(line, "run_id")))
            have |= 1, snprintf(p->run_id, sizeof p->run_id, "%.16s", v);
        else if ((v = field(line, "index")))
            p->index = strtol(v, NULL, 10);
        else if ((v = field(line, "attempt")))
            p->attempt = (int)strtol(v, NULL, 10);
        else if ((v = field(line, "model")))
            snprintf(p->model, sizeof p->model, "%.15s", v);
        else if ((v = field(line, "host")))
            snprintf(p->host, sizeof p->host, "%.63s", v);
        else if ((v = field(line, "rank")))
            p->rank = (int)strtol(v, NULL, 10);
        else if ((v = field(line, "pid")))
            p->pid = strtol(v, NULL, 10);
        else if ((v = field(line, "step")))
            have |= 2, p->step = strtol(v, NULL, 10);
        else if ((v = field(line, "steps")))
            p->steps = strtol(v, NULL, 10);
        else if ((v = field(line, "started")))
            p->started = strtod(v, NULL);
        else if ((v = field(line, "updated")))
            have |= 4, p->updated = strtod(v, NULL);
        else if ((v = field(line, "term")) && p->n_terms < SWEEP_PROGRESS_TERMS) {
            char name[32];
            double val;
            if (sscanf(v, "%31s %lf", name, &val) == 2) {
                snprintf(p->names[p->n_terms], sizeof p->names[0], "%.15s", name);
                p->values[p->n_terms++] = val;
            }
        }
    }
    fclose(f);
    return have == 7 ? 0 : -1;
}
