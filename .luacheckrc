-- .luacheckrc - luacheck settings for `make lint`: LuaJIT, no globals (a module's state is its own locals);
-- busted's globals in spec/.
std = "luajit"
max_line_length = 120
files["spec"] = { std = "+busted" }
