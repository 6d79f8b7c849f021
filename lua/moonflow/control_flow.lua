-- Control flow: tf.cond, tf.case, tf.while_loop, tf.map_fn, tf.scan,
-- tf.foldl, tf.foldr.
--
-- Branches and loop bodies are Lua functions that build subgraphs once.
-- Each becomes a graph function (core.graph_add_function): Placeholder
-- arguments, results, targets. The C core's If and While ops call them, so
-- a C host runs such a graph as any other, and only the taken branch runs.
--
-- While a function is being built, every op created in it that reads a
-- tensor from outside (the enclosing graph or function) reads it through a
-- new argument instead: the capture. The If / While op then passes the
-- outer tensor in. So a function's ops never reach outside it, and
-- gradients flow to captured tensors (weights) through the op's inputs.
local core = require("moonflow.core")
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

-- ---------------------------------------------------------------- nested structures

-- Flattens a tensor, a Lua value, or a (nested) table of them into a list;
-- the returned shape packs a flat list back (pack). Sequences keep their
-- order, other tables go by sorted keys, as TF's nest does for dicts.
local function is_leaf(x)
  return type(x) ~= "table" or G.is_tensor(x) or G.is_operation(x) or C.is_array(x)
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "number" or type(a) == "string") then return a < b end
    return type(a) == "number"
  end)
  return keys
end

local function flatten(x, out)
  out = out or {}
  if is_leaf(x) then
    out[#out + 1] = x
  else
    for _, k in ipairs(sorted_keys(x)) do flatten(x[k], out) end
  end
  return out
end

local function pack(shape, flat, pos)
  pos = pos or { 1 }
  if is_leaf(shape) then
    local v = flat[pos[1]]
    pos[1] = pos[1] + 1
    return v
  end
  local t = {}
  for _, k in ipairs(sorted_keys(shape)) do t[k] = pack(shape[k], flat, pos) end
  return t
end

return function(tf)
  -- ---------------------------------------------------------------- building functions

  local Body = {}
  Body.__index = Body

  local function placeholder(dtype, shape, name)
    local attrs = { "dtype", "type", dtype }
    if shape then attrs[4], attrs[5], attrs[6] = "shape", "shape", shape end
    return G.make_op("Placeholder", {}, attrs, { name = name }).outputs[1]
  end

  -- An argument in the function (named after its role).
  function Body:arg(dtype, shape, name)
    local t = placeholder(dtype, shape, name)
    self.args[#self.args + 1] = t
    return t
  end

  -- The argument standing for outer tensor t (made on first use).
  function Body:capture(t)
    t = t.op.outputs[t.value_index + 1] -- a Variable stands for its op's output
    local a = self.captures[t.name]
    if not a then
      a = self:arg(t.dtype, t.shape, "capture")
      self.captures[t.name] = a
      self.captured[#self.captured + 1] = t
    end
    return a
  end

  -- Records an outer op given as a control input inside the body: the If
  -- or While op carries it instead. True when o is outer.
  function Body:outer_control(o)
    if not (o.graph == self.g and (o.id < self.first or (self.g._lifted ~= nil and self.g._lifted[o.id] == true))) then
      return false
    end
    if not self.ctrl_seen[o] then self.ctrl_seen[o] = true; self.outer_ctrl[#self.outer_ctrl + 1] = o end
    return true
  end

  function Body:is_outer(t)
    return t.graph == self.g and (t.op.id < self.first or (self.g._lifted ~= nil and self.g._lifted[t.op.id] == true))
  end

  -- Called by make_op for every op created while this function is built:
  -- data inputs from outside become captures (variable references, the
  -- leading inputs of Assign and the optimizers, stay: they name a
  -- variable, whose value the op reads when it runs).
  function Body:rewrite_inputs(op_type, inputs)
    local nref = core.op_type_nref(op_type)
    for i, t in ipairs(inputs) do
      if i > nref and self:is_outer(t) then inputs[i] = self:capture(t) end
    end
  end

  -- Builds a function: fn(args) with `specs` ({dtype, shape} each) as its
  -- first arguments, inside name scope `scope`, in graph g. Returns the
  -- Body (args, captures) and what fn returned (packed).
  local function build(g, scope, specs, fn)
    local body = setmetatable({ g = g, first = core.graph_num_ops(g._g) + 1, args = {},
                                captures = {}, captured = {}, outer = g._body, outer_ctrl = {}, ctrl_seen = {},
                                scope = (g._name_stack ~= "" and g._name_stack .. "/" or "") .. scope }, Body)
    local saved_ctrl = g._control_stack
    g._control_stack = {} -- outer control dependencies apply to the If / While op, not inside
    g._body = body
    local ok, res = pcall(g.as_default, g, function()
      return tf.name_scope(scope, function()
        local args = {}
        for i, s in ipairs(specs) do args[i] = body:arg(s.dtype, s.shape, s.name or "arg") end
        return table.pack(fn(args))
      end)
    end)
    g._body = body.outer
    g._control_stack = saved_ctrl
    -- the ops made here belong to this body (not those lifted out of it)
    g._owner = g._owner or {}
    for id = body.first, core.graph_num_ops(g._g) do
      if not (g._lifted and g._lifted[id]) and not g._owner[id] then g._owner[id] = body end
    end
    if not ok then error(res, 0) end
    return body, res
  end

  -- The outer control inputs of the bodies, for the If / While op.
  local function outer_controls(bodies)
    local list, seen = {}, {}
    for _, b in ipairs(bodies) do
      for _, o in ipairs(b.outer_ctrl) do
        if not seen[o] then seen[o] = true; list[#list + 1] = o end
      end
    end
    return list
  end

  -- A function's results: tensors (outer ones captured), with Lua values
  -- made constants of `dtypes[i]` when given; Operations become targets.
  local function results_of(body, flat, what, dtypes)
    local res, targets = {}, {}
    for _, v in ipairs(flat) do
      if G.is_operation(v) then
        if v.id < body.first then
          G.raise("%s: returns operation '%s', which was created outside the function; create it inside",
                  what, v.name)
        end
        targets[#targets + 1] = v
      else
        if v == nil or (not G.is_tensor(v) and type(v) ~= "number" and type(v) ~= "boolean" and
                        not C.is_array(v) and type(v) ~= "table") then
          G.raise("%s: returned a %s where a tensor was expected", what, type(v))
        end
        local t = body.g:as_default(function() return C.to_tensor(v, dtypes and dtypes[#res + 1]) end)
        if body:is_outer(t) then t = body.g:as_default(function() return body:capture(t) end) end
        res[#res + 1] = t
      end
    end
    return res, targets
  end

  -- Registers body as a function named after `base` (unique in the graph).
  local function register(body, base, results, targets)
    local g = body.g
    local name = core.graph_unique_name(g._g, base)
    local args, flat, tops = {}, {}, {}
    for i, a in ipairs(body.args) do args[i] = a.op._ud end
    for i, r in ipairs(results) do flat[2 * i - 1], flat[2 * i] = r.op._ud, r.value_index end
    for i, o in ipairs(targets or {}) do tops[i] = o._ud end
    local ok, err = pcall(core.graph_add_function, g._g, name, args, flat, tops)
    if not ok then G.raise("%s", err) end
    return name
  end

  -- Gives each body an argument for every tensor any of them captured, in
  -- one order (the op passes the same inputs to all): the outer tensors.
  local function align_captures(bodies)
    local outer, seen = {}, {}
    for _, b in ipairs(bodies) do
      for _, t in ipairs(b.captured) do
        if not seen[t.name] then seen[t.name] = true; outer[#outer + 1] = t end
      end
    end
    for _, b in ipairs(bodies) do
      local own = {}
      for i = 1, #b.args do own[i] = b.args[i] end
      local declared = #own - #b.captured
      local args = table.move(own, 1, declared, 1, {})
      b.g:as_default(function()
        for _, t in ipairs(outer) do
          args[#args + 1] = b.captures[t.name] or placeholder(t.dtype, t.shape, "unused_capture")
        end
      end)
      b.args = args
    end
    return outer
  end

  local function callable(f, what, param)
    if type(f) ~= "function" and not (type(f) == "table" and getmetatable(f) and getmetatable(f).__call) then
      G.raise("%s: %s must be a function, got %s", what, param, type(f))
    end
  end

  local function bool_scalar(x, what, param)
    if type(x) == "boolean" then x = C.constant(x) end
    if not G.is_tensor(x) then G.raise("%s: %s must be a bool tensor, got %s", what, param, type(x)) end
    if x.dtype ~= "bool" then G.raise("%s: %s must be a bool tensor, got %s", what, param, x.dtype) end
    if x.shape and #x.shape > 0 then
      G.raise("%s: %s must be a scalar, got shape {%s}", what, param, table.concat(x.shape, ", "))
    end
    return x
  end

  -- ---------------------------------------------------------------- tf.cond

  -- tf.cond(pred, true_fn, false_fn, {strict, name}): runs one branch. The
  -- branches return the same structure of tensors (or Operations to run).
  function tf.cond(pred, true_fn, false_fn, opts)
    if type(true_fn) == "table" and false_fn == nil and opts == nil and not getmetatable(true_fn) then
      local kw = true_fn -- tf.cond(pred, {true_fn = ..., false_fn = ..., name = ...})
      true_fn, false_fn, opts = kw.true_fn, kw.false_fn, {}
      for k, v in pairs(kw) do if k ~= "true_fn" and k ~= "false_fn" then opts[k] = v end end
    end
    opts = C.opts(opts, "tf.cond", "name strict")
    callable(true_fn, "tf.cond", "true_fn")
    callable(false_fn, "tf.cond", "false_fn")
    pred = bool_scalar(pred, "tf.cond", "pred")
    local g = pred.graph
    return g:as_default(function()
      return tf.name_scope(opts.name or "cond", function()
        local tb, tres = build(g, "true", {}, function() return true_fn() end)
        local fb, fres = build(g, "false", {}, function() return false_fn() end)
        local function structure_of(r)
          if r.n == 0 then return nil end
          if r.n == 1 then return r[1] end
          return table.move(r, 1, r.n, 1, {})
        end
        local tshape, fshape = structure_of(tres), structure_of(fres)
        local tflat, fflat = flatten(tshape == nil and {} or tshape), flatten(fshape == nil and {} or fshape)
        local function ntensors(l)
          local n = 0
          for _, v in ipairs(l) do if not G.is_operation(v) then n = n + 1 end end
          return n
        end
        if ntensors(tflat) ~= ntensors(fflat) then
          G.raise("tf.cond: true_fn returns %d values, false_fn %d; both must return the same structure",
                  ntensors(tflat), ntensors(fflat))
        end
        -- A Lua value in one branch takes the other branch's dtype.
        local function dtypes_of(l)
          local d = {}
          for _, v in ipairs(l) do if not G.is_operation(v) then d[#d + 1] = G.is_tensor(v) and v.dtype or false end end
          return d
        end
        local td, fd = dtypes_of(tflat), dtypes_of(fflat)
        for i = 1, #td do td[i], fd[i] = td[i] or fd[i] or nil, fd[i] or td[i] or nil end
        local tr, tt = results_of(tb, tflat, "tf.cond: true_fn", fd)
        local fr, ft = results_of(fb, fflat, "tf.cond: false_fn", td)
        local outer = align_captures({ tb, fb })
        local then_name = register(tb, g._name_stack .. "/true_fn", tr, tt)
        local else_name = register(fb, g._name_stack .. "/false_fn", fr, ft)
        local inputs = { pred }
        for _, t in ipairs(outer) do inputs[#inputs + 1] = t end
        local op = G.make_op("If", inputs, { "then_branch", "string", then_name, "else_branch", "string", else_name },
                             { name = "If", control_inputs = outer_controls({ tb, fb }) })
        if tshape == nil or #op.outputs == 0 and is_leaf(tshape) then return op end
        -- Operations in the structure come back as the If op (it runs them).
        local outs, k = {}, 0
        for i, v in ipairs(tflat) do
          if G.is_operation(v) then outs[i] = op else k = k + 1; outs[i] = op.outputs[k] end
        end
        local packed = pack(tshape, outs)
        if tres.n > 1 then return table.unpack(packed, 1, tres.n) end
        return packed
      end)
    end)
  end

  -- tf.case(pred_fn_pairs, default, {exclusive, strict, name}): the first
  -- pair whose predicate holds runs (TF 1.x's order), else default.
  function tf.case(pairs_, default, opts)
    if type(default) == "table" and opts == nil and not getmetatable(default) then opts, default = default, nil end
    opts = C.opts(opts, "tf.case", "name exclusive strict default")
    default = default or opts.default
    if type(pairs_) ~= "table" or G.is_tensor(pairs_) then
      G.raise("tf.case: pred_fn_pairs must be a list of {pred, fn} pairs")
    end
    local list = {}
    for i, p in ipairs(pairs_) do
      if type(p) ~= "table" or #p ~= 2 then G.raise("tf.case: pair %d must be {pred, fn}", i) end
      list[i] = { bool_scalar(p[1], "tf.case", "predicate " .. i), p[2] }
      callable(p[2], "tf.case", "fn " .. i)
    end
    if #list == 0 then G.raise("tf.case: needs at least one {pred, fn} pair") end
    if default == nil then
      default = list[#list][2] -- TF: the last fn is the default when none is given
      table.remove(list)
      if #list == 0 then return default() end
    end
    callable(default, "tf.case", "default")
    local function chain(i)
      if i > #list then return default() end
      return tf.cond(list[i][1], list[i][2], function() return chain(i + 1) end)
    end
    return tf.name_scope(opts.name or "case", function()
      if opts.exclusive and #list > 1 then
        -- TF raises when more than one predicate holds: an assertion that
        -- runs before any branch.
        local c = {}
        for i, p in ipairs(list) do c[i] = tf.cast(p[1], "int32") end
        local check = tf.debugging.assert_less_equal(tf.add_n(c), 1, {
          message = "tf.case: more than one predicate is true (exclusive = true)" })
        return tf.control_dependencies({ check }, function() return chain(1) end)
      end
      return chain(1)
    end)
  end

  -- ---------------------------------------------------------------- tf.while_loop

  local function shape_list(s, what)
    if s == nil then return nil end
    if type(s) == "table" and type(s.as_list) == "function" then s = s:as_list() end
    if type(s) ~= "table" then G.raise("%s: a shape invariant must be a list of dims, got %s", what, type(s)) end
    local out = {}
    for i, d in ipairs(s) do
      if d == nil or d == false then d = -1 end
      if math.type(d) ~= "integer" or d < -1 then G.raise("%s: shape invariant dim %d must be an integer >= -1", what, i) end
      out[i] = d
    end
    return out
  end

  -- The loop machinery shared by while_loop, map_fn and scan: n loop
  -- variables (flat tensors), sliced inputs (read a row per iteration),
  -- and a body giving the next variables and per-iteration outputs.
  -- cond_fn(vars) -> bool; body_fn(vars, rows) -> next vars (flat), outs (flat).
  -- Returns the While op's final vars and stacked outs (flat lists).
  local function loop(g, what, vars, specs, slices, cond_fn, body_fn, back_prop)
    local nvars = #vars
    local cb, cres = build(g, "cond", specs, function(args) return cond_fn(args) end)
    local c = cres[1]
    if type(c) == "boolean" then c = g:as_default(function() return C.constant(c) end) end
    if not G.is_tensor(c) or c.dtype ~= "bool" then
      G.raise("%s: cond must return a bool tensor, got %s", what, G.is_tensor(c) and c.dtype or type(c))
    end
    local bspecs = table.move(specs, 1, nvars, 1, {})
    for j, s in ipairs(slices) do
      local row = s.shape and table.move(s.shape, 2, #s.shape, 1, {}) or nil
      bspecs[nvars + j] = { dtype = s.dtype, shape = row, name = "row" }
    end
    local nouts
    local bb, bres = build(g, "body", bspecs, function(args)
      local nextv, outs = body_fn(table.move(args, 1, nvars, 1, {}), table.move(args, nvars + 1, #args, 1, {}))
      nouts = #outs
      local flat = {}
      for i = 1, nvars do flat[i] = nextv[i] end
      for j = 1, nouts do flat[nvars + j] = outs[j] end
      return flat
    end)
    local dtypes = {}
    for i = 1, nvars do dtypes[i] = specs[i].dtype end
    local flat = bres[1]
    if #flat ~= nvars + nouts then
      G.raise("%s: body returned %d values for %d loop variables", what, #flat - nouts, nvars)
    end
    local cr = results_of(cb, { c }, what .. ": cond")
    local br = results_of(bb, flat, what .. ": body", dtypes)
    for i = 1, nvars do
      if br[i].dtype ~= specs[i].dtype then
        G.raise("%s: loop variable %d enters as %s but body returns %s", what, i, specs[i].dtype, br[i].dtype)
      end
    end
    -- Captured tensors become extra loop variables that the body passes
    -- through (and the condition ignores or reads).
    local outer = align_captures({ cb, bb })
    local bargs = bb.args
    -- body args: vars, rows, captures; the op's inputs: vars, captures, rows.
    local nslices = #slices
    local ordered = table.move(bargs, 1, nvars, 1, {})
    for i = 1, #outer do ordered[nvars + i] = bargs[nvars + nslices + i] end
    for j = 1, nslices do ordered[nvars + #outer + j] = bargs[nvars + j] end
    bb.args = ordered
    local results = table.move(br, 1, nvars, 1, {})
    for i = 1, #outer do results[nvars + i] = ordered[nvars + i] end
    for j = 1, nouts do results[nvars + #outer + j] = br[nvars + j] end
    local cond_name = register(cb, g._name_stack .. "/cond_fn", cr)
    local body_name = register(bb, g._name_stack .. "/body_fn", results)
    local inputs = table.move(vars, 1, nvars, 1, {})
    for _, t in ipairs(outer) do inputs[#inputs + 1] = t end
    for _, s in ipairs(slices) do inputs[#inputs + 1] = s end
    local op = G.make_op("While", inputs, {
      "cond", "string", cond_name, "body", "string", body_name, "num_slices", "int", nslices,
      "num_outputs", "int", nouts, "back_prop", "bool", back_prop ~= false },
      { name = "While", control_inputs = outer_controls({ cb, bb }) })
    local n = nvars + #outer
    return table.move(op.outputs, 2, 1 + nvars, 1, {}), table.move(op.outputs, 2 + n, 1 + n + nouts, 1, {}), op
  end

  local function specs_for(vars, invariants, what)
    local specs = {}
    for i, v in ipairs(vars) do
      local shape = v.shape
      if invariants then
        local inv = shape_list(invariants[i], what)
        if inv then
          if shape and #inv == #shape then
            for d = 1, #inv do
              if inv[d] >= 0 and shape[d] >= 0 and inv[d] ~= shape[d] then
                G.raise("%s: loop variable %d has shape {%s}, which its shape invariant {%s} does not cover",
                        what, i, table.concat(shape, ", "), table.concat(inv, ", "))
              end
            end
          elseif shape and #inv ~= #shape then
            G.raise("%s: loop variable %d has rank %d but its shape invariant rank %d", what, i, #shape, #inv)
          end
          shape = inv
        end
      end
      specs[i] = { dtype = v.dtype, shape = shape, name = "loop_var" }
    end
    return specs
  end

  -- tf.while_loop(cond, body, loop_vars, {shape_invariants,
  -- parallel_iterations, back_prop, swap_memory, maximum_iterations,
  -- return_same_structure, name}): as TF 1.x. cond and body receive the
  -- loop variables as separate arguments; body returns them (several
  -- values or one table). A single-element list of loop variables comes
  -- back as its element unless return_same_structure.
  function tf.while_loop(cond, body, loop_vars, opts)
    opts = C.opts(opts, "tf.while_loop",
                  "name shape_invariants parallel_iterations back_prop swap_memory maximum_iterations return_same_structure")
    callable(cond, "tf.while_loop", "cond")
    callable(body, "tf.while_loop", "body")
    if loop_vars == nil then G.raise("tf.while_loop: loop_vars is required") end
    if opts.parallel_iterations ~= nil and (math.type(opts.parallel_iterations) ~= "integer" or opts.parallel_iterations < 1) then
      G.raise("tf.while_loop: parallel_iterations must be a positive integer")
    end
    local single = is_leaf(loop_vars)
    local structure = single and { loop_vars } or loop_vars
    local user = flatten(structure)
    if #user == 0 then G.raise("tf.while_loop: loop_vars is empty") end
    local g
    for i, v in ipairs(user) do
      if G.is_operation(v) then G.raise("tf.while_loop: loop variable %d is an Operation", i) end
      if G.is_tensor(v) then g = g or v.graph end
    end
    g = g or G.get_default_graph()
    local inv = opts.shape_invariants
    if inv ~= nil then
      inv = single and { inv } or inv
      local flat_inv = {}
      -- invariants follow loop_vars' structure; a shape is a leaf there
      local function walk(s, v)
        if is_leaf(v) then flat_inv[#flat_inv + 1] = s return end
        for _, k in ipairs(sorted_keys(v)) do walk(s and s[k], v[k]) end
      end
      walk(inv, structure)
      inv = flat_inv
    end
    return g:as_default(function()
      return tf.name_scope(opts.name or "while", function()
        local vars = {}
        for i, v in ipairs(user) do vars[i] = C.to_tensor(v) end
        local specs = specs_for(vars, inv, "tf.while_loop")
        local nuser = #vars
        local max = opts.maximum_iterations
        if max ~= nil then
          if not G.is_tensor(max) and math.type(max) ~= "integer" then
            G.raise("tf.while_loop: maximum_iterations must be an integer or an integer tensor")
          end
          vars[nuser + 1] = C.constant(0, { dtype = "int32", name = "iteration" })
          specs[nuser + 1] = { dtype = "int32", shape = {}, name = "iteration" }
        end
        local function call_user(f, args)
          local packed = pack(structure, table.move(args, 1, nuser, 1, {}))
          return f(table.unpack(packed, 1, #structure))
        end
        local cond_fn = function(args)
          local c = call_user(cond, args)
          if type(c) == "boolean" then c = C.constant(c) end
          if max ~= nil then
            local m = G.is_tensor(max) and tf.cast(max, "int32") or max
            c = tf.logical_and(tf.less(args[nuser + 1], m), c)
          end
          return c
        end
        local body_fn = function(args)
          local r = table.pack(call_user(body, args))
          local res
          if r.n == 1 then
            res = is_leaf(r[1]) and { r[1] } or r[1] -- a bare tensor for a single variable
          else
            res = table.move(r, 1, r.n, 1, {})
          end
          local flat = flatten(res)
          if #flat ~= nuser then
            G.raise("tf.while_loop: body returned %d values for %d loop variables", #flat, nuser)
          end
          if max ~= nil then flat[nuser + 1] = tf.add(args[nuser + 1], 1) end
          return flat, {}
        end
        local finals = loop(g, "tf.while_loop", vars, specs, {}, cond_fn, body_fn, opts.back_prop)
        local out = pack(structure, table.move(finals, 1, nuser, 1, {}))
        if single then return out[1] end
        if #structure == 1 and not opts.return_same_structure and structure[1] ~= nil then return out[1] end
        return out
      end)
    end)
  end

  -- ---------------------------------------------------------------- map_fn, scan, folds

  local function elems_of(elems, what)
    local flat = flatten(elems)
    if #flat == 0 then G.raise("%s: elems is empty", what) end
    for i, e in ipairs(flat) do
      flat[i] = C.to_tensor(e)
      if flat[i].shape and #flat[i].shape == 0 then G.raise("%s: elems %d is a scalar; it needs a first dimension", what, i) end
    end
    return flat
  end

  -- The number of rows of t (a scalar int32 tensor, or the static count).
  local function rows_of(t)
    if t.shape and t.shape[1] >= 0 then return t.shape[1] end
    return tf.gather(tf.shape(t), 1)
  end

  -- tf.map_fn(fn, elems, {dtype, parallel_iterations, back_prop,
  -- swap_memory, infer_shape, name}): fn on each row of elems (a tensor or
  -- a structure of tensors with one first dimension), results stacked.
  function tf.map_fn(fn, elems, opts)
    opts = C.opts(opts, "tf.map_fn", "name dtype parallel_iterations back_prop swap_memory infer_shape")
    callable(fn, "tf.map_fn", "fn")
    local flat = elems_of(elems, "tf.map_fn")
    local g = flat[1].graph
    return g:as_default(function()
      return tf.name_scope(opts.name or "map", function()
        local n = rows_of(flat[1])
        local shape_out
        local _, outs = loop(g, "tf.map_fn", { C.constant(0, { dtype = "int32" }) }, { { dtype = "int32", shape = {} } }, flat,
          function(args) return tf.less(args[1], n) end,
          function(args, rows)
            local r = fn(pack(elems, rows))
            if r == nil then G.raise("tf.map_fn: fn returned nothing") end
            shape_out = r
            return { tf.add(args[1], 1) }, flatten(r)
          end, opts.back_prop)
        return pack(shape_out, outs)
      end)
    end)
  end

  -- scan / fold: acc = fn(acc, row) over the rows; scan stacks every acc.
  local function accumulate(what, fn, elems, initializer, opts, keep_all, from_end)
    callable(fn, what, "fn")
    local flat = elems_of(elems, what)
    local g = flat[1].graph
    return g:as_default(function()
      return tf.name_scope(opts.name or (keep_all and "scan" or (from_end and "foldr" or "foldl")), function()
        local reverse = from_end or opts.reverse
        local nrows = flat[1].shape and flat[1].shape[1]
        if reverse then
          for i, e in ipairs(flat) do
            if not (e.shape and e.shape[1] >= 0) then
              G.raise("%s: reverse needs elems with a known first dimension", what)
            end
            local n = e.shape[1]
            local ids = {}
            for r = 1, n do ids[r] = n - r + 1 end
            flat[i] = n > 0 and tf.gather(e, C.constant(ids, { dtype = "int32" })) or e
          end
        end
        local init = initializer
        local first_row
        if init == nil then
          -- no initializer: the first row is the initial value; scan it over the rest
          init = {}
          for i, e in ipairs(flat) do
            init[i] = tf.gather(e, 1)
            local rank = e.shape and #e.shape
            if not rank then G.raise("%s: without an initializer elems needs a known rank", what) end
            local begin, size = { 2 }, { -1 }
            for d = 2, rank do begin[d], size[d] = 1, -1 end
            flat[i] = tf.slice(e, begin, size)
          end
          init = is_leaf(elems) and init[1] or pack(elems, init)
          first_row = init
        end
        local acc_shape = init
        local accs = flatten(acc_shape)
        for i, a in ipairs(accs) do accs[i] = C.to_tensor(a) end
        local nacc = #accs
        local vars = { C.constant(0, { dtype = "int32" }) }
        for i = 1, nacc do vars[i + 1] = accs[i] end
        local specs = specs_for(vars, nil, what)
        local n = rows_of(flat[1])
        local finals, outs = loop(g, what, vars, specs, flat,
          function(args) return tf.less(args[1], n) end,
          function(args, rows)
            local acc = pack(acc_shape, table.move(args, 2, nacc + 1, 1, {}))
            local r = fn(acc, pack(elems, rows))
            local rf = flatten(r)
            if #rf ~= nacc then G.raise("%s: fn returned %d values for an accumulator of %d", what, #rf, nacc) end
            local nextv = { tf.add(args[1], 1) }
            for i = 1, nacc do nextv[i + 1] = rf[i] end
            return nextv, keep_all and rf or {}
          end, opts.back_prop)
        if not keep_all then return pack(acc_shape, table.move(finals, 2, nacc + 1, 1, {})) end
        if first_row ~= nil then
          local firsts = flatten(first_row)
          for i = 1, nacc do outs[i] = tf.concat({ tf.expand_dims(firsts[i], 1), outs[i] }, 1) end
        end
        if reverse and not from_end then
          for i = 1, nacc do
            local e = outs[i]
            local m = nrows
            if m and m > 0 then
              local ids = {}
              for r = 1, m do ids[r] = m - r + 1 end
              outs[i] = tf.gather(e, C.constant(ids, { dtype = "int32" }))
            end
          end
        end
        return pack(acc_shape, outs)
      end)
    end)
  end

  -- tf.scan(fn, elems, initializer, {parallel_iterations, back_prop,
  -- swap_memory, infer_shape, reverse, name})
  function tf.scan(fn, elems, initializer, opts)
    opts = C.opts(opts, "tf.scan", "name parallel_iterations back_prop swap_memory infer_shape reverse")
    return accumulate("tf.scan", fn, elems, initializer, opts, true, false)
  end
  -- tf.foldl(fn, elems, initializer, {parallel_iterations, back_prop, swap_memory, name})
  function tf.foldl(fn, elems, initializer, opts)
    opts = C.opts(opts, "tf.foldl", "name parallel_iterations back_prop swap_memory")
    return accumulate("tf.foldl", fn, elems, initializer, opts, false, false)
  end
  function tf.foldr(fn, elems, initializer, opts)
    opts = C.opts(opts, "tf.foldr", "name parallel_iterations back_prop swap_memory")
    return accumulate("tf.foldr", fn, elems, initializer, opts, false, true)
  end

  -- For dynamic_rnn over a custom cell: loop(what, vars, slices, cond_fn, body_fn).
  tf._loop = function(what, vars, slices, cond_fn, body_fn)
    local g = vars[1].graph
    return g:as_default(function()
      return tf.name_scope("while", function()
        return loop(g, what, vars, specs_for(vars, nil, what), slices, cond_fn, body_fn, true)
      end)
    end)
  end
  -- tf.nest (TF's tf.contrib.framework.nest): sequences in order, other
  -- tables by sorted keys.
  tf.nest = {}
  -- (A.doc, not A.def: a structure is a plain table, which A.def would take
  -- for the options.)
  tf.nest.flatten = A.doc(function(structure) return flatten(structure) end, "tf.nest.flatten", "structure",
                          "The leaves (tensors, values) of a nested table, in order.")
  tf.nest.pack_sequence_as = A.doc(function(structure, flat_sequence)
    if type(flat_sequence) ~= "table" or G.is_tensor(flat_sequence) then
      G.raise("tf.nest.pack_sequence_as: flat_sequence must be a list, got %s", type(flat_sequence))
    end
    local n, have = #flatten(structure), #flat_sequence
    if n ~= have then
      G.raise("tf.nest.pack_sequence_as: the structure has %d leaves, flat_sequence %d", n, have)
    end
    return pack(structure, flat_sequence)
  end, "tf.nest.pack_sequence_as", "structure, flat_sequence", "A flat list packed into the structure's shape.")
  A.doc(tf.cond, "tf.cond", "pred, true_fn, false_fn, {strict, name}",
        "Runs one of two functions (each built once as a subgraph) as the bool scalar pred says.")
  A.doc(tf.case, "tf.case", "pred_fn_pairs, default, {exclusive, strict, name}",
        "Runs the fn of the first {pred, fn} pair whose pred holds, else default.")
  A.doc(tf.while_loop, "tf.while_loop",
        "cond, body, loop_vars, {shape_invariants, parallel_iterations, back_prop, swap_memory, "
        .. "maximum_iterations, return_same_structure, name}",
        "Repeats body on the loop variables while cond holds; differentiable (back_prop).")
  A.doc(tf.map_fn, "tf.map_fn", "fn, elems, {dtype, parallel_iterations, back_prop, swap_memory, infer_shape, name}",
        "fn applied to each row of elems (a tensor or a structure), results stacked.")
  A.doc(tf.scan, "tf.scan", "fn, elems, initializer, {parallel_iterations, back_prop, swap_memory, infer_shape, reverse, name}",
        "Every accumulator of acc = fn(acc, row) over the rows, stacked.")
  A.doc(tf.foldl, "tf.foldl", "fn, elems, initializer, {parallel_iterations, back_prop, swap_memory, name}",
        "The last accumulator of acc = fn(acc, row) from the first row to the last.")
  A.doc(tf.foldr, "tf.foldr", "fn, elems, initializer, {parallel_iterations, back_prop, swap_memory, name}",
        "The last accumulator of acc = fn(acc, row) from the last row to the first.")
end
