/* Behaviour: a handle whose kind bits were rewritten names nothing (issue 10,
 * found by an adversarial pass after the first fix). SPEC "Edges": "A handle
 * of one kind, or one whose kind bits were altered,
 * never succeeds as another kind, and never succeeds against an entry of
 * another kind (a no-op install guard names an async entry, and only that)."
 * Handles were `number << 3 | tag` with borrows and no-op guards reusing the
 * entry's number, so rewriting the low 3 bits of one handle gave another
 * kind's valid handle (a borrow uninstalled its entry; a no-op guard popped
 * the async entry). Each case prints what the altered handle did. */
#include <stdio.h>
#include <stdint.h>
#include "storectx.h"

static int dummy, other;
static int faults;

static void expect_refused(const char *what, storectx_status st) {
    printf("%-58s -> %s\n", what, storectx_status_str(st));
    if (st == STORECTX_OK) { printf("  FAULT: altered handle succeeded as another kind\n"); faults++; }
}

static uint64_t retag(uint64_t raw, unsigned tag) { return (raw & ~(uint64_t)7) | tag; }

int main(void) {
    /* 1. a borrow handle, kind bits rewritten to the install tag, uninstalls its entry */
    storectx_store_id a = storectx_store_id_new();
    storectx_install_guard ga;
    storectx_borrow b;
    void *p;
    storectx_install(a, &dummy, &ga);
    storectx_get_current(a, &p, &b);
    storectx_borrow_release(b);
    storectx_install_guard forged = { retag(b.raw, 1) };
    expect_refused("uninstall(borrow handle with install kind bits)", storectx_uninstall(forged));
    printf("  depth now %zu (was 1)\n", storectx_depth());
    if (storectx_depth() == 1) storectx_uninstall(ga);

    /* 2. an install guard, kind bits rewritten to the borrow tag, releases a borrow */
    storectx_install(a, &dummy, &ga);
    storectx_get_current(a, &p, &b);
    storectx_borrow fb = { retag(ga.raw, 3) };
    expect_refused("borrow_release(install guard with borrow kind bits)", storectx_borrow_release(fb));
    storectx_borrow_release(b);
    storectx_uninstall(ga);

    /* 3. a no-op install guard, kind bits rewritten to the install tag, pops the
     *    async entry (and releases its lock) */
    storectx_async_store *s;
    storectx_write_guard *wg;
    storectx_install_guard gasync, noop;
    storectx_store_id sid = storectx_store_id_new();
    storectx_async_store_new(sid, &other, &s);
    storectx_async_store_try_write(s, &wg);
    storectx_install_async(wg, &gasync);
    storectx_install(sid, &other, &noop);
    printf("noop installed? %d (0 expected)\n", storectx_install_guard_installed(noop));
    storectx_install_guard fnoop = { retag(noop.raw, 1) };
    printf("install_guard_installed(noop with install bits) = %d\n", storectx_install_guard_installed(fnoop));
    expect_refused("uninstall(no-op guard with install kind bits)", storectx_uninstall(fnoop));
    printf("  depth now %zu (was 1)\n", storectx_depth());
    if (storectx_depth() == 1) storectx_uninstall(gasync);

    /* 4. an install guard of a sync entry with the no-op tag (must be refused: sync entry) */
    storectx_install(a, &dummy, &ga);
    storectx_install_guard fno = { retag(ga.raw, 2) };
    expect_refused("uninstall(sync install guard with no-op kind bits)", storectx_uninstall(fno));
    storectx_uninstall(ga);

    storectx_async_store_release(s);
    printf("%d fault(s)\n", faults);
    return faults != 0;
}
