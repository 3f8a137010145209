-- .luacheckrc - luacheck settings for `make lint`: LuaJIT, no globals (STYLE.md rule 7);
-- busted's globals in spec/.
std = "luajit"
max_line_length = 120
files["spec"] = { std = "+busted" }
