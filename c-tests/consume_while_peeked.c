/* Behaviour: readers of a handle never make its owner's consume fail
 * (issue 10/11, found by an adversarial pass of the lock-free registry).
 * One thread consumes a handle (write_guard_release / resume) while other
 * threads only peek at it (write_guard_store / suspended_len), as a careless
 * embedder's debug/metrics thread would. The peeks may answer NULL/0 once the
 * handle is spent, but the owner's consume of a valid handle must never be
 * refused: a refused write_guard_release (void!) leaks the lock forever; a
 * refused resume says STALE_HANDLE for a segment that is still live and keeps
 * its locks.
 * usage: consume_while_peeked [iterations] [peekers] [guard|segment|both];
 * defaults 200,000 / 6 / both, divided by STRESS_SCALE (valgrind). */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "storectx.h"

static _Atomic(void *) target;      /* handle being peeked (guard or segment) */
static _Atomic int mode;            /* 0 guard, 1 segment */
static _Atomic int stop;
static int dummy;

static void *peeker(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        void *h = atomic_load(&target);
        if (!h) continue;
        if (atomic_load(&mode) == 0) (void)storectx_write_guard_store(h);
        else (void)storectx_suspended_len(h);
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *scale_env = getenv("STRESS_SCALE");
    int scale = scale_env ? atoi(scale_env) : 1;
    if (scale < 1) scale = 1;
    int iters = argc > 1 ? atoi(argv[1]) : 200000 / (scale * scale);
    int npeek = argc > 2 ? atoi(argv[2]) : 6;
    storectx_async_store *s;
    storectx_async_store_new(storectx_store_id_new(), &dummy, &s);
    pthread_t p[16];
    for (int i = 0; i < npeek; i++) pthread_create(&p[i], NULL, peeker, NULL);

    int leaked_guards = 0, false_stale = 0;
    const char *which = argc > 3 ? argv[3] : "both";
    atomic_store(&mode, 0);
    for (int i = 0; which[0] != 's' && i < iters && leaked_guards < 1; i++) {
        storectx_write_guard *g = NULL;
        if (storectx_async_store_try_write(s, &g) != STORECTX_OK) { puts("setup: store locked"); break; }
        atomic_store(&target, g);
        for (volatile int k = 0; k < 200; k++) {}
        storectx_write_guard_release(g);
        atomic_store(&target, NULL);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", storectx_last_error());
        storectx_write_guard *g2 = NULL;
        if (storectx_async_store_try_write(s, &g2) != STORECTX_OK) {
            printf("FAULT iter %d: write_guard_release of a valid guard did nothing: %s\n", i, msg);
            leaked_guards++;
        } else storectx_write_guard_release(g2);
    }

    atomic_store(&mode, 1);
    for (int i = 0; which[0] != 'g' && i < iters && false_stale < 1; i++) {
        storectx_write_guard *g = NULL;
        storectx_install_guard ig;
        if (storectx_async_store_try_write(s, &g) != STORECTX_OK) { puts("store locked (leaked above)"); break; }
        if (storectx_install_async(g, &ig)) { puts("setup install"); break; }
        storectx_suspended *seg = NULL;
        if (storectx_suspend(0, &seg)) { puts("setup suspend"); break; }
        atomic_store(&target, seg);
        for (volatile int k = 0; k < 200; k++) {}
        size_t base;
        storectx_status st = storectx_resume(seg, &base);
        atomic_store(&target, NULL);
        if (st != STORECTX_OK) {
            printf("FAULT iter %d: resume of a valid segment -> %s (%s); suspended_len now %zu\n", i,
                   storectx_status_str(st), storectx_last_error(), storectx_suspended_len(seg));
            false_stale++;
            storectx_suspended_free(seg);
            continue;
        }
        storectx_uninstall(ig);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < npeek; i++) pthread_join(p[i], NULL);
    printf("iterations %d, peekers %d: leaked guards %d, refused resumes %d\n", iters, npeek,
           leaked_guards, false_stale);
    return leaked_guards || false_stale;
}
