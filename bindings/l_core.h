/* l_core.h - the `tide.core` Lua module: database calls (core.query, tx_begin, tx_end),
 * sealing and hashing (seal, open, keyed_hash_hex, sha256_hex), logging, health and pool
 * figures, waiting for another request (wait, wake), on which the Lua modules in
 * bindings/tide build; implemented by API area in bindings/l_*.c (l_core.c lists them). The
 * runtime never names this binding: main.c registers tide_core_open as tide_app.open_core. */
#ifndef TIDE_L_CORE_H
#define TIDE_L_CORE_H

#include <lua.h>

/* Opens the module (a lua_CFunction for package.preload["tide.core"]); the tide_vm is its
 * one upvalue. Pushes the module table. */
int tide_core_open(lua_State *L);

#endif
