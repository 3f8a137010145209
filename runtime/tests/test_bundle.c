/* test_bundle.c - a script bundle read into memory (runtime/bundle.h): every .lua file of the
 * three directories and their subdirectories, editors' files and other files left out, sorted;
 * the route-module names as tide.boot wants them; the serialized form round-trips and refuses
 * anything damaged; the snapshot in a memfd keeps the last bundle stored (generations count
 * up, a second process's description of its own); a Lua state with the bundle installed
 * requires its modules from memory, with chunk names and load errors naming the real files,
 * and never reads a module from disk that the bundle does not hold; the bounds are refused
 * with a message. */
#include "test.h"
#include "../bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];
static char dirs[3][128];

static void put_file(int d, const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dirs[d], rel);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void remove_file(int d, const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dirs[d], rel);
    unlink(path);
}

static void remove_tree(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
}

/* bindings/tide/x.lua, scripts/{a,b-c,_lib,sub/deep}.lua and noise, policies/routing.lua. */
static int make_tree(void)
{
    snprintf(root, sizeof root, "/tmp/tide-bundle.XXXXXX");
    if (!mkdtemp(root)) return -1;
    static const char *names[3] = { "bindings", "scripts", "policies" };
    for (int d = 0; d < 3; d++) {
        snprintf(dirs[d], sizeof dirs[d], "%s/%s", root, names[d]);
        if (mkdir(dirs[d], 0755) != 0) return -1;
    }
    char sub[256];
    snprintf(sub, sizeof sub, "%s/tide", dirs[0]);
    if (mkdir(sub, 0755) != 0) return -1;
    snprintf(sub, sizeof sub, "%s/sub", dirs[1]);
    if (mkdir(sub, 0755) != 0) return -1;
    snprintf(sub, sizeof sub, "%s/.git", dirs[1]);
    if (mkdir(sub, 0755) != 0) return -1;
    put_file(0, "tide/x.lua", "return { name = 'tide.x' }\n");
    put_file(1, "a.lua",
             "local lib = require '_lib'\n"
             "return { lib = lib.v, x = require('tide.x').name,\n"
             "         fn = function() end }\n");
    put_file(1, "b-c.lua", "return {}\n");
    put_file(1, "_lib.lua", "return { v = 42 }\n");
    put_file(1, "sub/deep.lua", "return 'deep'\n");
    put_file(1, ".a.lua.swp", "junk");
    put_file(1, ".hidden.lua", "error('never read')\n");
    put_file(1, ".git/c.lua", "error('never read')\n");
    put_file(1, "notes.txt", "not Lua");
    put_file(2, "routing.lua", "return { upstream = 'direct' }\n");
    return 0;
}

static int read_tree(tide_bundle *b)
{
    char err[256];
    int rc = tide_bundle_read(dirs[0], dirs[1], dirs[2], b, err, sizeof err);
    if (rc != 0) fprintf(stderr, "  tide_bundle_read: %s\n", err);
    return rc;
}

static void check_reads_every_lua_file(void)
{
    tide_bundle b;
    CHECK_EQ_INT(read_tree(&b), 0);
    CHECK_EQ_INT(b.nfiles, 6);
    CHECK_EQ_INT(b.files[0].dir, 0);
    CHECK_STR(b.files[0].rel, "tide/x.lua");
    CHECK_STR(b.files[1].rel, "_lib.lua");
    CHECK_STR(b.files[2].rel, "a.lua");
    CHECK_STR(b.files[3].rel, "b-c.lua");
    CHECK_STR(b.files[4].rel, "sub/deep.lua");
    CHECK_EQ_INT(b.files[5].dir, 2);
    CHECK_STR(b.files[5].rel, "routing.lua");
    CHECK_STR(b.files[4].text, "return 'deep'\n");
    CHECK_EQ_INT(b.files[4].len, 14);
    CHECK_STR(b.dirs[1], dirs[1]);
    size_t bytes = 0;
    for (int i = 0; i < b.nfiles; i++) bytes += b.files[i].len;
    CHECK_EQ_INT(b.bytes, bytes);
    CHECK_EQ_INT(b.generation, 0);
    tide_bundle_free(&b);
}

TEST(reads_every_lua_file_sorted_and_skips_the_rest)
{
    CHECK_EQ_INT(make_tree(), 0);
    check_reads_every_lua_file();
    remove_tree();
}

static void check_route_names(void)
{
    tide_bundle b;
    CHECK_EQ_INT(read_tree(&b), 0);
    lua_State *L = luaL_newstate();
    CHECK(L != NULL);
    int rc = tide_bundle_push_route_names(L, &b);
    tide_bundle_free(&b);
    if (rc != 0) {
        lua_close(L);
        CHECK_EQ_INT(rc, 0);
    }
    /* top level of scripts/ only, libraries ("_") left out, sorted by name */
    int n = (int)lua_objlen(L, -1);
    const char *want[] = { "a", "b-c" };
    int ok = n == 2;
    for (int i = 0; ok && i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        ok = strcmp(lua_tostring(L, -1), want[i]) == 0;
        lua_pop(L, 1);
    }
    lua_close(L);
    CHECK(ok);
}

TEST(route_names_are_the_top_level_scripts_without_libraries)
{
    CHECK_EQ_INT(make_tree(), 0);
    check_route_names();
    remove_tree();
}

/* a and b hold the same files. */
static int same(const tide_bundle *a, const tide_bundle *b)
{
    if (a->nfiles != b->nfiles || a->bytes != b->bytes) return 0;
    for (int d = 0; d < TIDE_BUNDLE_DIRS; d++)
        if (strcmp(a->dirs[d], b->dirs[d]) != 0) return 0;
    for (int i = 0; i < a->nfiles; i++) {
        const tide_bundle_file *x = &a->files[i], *y = &b->files[i];
        if (x->dir != y->dir || strcmp(x->rel, y->rel) != 0 || x->len != y->len ||
            memcmp(x->text, y->text, x->len) != 0)
            return 0;
    }
    return 1;
}

static void check_serialized_form(void)
{
    tide_bundle b, back;
    CHECK_EQ_INT(read_tree(&b), 0);
    b.generation = 7;
    b.stored_by = 1234;
    char *buf = NULL;
    size_t len = 0;
    char err[256];
    int rc = tide_bundle_serialize(&b, &buf, &len);
    if (rc != 0) {
        tide_bundle_free(&b);
        CHECK_EQ_INT(rc, 0);
    }
    rc = tide_bundle_parse(buf, len, &back, err, sizeof err);
    int equal = rc == 0 && same(&b, &back) && back.generation == 7 && back.stored_by == 1234;
    if (rc == 0) tide_bundle_free(&back);
    /* every byte flipped, and every cut, is refused whole */
    int refused = 1;
    for (size_t i = 0; i < len && refused; i += 7) {
        buf[i] ^= 0x5a;
        if (tide_bundle_parse(buf, len, &back, err, sizeof err) == 0) {
            tide_bundle_free(&back);
            refused = 0;
            fprintf(stderr, "  a flipped byte %zu was taken\n", i);
        }
        buf[i] ^= 0x5a;
    }
    for (size_t cut = 0; cut < len && refused; cut += 13)
        if (tide_bundle_parse(buf, cut, &back, err, sizeof err) != TIDE_EPARSE) refused = 0;
    free(buf);
    tide_bundle_free(&b);
    CHECK(equal);
    CHECK(refused);
    CHECK(strstr(err, "not a whole bundle") != NULL);
}

TEST(the_serialized_form_round_trips_and_refuses_damage)
{
    CHECK_EQ_INT(make_tree(), 0);
    check_serialized_form();
    remove_tree();
}

static void check_snapshot(void)
{
    char err[256];
    int fd = tide_bundle_snapshot_new();
    CHECK(fd >= 0);
    tide_bundle b, got;
    int rc = tide_bundle_load(fd, &got, err, sizeof err);
    CHECK_EQ_INT(rc, TIDE_EAGAIN); /* nothing stored yet */
    CHECK_EQ_INT(read_tree(&b), 0);
    rc = tide_bundle_store(fd, &b, err, sizeof err);
    if (rc != 0) fprintf(stderr, "  store: %s\n", err);
    int gen1 = (int)b.generation, by = b.stored_by;
    /* another process's own description of it (a worker's) sees it, and writes the next */
    int fd2 = tide_bundle_snapshot_reopen(fd);
    int rc2 = fd2 >= 0 ? tide_bundle_load(fd2, &got, err, sizeof err) : -1;
    int loaded = rc2 == 0 && same(&b, &got) && got.generation == 1 && got.stored_by == getpid();
    if (rc2 == 0) tide_bundle_free(&got);
    /* the disk changes: the snapshot does not */
    remove_file(1, "b-c.lua");
    put_file(1, "a.lua", "oops\n");
    int rc3 = tide_bundle_load(fd, &got, err, sizeof err);
    int kept = rc3 == 0 && same(&b, &got);
    if (rc3 == 0) tide_bundle_free(&got);
    int rc4 = fd2 >= 0 ? tide_bundle_store(fd2, &b, err, sizeof err) : -1;
    int gen2 = (int)b.generation;
    tide_bundle_free(&b);
    /* a damaged snapshot (a writer that died half way) is refused, not half read */
    char junk[80];
    memset(junk, 'x', sizeof junk);
    int damaged = pwrite(fd, junk, sizeof junk, 0) == (ssize_t)sizeof junk &&
                  tide_bundle_load(fd, &got, err, sizeof err) == TIDE_EPARSE;
    if (fd2 >= 0) close(fd2);
    close(fd);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(gen1, 1);
    CHECK_EQ_INT(by, getpid());
    CHECK(fd2 >= 0);
    CHECK(loaded);
    CHECK(kept);
    CHECK_EQ_INT(rc4, 0);
    CHECK_EQ_INT(gen2, 2);
    CHECK(damaged);
}

TEST(the_snapshot_keeps_the_last_bundle_stored)
{
    CHECK_EQ_INT(make_tree(), 0);
    check_snapshot();
    remove_tree();
}

/* Runs code in L; returns its one result as a string ("" on error, message in err). */
static const char *run(lua_State *L, const char *code, char *err, size_t errlen)
{
    err[0] = '\0';
    if (luaL_loadstring(L, code) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
        lua_pop(L, 1);
        return "";
    }
    const char *s = lua_tostring(L, -1);
    static char out[1024];
    snprintf(out, sizeof out, "%s", s ? s : "(nil)");
    lua_pop(L, 1);
    return out;
}

static void check_install(void)
{
    tide_bundle b;
    CHECK_EQ_INT(read_tree(&b), 0);
    lua_State *L = luaL_newstate();
    CHECK(L != NULL);
    luaL_openlibs(L);
    /* as luavm.c sets it: the three directories first, then the system's */
    char path[1024], err[1024];
    snprintf(path, sizeof path, "package.path = '%s/?.lua;%s/?.lua;%s/?.lua;' .. package.path",
             dirs[0], dirs[1], dirs[2]);
    run(L, path, err, sizeof err);
    int rc = tide_bundle_install(L, &b);
    tide_bundle_free(&b); /* the state keeps its own copy */
    /* the disk changes after the read: none of it shows */
    remove_file(1, "_lib.lua");
    put_file(1, "a.lua", "error('the disk version')\n");
    put_file(1, "new.lua", "return 'from disk'\n");
    put_file(1, "bad.lua", "return {\n");
    char a[1024], deep[256], src[512], missing[1024], p[1024];
    snprintf(a, sizeof a, "%s",
             run(L, "local m = require 'a' return m.lib .. ' ' .. m.x", err, sizeof err));
    snprintf(deep, sizeof deep, "%s", run(L, "return require 'sub.deep'", err, sizeof err));
    snprintf(src, sizeof src, "%s",
             run(L, "return debug.getinfo(require('a').fn, 'S').source", err, sizeof err));
    snprintf(missing, sizeof missing, "%s", run(L, "require 'new'", err, sizeof err));
    snprintf(missing, sizeof missing, "%s", err);
    snprintf(p, sizeof p, "%s", run(L, "return package.path", err, sizeof err));
    lua_close(L);
    CHECK_EQ_INT(rc, 0);
    CHECK_STR(a, "42 tide.x");
    CHECK_STR(deep, "deep");
    char want[256];
    snprintf(want, sizeof want, "@%s/a.lua", dirs[1]); /* its file, as the path searcher says */
    CHECK_STR(src, want);
    /* a module absent from the bundle is looked for where the path searcher would say */
    snprintf(want, sizeof want, "no file '%s/new.lua'", dirs[1]);
    CHECK(strstr(missing, want) != NULL);
    CHECK(strstr(missing, "from disk") == NULL);
    snprintf(want, sizeof want, "%s/?.lua", dirs[1]);
    CHECK(strstr(p, want) == NULL);    /* the directories are out of the path */
    CHECK(strstr(p, "?.lua") != NULL); /* the system's entries stay */
}

TEST(a_state_requires_the_bundles_modules_from_memory)
{
    CHECK_EQ_INT(make_tree(), 0);
    check_install();
    remove_tree();
}

static void check_names_and_errors(void)
{
    put_file(1, "broken.lua", "return {\n  x = 1\n  oops\n}\n");
    put_file(1, "raises.lua", "local t = {}\n\nerror('raised here')\n");
    tide_bundle b;
    CHECK_EQ_INT(read_tree(&b), 0);
    lua_State *L = luaL_newstate();
    CHECK(L != NULL);
    luaL_openlibs(L);
    int rc = tide_bundle_install(L, &b);
    tide_bundle_free(&b);
    char err[1024], broken[1024], raises[1024];
    run(L, "require 'broken'", err, sizeof err);
    snprintf(broken, sizeof broken, "%s", err);
    run(L, "require 'raises'", err, sizeof err);
    snprintf(raises, sizeof raises, "%s", err);
    lua_close(L);
    CHECK_EQ_INT(rc, 0);
    char want[512];
    /* as the path searcher says it: the module, its file, then Lua's file:line message */
    snprintf(want, sizeof want,
             "error loading module 'broken' from file '%s/broken.lua':", dirs[1]);
    CHECK(strstr(broken, want) != NULL);
    snprintf(want, sizeof want, "%s/broken.lua:3:", dirs[1]);
    CHECK(strstr(broken, want) != NULL);
    snprintf(want, sizeof want, "%s/raises.lua:3: raised here", dirs[1]);
    CHECK(strstr(raises, want) != NULL);
}

TEST(chunk_names_and_load_errors_name_the_real_files)
{
    CHECK_EQ_INT(make_tree(), 0);
    check_names_and_errors();
    remove_tree();
}

static void check_bounds(void)
{
    char err[256];
    tide_bundle b;
    /* a file over the byte budget (sparse: nothing is written) */
    char path[256];
    snprintf(path, sizeof path, "%s/huge.lua", dirs[2]);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    int sized = ftruncate(fd, (off_t)TIDE_BUNDLE_MAX_BYTES + 1) == 0;
    close(fd);
    CHECK(sized);
    int rc = tide_bundle_read(dirs[0], dirs[1], dirs[2], &b, err, sizeof err);
    CHECK_EQ_INT(rc, TIDE_ETOOBIG);
    CHECK(strstr(err, "more than 67108864 bytes") != NULL);
    unlink(path);
    /* one file too many */
    for (int i = 0; i <= TIDE_BUNDLE_MAX_FILES; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "f%04d.lua", i);
        put_file(2, rel, "return 1\n");
    }
    rc = tide_bundle_read(dirs[0], dirs[1], dirs[2], &b, err, sizeof err);
    CHECK_EQ_INT(rc, TIDE_ETOOBIG);
    CHECK(strstr(err, "more than 2048 .lua files") != NULL);
    /* a directory that is not there */
    rc = tide_bundle_read(dirs[0], "/nonexistent/tide-scripts", dirs[2], &b, err, sizeof err);
    CHECK_EQ_INT(rc, TIDE_EIO);
    CHECK(strstr(err, "/nonexistent/tide-scripts") != NULL);
}

TEST(the_bounds_are_refused_with_a_message)
{
    CHECK_EQ_INT(make_tree(), 0);
    check_bounds();
    remove_tree();
}

TEST_LIST_BEGIN
TEST_ENTRY(reads_every_lua_file_sorted_and_skips_the_rest)
TEST_ENTRY(route_names_are_the_top_level_scripts_without_libraries)
TEST_ENTRY(the_serialized_form_round_trips_and_refuses_damage)
TEST_ENTRY(the_snapshot_keeps_the_last_bundle_stored)
TEST_ENTRY(a_state_requires_the_bundles_modules_from_memory)
TEST_ENTRY(chunk_names_and_load_errors_name_the_real_files)
TEST_ENTRY(the_bounds_are_refused_with_a_message)
TEST_LIST_END
