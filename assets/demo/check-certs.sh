#!/usr/bin/env bash
# TLS certificate check for the public endpoints (demo: expiry data is canned, nothing is fetched).
# Fails when a certificate expires within 14 days or its chain does not verify.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/demo-env.sh"

min_days=14
step "Checking TLS certificates (minimum remaining validity: $min_days days)"
# host  issuer  days-left
certs="$service.example.com R11 61
api.example.com R11 61
static.example.com E5 24
payments-callback.example.com R10 83"
if fault_requested; then
    certs=${certs/api.example.com R11 61/api.example.com R11 -3}
fi
bad=0
while read -r host issuer days; do
    if ((days < 0)); then
        printf '%s: certificate has expired (notAfter %d days ago)\n' "$host" "$((-days))" >&2
        bad=1
    elif ((days < min_days)); then
        printf '%s: certificate expires in %d days (minimum %d)\n' "$host" "$days" "$min_days" >&2
        bad=1
    else
        step "  $host  issuer=Let's Encrypt $issuer  expires in $days days  chain OK  OCSP good"
        if ((days < 30)); then warn "$host expires in $days days (renewal by cert-manager scheduled)"; fi
    fi
done <<<"$certs"
((bad == 0)) || die "error: certificate check failed"
say "SSL certificates valid and up to date"
