while true do pcall(haltmax_time_on_workdirfailure) end
