#!/bin/sh
# keepalived's health check on {{node_name}}: the VIP stays here only while the local
# {{lb_type}} answers on its health port.
exec curl --silent --fail --max-time 2 --output /dev/null http://127.0.0.1:{{lb_health_port}}/healthz
