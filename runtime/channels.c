/* channels.c - the LISTEN session's channels and who hears what (see channels.h).
 *
 * One session for both channels rather than one each: a connection per worker is what the
 * cache already paid for, and a single session makes "the session came back" one event for
 * both (the cache distrusts what it stored meanwhile, /rest/v1 re-reads the catalog). */
#include "channels.h"

#include <string.h>

#include "listen.h"
#include "log.h"
#include "rcache.h"

int tide__channels_rest_payload(const char *payload, size_t len)
{
    /* PostgREST compares the whole payload: no trimming, no case folding */
    if (len == 0) return TIDE__REST_RELOAD_SCHEMA;
    if (len == sizeof "reload schema" - 1 && memcmp(payload, "reload schema", len) == 0)
        return TIDE__REST_RELOAD_SCHEMA;
    if (len == sizeof "reload config" - 1 && memcmp(payload, "reload config", len) == 0)
        return TIDE__REST_RELOAD_CONFIG;
    return TIDE__REST_IGNORE;
}

void tide__channels_rest_notify(const char *payload, size_t len, void *arg)
{
    tide_app *app = arg;
    static int config_told;
    switch (tide__channels_rest_payload(payload, len)) {
    case TIDE__REST_RELOAD_SCHEMA:
        app->schema_generation++;
        app->schema_reloads_heard++;
        tide_debug("rest: NOTIFY %s: the schema cache is re-read on the next request",
                   app->cfg.rest_notify_channel);
        break;
    case TIDE__REST_RELOAD_CONFIG:
        if (!config_told++)
            tide_info("rest: NOTIFY %s, 'reload config' ignored: the config file is "
                      "restart-only and policies reload on SIGHUP (said once)",
                      app->cfg.rest_notify_channel);
        break;
    default: break;
    }
}

static void cache_notify(const char *payload, size_t len, void *arg)
{
    tide_rcache_heard(arg, payload, len);
}

/* Whether the session carries rest.notify_channel. */
static int hears_rest(const tide_app *app)
{
    return app->cfg.rest_notify_channel && app->cfg.rest_notify_channel[0];
}

static int hears_cache(const tide_app *app)
{
    return app->cache && app->cfg.cache_channel && app->cfg.cache_channel[0];
}

void tide__channels_state(int up, void *arg)
{
    tide_app *app = arg;
    if (up) {
        if (hears_cache(app))
            tide_info("cache: listening on \"%s\": entries are trusted from now on",
                      app->cfg.cache_channel);
        if (hears_rest(app)) {
            /* what was sent while no session was up is lost: read the catalog again */
            app->schema_generation++;
            tide_info("rest: listening on \"%s\" for schema reloads", app->cfg.rest_notify_channel);
        }
    } else {
        tide_listen_stats ls;
        memset(&ls, 0, sizeof ls);
        if (app->listen) tide_listen_get_stats(app->listen, &ls);
        const char *why = ls.last_error[0] ? ls.last_error : "no reason given";
        if (hears_cache(app))
            tide_warn("cache: lost the LISTEN connection (%s): nothing is served fresh until "
                      "it is back",
                      why);
        else
            tide_warn("rest: lost the LISTEN connection (%s): schema reloads by NOTIFY are "
                      "not heard until it is back",
                      why);
    }
    tide_rcache_hearing(app, up);
}

int tide_channels_start(tide_app *app)
{
    app->listen = NULL;
    const char *dsn = app->cfg.upstreams[TIDE_UP_DIRECT].dsn;
    int cache = hears_cache(app), rest = hears_rest(app);
    if (!dsn || (!cache && !rest)) return 0;
    const char *key = cache ? "cache.channel" : "rest.notify_channel";
    const char *name = cache ? app->cfg.cache_channel : app->cfg.rest_notify_channel;
    int err = tide_listen_start(app->loop, dsn, name, NULL,
                                cache ? cache_notify : tide__channels_rest_notify,
                                tide__channels_state, app, &app->listen);
    if (err == 0 && cache && rest) {
        key = "rest.notify_channel";
        name = app->cfg.rest_notify_channel;
        err = tide_listen_add(app->listen, name, tide__channels_rest_notify, app);
    }
    if (err != 0) {
        tide_error("cannot listen on %s \"%s\" (a plain lower-case identifier, or \"\" to hear "
                   "nothing there): %s",
                   key, name, tide_strerror(err));
        tide_channels_stop(app);
        return err;
    }
    return 0;
}

void tide_channels_stop(tide_app *app)
{
    tide_listen_free(app->listen);
    app->listen = NULL;
}
