-- Prosody for acs-security's XMPP connection requests (TR-069 Annex K, docs/xmpp.md).
-- The ACS nodes and the phones log in as clients of one virtual host; TLS is required
-- (the connection-request IQs carry the phones' connection-request passwords).
pidfile = "/var/run/prosody/prosody.pid"
data_path = "/var/lib/prosody"
log = { info = "*console" }
interfaces = { "*" }
c2s_ports = { 5222 }
s2s_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; }
modules_disabled = { "s2s" }
c2s_require_encryption = true
allow_unencrypted_plain_auth = false
authentication = "internal_hashed"
-- Phone accounts are made by the operator's provisioning (prosodyctl adduser), not by the phones.
allow_registration = false
certificates = "/etc/prosody/certs"
VirtualHost "xmpp.example.net"
    ssl = { certificate = "/etc/prosody/certs/xmpp.pem"; key = "/etc/prosody/certs/xmpp.key"; }
