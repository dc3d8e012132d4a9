import sqlalchemy as sa

from acs_security.cli import main
from acs_security.store import open_store


def test_credentials_set_list_delete_and_the_password_is_encrypted_at_rest(tmp_path, capsys):
    db = f"sqlite:///{tmp_path}/acs.db"
    pw = tmp_path / "pw"
    pw.write_text("very-secret-cpe-password\n")
    assert main(["credentials", "set", "*", "--username", "fleet", "--password-file", str(pw), "--db", db]) == 0
    assert main(["credentials", "list", "--db", db, "--json"]) == 0
    out = capsys.readouterr().out
    assert '"username": "fleet"' in out and "very-secret" not in out
    assert (tmp_path / "acs.key").exists() and (tmp_path / "acs.key").stat().st_mode & 0o077 == 0
    raw = open_store(db)
    with raw.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT password FROM cpe_credentials")).scalar_one()
    raw.close()
    assert "very-secret" not in stored
    assert main(["credentials", "delete", "*", "--db", db]) == 0
    assert main(["credentials", "delete", "*", "--db", db]) == 1


def test_empty_password_refused(tmp_path, capsys):
    pw = tmp_path / "pw"
    pw.write_text("\n")
    rc = main(["credentials", "set", "FCH1", "--username", "u", "--password-file", str(pw),
               "--db", f"sqlite:///{tmp_path}/acs.db"])
    assert rc == 2 and "empty" in capsys.readouterr().err
