#!/bin/bash
# Authentication and permissions: verbusd on host 1 with an authorization
# group (a user with an Argon2id password, a token), libverbus clients on
# hosts 2 and 3 (vb_libtest auth): bad credentials refused at the Hello,
# denied subscriptions and publishes answered with a Notice, and the
# broker's counters agreeing.
set -u
. "$(dirname "$0")/lib.sh"
broker_env

pw=$(echo alice-pw | "$VERBUS_BIN/verbusd" --hash-password) || fail "--hash-password"
tok=$(echo bob-token | "$VERBUS_BIN/verbusd" --hash-token) || fail "--hash-token"
case $pw in '$argon2id$'*) ;; *) fail "--hash-password printed '$pw'" ;; esac
[ ${#tok} = 64 ] || fail "--hash-token printed '$tok'"
tls=
[ "$scheme" = tls ] &&
	tls="tls = { cert = \"$work/tls/srv.pem\"; key = \"$work/tls/srv.key\"; };"
cat >"$work/verbusd.conf" <<CONF
listen = "$scheme://$brk:$port";
monitor = { listen = "127.0.0.1:$mport"; };
$tls
authorization = {
  users = (
    { user = "alice"; password = "$pw";
      publish = [ "orders.>" ]; subscribe = [ "orders.>", "_INBOX.>" ]; },
    { name = "bob"; token_sha256 = "$tok"; subscribe = [ "orders.*" ]; }
  );
};
CONF
# A bad entry is refused at start-up, with its line.
sed 's/token_sha256 = "/token_sha256 = "zz/' "$work/verbusd.conf" >"$work/bad.conf"
if "$VERBUS_BIN/verbusd" -c "$work/bad.conf" >"$work/bad.log" 2>&1; then
	fail "verbusd started with a bad token_sha256"
fi
grep -q 'bad.conf:[0-9]*: authorization: token_sha256' "$work/bad.log" ||
	{ cat "$work/bad.log"; fail "no clear error for a bad entry"; }
echo "PASS: a bad authorization entry stops verbusd with file:line"

broker_start -c "$work/verbusd.conf"
timeout 120 "$VERBUS_BIN/vb_libtest" auth "$scheme://$brk:$port" "$a" "$b" >"$work/auth.out" 2>&1
rc=$?
cat "$work/auth.out"
[ "$rc" = 0 ] || { show broker "$work/broker.log"; fail "vb_libtest auth exited $rc"; }

[ "$(metric verbus_auth_failures_total)" = 4 ] || fail "auth failures: $(metric verbus_auth_failures_total)"
# alice's secret.plans and her request to secret.ask.
[ "$(metric verbus_denied_publish_total)" = 2 ] || fail "denied publish: $(metric verbus_denied_publish_total)"
[ "$(metric verbus_denied_subscribe_total)" = 1 ] || fail "denied subscribe: $(metric verbus_denied_subscribe_total)"
echo "PASS: /metrics counts 4 refused clients, 2 denied publishes, 1 denied subscription"
broker_stop
echo "PASS: auth"
