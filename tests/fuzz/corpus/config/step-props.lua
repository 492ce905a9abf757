worker { name = "w1", password = "x" }
builder { name = "b", workers = { "w1" }, steps = {
  set_property { property = "a", value = interpolate("%(prop:x)s"), hide_step_if = true },
  set_properties { properties = { n = 1, t = false, f = function(p) return 1 end } },
  set_property_from_command { command = "v", extract = "(?<x>a+)", retry = 2, decode_rc = { [0] = "success", [1] = "warnings" } },
  set_property_from_command { command = "v", extract_fn = function(rc, o, e) return {} end },
  log { name = "notes", text = "x", do_step_if = false, description = "d", description_done = "dd" },
} }
