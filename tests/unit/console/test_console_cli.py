"""``yujing console-user`` prints a user for the configuration file (the password only as its
argon2 hash); ``yujing console`` without users says what to do."""

from __future__ import annotations

import tomllib

from typer.testing import CliRunner

from engine.cli import app
from engine.console.access import ConsoleUser
from engine.console.sessions import password_matches


def test_console_user_prints_a_users_entry_with_the_hash_only():
    result = CliRunner().invoke(app, ["console-user", "fire", "--role", "department",
                                      "--area", "fire_rescue"],
                                input="s3cret pass\ns3cret pass\n")
    assert result.exit_code == 0, result.output
    printed = result.output[result.output.index("[[users]]"):]
    assert "s3cret" not in printed
    (entry,) = tomllib.loads(printed)["users"]
    user = ConsoleUser(**entry)
    assert (user.name, user.role, user.area) == ("fire", "department", "fire_rescue")
    assert password_matches(user.password_hash, "s3cret pass")


def test_a_desk_without_its_area_is_refused():
    result = CliRunner().invoke(app, ["console-user", "x", "--role", "district"],
                                input="pw\npw\n")
    assert result.exit_code == 2 and "a district desk needs its area" in result.output


def test_the_console_without_users_says_how_to_add_one(tmp_path):
    result = CliRunner().invoke(app, ["console", "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "no console users: add [[users]]" in result.output


def test_users_come_from_the_configuration_file(tmp_path):
    config = tmp_path / "yujing.toml"
    config.write_text('[[users]]\nname = "duty"\npassword_hash = "h"\n[[users]]\n'
                      'name = "bj"\npassword_hash = "h"\nrole = "district"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["--config", str(config), "config", "show"])
    assert result.exit_code == 2
    assert "users.1: a district desk needs its area" in result.output
