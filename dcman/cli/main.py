"""Entry point of the `dcman` command; each sub-command group lives in its own module."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dcman")
def cli() -> None:
    """dcman: a geo-redundant Distributed Cloud manager."""


from dcman.cli.alarms import alarm  # noqa: E402  (client command groups)
from dcman.cli.groups import subcloud_group  # noqa: E402
from dcman.cli.serve import serve  # noqa: E402
from dcman.cli.subclouds import subcloud  # noqa: E402
from dcman.cli.users import user  # noqa: E402

cli.add_command(serve)
cli.add_command(user)

cli.add_command(subcloud)
from dcman.cli.deploy import deploy as _deploy; subcloud.add_command(_deploy)  # noqa: E402,E702
cli.add_command(subcloud_group)
cli.add_command(alarm)
from dcman.cli.agent import agent, sim  # noqa: E402  (subcloud agent and fleet simulator)
cli.add_command(agent); cli.add_command(sim)  # noqa: E702


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
