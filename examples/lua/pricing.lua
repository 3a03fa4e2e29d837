-- pricing.lua: the state "pricing" of examples/lua/host.c, called from "app".
assert(host.name() == "pricing")
PRICE = 7

function quote(caller, quantity)
  assert(host.name() == "pricing")                     -- this state's store
  assert(host.probe(host.id()) == "STORECTX_OK")
  assert(host.probe(caller) == "STORECTX_ERR_PAUSED")  -- the caller's, paused below
  local result, why = host.call("app", "checkout", 1)  -- re-entering it is refused
  assert(result == nil and why == "STORECTX_ERR_PAUSED")
  return quantity * PRICE
end

-- Runs as a coroutine that yields and is never resumed.
function idle(name)
  assert(host.name() == name)
  host.wait()
  error("idle was resumed")
end
