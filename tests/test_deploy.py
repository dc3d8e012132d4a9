"""deploy/ and the configuration reference agree with the code.

The example configuration and docs/configuration.md are the output of ``acs-security config``
(generated from FIELDS); compose.yaml's ACS_* variables are real settings with valid values;
HAProxy checks the health path the API serves and forwards to the ports the nodes listen on;
the systemd unit's and the image's command lines parse with the real ``acs-security`` parser.
No docker or haproxy binary is needed: the files are read as data.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import ssl
import stat
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url
from twisted.web.test.requesthelper import DummyRequest

from acs_security.cli import build_parser, main
from acs_security.commands.config import EXAMPLES, defaults, render_example
from acs_security.mapping.paths import DATAMODEL_ENV
from acs_security.secrets import read_key_file
from acs_security.server.api import ApiResource
from acs_security.server.config import DEFAULT_TLS_CIPHERS, FIELDS, ConfigError, load_config, parse_endpoint

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
EXAMPLE = DEPLOY / "acs-security.toml"
REFERENCE = REPO / "docs" / "configuration.md"
NODES = ("acs1", "acs2")


# --------------------------------------------------------------------------- helpers

def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def substitute(value: str) -> str:
    """Compose's interpolation, offline: ${V:-default} -> default, ${V} and ${V:?msg} -> a
    placeholder that is valid wherever a word is (the real value comes from deploy/.env)."""
    def one(m: re.Match[str]) -> str:
        return m.group(3) if m.group(2) == "-" else "placeholder"
    return re.sub(r"\$\{(\w+)(?::?([-?])([^}]*))?\}", one, value)


def node_environ(name: str) -> dict[str, str]:
    env = compose()["services"][name]["environment"]
    assert isinstance(env, dict), "environment as a mapping, so that nodes can override keys"
    return {k: substitute(str(v)) for k, v in env.items()}


def haproxy_sections() -> dict[str, list[str]]:
    """'backend acs_cwmp' -> its directive lines (comments dropped)."""
    sections: dict[str, list[str]] = {}
    current = None
    for raw in (DEPLOY / "haproxy.cfg").read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not raw[0].isspace():
            current = " ".join(line.split())
            sections[current] = []
        else:
            assert current is not None, raw
            sections[current].append(" ".join(line.split()))
    return sections


def directive(lines: list[str], word: str) -> list[list[str]]:
    return [line.split() for line in lines if line.split()[0] == word]


def systemd_unit() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (DEPLOY / "acs-security.service").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        values.setdefault(key.strip(), []).append(value.strip())
    return values


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    out: list[tuple[str, str]] = []
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def parses_as_cli(argv: list[str]) -> Any:
    try:
        return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"acs-security does not accept: {shlex.join(argv)}")


# --------------------------------------------------------------------------- generated files

def test_example_configuration_is_the_command_output(capsys):
    assert main(["config", "example"]) == 0
    printed = capsys.readouterr().out
    assert printed == render_example()
    assert EXAMPLE.read_text() == printed, "regenerate: acs-security config example > deploy/acs-security.toml"


def test_configuration_reference_is_the_command_output(capsys):
    assert main(["config", "reference"]) == 0
    printed = capsys.readouterr().out
    assert REFERENCE.read_text() == printed, "regenerate: acs-security config reference > docs/configuration.md"
    for name in FIELDS:  # every setting has its row with its env var
        assert f"| `{name}` | `ACS_{name.upper()}` |" in printed


def test_example_names_every_setting_once_and_parses_to_the_defaults(tmp_path):
    text = EXAMPLE.read_text()
    shown = re.findall(r"^#(\w+) = ", text, flags=re.M)
    assert shown == list(FIELDS)
    assert load_config(config_file=EXAMPLE, environ={}) == load_config(environ={})

    # Uncommenting the lines of settings with a default changes nothing: the shown values are
    # the defaults, in a form load_config reads back.
    current = defaults()
    with_defaults = re.sub(r"^#(\w+) = ", lambda m: f"{m.group(1)} = " if current[m.group(1)] is not None
                           else m.group(0), text, flags=re.M)
    f = tmp_path / "defaults.toml"
    f.write_text(with_defaults)
    assert load_config(config_file=f, environ={}) == load_config(environ={})

    # Uncommenting every line (the examples too) gives a valid configuration with those values.
    f.write_text(re.sub(r"^#(\w+) = ", r"\1 = ", text, flags=re.M))
    cfg = load_config(config_file=f, environ={})
    assert set(EXAMPLES) == {n for n, v in current.items() if v is None}
    assert cfg.https_listen == parse_endpoint(EXAMPLES["https_listen"], setting="https_listen")
    assert str(cfg.secret_key_file) == EXAMPLES["secret_key_file"] and cfg.node_id == EXAMPLES["node_id"]


def test_config_check_prints_effective_settings_without_the_password(tmp_path, capsys, monkeypatch):
    f = tmp_path / "acs.toml"
    f.write_text('[server]\ndb = "postgresql://acs:s3cret@db.example.net/acs"\nclaim_batch = 50\n')
    monkeypatch.setenv("ACS_NODE_ID", "from-env")
    assert main(["config", "check", "--config", str(f)]) == 0
    out = capsys.readouterr().out
    assert 'db = "postgresql://acs:***@db.example.net/acs"' in out and "s3cret" not in out
    assert "claim_batch = 50\n" in out and 'node_id = "from-env"' in out
    assert "cluster coordination (task claims, session leases): on" in out
    assert main(["config", "check", "--config", str(f), "--no-env"]) == 0
    assert "#node_id = (unset)" in capsys.readouterr().out


@pytest.mark.parametrize("body, message", [
    ("claim_lease = 2\n", "claim_lease must be at least 5 s"),
    ("role = \"jobs\"\n", "role jobs runs part of the ACS"),
    ("nodes = 3\n", "unknown setting 'nodes'"),
    ('db = "mysql://u:pw@h/x"\n', "db: unsupported store backend"),
])
def test_config_check_exits_2_with_the_message(tmp_path, capsys, body, message):
    f = tmp_path / "bad.toml"
    f.write_text("[server]\n" + body)
    assert main(["config", "check", "--config", str(f), "--no-env"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and "pw@" not in captured.err


# --------------------------------------------------------------------------- compose

def test_compose_names_the_services_and_their_dependencies():
    doc = compose()
    services = doc["services"]
    assert set(services) == {"postgres", "keyinit", *NODES, "haproxy", "prosody"}
    # The XMPP server (docs/xmpp.md) is opt-in: it starts only with --profile xmpp.
    assert services["prosody"]["profiles"] == ["xmpp"]
    assert (DEPLOY / services["prosody"]["build"]["dockerfile"]).is_file()
    assert "prosody" in (DEPLOY / "Dockerfile.prosody").read_text()
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name in NODES:
        node = services[name]
        assert node["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert node["depends_on"]["keyinit"] == {"condition": "service_completed_successfully"}
        assert node["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert (DEPLOY / ".." / node["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
        check = " ".join(node["healthcheck"]["test"])
        port = load_config(environ=node_environ(name)).api_listen.port
        assert f"http://127.0.0.1:{port}/readyz" in check
        compile(node["healthcheck"]["test"][-1], "healthcheck", "exec")
        assert "ports" not in node, "nodes are reached through HAProxy only"
    assert set(services["haproxy"]["depends_on"]) == set(NODES)


def test_compose_acs_variables_are_settings_with_valid_values():
    configs = []
    for name in NODES:
        env = node_environ(name)
        acs = {k for k in env if k.startswith("ACS_")}
        unknown = {k for k in acs if k[4:].lower() not in FIELDS}
        assert not unknown, f"{name}: {unknown} name no setting of FIELDS"
        try:
            cfg = load_config(environ=env)
        except ConfigError as exc:
            pytest.fail(f"{name}: {exc}")
        for key in acs:  # each variable took effect (not shadowed or misspelled)
            assert getattr(cfg, key[4:].lower()) is not None
        configs.append(cfg)
    first, second = configs
    assert first.role == second.role == "all"
    assert first.clustered and second.clustered
    assert first.db.startswith("postgresql://") and first.db == second.db
    assert make_url(first.db).password is None, "no password in the URL (libpq reads PGPASSWORD)"
    assert node_environ("acs1")["PGPASSWORD"] == "placeholder"  # from deploy/.env, never a literal
    assert first.node_id != second.node_id
    assert first.secret_key_file == second.secret_key_file is not None
    assert first.public_url and first.public_url.startswith("https://")


def test_compose_nodes_share_one_key_file_made_by_keyinit(tmp_path):
    services = compose()["services"]
    key_path = Path(node_environ("acs1")["ACS_SECRET_KEY_FILE"])
    mounts = {}
    for name in (*NODES, "keyinit"):
        volume = [v for v in services[name]["volumes"] if str(key_path).startswith(v.split(":")[1])]
        assert len(volume) == 1, f"{name} mounts the key file's directory"
        mounts[name] = volume[0]
    assert len(set(mounts.values())) == 1, mounts
    assert mounts["acs1"].split(":")[0] in compose()["volumes"]  # a named volume, not a host path

    # keyinit's program, run for real with the path moved into tmp_path: a 0600 key file.
    program = services["keyinit"]["command"][0]
    assert services["keyinit"]["entrypoint"] == ["python", "-c"]
    assert repr(str(key_path)) in program
    target = tmp_path / "keys" / "acs.key"
    exec(compile(program.replace(repr(str(key_path)), repr(str(target))), "keyinit", "exec"), {})
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert len(read_key_file(target).keys) == 1
    before = target.read_bytes()
    exec(compile(program.replace(repr(str(key_path)), repr(str(target))), "keyinit", "exec"), {})
    assert target.read_bytes() == before, "a second run keeps the existing key"


# --------------------------------------------------------------------------- haproxy

def test_haproxy_health_checks_the_path_the_api_serves_without_a_token():
    sections = haproxy_sections()
    backends = {k.split()[1]: v for k, v in sections.items() if k.startswith("backend ")}
    assert {"acs_cwmp", "acs_api"} <= set(backends)
    paths = set()
    for name in ("acs_cwmp", "acs_api"):
        (check,) = [o for o in directive(backends[name], "option") if o[1] == "httpchk"]
        assert check[:3] == ["option", "httpchk", "GET"]
        paths.add(check[3])
        assert directive(backends[name], "http-check") == [["http-check", "expect", "status", "200"]]
    assert paths == {"/readyz"}

    # The API answers that path with 200 while the store answers and 503 when it does not,
    # asking no token (the authenticator would fail the test if asked).
    class NoToken:
        async def require(self, *args: Any) -> Any:
            raise AssertionError("a token was asked for on the health path")

    async def ready() -> None:
        return None

    async def down() -> None:
        raise OSError("connection refused")

    for check, code in ((ready, 200), (down, 503)):
        request = DummyRequest([b"readyz"])
        request.path = b"/readyz"
        ApiResource(object(), authenticator=NoToken(), ready=check).render(request)
        assert request.finished and request.responseCode == code


def test_haproxy_forwards_to_the_ports_the_nodes_listen_on():
    backends = {k.split()[1]: v for k, v in haproxy_sections().items() if k.startswith("backend ")}
    for name in NODES:
        cfg = load_config(environ=node_environ(name))
        assert cfg.cwmp_listen is not None and cfg.api_listen is not None
        assert cfg.api_listen.host == "0.0.0.0", "HAProxy reaches the API over the container network"
        cwmp = {s[1]: s for s in directive(backends["acs_cwmp"], "server")}
        api = {s[1]: s for s in directive(backends["acs_api"], "server")}
        assert cwmp[name][2] == f"{name}:{cfg.cwmp_listen.port}"
        assert cwmp[name][cwmp[name].index("port") + 1] == str(cfg.api_listen.port), "health on the API port"
        assert cwmp[name][cwmp[name].index("cookie") + 1] == name
        assert api[name][2] == f"{name}:{cfg.api_listen.port}"
        assert "check" in cwmp[name] and "check" in api[name]
    assert set(cwmp) == set(api) == set(NODES)


def test_haproxy_keeps_a_cwmp_session_on_one_node():
    backends = {k.split()[1]: v for k, v in haproxy_sections().items() if k.startswith("backend ")}
    cwmp = backends["acs_cwmp"]
    assert ["cookie", "ACSNODE", "insert", "indirect", "nocache"] in directive(cwmp, "cookie")
    assert directive(cwmp, "http-reuse") == [["http-reuse", "never"]]


def test_haproxy_terminates_tls_like_the_acs_endpoint_and_compose_mounts_its_files():
    sections = haproxy_sections()
    glob = sections["global"]
    (ciphers,) = directive(glob, "ssl-default-bind-ciphers")
    (suites,) = directive(glob, "ssl-default-bind-ciphersuites")
    (options,) = directive(glob, "ssl-default-bind-options")
    # The ACS's default cipher string: Twisted's TLS13-* names for TLS 1.3, OpenSSL's for 1.2.
    parts = DEFAULT_TLS_CIPHERS.split(":")
    assert ciphers[1] == ":".join(p for p in parts if not p.startswith("TLS13-"))
    assert suites[1].split(":") == ["TLS_" + p[len("TLS13-"):].replace("-", "_") for p in parts
                                    if p.startswith("TLS13-")]
    max_version = load_config(environ=node_environ("acs1")).tls_max_version  # "TLS 1.3"
    assert "ssl-max-ver" in options and options[options.index("ssl-max-ver") + 1] == "TLSv" + max_version[4:]
    assert options[options.index("ssl-min-ver") + 1] == "TLSv1.2"

    haproxy = compose()["services"]["haproxy"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in haproxy["volumes"]}
    assert mounts["/usr/local/etc/haproxy/haproxy.cfg"] == "./haproxy.cfg"
    binds = {}
    for name in ("cwmp", "api"):
        (bind,) = directive(sections[f"frontend {name}"], "bind")
        crt = Path(bind[bind.index("crt") + 1])
        assert "ssl" in bind and any(crt.is_relative_to(m) for m in mounts if mounts[m] == "./tls")
        binds[name] = bind[1]
    assert binds == {"cwmp": ":443", "api": ":8443"}
    assert set(haproxy["ports"]) == {"443:443", "8443:8443"}


# --------------------------------------------------------------------------- image and unit

def test_dockerfile_runs_serve_as_a_non_root_user():
    steps = dockerfile()
    words = [w for w, _ in steps]
    assert ("ARG", "PYTHON=3.11") in steps  # SOAP (spyne) imports on 3.11
    assert [a for w, a in steps if w == "FROM"][-1] == "python:${PYTHON}-slim"
    user = [a for w, a in steps if w == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert words.index("USER") > max(i for i, w in enumerate(words) if w in ("RUN", "COPY")), "runs as the user"
    (expose,) = [a.split() for w, a in steps if w == "EXPOSE"]
    defaults_ = load_config(environ={})
    assert expose == [str(defaults_.cwmp_listen.port), str(defaults_.api_listen.port)]

    entry = json.loads(next(a for w, a in steps if w == "ENTRYPOINT"))
    cmd = json.loads(next(a for w, a in steps if w == "CMD"))
    assert entry == ["acs-security"]
    args = parses_as_cli(cmd)
    assert args.command == "serve"
    copies = {a.split()[-1]: a.split()[-2] for w, a in steps if w == "COPY" and "--from" not in a}
    assert copies[str(args.config)] == "deploy/acs-security.toml", "the image holds the config serve reads"
    env = " ".join(a for w, a in steps if w == "ENV")
    datamodel = re.search(rf"{DATAMODEL_ENV}=(\S+)", env).group(1)
    assert copies[datamodel] == "datamodel"

    health = next(a for w, a in steps if w == "HEALTHCHECK")
    program = json.loads(health[health.index("CMD") + 3:].strip())
    assert program[:2] == ["python", "-c"] and f":{defaults_.api_listen.port}/healthz" in program[2]
    compile(program[2], "healthcheck", "exec")


def test_dockerfile_build_context_sends_what_the_image_copies():
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    included = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore
    for word, args in dockerfile():
        if word == "COPY" and "--from" not in args:
            for source in args.split()[:-1]:
                assert source.rstrip("/") in included, f"{source} is excluded from the build context"
                assert (REPO / source).exists(), source


def test_systemd_unit_runs_the_real_command_hardened(tmp_path):
    unit = systemd_unit()
    (exec_start,) = unit["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0] == "/opt/acs-security/bin/acs-security"
    args = parses_as_cli(argv[1:])
    assert args.command == "serve" and args.config == Path("/etc/acs-security/acs-security.toml")
    assert unit["User"] == ["acs-security"] and unit["Restart"] == ["on-failure"]
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices", "RestrictSUIDSGID"):
        assert unit[key] == ["yes"], key
    assert unit["ProtectSystem"] == ["strict"]
    writable = [Path(p) for p in unit["ReadWritePaths"][0].split()]

    # The default database and key file, relative to the working directory, are writable.
    cwd = Path(unit["WorkingDirectory"][0])
    database = cwd / load_config(environ={}).db[len("sqlite:///"):]
    assert any(database.is_relative_to(w) for w in writable)
    assert any(Path(EXAMPLES["secret_key_file"]).is_relative_to(w) for w in writable)

    for value in unit.get("Environment", []):
        for assignment in shlex.split(value):
            name = assignment.split("=", 1)[0]
            if name.startswith("ACS_"):
                assert name == DATAMODEL_ENV or name[4:].lower() in FIELDS, name



def _verify_unit(analyze: str, path: Path) -> list[str]:
    """What ``systemd-analyze verify`` says about a unit file, less the one line a machine
    without the installed package always gets (ExecStart's binary is not there)."""
    run = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines()
            if line.strip() and "/opt/acs-security/bin/acs-security" not in line]


def test_systemd_analyze_verifies_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (no systemd): the unit is checked by parsing only")
    copy = tmp_path / "acs-security.service"
    shutil.copy(DEPLOY / "acs-security.service", copy)
    assert _verify_unit(analyze, copy) == []
    # The check can fail: a misspelt key and a bad value are reported.
    text = copy.read_text()
    broken = tmp_path / "broken.service"
    broken.write_text(text.replace("ProtectHome=yes", "ProtectHom=yes").replace("RestrictNamespaces=yes",
                                                                                 "RestrictNamespaces=maybe"))
    complaints = _verify_unit(analyze, broken)
    assert any("ProtectHom" in c for c in complaints) and any("maybe" in c for c in complaints), complaints


def acs_argv(segment: str) -> list[str] | None:
    """The arguments of an acs-security command in one shell segment, else None. Understands
    leading VAR=value assignments, ``sudo -u USER`` and ``docker compose exec [-T] SERVICE``."""
    segment = re.split(r"\s(?:\d?>>?|<)", " " + segment)[0]
    words = shlex.split(segment)
    while words and re.fullmatch(r"[A-Za-z_]+=\S*", words[0]):
        words.pop(0)
    if words[:2] == ["sudo", "-u"]:
        words = words[3:]
    if words[:3] == ["docker", "compose", "exec"]:
        words = [w for w in words[3:] if w != "-T"][1:]
    if words and re.search(r"(^|/)acs-security$", words[0]):
        return words[1:]
    return None


def test_commands_in_the_deploy_guide_parse():
    text = (REPO / "docs" / "deploy.md").read_text()
    seen = 0
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
            for segment in re.split(r"\s(?:\|\||&&|\||;)\s", line):
                argv = acs_argv(segment) if segment else None
                if argv is not None:
                    parses_as_cli(argv)
                    seen += 1
    assert seen >= 8, seen


def _docker_daemon() -> str | None:
    """Why the image cannot be built and brought up here, or None when it can."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker client installed"
    try:
        info = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                              text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "the docker daemon did not answer within 30 s"
    if info.returncode != 0 or not info.stdout.strip():
        first = (info.stderr.strip().splitlines() or ["no answer"])[0]
        return f"no Docker daemon reachable ({first})"
    compose = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False)
    if compose.returncode != 0:
        return "docker compose (v2) is not installed"
    return None


def test_compose_builds_and_comes_up_healthy(tmp_path, dev_pki):
    """With a Docker daemon: build the image, bring the compose file up (PostgreSQL, two nodes,
    HAProxy with a dev-ca certificate), and see the nodes healthy and HAProxy answering
    /readyz through TLS. Without one (this VM has no daemon), skipped with that reason; the
    structural tests above check the same files as data."""
    why = _docker_daemon()
    if why is not None:
        pytest.skip(f"{why}: compose.yaml and the Dockerfile are checked as data only")
    work = tmp_path / "deploy"
    shutil.copytree(DEPLOY, work)
    (work / "tls").mkdir(exist_ok=True)
    (work / "tls" / "acs.pem").write_bytes(dev_pki["crt"].read_bytes())
    (work / "tls" / "acs.pem").chmod(0o644)
    (work / ".env").write_text("POSTGRES_PASSWORD=compose-test-password\n")
    # The build context is the repository ("context: .." from deploy/): point it back there.
    text = (work / "compose.yaml").read_text().replace("context: ..", f"context: {REPO}")
    text = text.replace("- \"443:443\"", "- \"127.0.0.1::443\"").replace("- \"8443:8443\"", "- \"127.0.0.1::8443\"")
    (work / "compose.yaml").write_text(text)
    project = f"acs-test-{tmp_path.name[-12:].lower()}".replace("_", "-")
    base = ["docker", "compose", "-p", project, "-f", str(work / "compose.yaml")]

    def run(*argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *argv], capture_output=True, text=True, timeout=timeout, check=False)

    try:
        up = run("up", "-d", "--build", "--wait", "--wait-timeout", "300")
        assert up.returncode == 0, up.stderr[-3000:]
        out = run("ps", "--format", "json").stdout.strip()  # a JSON array, or JSON lines (newer compose)
        ps = json.loads(out) if out.startswith("[") else [json.loads(line) for line in out.splitlines() if line]
        health = {p["Service"]: p.get("Health", "") for p in ps}
        assert health.get("acs1") == health.get("acs2") == "healthy", health
        port = run("port", "haproxy", "8443").stdout.strip().rsplit(":", 1)[1]
        ctx = ssl.create_default_context(cafile=str(dev_pki["ca"]))
        with urllib.request.urlopen(f"https://localhost:{port}/readyz", context=ctx, timeout=30) as resp:
            assert resp.status == 200
    finally:
        run("down", "-v", "--remove-orphans", timeout=300)
