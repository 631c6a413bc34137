#!/bin/bash
# Starts a private, rootless Dovecot (IMAP, IMAPS, POP3, POP3S, submission,
# LMTP on loopback) whose logins are checked by the Entra ID emulator with
# Exchange Online's rules. Everything lives under ROOT; nothing in /etc is
# read or written. Prints the master PID.
#
#   scripts/dovecot/start.sh ROOT
#
# Environment: DV_CHECK_URL (the emulator's plain-HTTP URL, required),
# DV_IMAP DV_IMAPS DV_POP3 DV_POP3S DV_SUBMISSION DV_SUBMISSIONS DV_LMTP
# (ports, defaults 10143 10993 10110 10995 10587 10465 10024), DV_RELAY_PORT (SMTP relay for
# submission, default 10025), DV_USER (run-as user when started by root,
# default nobody).
set -euo pipefail
root=${1:?usage: start.sh ROOT}
here=$(cd "$(dirname "$0")" && pwd)
: "${DV_CHECK_URL:?set DV_CHECK_URL to the plain-HTTP URL of the emulator}"
imap=${DV_IMAP:-10143} imaps=${DV_IMAPS:-10993} pop3=${DV_POP3:-10110} pop3s=${DV_POP3S:-10995}
sub=${DV_SUBMISSION:-10587} subs=${DV_SUBMISSIONS:-10465} lmtp=${DV_LMTP:-10024} relay=${DV_RELAY_PORT:-10025}

if [ ! -x /usr/sbin/dovecot ] || [ ! -f /usr/lib/dovecot/modules/auth/libauthdb_lua.so ]; then
	echo "start.sh: dovecot or dovecot-auth-lua is not installed (scripts/install-deps.sh installs them)" >&2
	exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
	user=${DV_USER:-nobody}
else
	user=$(id -un)
fi
group=$(id -gn "$user")
uid=$(id -u "$user")
gid=$(id -g "$user")

mkdir -p "$root"/{etc,ssl,log,state,mail,bin}
rm -rf "$root/run" # stale sockets delay auth by seconds
mkdir -p "$root/run"
sed "s|CHECKURL|$DV_CHECK_URL/_emulator/exchange/check|" "$here/check.lua" >"$root/bin/check.lua"
if [ ! -f "$root/ssl/cert.pem" ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=localhost" \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout "$root/ssl/key.pem" -out "$root/ssl/cert.pem" >/dev/null 2>&1
fi

cat >"$root/etc/dovecot.conf" <<CONF
# rendered by scripts/dovecot/start.sh
base_dir = $root/run
state_dir = $root/state
instance_name = mailgate-test-$imap
default_internal_user = $user
default_internal_group = $group
default_login_user = $user
first_valid_uid = 1
first_valid_gid = 1
log_path = $root/log/dovecot.log
info_log_path = $root/log/dovecot.log
auth_verbose = yes
auth_verbose_passwords = no
protocols = imap pop3 submission lmtp
listen = 127.0.0.1
hostname = localhost
postmaster_address = postmaster@localhost
ssl = yes
ssl_cert = <$root/ssl/cert.pem
ssl_key = <$root/ssl/key.pem
ssl_min_protocol = TLSv1.2
auth_mechanisms = xoauth2 oauthbearer
disable_plaintext_auth = yes
auth_failure_delay = 0
auth_username_format = %Lu
auth_cache_size = 0
# Dovecot 2.3's xoauth2/oauthbearer mechanisms hand the token to the passdb
# as the password; the Lua passdb asks the emulator (Exchange's mailbox rule).
# (checkpassword caps user+password at 512 bytes, too short for a token; the
# oauth2 passdb's HTTP introspection crashes the auth process in this build.)
passdb {
  driver = lua
  mechanisms = xoauth2 oauthbearer
  args = file=$root/bin/check.lua blocking=yes
}
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$root/mail/%d/%n allow_all_users=yes
}
mail_location = maildir:~/Maildir
mail_uid = $uid
mail_gid = $gid
mail_privileged_group =
mail_fsync = never
namespace inbox {
  inbox = yes
  separator = /
}
protocol imap {
  mail_max_userip_connections = 1000
}
protocol pop3 {
  mail_max_userip_connections = 1000
  pop3_uidl_format = %08Xu%08Xv
}
protocol lmtp {
  auth_username_format = %Lu
}
submission_relay_host = 127.0.0.1
submission_relay_port = $relay
submission_relay_trusted = no
submission_relay_ssl = no
submission_max_mail_size = 50M
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = $imap
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $imaps
    ssl = yes
  }
  process_min_avail = 1
  service_count = 0
  client_limit = 1000
}
service pop3-login {
  chroot =
  inet_listener pop3 {
    address = 127.0.0.1
    port = $pop3
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $pop3s
    ssl = yes
  }
}
service submission-login {
  chroot =
  inet_listener submission {
    address = 127.0.0.1
    port = $sub
  }
  inet_listener submissions {
    address = 127.0.0.1
    port = $subs
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp
  }
}
service anvil {
  chroot =
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service auth {
  user = $user
}
service auth-worker {
  user = $user
}
service aggregator {
  chroot =
}
service director {
  chroot =
}
service imap-urlauth-login {
  chroot =
}
service ipc {
  chroot =
}
service old-stats {
  chroot =
}
CONF

chown -R "$user:$group" "$root/run" "$root/state" "$root/log" "$root/mail" 2>/dev/null || true
chmod 755 "$root" "$root/bin"
chmod 644 "$root/bin/check.lua"

doveconf -c "$root/etc/dovecot.conf" -n >/dev/null
# the master keeps the stderr it was started with: never a pipe
/usr/sbin/dovecot -c "$root/etc/dovecot.conf" >>"$root/log/start.log" 2>&1 </dev/null

for port in $imap $imaps $pop3 $pop3s $sub $subs $lmtp; do
	for _ in $(seq 1 100); do
		if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then break; fi
		sleep 0.05
	done
done
for _ in $(seq 1 100); do
	[ -s "$root/run/master.pid" ] && break
	sleep 0.05
done
cat "$root/run/master.pid"
