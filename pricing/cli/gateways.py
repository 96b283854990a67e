"""esl-pricing gateways: the MQTT users of a Mosquitto 2.0 broker (label_gateway/credentials.py,
config/mosquitto/README.md).

``provision`` gives a gateway (or, with ``--role engine``, the engine) a new random password: in
clear in ``<secrets dir>/<id>.secret`` (0600) for the client, hashed in Mosquitto's password file
for the broker; it also makes sure the ACL holds the topic rules. The password is never printed
unless ``--show-password`` asks for it (stdout only, for piping into a gateway's set-up)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from label_gateway.broker import GATEWAY_SECRETS_ENV, PASSWORD_FILE_ENV, USERNAME_ENV
from label_gateway.credentials import (
    DEFAULT_ACL,
    DEFAULT_PASSWD,
    DEFAULT_SECRETS_DIR,
    Provisioned,
    ProvisionError,
    Role,
    provision,
)
from label_gateway.protocol import DEFAULT_PREFIX
from pricing.cli.common import JsonOption, command_group, emit_json, err, user_errors

gateways_app = command_group("The gateways' (and the engine's) MQTT logins on a Mosquitto broker.")


def register(app: typer.Typer) -> None:
    app.add_typer(gateways_app, name="gateways")


UserArgument = Annotated[
    str | None,
    typer.Argument(metavar="GATEWAY_ID", help="The gateway id, also its MQTT user name ([A-Za-z0-9._-]{1,64})."),
]
RoleOption = Annotated[
    str, typer.Option(help="gateway, or engine to provision the engine's user 'engine' (no GATEWAY_ID needed).")
]
PasswdOption = Annotated[Path, typer.Option("--passwd", help="Mosquitto's password_file.")]
AclOption = Annotated[Path, typer.Option("--acl", help="Mosquitto's acl_file (the rules are added if missing).")]
SecretsOption = Annotated[
    Path,
    typer.Option(
        "--secrets-dir",
        envvar=GATEWAY_SECRETS_ENV,
        help=f"Where <id>.secret is written (default: ${GATEWAY_SECRETS_ENV}, else {DEFAULT_SECRETS_DIR}).",
    ),
]
PrefixOption = Annotated[str, typer.Option(help="The engine's topic prefix, for the ACL rules.")]
ShowOption = Annotated[
    bool, typer.Option("--show-password", help="Also print the new password on stdout (it is in the .secret file).")
]


@gateways_app.command("provision")
def gateways_provision(
    gateway_id: UserArgument = None,
    role: RoleOption = "gateway",
    passwd: PasswdOption = DEFAULT_PASSWD,
    acl: AclOption = DEFAULT_ACL,
    secrets_dir: SecretsOption = DEFAULT_SECRETS_DIR,
    prefix: PrefixOption = DEFAULT_PREFIX,
    show_password: ShowOption = False,
    as_json: JsonOption = False,
) -> None:
    """Give a gateway (or the engine) a new MQTT password and make sure the ACL holds the rules;
    then reload Mosquitto (SIGHUP) to apply it. Running it again replaces the password."""
    with user_errors(ProvisionError):
        if role not in ("gateway", "engine"):
            raise ProvisionError(f"--role '{role}': must be gateway or engine")
        done = provision(gateway_id, role=_role(role), passwd_file=passwd, acl_file=acl, secrets_dir=secrets_dir,
                         prefix=prefix)
    _report(done)
    if as_json:
        emit_json(_summary(done) | ({"password": done.password} if show_password else {}))
    elif show_password:
        typer.echo(done.password)


def _role(text: str) -> Role:
    return "engine" if text == "engine" else "gateway"


def _report(done: Provisioned) -> None:
    def say(text: str) -> None:
        err.print(text, highlight=False, soft_wrap=True)

    who = "the engine" if done.role == "engine" else f"gateway {done.user}"
    say(f"{escape(who)}: new MQTT password in {escape(str(done.secret_file))} (mode 0600)")
    say(f"{escape(str(done.passwd_file))}: user {escape(done.user)} {'replaced' if done.replaced else 'added'}")
    if done.acl_added:
        say(f"{escape(str(done.acl_file))}: {len(done.acl_added)} rule(s) added")
    else:
        say(f"{escape(str(done.acl_file))}: holds the rules already")
    for warning in done.warnings:
        say(f"[yellow]warning:[/] {escape(warning)}")
    if done.role == "engine":
        say(f"the engine logs in with {USERNAME_ENV}=engine {PASSWORD_FILE_ENV}={escape(str(done.secret_file))}")
    say("reload Mosquitto to apply: systemctl reload mosquitto (or kill -HUP <its pid>)")


def _summary(done: Provisioned) -> dict[str, object]:
    return {
        "user": done.user,
        "role": done.role,
        "secret_file": str(done.secret_file),
        "passwd_file": str(done.passwd_file),
        "replaced": done.replaced,
        "acl_file": str(done.acl_file),
        "acl_added": list(done.acl_added),
        "warnings": list(done.warnings),
    }
