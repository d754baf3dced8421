#!/usr/bin/env python
"""Django's command-line utility for the product-search project.

Before Django runs a command it starts the embedded PostgreSQL server (unless `DATABASE_URL` is set)
and creates the demo secret key: `config/startup.py`. Help and version start nothing.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from config.startup import prepare_command

    prepare_command(sys.argv)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
