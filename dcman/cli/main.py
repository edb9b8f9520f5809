"""Entry point of the `dcman` command; each sub-command group lives in its own module."""

from __future__ import annotations

import click

from dcman.cli.agent import agent, sim
from dcman.cli.alarms import alarm
from dcman.cli.associations import peer_group_association
from dcman.cli.backup import subcloud_backup
from dcman.cli.deploy import deploy
from dcman.cli.groups import subcloud_group
from dcman.cli.peer_groups import subcloud_peer_group
from dcman.cli.peers import site, system_peer
from dcman.cli.serve import serve
from dcman.cli.status import status
from dcman.cli.subclouds import subcloud
from dcman.cli.users import user


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dcman")
def cli() -> None:
    """dcman: a geo-redundant Distributed Cloud manager."""


subcloud.add_command(deploy)
for command in (serve, status, user, agent, sim, site, subcloud, subcloud_group, alarm, system_peer,
                subcloud_peer_group, peer_group_association, subcloud_backup):
    cli.add_command(command)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
