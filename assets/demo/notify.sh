#!/usr/bin/env bash
# Print the message a notification would post (demo: nothing is sent anywhere).
#   notify.sh slack deploy-window | rollback-started
#   notify.sh statuspage maintenance-started | rollback-complete
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"

target=${1:-}
event=${2:-}
ctx=forward
[[ $event == rollback-* ]] && ctx=rollback
operator=${USER:-on-call}

case $target:$event in
slack:deploy-window)
    where="Slack #deploys, #${service}-stakeholders"
    msg=":rocket: Deployment window open: $service $release (replacing $previous_release). Canary 10% first, then all instances; expected 45 min. Driver: $operator. Rollback plan: runbooks/production-rollout.toml"
    ;;
slack:rollback-started)
    where="Slack #deploys, #${service}-stakeholders, #incidents"
    msg=":rotating_light: Rolling back $service $release -> $previous_release. Driver: $operator. Updates in #incidents."
    ;;
statuspage:maintenance-started)
    where="status page component '${service^}'"
    msg="Scheduled maintenance in progress: we are deploying an update to ${service^}. No downtime is expected."
    ;;
statuspage:rollback-complete)
    where="status page component '${service^}'"
    msg="Monitoring: an update to ${service^} was rolled back. Service is operating normally; we are monitoring."
    ;;
*)
    die "usage: notify.sh slack deploy-window|rollback-started | notify.sh statuspage maintenance-started|rollback-complete"
    ;;
esac

step "Posting to $where"
if fault_requested "$event" "$ctx"; then
    die "error: POST to $target failed: 503 Service Unavailable (retried 3 times)"
fi
say "  message: $msg"
pause
say "(demo: not sent)"
