#include "bindings.h"

const struct rb_binding rb_bindings[] = {
    {"runbook.host", luaopen_runbook_host},
    {"runbook.http_core", luaopen_runbook_http_core},
    {"runbook.pg_core", luaopen_runbook_pg_core},
    {"runbook.yaml_core", luaopen_runbook_yaml_core},
    {"runbook.ws_core", luaopen_runbook_ws_core},
    {"runbook.k8s_plugin_core", luaopen_runbook_k8s_plugin_core},
    {"runbook.lock_core", luaopen_runbook_lock_core},
    {NULL, NULL},
};
