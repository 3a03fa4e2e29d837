-- app.lua: the state "app" of examples/lua/host.c. `host` is the table of C
-- host functions; each finds the calling state's store with
-- storectx_get_current by the state's store id.
assert(host.name() == "app")

-- Called by the host with app's store installed: calls into the other state.
function checkout(quantity)
  assert(host.name() == "app")
  local price = host.call("pricing", "quote", host.id(), quantity)
  assert(host.name() == "app")               -- app's store is on top again
  return price
end

-- Runs as a coroutine, itself a store; holds the bank across a yield.
function worker(name, amount)
  assert(host.name() == name)                -- the coroutine's own store
  assert(not pcall(host.deposit, amount))    -- the bank is not installed yet
  local entry = assert(host.bank_open())     -- the bank's entry, locked, on top
  assert(not pcall(host.name))               -- own store paused under the bank
  host.deposit(amount)
  local before = host.thread()
  host.wait()                                -- lua_yieldk: the host parks our entries
  assert(host.thread() ~= before)            -- resumed on another pthread
  host.deposit(amount)
  host.bank_close(entry)                     -- pops the entry, unlocks the bank
  assert(not pcall(host.bank_close, entry))  -- a spent guard is refused
  assert(host.name() == name)
  return host.thread()
end

-- Runs as a coroutine that dies holding the bank: the host frees what it left.
function crasher(name)
  assert(host.name() == name)
  assert(host.bank_open())
  error("crashed while holding the bank")
end
