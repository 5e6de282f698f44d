/* The soak's clock: CLOCK_REALTIME (and everything read from it) shifted by an offset another
 * process sets, so every process of the local stack sees the same stepped wall clock.
 *
 * LD_PRELOAD'ed into each process of the stack by bench/soak (SOAK_CLOCK_FILE names an 8-byte file
 * holding the offset in nanoseconds, little-endian, mmap'ed shared so a change is seen at once).
 * Only the wall clock moves: CLOCK_MONOTONIC, sleeps and timeouts stay real, so a step forward
 * looks to every process like a VM resumed after a pause (timers past due, tokens and leases aged),
 * while work in between runs at its real speed. libfaketime's speed-up was tried first and dropped:
 * it also scales timed waits, and Python 3.11's sem_clockwait (threading.Event.wait(timeout)) then
 * never returns, while time.sleep failed with EINVAL when only the wall clock was faked.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;
static const volatile int64_t *offset_ns;

__attribute__((constructor)) static void soak_clock_init(void) {
    real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    const char *path = getenv("SOAK_CLOCK_FILE");
    if (path == NULL || *path == '\0') return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    void *map = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map != MAP_FAILED) offset_ns = (const volatile int64_t *)map;
}

static void shift(struct timespec *ts) {
    if (offset_ns == NULL) return;
    int64_t total = (int64_t)ts->tv_nsec + __atomic_load_n(offset_ns, __ATOMIC_RELAXED);
    int64_t seconds = total / 1000000000;
    int64_t nanos = total % 1000000000;
    if (nanos < 0) {
        nanos += 1000000000;
        seconds -= 1;
    }
    ts->tv_sec += (time_t)seconds;
    ts->tv_nsec = (long)nanos;
}

int clock_gettime(clockid_t clock_id, struct timespec *ts) {
    if (real_clock_gettime == NULL) real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real_clock_gettime(clock_id, ts);
    if (rc == 0 && (clock_id == CLOCK_REALTIME || clock_id == CLOCK_REALTIME_COARSE)) shift(ts);
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    (void)tz;
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    if (rc == 0) {  /* glibc declares tv nonnull */
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return rc;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
    if (out != NULL) *out = ts.tv_sec;
    return ts.tv_sec;
}
