#!/bin/sh
# The demo program: greets with the image's ENV and its baked-in version.
echo "${GREETING:-hello} (version $(cat "${APP_HOME:-/app}/VERSION"))"
