-- The saving process of checkpoint_faults_spec. Usage:
--   lua5.4 checkpoint_child.lua DIR forever   restores DIR's latest checkpoint (if any), then
--                                             trains and saves every step until killed
--   lua5.4 checkpoint_child.lua DIR once      restores, trains and saves one step, exits
--   lua5.4 checkpoint_child.lua DIR check     restores the latest checkpoint in a fresh session
--                                             and prints its step (exits 1 if it is inconsistent)
-- The model: w (N floats) and the global step; each step adds 1 to every element of w, so a
-- consistent checkpoint "model-<s>" has step s and w filled with s.
local tf = require("moonflow")
local dir, mode = arg[1], arg[2]
local N = 1 << 18 -- 1 MiB per checkpoint: a save takes a while, kills land inside it

local w = tf.Variable(tf.zeros({ N }), { name = "w" })
local step = tf.train.get_or_create_global_step()
local train = tf.group(w:assign_add(tf.ones({ N })), step:assign_add(1))
local saver = tf.train.Saver(nil, { max_to_keep = 3 })
local sess = tf.Session()
sess:run(tf.global_variables_initializer())
local latest = tf.train.latest_checkpoint(dir)
if latest then saver:restore(sess, latest) end

if mode == "check" then
  if not latest then print("none") return end
  local s, v = sess:run(step):item(), sess:run(w)
  assert(latest == dir .. "/model-" .. s, "checkpoint " .. latest .. " holds step " .. s)
  for i = 1, N, 4099 do assert(v:flat(i) == s, "w[" .. i .. "] = " .. v:flat(i) .. " at step " .. s) end
  assert(v:flat(N) == s)
  print(s)
  return
end

repeat
  sess:run(train)
  saver:save(sess, dir .. "/model", step)
until mode == "once"
