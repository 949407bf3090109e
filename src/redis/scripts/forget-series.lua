--[[
Drops from a service's series index the descriptors whose model is gone (expired), unless the model came
back meanwhile (a sample arrived between the read and this call).

KEYS[1]    series:{serviceId}             hash: series id → descriptor
KEYS[2..]  model:{serviceId}:<series id>  the models, in the order of ARGV
ARGV[1..]  the series ids
Reply: the number of descriptors dropped.
]]
local dropped = 0
for i, id in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then dropped = dropped + redis.call('HDEL', KEYS[1], id) end
end
return dropped
