/* test_channels.c - the LISTEN session's channels (channels.c): which rest.notify_channel
 * payloads move the schema generation (PostgREST's: 'reload schema' and the empty payload,
 * compared whole), that 'reload config' and anything else do not, that every new session
 * moves it when the rest channel is heard (and only then), and which sessions start: none
 * without a channel, one for the rest channel alone (the cache off), a bad channel refused.
 * The session itself is listen.c's (test_listen.c); /rest/v1 re-reading the catalog over
 * HTTP is spec/integration/rest_notify_spec.lua. */
#include "test.h"
#include "../channels.h"
#include "../listen.h"

static int kind(const char *s, size_t len) { return tide__channels_rest_payload(s, len); }

TEST(payloads_as_postgrest_reads_them)
{
    CHECK_EQ_INT(kind("reload schema", 13), TIDE__REST_RELOAD_SCHEMA);
    CHECK_EQ_INT(kind("", 0), TIDE__REST_RELOAD_SCHEMA);
    CHECK_EQ_INT(kind("reload config", 13), TIDE__REST_RELOAD_CONFIG);
    CHECK_EQ_INT(kind("reload schema ", 14), TIDE__REST_IGNORE);
    CHECK_EQ_INT(kind(" reload schema", 14), TIDE__REST_IGNORE);
    CHECK_EQ_INT(kind("RELOAD SCHEMA", 13), TIDE__REST_IGNORE);
    CHECK_EQ_INT(kind("reload schemas", 14), TIDE__REST_IGNORE);
    CHECK_EQ_INT(kind("reload", 6), TIDE__REST_IGNORE);
    CHECK_EQ_INT(kind("reload schema\0x", 15), TIDE__REST_IGNORE);
    CHECK_EQ_INT(kind("trips/7", 7), TIDE__REST_IGNORE);
}

static void app_init(tide_app *app, const char *rest_channel)
{
    memset(app, 0, sizeof *app);
    app->cfg.rest_notify_channel = (char *)rest_channel;
    app->cfg.cache_channel = (char *)"tide_cache";
}

TEST(notifications_and_new_sessions_move_the_generation)
{
    tide_app app;
    app_init(&app, "pgrst");
    tide__channels_rest_notify("reload schema", 13, &app);
    CHECK_EQ_INT(app.schema_generation, 1);
    tide__channels_rest_notify("", 0, &app);
    CHECK_EQ_INT(app.schema_generation, 2);
    tide__channels_rest_notify("reload config", 13, &app);
    tide__channels_rest_notify("reload config", 13, &app);
    tide__channels_rest_notify("trips/7", 7, &app);
    CHECK_EQ_INT(app.schema_generation, 2);
    CHECK_EQ_INT(app.schema_reloads_heard, 2);
    tide__channels_state(1, &app); /* a session (re)established */
    CHECK_EQ_INT(app.schema_generation, 3);
    tide__channels_state(0, &app); /* lost: nothing to re-read yet */
    CHECK_EQ_INT(app.schema_generation, 3);
    tide__channels_state(1, &app);
    CHECK_EQ_INT(app.schema_generation, 4);
    CHECK_EQ_INT(app.schema_reloads_heard, 2); /* sessions are not NOTIFYs */

    app_init(&app, ""); /* the rest channel not heard */
    tide__channels_state(1, &app);
    CHECK_EQ_INT(app.schema_generation, 0);
}

TEST(which_sessions_start)
{
    tide_app app;
    app_init(&app, "");
    app.loop = ev_loop_new(EVFLAG_AUTO);
    app.cfg.upstreams[TIDE_UP_DIRECT].dsn = (char *)"host=127.0.0.1 port=1";
    /* no cache (app.cache NULL) and no rest channel: no session */
    CHECK_EQ_INT(tide_channels_start(&app), 0);
    CHECK(app.listen == NULL);
    /* the rest channel alone: a session even with the cache off */
    app.cfg.rest_notify_channel = (char *)"pgrst";
    CHECK_EQ_INT(tide_channels_start(&app), 0);
    CHECK(app.listen != NULL);
    tide_channels_stop(&app);
    CHECK(app.listen == NULL);
    tide_channels_stop(&app); /* twice is fine */
    /* not a plain identifier: refused, nothing left running */
    app.cfg.rest_notify_channel = (char *)"Pg-Rst";
    CHECK_EQ_INT(tide_channels_start(&app), TIDE_EINVAL);
    CHECK(app.listen == NULL);
    /* no direct upstream: nothing to listen on */
    app.cfg.rest_notify_channel = (char *)"pgrst";
    app.cfg.upstreams[TIDE_UP_DIRECT].dsn = NULL;
    CHECK_EQ_INT(tide_channels_start(&app), 0);
    CHECK(app.listen == NULL);
    ev_loop_destroy(app.loop);
}

TEST_LIST_BEGIN
TEST_ENTRY(payloads_as_postgrest_reads_them)
TEST_ENTRY(notifications_and_new_sessions_move_the_generation)
TEST_ENTRY(which_sessions_start)
TEST_LIST_END
