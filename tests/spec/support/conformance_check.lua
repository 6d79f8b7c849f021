-- lua5.4 tests/spec/support/conformance_check.lua [OpType ...]
--
-- Compares each op type (all of the table's by default) on every non-CPU
-- device that has a kernel for it with the CPU, as the conformance spec
-- does, and prints one line per mismatch. Exits 0 when everything agrees,
-- 1 on a mismatch, 2 when there was nothing to compare (no such device or
-- kernel). The spec's self-check runs it with a broken test-device kernel.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "conformance.lua")

local op_types = { ... }
if #op_types == 0 then
  for name in pairs(C.cases) do op_types[#op_types + 1] = name end
  table.sort(op_types)
end

local kernels, compared, mismatches = C.kernels(), 0, 0
for _, dev in ipairs(C.devices()) do
  for _, op_type in ipairs(op_types) do
    if kernels[op_type] and kernels[op_type][dev.backend] then
      local r = C.compare(op_type, dev.name, dev.backend)
      compared = compared + 1
      for _, msg in ipairs(r.mismatches) do print("mismatch: " .. msg) end
      mismatches = mismatches + (#r.mismatches > 0 and 1 or 0)
      print(string.format("%s on %s: %d trials, %d outputs, %d gradients and %d refusals compared, %s", op_type,
                          dev.name, r.trials, r.outputs, r.gradients, r.refusals,
                          #r.mismatches > 0 and "MISMATCH" or "ok"))
    end
  end
end
print(string.format("%d comparisons, %d with mismatches", compared, mismatches))
os.exit(mismatches > 0 and 1 or compared == 0 and 2 or 0)
