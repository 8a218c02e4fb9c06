#!/bin/sh
# Write the secrets Asterisk's config #includes from the environment, then
# run Asterisk in the foreground.  Nothing secret is in the mounted config.
set -eu
: "${PBXWATCH_AMI_SECRET:?set PBXWATCH_AMI_SECRET (see .env.example)}"
: "${LAB_DRIVER_SECRET:?set LAB_DRIVER_SECRET}"
conf=/etc/asterisk
cp /lab/*.conf "$conf"/
umask 077
printf 'secret = %s\n' "$PBXWATCH_AMI_SECRET" > "$conf/manager_pbxwatch_secret.conf"
printf 'secret = %s\n' "$LAB_DRIVER_SECRET" > "$conf/manager_driver_secret.conf"
printf 'secret = %s\n' "${LAB_PHONE_SECRET:-}" > "$conf/iax_phone_secret.conf"
printf 'secret = %s\n' "${LAB_TRUNK_SECRET:-}" > "$conf/iax_trunk_secret.conf"
exec asterisk -f
