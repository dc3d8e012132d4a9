from pathlib import Path

import pytest

from acs_security.server.config import ConfigError, Endpoint, load_config, parse_endpoint


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
