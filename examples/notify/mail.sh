#!/bin/sh
# An mmm notify_bin: mails every event (as MMM mailed its FATAL lines).
#   <monitor>
#       notify_bin /usr/local/bin/mmm-notify-mail
#   </monitor>
# Arguments: `state HOST FROM TO`, `role ROLE(IP) FROM TO` or `mode FROM TO`; the event as
# JSON on stdin. Set MMM_MAIL_TO in the unit's environment (default root).
set -eu
to="${MMM_MAIL_TO:-root}"
json="$(cat)"
printf '%s\n\n%s\n' "mmm on $(hostname): $*" "$json" | mailx -s "mmm: $*" "$to"
