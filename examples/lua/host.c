/* host.c: libstorectx embedded in a real Lua 5.4 interpreter.
 *
 * Behaviour tested (every step is CHECKed; the program exits non-zero on any
 * failure, and `--trace` prints what happens):
 *   1. each lua_State — a main state or a coroutine's thread — is a store
 *      with its own store id; host functions registered into Lua find their
 *      state with storectx_get_current by that id (and check that the store
 *      found is the lua_State that called them);
 *   2. nested cross-state calls: a host function in state "app" calls Lua
 *      code in state "pricing", whose host functions find "pricing" and are
 *      refused "app" (STORECTX_ERR_PAUSED), also when re-entering it;
 *   3. a coroutine whose C host function yields with lua_yieldk while its
 *      entries are installed (its own async entry, the bank's async entry,
 *      a borrow) is suspended into a segment kept with the coroutine, and
 *      resumed on ANOTHER pthread, where the continuation function finds
 *      its stores and releases the borrow;
 *      A coroutine that dies with an error while holding the bank leaves
 *      nothing behind: the host suspends and frees what it left;
 *   4. abandoned coroutines (never resumed) are collected on yet another
 *      thread, one by a full GC and one by lua_close, through a __gc that
 *      calls storectx_suspended_free: their write locks are released, which
 *      a fourth thread checks by taking them.
 * A lua_State family is not thread-safe: each family has a mutex, held by
 * whichever thread runs Lua code in it.
 *
 * Usage: host [--trace] [SCRIPT_DIR]   (SCRIPT_DIR defaults to the
 * directory given at build time with -DSCRIPT_DIR=...). */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "check.h"

#ifndef SCRIPT_DIR
#define SCRIPT_DIR "examples/lua"
#endif

/* ---- trace (only with --trace) ------------------------------------------ */

static int tracing;
static __thread const char *thread_name = "main";

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...) {
  if (!tracing) return;
  va_list ap;
  va_start(ap, fmt);
  printf("[%-4s] ", thread_name);
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
}

static void trace_stack(void) {
  if (!tracing) return;
  char text[1024];
  CHECK(storectx_describe(text, sizeof text) < sizeof text);
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
    trace("    | %s", line);
  if (storectx_is_empty()) trace("    | (empty stack)");
}

/* ---- stores ------------------------------------------------------------- */

typedef struct family family;

/* One store per lua_State: what storectx_get_current answers for its id. */
typedef struct lstore {
  storectx_store_id id;
  lua_State *L;                  /* the main state, or the coroutine's thread */
  const char *name;
  family *fam;
  int lookups;                   /* host functions that found it by id */
  /* coroutines only */
  storectx_async_store *lock;    /* its store is async: one runner at a time */
  storectx_install_guard self;   /* its own entry, pushed when it first runs */
  storectx_suspended *parked;    /* its entries while it is suspended */
  int ref;                       /* the host's registry reference to it */
} lstore;

struct family {
  pthread_mutex_t mutex;         /* one thread at a time in this family */
  lstore main;
};

static family app, pricing;

/* The bank: a C object behind an async store that Lua coroutines lock. */
typedef struct { long balance; } bank_t;
static bank_t bank;
static storectx_async_store *bank_lock;
static storectx_store_id bank_id;

/* What the continuation of host.wait saw, for main() to check. */
static int continuations;
static const char *continued_on;
static int collected;            /* segments freed by the __gc */

/* The store id a lua_State was given when it became a store: kept in the
 * state's extra space (lua_newthread copies it; spawn() overwrites it). */
static storectx_store_id state_id(lua_State *L) {
  storectx_store_id id;
  memcpy(&id, lua_getextraspace(L), sizeof id);
  return id;
}

static void set_state_id(lua_State *L, storectx_store_id id) {
  memcpy(lua_getextraspace(L), &id, sizeof id);
}

/* "STORECTX_ERR_PAUSED" out of "STORECTX_ERR_PAUSED: the store is ...". */
static void push_status_name(lua_State *L, storectx_status st) {
  const char *text = storectx_status_str(st);
  const char *colon = strchr(text, ':');
  lua_pushlstring(L, text, colon ? (size_t)(colon - text) : strlen(text));
}

/* ---- host functions, registered as the table `host` in every state ------ */

/* README lua lookup begins */
/* host.name(): the name of the state that calls it. Its store comes from
 * storectx_get_current by the state's store id; that the store found is the
 * calling lua_State is checked, not assumed. */
static int host_name(lua_State *L) {
  void *found;
  storectx_borrow b;
  storectx_status st = storectx_get_current(state_id(L), &found, &b);
  if (st != STORECTX_OK) return luaL_error(L, "host.name: %s", storectx_last_error());
  lstore *self = found;
  CHECK(self->L == L);
  self->lookups++;
  lua_pushstring(self->L, self->name);
  CHECK_OK(storectx_borrow_release(b));  /* before anything that may raise */
  return 1;
}
/* README lua lookup ends */

/* host.id(): this state's store id. */
static int host_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)state_id(L));
  return 1;
}

/* host.thread(): the name of the pthread running this code. */
static int host_thread(lua_State *L) {
  lua_pushstring(L, thread_name);
  return 1;
}

/* host.probe(id): the status name get_current answers for store `id` here. */
static int host_probe(lua_State *L) {
  void *found;
  storectx_status st =
      storectx_get_current_transient((storectx_store_id)luaL_checkinteger(L, 1), &found);
  push_status_name(L, st);
  return 1;
}

static family *family_named(const char *name) {
  if (strcmp(name, app.main.name) == 0) return &app;
  if (strcmp(name, pricing.main.name) == 0) return &pricing;
  return NULL;
}

/* Copies the value at `idx` of `from` (an integer or a string) onto `to`. */
static void copy_value(lua_State *from, int idx, lua_State *to) {
  if (lua_isinteger(from, idx))
    lua_pushinteger(to, lua_tointeger(from, idx));
  else if (lua_isnil(from, idx))
    lua_pushnil(to);
  else
    lua_pushstring(to, lua_tostring(from, idx));
}

/* host.call(state, function, args...): calls a global function of another
 * state family (integer and string arguments, one result), with that state's
 * store installed above the caller's. Answers nil and the status name when
 * the install is refused (re-entering a state that is paused below). */
static int host_call(lua_State *L) {
  void *found;
  if (storectx_get_current_transient(state_id(L), &found) != STORECTX_OK)
    return luaL_error(L, "host.call: %s", storectx_last_error());
  lstore *caller = found;
  family *to = family_named(luaL_checkstring(L, 1));
  const char *fn = luaL_checkstring(L, 2);
  if (to == NULL) return luaL_error(L, "host.call: no state %s", lua_tostring(L, 1));
  int nargs = lua_gettop(L) - 2;

  storectx_install_guard g;
  storectx_status st = storectx_install(to->main.id, &to->main, &g);
  if (st != STORECTX_OK) {
    trace("    %s -> %s: install refused: %s", caller->name, to->main.name, storectx_last_error());
    lua_pushnil(L);
    push_status_name(L, st);
    return 2;
  }
  trace("    %s -> %s.%s(): %s's store installed above %s's", caller->name,
        to->main.name, fn, to->main.name, caller->name);
  trace_stack();
  CHECK(pthread_mutex_lock(&to->mutex) == 0);
  lua_State *T = to->main.L;
  lua_getglobal(T, fn);
  for (int i = 3; i <= nargs + 2; i++) copy_value(L, i, T);
  int failed = lua_pcall(T, nargs, 1, 0) != LUA_OK;
  copy_value(T, -1, L);
  lua_pop(T, 1);
  CHECK(pthread_mutex_unlock(&to->mutex) == 0);
  CHECK_OK(storectx_uninstall(g));
  /* back in the caller: its store answers again */
  CHECK(storectx_get_current_transient(caller->id, &found) == STORECTX_OK && found == caller);
  if (failed) return lua_error(L);
  return 1;
}

/* host.bank_open(): locks the bank (try, never waits) and pushes its async
 * entry on top. Answers the install guard as an integer, or nil and the
 * status name. Guards are validated handles: a wrong integer handed back to
 * bank_close is refused, never undefined behaviour. */
static int host_bank_open(lua_State *L) {
  storectx_write_guard *w;
  storectx_status st = storectx_async_store_try_write(bank_lock, &w);
  if (st != STORECTX_OK) {
    lua_pushnil(L);
    push_status_name(L, st);
    return 2;
  }
  storectx_install_guard g;
  CHECK_OK(storectx_install_async(w, &g));
  lua_pushinteger(L, (lua_Integer)g.raw);
  return 1;
}

/* host.bank_close(guard): pops the bank's entry, which unlocks the bank. */
static int host_bank_close(lua_State *L) {
  storectx_install_guard g = {(uint64_t)luaL_checkinteger(L, 1)};
  storectx_status st = storectx_uninstall(g);
  if (st != STORECTX_OK) return luaL_error(L, "host.bank_close: %s", storectx_last_error());
  return 0;
}

/* host.deposit(n): the bank, found by its store id, must be on top. */
static int host_deposit(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  void *found;
  storectx_borrow b;
  storectx_status st = storectx_get_current(bank_id, &found, &b);
  if (st != STORECTX_OK) return luaL_error(L, "host.deposit: %s", storectx_last_error());
  bank_t *bk = found;
  bk->balance += (long)n;
  lua_pushinteger(L, bk->balance);
  CHECK_OK(storectx_borrow_release(b));
  return 1;
}

/* Continuation of host.wait, on whichever thread resumed the coroutine: its
 * entries are back (the host resumed its segment), so the borrow taken
 * before the yield is valid here and is released here. */
static int host_wait_continue(lua_State *L, int status, lua_KContext ctx) {
  CHECK(status == LUA_YIELD);
  storectx_borrow held = {(uint64_t)ctx};
  storectx_store_id top = storectx_active_store();
  void *found;
  CHECK_OK(storectx_get_current_transient(top, &found));
  CHECK(storectx_is_active(state_id(L)) || storectx_is_paused(state_id(L)));
  CHECK_OK(storectx_borrow_release(held));
  continuations++;
  continued_on = thread_name;
  trace("    host.wait continues on %s: store %" PRIu64 " on top again", thread_name, top);
  trace_stack();
  return 0;
}

/* host.wait(): yields the coroutine with its entries installed, holding a
 * borrow of the top store across the yield. */
static int host_wait(lua_State *L) {
  storectx_store_id top;
  void *found;
  storectx_borrow held;
  CHECK_OK(storectx_get_current_unborrowed(&top, &found, &held));
  trace("    host.wait yields on %s, borrowing store %" PRIu64, thread_name, top);
  trace_stack();
  return lua_yieldk(L, 0, (lua_KContext)held.raw, host_wait_continue);
}

static const luaL_Reg host_functions[] = {
    {"name", host_name},           {"id", host_id},
    {"thread", host_thread},       {"probe", host_probe},
    {"call", host_call},           {"bank_open", host_bank_open},
    {"bank_close", host_bank_close}, {"deposit", host_deposit},
    {"wait", host_wait},           {NULL, NULL},
};

/* ---- coroutines ---------------------------------------------------------- */

/* __gc of a coroutine's store (its userdata also keeps the thread alive):
 * a coroutine abandoned while suspended gives back its entries and locks. */
static int coroutine_gc(lua_State *L) {
  lstore *co = lua_touserdata(L, 1);
  if (co->parked != NULL) {
    trace("  __gc of %s on %s: storectx_suspended_free(its segment)", co->name, thread_name);
    storectx_suspended_free(co->parked);
    co->parked = NULL;
    collected++;
  }
  storectx_async_store_release(co->lock);
  co->lock = NULL;
  return 0;
}

/* A new coroutine of family f, its own store, ready to run global `fn`.
 * Leaves nothing on the main state's stack; the host keeps a reference. */
static lstore *spawn(family *f, const char *fn, const char *name) {
  lua_State *M = f->main.L;
  lstore *co = lua_newuserdatauv(M, sizeof *co, 1);
  memset(co, 0, sizeof *co);
  luaL_setmetatable(M, "storectx.coroutine");
  co->L = lua_newthread(M);
  lua_setiuservalue(M, -2, 1);                 /* the store keeps the thread */
  co->ref = luaL_ref(M, LUA_REGISTRYINDEX);    /* the host keeps the store */
  co->id = storectx_store_id_new();
  co->name = name;
  co->fam = f;
  set_state_id(co->L, co->id);
  CHECK_OK(storectx_async_store_new(co->id, co, &co->lock));
  CHECK(lua_getglobal(co->L, fn) == LUA_TFUNCTION);
  lua_pushstring(co->L, name);
  return co;
}

/* README lua resume begins */
/* Runs coroutine `co` on the calling thread until it yields or ends. Its
 * entries live on this thread's stack only while it runs: they are resumed
 * from its segment first and suspended into it again when it yields. */
static int step(lstore *co, int nargs) {
  size_t base = storectx_depth();
  if (co->parked != NULL) {                  /* resumed: its entries come back */
    CHECK_OK(storectx_resume(co->parked, &base));
    co->parked = NULL;
  } else {                                   /* first run: push its own store */
    storectx_write_guard *w;
    CHECK_OK(storectx_async_store_try_write(co->lock, &w));
    CHECK_OK(storectx_install_async(w, &co->self));
  }
  int nresults;
  int status = lua_resume(co->L, co->fam->main.L, nargs, &nresults);
  if (status == LUA_YIELD) {
    CHECK_OK(storectx_suspend(base, &co->parked));  /* they leave with it */
  } else if (status == LUA_OK) {
    CHECK_OK(storectx_uninstall(co->self));         /* unlocks its store */
  } else {                                   /* died: drop whatever it left */
    storectx_suspended *dead;
    CHECK_OK(storectx_suspend(base, &dead));
    storectx_suspended_free(dead);
  }
  CHECK(storectx_depth() == base);
  return status;
}
/* README lua resume ends */

/* ---- families ------------------------------------------------------------ */

static void open_family(family *f, const char *name, const char *dir) {
  pthread_mutexattr_t attr;  /* recursive: a state may call into itself */
  CHECK(pthread_mutexattr_init(&attr) == 0);
  CHECK(pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE) == 0);
  CHECK(pthread_mutex_init(&f->mutex, &attr) == 0);
  pthread_mutexattr_destroy(&attr);
  lua_State *L = luaL_newstate();
  CHECK(L != NULL);
  luaL_openlibs(L);
  f->main = (lstore){.id = storectx_store_id_new(), .L = L, .name = name, .fam = f};
  set_state_id(L, f->main.id);
  luaL_newlib(L, host_functions);
  lua_setglobal(L, "host");
  luaL_newmetatable(L, "storectx.coroutine");
  lua_pushcfunction(L, coroutine_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  char path[1024];
  CHECK(snprintf(path, sizeof path, "%s/%s.lua", dir, name) < (int)sizeof path);
  storectx_install_guard g;
  CHECK_OK(storectx_install(f->main.id, &f->main, &g));
  if (luaL_dofile(L, path) != LUA_OK) {
    fprintf(stderr, "%s: %s\n", path, lua_tostring(L, -1));
    exit(1);
  }
  CHECK_OK(storectx_uninstall(g));
  trace("state \"%s\" is store %" PRIu64 " (%s)", name, f->main.id, path);
}

/* Calls global `fn` of family f with its store installed (a host's
 * Function::call); answers its integer result. */
static lua_Integer call(family *f, const char *fn, lua_Integer arg) {
  CHECK(pthread_mutex_lock(&f->mutex) == 0);
  storectx_install_guard g;
  CHECK_OK(storectx_install(f->main.id, &f->main, &g));
  lua_State *L = f->main.L;
  lua_getglobal(L, fn);
  lua_pushinteger(L, arg);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "%s.%s: %s\n", f->main.name, fn, lua_tostring(L, -1));
    exit(1);
  }
  CHECK(lua_isinteger(L, -1));
  lua_Integer result = lua_tointeger(L, -1);
  lua_pop(L, 1);
  CHECK_OK(storectx_uninstall(g));
  CHECK(pthread_mutex_unlock(&f->mutex) == 0);
  return result;
}

/* ---- the scenario ---------------------------------------------------------- */

static lstore *co1, *co2, *co3;
static storectx_async_store *co2_lock, *co3_lock;  /* kept to check the locks */

/* Runs `co` one step inside a call into its family (the scheduler runs with
 * the family's main store installed, so the coroutine's entries start above
 * it); lua_resume must answer `expected`. */
static void run_step(lstore *co, int nargs, int expected) {
  family *f = co->fam;
  CHECK(pthread_mutex_lock(&f->mutex) == 0);
  storectx_install_guard g;
  CHECK_OK(storectx_install(f->main.id, &f->main, &g));
  trace("  running %s (store %" PRIu64 ") above %s's store", co->name, co->id, f->main.name);
  int status = step(co, nargs);
  if (status == LUA_YIELD) {
    size_t n = storectx_suspended_len(co->parked);
    trace("  %s yielded: %zu %s parked with it; this thread's stack:", co->name, n,
          n == 1 ? "entry" : "entries");
    trace_stack();
  } else if (status != LUA_OK) {
    trace("  %s died (%s); what it left was suspended and freed", co->name,
          lua_tostring(co->L, -1));
  }
  if (status != expected) {
    fprintf(stderr, "%s: lua_resume answered %d, expected %d: %s\n", co->name, status,
            expected, status == LUA_OK || status == LUA_YIELD ? "" : lua_tostring(co->L, -1));
    exit(1);
  }
  CHECK(storectx_is_active(f->main.id) && storectx_depth() == 1);
  CHECK_OK(storectx_uninstall(g));
  CHECK(pthread_mutex_unlock(&f->mutex) == 0);
}

static void check_locked(storectx_async_store *s, storectx_status want) {
  storectx_write_guard *w = NULL;
  CHECK_STATUS(storectx_async_store_try_write(s, &w), want);
  storectx_write_guard_release(w);
}

static void *thread1(void *arg) {
  (void)arg;
  thread_name = "T1";
  pthread_mutex_lock(&app.mutex);
  co1 = spawn(&app, "worker", "worker-1");
  lua_pushinteger(co1->L, 5);
  pthread_mutex_unlock(&app.mutex);
  run_step(co1, 2, LUA_YIELD);
  /* its own entry, the bank's entry (and the borrow) went with it */
  CHECK(storectx_suspended_len(co1->parked) == 2);
  CHECK(storectx_is_empty());
  return NULL;
}

static void *thread2(void *arg) {
  (void)arg;
  thread_name = "T2";
  run_step(co1, 0, LUA_OK);                        /* continues in host.wait's k */
  CHECK(continuations == 1 && strcmp(continued_on, "T2") == 0);
  pthread_mutex_lock(&app.mutex);                  /* worker-1 answered where it ended */
  CHECK(lua_type(co1->L, -1) == LUA_TSTRING && strcmp(lua_tostring(co1->L, -1), "T2") == 0);
  lua_settop(co1->L, 0);
  pthread_mutex_unlock(&app.mutex);

  /* a coroutine that dies holding the bank: step() frees what it left */
  pthread_mutex_lock(&app.mutex);
  lstore *crasher = spawn(&app, "crasher", "crasher");
  storectx_async_store *crasher_lock = storectx_async_store_clone(crasher->lock);
  pthread_mutex_unlock(&app.mutex);
  run_step(crasher, 1, LUA_ERRRUN);
  check_locked(bank_lock, STORECTX_OK);
  check_locked(crasher_lock, STORECTX_OK);
  storectx_async_store_release(crasher_lock);

  /* two coroutines that will never be resumed */
  pthread_mutex_lock(&app.mutex);
  co2 = spawn(&app, "worker", "worker-2");
  lua_pushinteger(co2->L, 7);
  co2_lock = storectx_async_store_clone(co2->lock);
  pthread_mutex_unlock(&app.mutex);
  run_step(co2, 2, LUA_YIELD);                     /* holds the bank */

  pthread_mutex_lock(&pricing.mutex);
  co3 = spawn(&pricing, "idle", "idle-3");
  co3_lock = storectx_async_store_clone(co3->lock);
  pthread_mutex_unlock(&pricing.mutex);
  run_step(co3, 1, LUA_YIELD);                     /* holds its own store */
  CHECK(storectx_is_empty());
  return NULL;
}

static void *thread3(void *arg) {
  (void)arg;
  thread_name = "T3";
  check_locked(bank_lock, STORECTX_ERR_BUSY);      /* worker-2 holds it, parked */
  check_locked(co2_lock, STORECTX_ERR_BUSY);
  check_locked(co3_lock, STORECTX_ERR_BUSY);

  pthread_mutex_lock(&app.mutex);                  /* abandon worker-2: full GC */
  trace("  dropping the host's reference to %s; full GC", co2->name);
  luaL_unref(app.main.L, LUA_REGISTRYINDEX, co2->ref);
  co2 = NULL;
  lua_gc(app.main.L, LUA_GCCOLLECT);
  CHECK(collected == 1);
  pthread_mutex_unlock(&app.mutex);

  pthread_mutex_lock(&pricing.mutex);              /* abandon idle-3: lua_close */
  trace("  lua_close(pricing) with %s still suspended", co3->name);
  lua_close(pricing.main.L);
  pricing.main.L = NULL;
  co3 = NULL;
  CHECK(collected == 2);
  pthread_mutex_unlock(&pricing.mutex);
  CHECK(storectx_is_empty());
  return NULL;
}

static void *thread4(void *arg) {
  (void)arg;
  thread_name = "T4";
  check_locked(bank_lock, STORECTX_OK);            /* every lock is free again */
  check_locked(co2_lock, STORECTX_OK);
  check_locked(co3_lock, STORECTX_OK);
  trace("  the bank and both abandoned coroutines' stores can be locked again");
  return NULL;
}

static void on_thread(void *(*body)(void *), const char *what) {
  trace("%s", what);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, body, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
}

int main(int argc, char **argv) {
  const char *dir = SCRIPT_DIR;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--trace") == 0)
      tracing = 1;
    else
      dir = argv[i];
  }
  bank_id = storectx_store_id_new();
  CHECK_OK(storectx_async_store_new(bank_id, &bank, &bank_lock));
  trace("the bank (a C object behind a lock) is async store %" PRIu64, bank_id);
  open_family(&app, "app", dir);
  open_family(&pricing, "pricing", dir);

  if (tracing) printf("\n");
  trace("1. nested calls across states: app.checkout -> host.call -> pricing.quote");
  lua_Integer total = call(&app, "checkout", 3);
  CHECK(total == 3 * 7);
  CHECK(app.main.lookups >= 2 && pricing.main.lookups >= 1);
  CHECK(storectx_is_empty());
  trace("  checkout(3) = %lld", (long long)total);

  if (tracing) printf("\n");
  on_thread(thread1, "2. a coroutine yields inside a host function (lua_yieldk) on T1 ...");
  on_thread(thread2, "   ... and is resumed on T2; one more dies holding the bank, two are left suspended");
  CHECK(bank.balance == 5 + 5 + 7);
  on_thread(thread3, "3. T3 collects the abandoned coroutines (full GC, lua_close)");
  on_thread(thread4, "   T4 takes their locks");

  check_locked(bank_lock, STORECTX_OK);
  storectx_async_store_release(bank_lock);
  storectx_async_store_release(co2_lock);
  storectx_async_store_release(co3_lock);
  lua_close(app.main.L);                            /* worker-1 ended: nothing to free */
  CHECK(collected == 2);
  CHECK(storectx_is_empty());
  pthread_mutex_destroy(&app.mutex);
  pthread_mutex_destroy(&pricing.mutex);
  if (tracing) printf("\n");
  trace("all checks passed");
  return 0;
}
