from pathlib import Path

import pytest

from acs_security.server.config import ConfigError, Endpoint, describe, load_config, parse_endpoint


def test_defaults_are_the_documented_ports():
    cfg = load_config(environ={})
    assert cfg.cwmp_listen == Endpoint("0.0.0.0", 7547)
    assert cfg.api_listen == Endpoint("127.0.0.1", 7557)
    assert cfg.cpe_auth is True
    assert cfg.session_timeout == 30.0


def test_precedence_file_then_env_then_flags(tmp_path: Path):
    f = tmp_path / "acs.toml"
    f.write_text('[server]\ndb = "sqlite:///from-file.db"\nsession_timeout = 12\nmax_sessions = 5\n')
    cfg = load_config(config_file=f, environ={"ACS_MAX_SESSIONS": "7", "ACS_DB": "sqlite:///env.db"},
                      overrides={"db": "sqlite:///flag.db", "cpe_auth": False})
    assert cfg.db == "sqlite:///flag.db"
    assert cfg.max_sessions == 7
    assert cfg.session_timeout == 12.0
    assert cfg.cpe_auth is False


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"cwmp_listen": "localhost:99999"}, "outside 0-65535"),
        ({"cwmp_listen": "localhost:http"}, "is not a number"),
        ({"max_sessions": "many"}, "max_sessions"),
        ({"https_listen": "127.0.0.1:0"}, "needs tls_cert and tls_key"),
        ({"client_cert_match": "mac"}, "serial, cn, either"),
        ({"digest_algorithms": "SHA-1"}, "SHA-1"),
        ({"public_url": "ftp://acs"}, "public_url"),
        ({"cpe_auth": "maybe"}, "cpe_auth"),
    ],
)
def test_bad_values_name_the_setting(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(environ={}, overrides=overrides)


def test_unknown_key_in_file_is_refused(tmp_path: Path):
    f = tmp_path / "acs.toml"
    f.write_text('[server]\ndatabase = "x"\n')
    with pytest.raises(ConfigError, match="unknown setting 'database'"):
        load_config(config_file=f, environ={})


def test_malformed_file_is_refused(tmp_path: Path):
    f = tmp_path / "acs.toml"
    f.write_text("[server\n")
    with pytest.raises(ConfigError, match="acs.toml"):
        load_config(config_file=f, environ={})


def test_off_disables_a_listener():
    cfg = load_config(environ={}, overrides={"api_listen": "off"})
    assert cfg.api_listen is None


def test_endpoint_forms():
    assert parse_endpoint("[::1]:7547", setting="x") == Endpoint("::1", 7547)
    assert parse_endpoint(":7547", setting="x") == Endpoint("0.0.0.0", 7547)


def test_start_up_description_masks_the_database_password():
    cfg = load_config(environ={}, overrides={"db": "postgresql://acs:s3cret-pw@db.example.net/acs"})
    described = describe(cfg)
    assert described["db"] == "postgresql://acs:***@db.example.net/acs"
    assert "s3cret-pw" not in repr(described)
    assert described["clustered"] is True and described["node"] == cfg.node


@pytest.mark.parametrize(("overrides", "message"), [
    ({"role": "jobs"}, "needs cluster"),
    ({"role": "worker", "db": "postgresql://h/d"}, "role: 'worker'"),
    ({"role": "api", "db": "postgresql://h/d", "api_listen": "off"}, "role api needs api_listen"),
    ({"claim_lease": "2"}, "claim_lease"),
    ({"session_lease": "20"}, "session_lease must be longer"),
])
def test_scale_out_settings_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(environ={}, overrides=overrides)


def test_node_name_defaults_to_host_and_port_and_cluster_follows_the_database():
    pg = load_config(environ={}, overrides={"db": "postgresql://h/d", "cwmp_listen": "127.0.0.1:7600"})
    assert pg.clustered and pg.node.endswith(":7600")
    assert not load_config(environ={}).clustered
    assert load_config(environ={}, overrides={"cluster": "on"}).clustered
    assert load_config(environ={}, overrides={"node_id": "acs-1"}).node == "acs-1"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"header_timeout": "0"}, "header_timeout and body_timeout must be positive"),
    ({"body_timeout": "-1"}, "header_timeout and body_timeout must be positive"),
    ({"idle_timeout": "10"}, r"idle_timeout \(10 s\) must be at least session_timeout \(30 s\)"),
    ({"max_connections": "0"}, "max_connections must be at least 1"),
    ({"max_connections": "100", "max_connections_per_ip": "101"}, "max_connections_per_ip"),
    ({"trusted_proxies": "10.0.0.0/8, proxy.example.net"}, "trusted_proxies: .*'proxy.example.net'"),
    ({"proxy_protocol": "cwmp"}, "proxy_protocol needs trusted_proxies"),
    ({"proxy_protocol": "cwmp,ssh", "trusted_proxies": "10.0.0.1"}, "proxy_protocol: 'ssh' is not one of"),
    ({"proxy_protocol": "https", "trusted_proxies": "10.0.0.1"}, "names https, but https_listen is off"),
])
def test_edge_settings_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(environ={}, overrides=overrides)


def test_edge_settings_from_the_file_and_the_environment(tmp_path: Path):
    f = tmp_path / "acs.toml"
    f.write_text('[server]\ntrusted_proxies = ["10.0.0.0/8", "2001:db8::7"]\nproxy_protocol = ["cwmp"]\n'
                 "max_connections_per_ip = 0\n")
    cfg = load_config(config_file=f, environ={"ACS_HEADER_TIMEOUT": "5", "ACS_IDLE_TIMEOUT": "45"})
    assert cfg.trusted_proxies == ("10.0.0.0/8", "2001:db8::7") and cfg.proxy_protocol == ("cwmp",)
    assert (cfg.header_timeout, cfg.connection_idle_timeout, cfg.max_connections_per_ip) == (5.0, 45.0, 0)
    defaults = load_config(environ={}, overrides={"session_timeout": "50"})
    assert defaults.idle_timeout is None and defaults.connection_idle_timeout == 50.0


def test_xmpp_settings(tmp_path: Path):
    pw = tmp_path / "xmpp.pw"
    pw.write_text("s3cret\n")
    cfg = load_config(environ={}, overrides={"xmpp_server": "127.0.0.1:5222", "xmpp_jid": "acs@xmpp.test",
                                             "xmpp_password_file": str(pw), "xmpp_tls": "optional"})
    assert (cfg.xmpp_server, cfg.xmpp_jid, cfg.xmpp_password_file, cfg.xmpp_tls) == (
        Endpoint("127.0.0.1", 5222), "acs@xmpp.test", pw, "optional")
    assert load_config(environ={}).xmpp_server is None and load_config(environ={}).xmpp_tls == "required"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"xmpp_server": "127.0.0.1:5222"}, "xmpp_server, xmpp_jid and xmpp_password_file go together"),
    ({"xmpp_server": "127.0.0.1:5222", "xmpp_jid": "xmpp.test", "xmpp_password_file": "/x"},
     "not an account JID"),
    ({"xmpp_tls": "maybe"}, "xmpp_tls: 'maybe' is not required or optional"),
    ({"xmpp_server": "192.0.2.1:5222", "xmpp_jid": "acs@d", "xmpp_password_file": "/x", "xmpp_tls": "optional"},
     "only allowed with an xmpp_server on loopback"),
])
def test_bad_xmpp_settings(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(environ={}, overrides=overrides)


def test_every_problem_is_reported_at_once(tmp_path: Path):
    f = tmp_path / "acs.toml"
    f.write_text('[server]\ncwmp_listen = "localhost:99999"\nsesion_timeout = 12\nmax_sessions = 0\n'
                 'client_cert_match = "mac"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(config_file=f, environ={"ACS_CPE_AUTH": "maybe"},
                    overrides={"proxy_protocol": "cwmp,nbi", "claim_batch": 0})
    problems = caught.value.problems
    expected = ["outside 0-65535", "unknown setting 'sesion_timeout'", "max_sessions must be at least 1",
                "serial, cn, either", "cpe_auth: 'maybe'", "proxy_protocol: 'nbi' is not one of",
                "proxy_protocol needs trusted_proxies", "claim_batch must be 1-10000"]
    for text in expected:
        assert sum(text in p for p in problems) == 1, (text, problems)
    assert len(problems) == len(expected)
    message = str(caught.value)
    assert message.startswith(f"{len(expected)} problems in the configuration:\n  - ")
    assert all(p in message for p in problems)


def test_one_problem_reads_as_before():
    with pytest.raises(ConfigError) as caught:
        load_config(environ={}, overrides={"max_sessions": 0})
    assert str(caught.value) == "max_sessions must be at least 1"
    assert caught.value.problems == ("max_sessions must be at least 1",)


def test_connection_request_nonce_reuse_is_on_by_default_and_can_be_turned_off(tmp_path):
    assert load_config(environ={}).connection_request_nonce_reuse is True
    f = tmp_path / "acs.toml"
    f.write_text("connection_request_nonce_reuse = false\n")
    assert load_config(config_file=f, environ={}).connection_request_nonce_reuse is False
    assert load_config(environ={"ACS_CONNECTION_REQUEST_NONCE_REUSE": "false"}).connection_request_nonce_reuse is False
